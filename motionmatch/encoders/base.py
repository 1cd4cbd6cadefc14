"""What every encoder shares: the protocol, L2 normalisation and clip checks.

Frame preprocessing in torch is in :mod:`motionmatch.encoders.preprocessing`; finding pretrained
weights without hanging on an offline machine in :mod:`motionmatch.encoders.weights`.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ParameterError
from ..table import l2_normalize  # the one implementation; re-exported for the encoders
from ..validation import check_scalar

@runtime_checkable
class Encoder(Protocol):
    """What the pipeline, the CLI and the notebooks need from an encoder (docs/ARCHITECTURE.md)."""

    encoder_id: str  # e.g. "vjepa2:facebook/vjepa2-vitl-fpc64-256" or "flow:v1"; stored with every vector
    dim: int  # length of one embedding
    frames_per_clip: int  # frames per clip the encoder expects (the ClipSpec default)

    def preprocessing(self) -> dict:
        """JSON-serialisable description of how frames become model input."""

    def encode(self, clips: Sequence[np.ndarray], batch_size: int = 8) -> np.ndarray:
        """(n, dim) float32, L2-normalised embeddings of n clips, each (T, H, W, 3) uint8 RGB."""


# ----------------------------------------------------------------------------- vectors and clips
def check_clips(clips: Sequence[np.ndarray], frames_multiple_of: int = 1, min_frames: int = 1) -> list[np.ndarray]:
    """Validate clips ((T, H, W, 3) uint8 RGB each); return them as a list of contiguous arrays.

    ``frames_multiple_of`` enforces e.g. V-JEPA 2's tubelet size (frames are embedded in pairs).
    """
    if isinstance(clips, np.ndarray) and clips.ndim == 4:
        raise ParameterError(f"encode() takes a sequence of clips, each (T, H, W, 3); got one array of shape "
                             f"{clips.shape}: wrap a single clip in a list ([clip])")
    checked = []
    for index, clip in enumerate(clips):
        clip = np.asarray(clip)
        if clip.ndim != 4 or clip.shape[-1] != 3 or clip.dtype != np.uint8:
            raise ParameterError(f"clip {index} must be a (T, H, W, 3) uint8 RGB array; got shape {clip.shape}, "
                                 f"dtype {clip.dtype} (convert with frames.astype(np.uint8) and keep 3 channels)")
        frames, height, width = clip.shape[:3]
        if frames < min_frames or height < 1 or width < 1:
            raise ParameterError(f"clip {index} has shape {clip.shape}; it needs at least {min_frames} frame(s) "
                                 "of at least 1x1 pixels")
        if frames % frames_multiple_of:
            raise ParameterError(f"clip {index} has {frames} frames, not a multiple of the encoder's tubelet size "
                                 f"{frames_multiple_of}; set frames_per_clip to a multiple of {frames_multiple_of} "
                                 f"(e.g. {frames_multiple_of * max(1, frames // frames_multiple_of)})")
        checked.append(np.ascontiguousarray(clip))
    return checked


def check_batch_size(batch_size: int) -> int:
    """batch_size as a positive int (not a bool or a float), or a ParameterError."""
    return check_scalar(batch_size, "batch_size", int, min_value=1)


def batches(items: Sequence[Any], batch_size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``batch_size`` items."""
    for start in range(0, len(items), batch_size):
        yield items[start:start + batch_size]


def evenly_spaced_indices(length: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(length)`` (first and last included; repeats when short)."""
    if count == 1:
        return [(length - 1) // 2]
    return [int(round(i)) for i in np.linspace(0, length - 1, count)]


__all__ = ["Encoder", "check_clips", "check_batch_size", "batches", "evenly_spaced_indices", "l2_normalize"]
