"""CLIPVisualEncoder: an appearance baseline. CLIP image embeddings of a few frames, averaged per clip.

Why have it? A motion retrieval result is only interesting if it is not explained by looks alone:
comparing V-JEPA 2 (or the FlowEncoder) with a frame-pooled CLIP shows how much of a score comes
from appearance (background, colours, objects) rather than motion.

Each clip contributes ``frames_sampled`` evenly spaced frames; each frame goes through transformers'
``CLIPVisionModelWithProjection``; the frame embeddings are L2-normalised, averaged, and
L2-normalised again. Frames are preprocessed in torch like transformers' ``CLIPImageProcessor``
(shortest edge resize, bicubic with antialiasing, centre crop, ``(x / 255 - mean) / std``) with the
values of the checkpoint's preprocessor config, or the processor's class defaults.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import setting
from ..errors import ParameterError
from .base import batches, check_batch_size, check_clips, evenly_spaced_indices, l2_normalize
from .preprocessing import FramePreprocessing, frames_to_tensor, resample_name
from .weights import (absolute_if_folder, load_pretrained_model, read_processor_config, resolve_pretrained,
                      square_crop_size)

if TYPE_CHECKING:
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

WHAT = "the CLIP image encoder"
FALLBACK = "use `--encoder flow` (Python: build_encoder('flow')) or `--encoder clip-tiny` for a dry run"
IMAGE_PROCESSOR_FILES = ("preprocessor_config.json",)
# A tiny randomly initialised CLIP vision tower for tests.
TINY_CONFIG = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2, image_size=32,
                   patch_size=8, projection_dim=16)


@dataclass(frozen=True)
class CLIPSettings:
    """How a CLIP checkpoint is loaded and applied to clips."""

    # hub id or local folder of a CLIP (vision) checkpoint; read from config when the settings are made
    model_id: str = dataclasses.field(default_factory=lambda: setting("clip_model_id"))
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:N"
    precision: str = "auto"  # "auto" (bf16 on CUDA, fp32 on CPU), "fp32", "bf16", "fp16"
    attn_implementation: str = "sdpa"  # transformers attention kernel
    frames_per_clip: int = 16  # frames per clip the ClipSpec should sample (same timing as the motion encoders)
    frames_sampled: int = 4  # evenly spaced frames of each clip that are embedded and averaged


def _settings_from(overrides: dict[str, Any], **fixed: Any) -> CLIPSettings:
    names = {field.name for field in dataclasses.fields(CLIPSettings)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ParameterError(f"unknown CLIP setting(s) {unknown}; valid: {sorted(names - set(fixed))}")
    return CLIPSettings(**{**overrides, **fixed})


def processor_values(stored: dict | None = None, source: str = "CLIPImageProcessor defaults") -> FramePreprocessing:
    """Preprocessing from a checkpoint's image processor JSON, completed by CLIPImageProcessor's class defaults."""
    from transformers.models.clip.image_processing_clip import CLIPImageProcessor as Processor

    stored = stored or {}
    size = stored.get("size", Processor.size)
    shortest_edge = size if isinstance(size, int) else size.get("shortest_edge")
    if shortest_edge is None:
        raise ParameterError(f"{source}: size {size} has no shortest_edge; MotionMatch supports shortest-edge resizing")
    return FramePreprocessing(resize_shortest_edge=int(shortest_edge),
                              crop_size=square_crop_size(stored.get("crop_size", Processor.crop_size), source),
                              mean=tuple(float(v) for v in stored.get("image_mean", Processor.image_mean)),
                              std=tuple(float(v) for v in stored.get("image_std", Processor.image_std)),
                              resample=resample_name(stored.get("resample", Processor.resample)),
                              rescale_factor=float(stored.get("rescale_factor", Processor.rescale_factor)))


class CLIPVisualEncoder:
    """Frame-pooled CLIP image embeddings of clips (L2-normalised)."""

    def __init__(self, model: "CLIPVisionModelWithProjection", settings: CLIPSettings = CLIPSettings(),
                 preprocessing_values: FramePreprocessing | None = None, encoder_id: str | None = None):
        import torch

        from ..devices import dtype_for, pick_device

        if settings.frames_sampled < 1 or settings.frames_per_clip < 1:
            raise ParameterError(f"frames_sampled ({settings.frames_sampled}) and frames_per_clip "
                                 f"({settings.frames_per_clip}) must be >= 1")
        self.settings = settings
        self.device = pick_device(settings.device)
        self.dtype = dtype_for(settings.precision, self.device)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        config = model.config
        if preprocessing_values is None:
            preprocessing_values = processor_values()
            if preprocessing_values.crop_size != config.image_size:  # e.g. a tiny test model
                preprocessing_values = dataclasses.replace(preprocessing_values, crop_size=int(config.image_size),
                                                           resize_shortest_edge=int(config.image_size))
        if preprocessing_values.crop_size != config.image_size:
            raise ParameterError(f"the preprocessor crops to {preprocessing_values.crop_size} px but the CLIP model "
                                 f"{settings.model_id!r} expects image_size={config.image_size}")
        self.processor_values = preprocessing_values
        self.frames_per_clip = int(settings.frames_per_clip)
        self.dim = int(config.projection_dim)
        self.encoder_id = encoder_id or f"clip:{settings.model_id}"
        self._torch = torch

    @classmethod
    def from_pretrained(cls, model_id_or_folder: str | None = None, **settings: Any) -> "CLIPVisualEncoder":
        """Load a CLIP checkpoint's vision tower and projection; fails fast with WeightsUnavailableError offline."""
        from transformers import CLIPVisionModelWithProjection

        from ..devices import dtype_for, pick_device

        settings = _settings_from(settings, model_id=absolute_if_folder(setting("clip_model_id", model_id_or_folder)))
        resolved = resolve_pretrained(settings.model_id, what=WHAT, fallback=FALLBACK)
        dtype = dtype_for(settings.precision, pick_device(settings.device))
        model = load_pretrained_model(CLIPVisionModelWithProjection, settings.model_id, resolved,
                                      model_types=("clip", "clip_vision_model"), required_prefix="vision_model.",
                                      what=WHAT, fallback=FALLBACK, dtype=dtype,
                                      attn_implementation=settings.attn_implementation)
        stored = read_processor_config(resolved, "image_processor", IMAGE_PROCESSOR_FILES)
        return cls(model, settings, processor_values(stored, f"the preprocessor config of {settings.model_id}"))

    @classmethod
    def tiny(cls, seed: int = 0, **overrides: Any) -> "CLIPVisualEncoder":
        """A tiny randomly initialised CLIP vision model (same weights for the same seed), for tests."""
        settings = _settings_from(overrides, model_id=f"tiny-seed{int(seed)}")
        return cls(tiny_model(seed, attn_implementation=settings.attn_implementation), settings)

    def preprocessing(self) -> dict:
        """JSON-serialisable description of the model input; stored with every index."""
        values = self.processor_values
        return {"kind": "clip", "crop_size": values.crop_size, "resize_shortest_edge": values.resize_shortest_edge,
                "resample": values.resample, "mean": list(values.mean), "std": list(values.std),
                "frames_per_clip": self.frames_per_clip, "frames_sampled": self.settings.frames_sampled,
                "pooling": "mean of L2-normalised frame embeddings"}

    def preprocess(self, clips: Sequence[np.ndarray]) -> "torch.Tensor":
        """Clips -> pixel_values (n_clips * frames_sampled, 3, S, S) float32 on the device, clip by clip."""
        torch = self._torch
        clips = check_clips(clips)
        if not clips:
            size = self.processor_values.crop_size
            return torch.empty((0, 3, size, size), device=self.device)
        frames = [clip[evenly_spaced_indices(len(clip), self.settings.frames_sampled)] for clip in clips]
        return torch.cat([self.processor_values.apply(frames_to_tensor(chosen, self.device)) for chosen in frames])

    def encode(self, clips: Sequence[np.ndarray], batch_size: int = 8, progress: bool = True) -> np.ndarray:
        """(n, dim) float32 L2-normalised embeddings; ``batch_size`` counts clips."""
        import torch
        import torch.nn.functional as F
        from tqdm.auto import tqdm

        batch_size = check_batch_size(batch_size)
        clips = check_clips(clips)
        if not clips:
            return np.zeros((0, self.dim), dtype=np.float32)
        per_clip = self.settings.frames_sampled
        pooled = []
        total = -(-len(clips) // batch_size)
        with torch.inference_mode():
            for batch in tqdm(batches(clips, batch_size), total=total, desc=self.encoder_id, unit="batch",
                              disable=not progress or total <= 1):
                pixel_values = self.preprocess(batch).to(self.dtype)
                frame_embeddings = F.normalize(self.model(pixel_values=pixel_values).image_embeds.float(), dim=-1)
                pooled.append(frame_embeddings.reshape(len(batch), per_clip, -1).mean(dim=1).cpu().numpy())
        return l2_normalize(np.concatenate(pooled))

    def __repr__(self) -> str:
        return (f"CLIPVisualEncoder({self.encoder_id!r}, dim={self.dim}, frames_sampled={self.settings.frames_sampled}, "
                f"device={self.device}, dtype={self.dtype})")


def tiny_config(**overrides: Any) -> "CLIPVisionConfig":
    """The CLIPVisionConfig of :meth:`CLIPVisualEncoder.tiny`."""
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(**{**TINY_CONFIG, **overrides})


def tiny_model(seed: int = 0, attn_implementation: str = "sdpa") -> "CLIPVisionModelWithProjection":
    """A randomly initialised tiny CLIPVisionModelWithProjection; the global torch RNG is left untouched."""
    import torch
    from transformers import CLIPVisionModelWithProjection

    config = tiny_config()
    config._attn_implementation = attn_implementation
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return CLIPVisionModelWithProjection(config).eval()


__all__ = ["CLIPSettings", "CLIPVisualEncoder", "processor_values", "tiny_config", "tiny_model", "TINY_CONFIG"]
