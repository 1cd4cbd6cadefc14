"""Frame preprocessing in torch, as transformers' torchvision processors do it: resize (shortest edge),
centre crop, rescale, normalise. torch is imported inside the functions, so importing this stays cheap."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ParameterError

if TYPE_CHECKING:
    import torch

_PIL_RESAMPLE_NAMES = {0: "nearest", 2: "bilinear", 3: "bicubic"}  # PIL.Image.Resampling codes in HF configs


def resample_name(resample: int | str) -> str:
    """A transformers ``resample`` value (PIL code or name) as an interpolate mode name."""
    if isinstance(resample, str) and resample.lower() in ("nearest", "bilinear", "bicubic"):
        return resample.lower()
    if isinstance(resample, (int, np.integer)) and int(resample) in _PIL_RESAMPLE_NAMES:
        return _PIL_RESAMPLE_NAMES[int(resample)]
    raise ParameterError(f"unsupported resample value {resample!r} in the preprocessor config; "
                         "MotionMatch implements nearest (0), bilinear (2) and bicubic (3)")


@dataclass(frozen=True)
class FramePreprocessing:
    """Resize (shortest edge) -> centre crop -> rescale -> normalise, as transformers' torchvision processors do.

    The values come from a checkpoint's preprocessor config or the processor class defaults; see
    ``VJEPA2Encoder`` and ``CLIPVisualEncoder``.
    """

    resize_shortest_edge: int  # the shorter side is resized to this many pixels (aspect ratio kept)
    crop_size: int  # then a centred crop_size x crop_size square is cut out
    mean: tuple[float, float, float]  # per-channel mean on the 0..1 scale
    std: tuple[float, float, float]  # per-channel standard deviation on the 0..1 scale
    resample: str = "bilinear"  # interpolation: "nearest", "bilinear" or "bicubic" (antialiased)
    rescale_factor: float = 1 / 255  # uint8 -> 0..1

    def to_dict(self) -> dict:
        """JSON-serialisable values (lists, not tuples)."""
        values = asdict(self)
        values["mean"], values["std"] = list(self.mean), list(self.std)
        return values

    def apply(self, frames: "torch.Tensor") -> "torch.Tensor":
        """(N, 3, H, W) uint8 frames (any device) -> (N, 3, crop, crop) float32 model input on the same device."""
        import torch

        frames = resize_shortest_edge_uint8(frames, self.resize_shortest_edge, self.resample)
        frames = center_crop(frames, self.crop_size)
        # transformers fuses rescale and normalise: (x - mean/rescale) / (std/rescale), in float32
        mean = torch.tensor(self.mean, device=frames.device) * (1.0 / self.rescale_factor)
        std = torch.tensor(self.std, device=frames.device) * (1.0 / self.rescale_factor)
        return (frames.to(torch.float32) - mean[:, None, None]) / std[:, None, None]


def shortest_edge_size(height: int, width: int, shortest_edge: int) -> tuple[int, int]:
    """Output (height, width) for a shortest-edge resize: transformers' get_resize_output_image_size rule."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = shortest_edge, int(shortest_edge * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def _native_uint8_resize(device: "torch.device", mode: str) -> bool:
    """Whether torchvision resizes uint8 directly (no float round trip) here: CPU bilinear with AVX2, CPU bicubic."""
    import torch

    if device.type != "cpu":
        return False
    if mode == "bilinear":  # torchvision's own test, kept literally (an "AVX512" CPU takes the float path)
        return "AVX2" in torch.backends.cpu.get_cpu_capability()
    return mode == "bicubic"


def resize_shortest_edge_uint8(frames: "torch.Tensor", shortest_edge: int, mode: str = "bilinear") -> "torch.Tensor":
    """Antialiased resize of (N, 3, H, W) uint8 frames so the shorter side is ``shortest_edge``; returns uint8.

    Mirrors torchvision's ``resize`` on uint8 tensors (what transformers' processors call): native uint8
    kernels where torchvision uses them, otherwise float32 -> interpolate -> clamp -> round -> uint8.
    """
    import torch
    import torch.nn.functional as F

    height, width = frames.shape[-2:]
    size = shortest_edge_size(height, width, shortest_edge)
    if size == (height, width):
        return frames
    options = {"mode": mode} if mode == "nearest" else {"mode": mode, "antialias": True, "align_corners": False}
    if mode == "nearest" or _native_uint8_resize(frames.device, mode):
        return F.interpolate(frames, size=size, **options)
    resized = F.interpolate(frames.to(torch.float32), size=size, **options)
    return resized.clamp_(0, 255).round_().to(torch.uint8)


def center_crop(frames: "torch.Tensor", crop_size: int) -> "torch.Tensor":
    """Centre crop of (..., H, W) to crop_size x crop_size, zero-padding first if smaller (transformers' rule)."""
    import torch.nn.functional as F

    height, width = frames.shape[-2:]
    if crop_size > width or crop_size > height:
        pad_w, pad_h = max(0, crop_size - width), max(0, crop_size - height)
        frames = F.pad(frames, (pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2), value=0)
        height, width = frames.shape[-2:]
    top, left = int((height - crop_size) / 2.0), int((width - crop_size) / 2.0)
    return frames[..., top:top + crop_size, left:left + crop_size]


def frames_to_tensor(clip: np.ndarray, device: "torch.device") -> "torch.Tensor":
    """(T, H, W, 3) uint8 numpy -> (T, 3, H, W) uint8 tensor on ``device`` (moved before any arithmetic)."""
    import torch

    return torch.from_numpy(clip).to(device, non_blocking=True).permute(0, 3, 1, 2).contiguous()


__all__ = ["FramePreprocessing", "resample_name", "shortest_edge_size", "resize_shortest_edge_uint8", "center_crop",
           "frames_to_tensor"]
