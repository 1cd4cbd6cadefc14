"""Writing videos: H.264 ``.mp4`` files from frames, with exact timestamps when asked (for tests, samples, copies)."""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import ParameterError
from ..validation import check_scalar


def write_video(path: str | os.PathLike, frames: np.ndarray | Iterable[np.ndarray], fps: float,
                timestamps_s: Sequence[float] | None = None, pix_fmt: str = "yuv420p",
                crf: int = 18, preset: str = "veryfast", display_rotation: int = 0) -> Path:
    """Write ``frames`` ((T, H, W, 3) uint8 RGB) as an H.264 ``.mp4`` at ``fps``; returns the path.

    ``frames`` may also be any iterable of (H, W, 3) uint8 frames (e.g. a generator), so long
    videos are written with flat memory.

    ``yuv420p`` (the default, what every player reads) needs even sizes: an odd width or height
    is **padded by one pixel**, repeating the last column / row, so a 97x61 input is stored as
    98x62. ``pix_fmt="yuv444p"`` keeps odd sizes exactly (97x61 stays 97x61).

    ``timestamps_s`` (one per frame, strictly increasing, first usually 0) writes a variable-frame-
    rate file: each frame's presentation time is set explicitly (in 1/90000 s units).
    ``display_rotation`` (degrees counter-clockwise) stores a display matrix, as phones do.
    """
    import av

    check_scalar(fps, f"fps for {path}", float, min_value=0, include_min=False)
    if isinstance(frames, np.ndarray) and (frames.ndim != 4 or len(frames) == 0):
        raise ParameterError(f"frames for {path} must be a non-empty (T, H, W, 3) uint8 array; got shape {frames.shape}")
    if timestamps_s is not None:
        timestamps_s = np.asarray(timestamps_s, dtype=np.float64)
        if np.any(np.diff(timestamps_s) <= 0) or (isinstance(frames, np.ndarray) and len(timestamps_s) != len(frames)):
            raise ParameterError(f"timestamps_s for {path} must hold one strictly increasing value per frame")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    time_base = Fraction(1, 90000)
    written, shape = 0, None
    try:
        with av.open(str(path), mode="w") as container:
            stream = None
            for image in frames:
                image = np.asarray(image)
                if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8 or (shape and image.shape != shape):
                    raise ParameterError(f"frame {written} for {path} must be an (H, W, 3) uint8 array like the first "
                                         f"frame {shape}; got shape {image.shape}, dtype {image.dtype}")
                if stream is None:
                    shape = image.shape
                    stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
                    stream.height, stream.width = _stored_size(image.shape[0], image.shape[1], pix_fmt)
                    stream.pix_fmt = pix_fmt
                    # one thread and no lookahead / macroblock tree: libx264 then gives the same bytes for the
                    # same frames (with lookahead it was seen to vary between runs in one process)
                    stream.codec_context.options = {"crf": str(crf), "preset": preset, "threads": "1",
                                                    "x264-params": "rc-lookahead=0:mbtree=0"}
                    if display_rotation:
                        stream.set_display_rotation(display_rotation)
                    if timestamps_s is not None:
                        stream.codec_context.time_base = stream.time_base = time_base
                pad_h, pad_w = stream.height - image.shape[0], stream.width - image.shape[1]
                if pad_h or pad_w:
                    image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                if timestamps_s is not None:
                    if written >= len(timestamps_s):
                        raise ParameterError(f"timestamps_s for {path} holds {len(timestamps_s)} values, fewer than the frames")
                    frame.pts, frame.time_base = int(round(timestamps_s[written] * 90000)), time_base
                else:
                    frame.pts, frame.time_base = written, 1 / Fraction(fps).limit_denominator(1001)
                for packet in stream.encode(frame):
                    container.mux(packet)
                written += 1
            if stream is None:
                raise ParameterError(f"frames for {path} is empty; give at least one frame")
            for packet in stream.encode():
                container.mux(packet)
    except BaseException:
        path.unlink(missing_ok=True)  # never leave a half-written video behind
        raise
    return path


def _stored_size(height: int, width: int, pix_fmt: str) -> tuple[int, int]:
    """yuv420p needs even sizes: odd ones are padded by one pixel."""
    if pix_fmt == "yuv420p":
        return height + height % 2, width + width % 2
    return height, width


__all__ = ["write_video"]
