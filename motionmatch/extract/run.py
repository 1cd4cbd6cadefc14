"""An extraction run from the outside: :func:`extract` makes one (what ``motionmatch extract`` calls) and
:func:`load_run` reads one back (what notebooks, ``index`` and the API call), the one way to read a run's
table and metadata together."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .. import config
from ..errors import ParameterError
from ..table import load_embeddings, read_extract_meta
from ..video.clips import ClipSpec
from ..video.windows import WindowSpec, dense_clip_spec
from .parts import ExtractSummary


@dataclass
class Run:
    """An extraction run: the table, what was recorded, and who made the vectors."""

    embeddings_dir: Path
    table: pd.DataFrame
    meta: dict[str, Any]
    encoder_id: str
    encoder_note: str  # plain words for the encoder, with the reason when `auto` fell back

    @property
    def banner(self) -> str:
        """The markdown a report opens with: which encoder made every number, and why."""
        return f"**Encoder:** {self.encoder_note}"

    @property
    def caveat(self) -> str:
        """A markdown bullet when the numbers are not a pre-trained V-JEPA 2's ('' when they are)."""
        return encoder_caveat(self.encoder_id)

    @property
    def dense(self) -> bool:
        """Whether the run holds dense windows over whole videos (``extract --stride-s``)."""
        return "windows" in self.meta


def encoder_caveat(encoder_id: str) -> str:
    """The caveat every conclusion carries when its vectors are not a pre-trained V-JEPA 2's."""
    if encoder_id.startswith("vjepa2:") and "tiny" not in encoder_id:
        return ""
    return ("- **Caveat.** These numbers are not V-JEPA 2's: they come from the encoder named above, on the data "
            "in `embeddings_dir`. They show the method and the measurements, not V-JEPA 2's quality.")


def load_run(embeddings_dir: str | os.PathLike = "") -> Run:
    """Table + meta + encoder note of an extraction run; ``""`` means the configured embeddings folder."""
    from ..encoders.auto import describe_encoder

    folder = Path(config.setting("embeddings_dir", embeddings_dir))
    meta = read_extract_meta(folder)
    table = load_embeddings(folder)
    encoder_id = str(meta["encoder_id"])
    note = str(meta.get("encoder_note") or describe_encoder(encoder_id))
    return Run(embeddings_dir=folder, table=table, meta=meta, encoder_id=encoder_id, encoder_note=note)


def extract(source: str | os.PathLike, out_dir: str | os.PathLike = "", encoder: Any = "auto", model_id: str = "",
            device: str | None = None, dataset: str | None = None, frames_per_clip: int = 0,
            frame_stride: int | None = None, clips_per_video: int = 4, windows: WindowSpec | None = None,
            batch_size: int = 8, workers: int | None = None, overwrite: bool = False, prune: bool = False,
            ray: bool = False, ray_address: str = "", ray_actors: int | None = None, progress: bool = True,
            dataset_options: dict | None = None, print_fn=print) -> ExtractSummary:
    """Embed the clips of ``source`` (a folder, a manifest CSV, or a dataset root with ``dataset``) into
    ``out_dir`` (default: config's ``embeddings_dir``); resumable, and a bad video never stops the run.

    ``windows`` switches to dense windows over whole videos (long footage; the clip then defaults to
    :func:`~motionmatch.video.windows.dense_clip_spec`); otherwise ``clips_per_video`` clips are spread over
    each video. ``encoder``: ``auto`` (V-JEPA 2 when its weights load, else FlowEncoder, saying why), or a
    name of :data:`motionmatch.encoders.ENCODER_CHOICES`. ``ray``: decode in Ray tasks and encode in an actor
    pool (same output folder); an encoder object may be given instead of a name. Everything is checked before a
    model is loaded.
    """
    from ..data.sources import load_source
    from ..encoders.auto import choose_encoder

    if not ray and (ray_address or ray_actors is not None):
        raise ParameterError("--ray-address and --ray-actors apply to Ray extraction: add --ray")
    if ray and workers is not None:
        raise ParameterError("--workers sets local decode processes; with --ray, decoding runs in Ray tasks "
                             "(use --ray-actors for the encoder actors)")
    if ray:
        from .ray_data import import_ray

        import_ray()  # before loading a model: say now if Ray is missing
    # checks the path before loading a model; dataset_options: e.g. {"split": 2} for UCF101 / HMDB51
    manifest, failures = load_source(source, dataset=dataset, **(dataset_options or {}))
    if len(manifest) == 0 and not failures:
        raise ParameterError(f"no videos found in {source} (looked for {', '.join(config.VIDEO_EXTENSIONS)})")
    # with Ray the driver's encoder only names the run (id, preprocessing): keep it off the actors' GPU
    if isinstance(encoder, str):
        built, note = choose_encoder(encoder, model_id=config.setting("model_id", model_id),
                                     device="cpu" if ray else device)
    else:
        from ..encoders.auto import describe_encoder

        built, note = encoder, describe_encoder(encoder.encoder_id)
    print_fn(f"encoder: {note}")
    if windows is not None:
        spec = dense_clip_spec(frames_per_clip, frame_stride or 0)
    else:
        spec = ClipSpec(frames_per_clip=frames_per_clip or built.frames_per_clip, frame_stride=frame_stride or 2,
                        clips_per_video=clips_per_video)
    out = Path(config.setting("embeddings_dir", out_dir))
    options = dict(clip_spec=spec, batch_size=batch_size, overwrite=overwrite, prune=prune,
                   discovery_failures=failures, encoder_note=note, window_spec=windows, progress=progress,
                   print_fn=print_fn)
    if ray:
        from .ray_data import extract_embeddings_ray

        return extract_embeddings_ray(manifest, built, out, address=ray_address, actors=ray_actors, **options)
    from .local import extract_embeddings

    return extract_embeddings(manifest, built, out, workers=workers, **options)


__all__ = ["Run", "encoder_caveat", "load_run", "extract"]
