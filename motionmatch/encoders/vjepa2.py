"""V-JEPA 2 clip embeddings: the encoder's last hidden state, mean-pooled over its space-time tokens.

Why mean-pool the patch tokens? V-JEPA 2 has no class token; its pretrained attentive probe is
task-specific, while the mean of the frozen encoder's tokens is the plain, training-free summary
of the whole clip. The predictor (used only for masked-prediction pretraining) is skipped.

Frames are preprocessed in torch on the model's device, following transformers'
``VJEPA2VideoProcessor`` (resize the short side to ``int(crop * 256 / 224)``, bilinear with
antialiasing on uint8, centre crop, ``(x / 255 - mean) / std``) with the values stored in the
checkpoint's preprocessor config, or the processor's class defaults when there is none.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import setting
from ..errors import ParameterError
from .base import batches, check_batch_size, check_clips, l2_normalize
from .preprocessing import FramePreprocessing, frames_to_tensor, resample_name
from .weights import (absolute_if_folder, load_pretrained_model, read_processor_config, resolve_pretrained,
                      square_crop_size)

if TYPE_CHECKING:
    import torch
    from transformers import VJEPA2Config, VJEPA2Model

WHAT = "the V-JEPA 2 encoder"
FALLBACK = "use `--encoder flow` (Python: build_encoder('flow')), the weight-free motion descriptor"
VIDEO_PROCESSOR_FILES = ("video_preprocessor_config.json", "preprocessor_config.json")
# A tiny randomly initialised V-JEPA 2 for tests (sizes in the spirit of transformers' tests/models/vjepa2).
TINY_CONFIG = dict(crop_size=32, patch_size=8, frames_per_clip=4, tubelet_size=2, hidden_size=32,
                   num_hidden_layers=2, num_attention_heads=2, mlp_ratio=1.0, pred_hidden_size=16,
                   pred_num_hidden_layers=1, pred_num_attention_heads=2, pred_num_mask_tokens=2)


@dataclass(frozen=True)
class VJEPA2Settings:
    """How a V-JEPA 2 checkpoint is loaded and run."""

    # hub id or local folder of a VJEPA2Model checkpoint; read from config when the settings are made
    model_id: str = dataclasses.field(default_factory=lambda: setting("model_id"))
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:N"
    precision: str = "auto"  # "auto" (bf16 on CUDA, fp32 on CPU), "fp32", "bf16", "fp16"
    attn_implementation: str = "sdpa"  # transformers attention kernel: "sdpa", "eager", "flash_attention_2"
    frames_per_clip: int | None = None  # frames per clip; None = the checkpoint's own (64 for *-fpc64-*)
    compile: bool = False  # torch.compile the forward pass (slow first batch, faster afterwards)


def _settings_from(overrides: dict[str, Any], **fixed: Any) -> VJEPA2Settings:
    names = {field.name for field in dataclasses.fields(VJEPA2Settings)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ParameterError(f"unknown V-JEPA 2 setting(s) {unknown}; valid: {sorted(names - set(fixed))}")
    return VJEPA2Settings(**{**overrides, **fixed})


def default_processor_values(crop_size: int) -> FramePreprocessing:
    """transformers' VJEPA2VideoProcessor class defaults for a model with ``crop_size``."""
    from transformers.models.vjepa2.video_processing_vjepa2 import VJEPA2VideoProcessor as Processor

    return FramePreprocessing(resize_shortest_edge=int(crop_size * 256 / 224), crop_size=int(crop_size),
                              mean=tuple(float(v) for v in Processor.image_mean),
                              std=tuple(float(v) for v in Processor.image_std),
                              resample=resample_name(Processor.resample),
                              rescale_factor=float(Processor.rescale_factor))


