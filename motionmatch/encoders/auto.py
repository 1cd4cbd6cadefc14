"""Choosing an encoder by name, with the documented fallback to the weight-free FlowEncoder."""
from __future__ import annotations

import logging
from pathlib import Path

from ..errors import ParameterError, WeightsUnavailableError

log = logging.getLogger(__name__)

ENCODER_CHOICES = ("auto", "vjepa2", "vjepa2-tiny", "flow", "clip", "clip-tiny", "pose")


def choose_encoder(name: str = "auto", model_id: str | None = None, device: str | None = None,
                   precision: str | None = None) -> tuple[object, str]:
    """Build the encoder the user asked for; return it with a note for the first lines of every report.

    ``model_id`` empty means the configured checkpoint (``MOTIONMATCH_MODEL``, else the hub's V-JEPA 2;
    see :func:`motionmatch.config.setting`). ``auto`` falls back to :class:`FlowEncoder` only when
    nothing was configured and the default hub checkpoint cannot be loaded (offline, not cached);
    the note then says what was tried, why it failed and how to point at weights. A checkpoint the
    user chose (``model_id``, ``--model`` or ``MOTIONMATCH_MODEL`` naming a folder or another hub id)
    must load: its failure is raised with the reason, never replaced by FlowEncoder. Any other name
    is strict too: ``pose`` (BlazePose skeletons; its model files are fetched once from the mediapipe wheel) raises
    WeightsUnavailableError with the manual steps when they cannot be.
    """
    from ..config import HUB_MODEL_ID, setting
    from . import build_encoder

    if name not in ENCODER_CHOICES:
        raise ParameterError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODER_CHOICES)}")
    kwargs = {}
    if device:
        kwargs["device"] = device
    if precision:
        kwargs["precision"] = precision
    if name in ("auto", "vjepa2"):
        model_id = setting("model_id", model_id)
        try:
            encoder = build_encoder("vjepa2", model_id=model_id, **kwargs)
        except WeightsUnavailableError as err:
            if name == "vjepa2" or model_id != HUB_MODEL_ID:
                raise  # a checkpoint the user chose: say why it does not load, never swap the encoder
            log.info("V-JEPA 2 weights unavailable, using FlowEncoder: %s", err)  # the note says it, in the report
            return build_encoder("flow"), fallback_note(model_id, err)
        return encoder, describe_encoder(encoder.encoder_id)
    if name == "clip" and model_id:
        kwargs["model_id"] = model_id
    if name in ("flow", "vjepa2-tiny", "clip-tiny", "pose"):
        kwargs = {}  # no device or precision: CPU-only, or random weights for tests
    encoder = build_encoder(name, **kwargs)
    return encoder, describe_encoder(encoder.encoder_id)


def fallback_note(model_id: str, error: Exception) -> str:
    """Why ``auto`` used FlowEncoder: what it tried, why that failed, and how to point at the weights."""
    reason = str(error).split(" To use ")[0].strip().rstrip(".")  # the reason, without the generic advice
    folder = model_id.rstrip("/").split("/")[-1]
    return (f"FlowEncoder (flow:v1, weight-free optical-flow histograms), NOT V-JEPA 2. `auto` tried the V-JEPA 2 "
            f"checkpoint `{model_id}` and could not load it: {reason}. To use V-JEPA 2, download it on a connected "
            f"machine (`hf download {model_id} --local-dir {folder}`), copy the folder here and set "
            f"`MOTIONMATCH_MODEL=/path/to/{folder}` (or pass `--model /path/to/{folder}`).")


def describe_encoder(encoder_id: str) -> str:
    """Plain words for an encoder id, used in the first lines of every report."""
    if encoder_id.startswith("flow:"):
        return f"FlowEncoder ({encoder_id}): weight-free optical-flow histograms, NOT V-JEPA 2."
    if encoder_id.startswith("vjepa2:tiny"):
        return f"A tiny randomly initialised V-JEPA 2 ({encoder_id}) for tests: its numbers mean nothing about V-JEPA 2."
    folder = encoder_id.removeprefix("vjepa2:")
    if encoder_id.startswith("vjepa2:") and Path(folder).is_absolute():
        return f"V-JEPA 2 ({encoder_id}) with the weights in the local folder {folder}."
    if encoder_id.startswith("vjepa2:"):
        return f"V-JEPA 2 ({encoder_id}) with pre-trained weights."
    if encoder_id.startswith("clip:tiny"):
        return f"A tiny randomly initialised CLIP vision model ({encoder_id}) for tests."
    if encoder_id.startswith("clip:"):
        return f"CLIP image encoder, frame-pooled ({encoder_id})."
    if encoder_id.startswith("pose:"):
        return (f"PoseEncoder ({encoder_id}): the 3D skeletons of the people in each clip (MediaPipe's BlazePose), turned "
                "to face one way, so the same movement filmed from another camera gives nearly the same vector. "
                "It needs a person in view: clips with nobody get coverage 0 and are left out of its rankings; it "
                "knows nothing of vehicles, animals or other motion. NOT V-JEPA 2.")
    return encoder_id


def encoder_from_id(encoder_id: str):
    """Rebuild the encoder that made an index or table, so queries are embedded the same way."""
    from . import build_encoder

    kind, _, rest = encoder_id.partition(":")
    if kind == "flow":
        return build_encoder("flow")
    if kind == "pose":
        from .pose import VERSION_SETTINGS

        if rest not in VERSION_SETTINGS:
            raise ParameterError(f"cannot rebuild encoder {encoder_id!r}: this MotionMatch makes pose vectors "
                                 f"{', '.join('pose:' + v for v in VERSION_SETTINGS)}; re-extract the table with "
                                 "the current pose encoder")
        return build_encoder("pose", **VERSION_SETTINGS[rest])
    if kind == "vjepa2" and rest.startswith("tiny-seed"):
        return build_encoder("vjepa2-tiny", seed=int(rest.removeprefix("tiny-seed")))
    if kind == "vjepa2":
        return build_encoder("vjepa2", model_id=rest)
    if kind == "clip" and rest.startswith("tiny-seed"):
        return build_encoder("clip-tiny", seed=int(rest.removeprefix("tiny-seed")))
    if kind == "clip":
        return build_encoder("clip", model_id=rest)
    raise ParameterError(f"cannot rebuild encoder {encoder_id!r}: unknown kind {kind!r}")