def processor_values_from_config(values: dict, source: str) -> FramePreprocessing:
    """Preprocessing from a checkpoint's video processor JSON, completed by the class defaults.

    Like ``VJEPA2VideoProcessor.__init__``, the resize target is derived from crop_size
    (``int(crop * 256 / 224)``), whatever ``size`` the file holds.
    """
    from transformers.models.vjepa2.video_processing_vjepa2 import VJEPA2VideoProcessor as Processor

    crop_size = square_crop_size(values.get("crop_size", Processor.crop_size), source)
    return FramePreprocessing(resize_shortest_edge=int(crop_size * 256 / 224), crop_size=crop_size,
                              mean=tuple(float(v) for v in values.get("image_mean", Processor.image_mean)),
                              std=tuple(float(v) for v in values.get("image_std", Processor.image_std)),
                              resample=resample_name(values.get("resample", Processor.resample)),
                              rescale_factor=float(values.get("rescale_factor", Processor.rescale_factor)))


class VJEPA2Encoder:
    """Clip embeddings from a transformers ``VJEPA2Model`` (encoder only, mean-pooled, L2-normalised).

    Build with :meth:`from_pretrained` (real weights), :meth:`tiny` (random, for tests) or the
    constructor (an already built model). ``.model`` and :meth:`preprocess` are public so partial
    fine-tuning can train the same model on the same inputs.
    """

    def __init__(self, model: "VJEPA2Model", settings: VJEPA2Settings = VJEPA2Settings(),
                 processor_values: FramePreprocessing | dict | None = None, encoder_id: str | None = None):
        import torch

        from ..devices import dtype_for, pick_device

        config = model.config
        self.settings = settings
        self.device = pick_device(settings.device)
        self.dtype = dtype_for(settings.precision, self.device)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        if processor_values is None:
            processor_values = default_processor_values(config.crop_size)
        elif isinstance(processor_values, dict):
            processor_values = FramePreprocessing(**{**processor_values, "mean": tuple(processor_values["mean"]),
                                                     "std": tuple(processor_values["std"])})
        if processor_values.crop_size != config.crop_size:
            raise ParameterError(f"the preprocessor crops to {processor_values.crop_size} px but the model "
                                 f"{settings.model_id!r} expects crop_size={config.crop_size}; fix the checkpoint's "
                                 "video_preprocessor_config.json or pass matching processor_values")
        self.processor_values = processor_values
        self.tubelet_size = int(config.tubelet_size)
        self.frames_per_clip = int(settings.frames_per_clip or config.frames_per_clip)
        if self.frames_per_clip < 1 or self.frames_per_clip % self.tubelet_size:
            raise ParameterError(f"frames_per_clip={self.frames_per_clip} must be a positive multiple of the model's "
                                 f"tubelet size {self.tubelet_size}")
        self.dim = int(config.hidden_size)
        self.encoder_id = encoder_id or f"vjepa2:{settings.model_id}"
        self._forward = torch.compile(self.model) if settings.compile else self.model

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(cls, model_id_or_folder: str | None = None, **settings: Any) -> "VJEPA2Encoder":
        """Load a V-JEPA 2 checkpoint (hub id or local folder); fails fast with WeightsUnavailableError offline.

        A local folder is named by its absolute path in ``encoder_id`` (``vjepa2:/abs/folder``), so
        :func:`~motionmatch.encoders.auto.encoder_from_id` rebuilds it from any working directory
        (notebooks run in ``notebooks/``). A folder that holds no complete V-JEPA 2 checkpoint is a
        WeightsUnavailableError naming it, never a model with random weights.
        ``settings`` are :class:`VJEPA2Settings` fields other than model_id (device, precision, ...).
        """
        from transformers import VJEPA2Model

        from ..devices import dtype_for, pick_device

        settings = _settings_from(settings, model_id=absolute_if_folder(setting("model_id", model_id_or_folder)))
        resolved = resolve_pretrained(settings.model_id, what=WHAT, fallback=FALLBACK)
        dtype = dtype_for(settings.precision, pick_device(settings.device))
        model = load_pretrained_model(VJEPA2Model, settings.model_id, resolved, model_types=("vjepa2",),
                                      required_prefix="encoder.", what=WHAT, fallback=FALLBACK, dtype=dtype,
                                      attn_implementation=settings.attn_implementation)
        stored = read_processor_config(resolved, "video_processor", VIDEO_PROCESSOR_FILES)
        processor_values = (processor_values_from_config(stored, f"the preprocessor config of {settings.model_id}")
                            if stored is not None else default_processor_values(model.config.crop_size))
        return cls(model, settings, processor_values)

    @classmethod
    def tiny(cls, seed: int = 0, **overrides: Any) -> "VJEPA2Encoder":
        """A tiny randomly initialised V-JEPA 2 (same weights for the same seed) for tests and dry runs.

        ``overrides`` are :class:`VJEPA2Settings` fields (device, precision, frames_per_clip, ...).
        """
        settings = _settings_from(overrides, model_id=f"tiny-seed{int(seed)}")
        return cls(tiny_model(seed, attn_implementation=settings.attn_implementation), settings)

    # ------------------------------------------------------------------ the contract
    def preprocessing(self) -> dict:
        """JSON-serialisable description of the model input; stored with every index."""
        values = self.processor_values
        return {"kind": "vjepa2", "crop_size": values.crop_size, "resize_shortest_edge": values.resize_shortest_edge,
                "resample": values.resample, "mean": list(values.mean), "std": list(values.std),
                "frames_per_clip": self.frames_per_clip, "tubelet_size": self.tubelet_size, "pooling": "mean"}

    def preprocess(self, clips: Sequence[np.ndarray]) -> "torch.Tensor":
        """Clips ((T, H, W, 3) uint8 RGB; sizes may differ) -> pixel_values_videos (B, T, 3, S, S) float32 on the device.

        Every clip needs the same T, a multiple of the tubelet size.
        """
        import torch

        clips = check_clips(clips, frames_multiple_of=self.tubelet_size)
        if len({len(clip) for clip in clips}) > 1:
            raise ParameterError(f"clips in one batch must have the same number of frames; got "
                                 f"{sorted({len(clip) for clip in clips})} (sample them with one frames_per_clip)")
        if not clips:
            size = self.processor_values.crop_size
            return torch.empty((0, self.frames_per_clip, 3, size, size), device=self.device)
        return torch.stack([self.processor_values.apply(frames_to_tensor(clip, self.device)) for clip in clips])

    def encode(self, clips: Sequence[np.ndarray], batch_size: int = 8, progress: bool = True) -> np.ndarray:
        """(n, dim) float32 L2-normalised embeddings; a progress bar shows when there is more than one batch."""
        import torch
        from tqdm.auto import tqdm

        batch_size = check_batch_size(batch_size)
        clips = check_clips(clips, frames_multiple_of=self.tubelet_size)
        if not clips:
            return np.zeros((0, self.dim), dtype=np.float32)
        pooled = []
        total = -(-len(clips) // batch_size)
        with torch.inference_mode():
            for batch in tqdm(batches(clips, batch_size), total=total, desc=self.encoder_id, unit="batch",
                              disable=not progress or total <= 1):
                pixel_values_videos = self.preprocess(batch).to(self.dtype)
                hidden = self._forward(pixel_values_videos=pixel_values_videos, skip_predictor=True).last_hidden_state
                pooled.append(hidden.float().mean(dim=1).cpu().numpy())
        return l2_normalize(np.concatenate(pooled))

    def __repr__(self) -> str:
        return (f"VJEPA2Encoder({self.encoder_id!r}, dim={self.dim}, frames_per_clip={self.frames_per_clip}, "
                f"device={self.device}, dtype={self.dtype})")


def tiny_config(**overrides: Any) -> "VJEPA2Config":
    """The VJEPA2Config of :meth:`VJEPA2Encoder.tiny` (fields in TINY_CONFIG, overridable)."""
    from transformers import VJEPA2Config

    return VJEPA2Config(**{**TINY_CONFIG, **overrides})


def tiny_model(seed: int = 0, attn_implementation: str = "sdpa") -> "VJEPA2Model":
    """A randomly initialised tiny VJEPA2Model; the global torch RNG is left untouched."""
    import torch
    from transformers import VJEPA2Model

    config = tiny_config()
    config._attn_implementation = attn_implementation
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return VJEPA2Model(config).eval()


__all__ = ["VJEPA2Settings", "VJEPA2Encoder", "default_processor_values", "processor_values_from_config",
           "tiny_config", "tiny_model", "TINY_CONFIG"]
