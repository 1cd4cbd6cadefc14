"""Per-frame fingerprints: a 24 x 24 grey thumbnail of every frame, and the signals the fine stage reads.

The coarse stage of a time-range search works on 2 s windows; boundaries at frame resolution need a signal
per frame that is cheap to compute at extraction (one area resize of each decoded frame), small to store
(576 bytes a frame, about 160 bytes packed with zlib: 13.7 MB per video-hour at 24 fps, measured by
``python -m bench.bench_long_cost``), and survives what copies go through. From the thumbnails the fine stage
(:mod:`motionmatch.search.fine`) derives

* **appearance** (:func:`appearance`): the thumbnail, mean-removed and L2-normalised, so brightness and
  contrast changes (an affine change of the grey levels) cancel, and rescaling and re-encoding change little;
* **change** (:func:`change`): the difference to the previous frame, normalised the same way; the fine stage
  reads the reference's change only where the query's pixels ever change
  (:func:`motionmatch.search.fine.live_mask`), so a static overlay (a caption bar, a logo) drops out even when
  the motion passes under it;
* **foreground** (:func:`foreground`): each frame minus the median of its run, what moves against what stays.

A caption bar lowers appearance most, a speed change lowers change most, a crop needs the 1.25x zoom of
:func:`zoomed`; the fine stage takes, frame by frame, the best of the three. How well the result finds edited
copies, edit by edit: ``python -m bench.bench_localize`` (docs/LONG_VIDEOS.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

THUMB = 24  # pixels per side of a frame's thumbnail (a 1.25x central zoom of 16 x 16 loses too much: see below)
SEARCH_THUMB = 16  # pixels per side of the thumbnails the frame store's vectors are made from
_MIN_CHANGE = 1.0  # grey levels (summed over the thumbnail's L2 norm) below which a frame "did not change"


def thumbnails(frames: np.ndarray) -> np.ndarray:
    """(n, 24, 24) uint8 grey thumbnails of (n, H, W, 3) uint8 RGB frames (area resize: an average per cell)."""
    import cv2

    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    out = np.empty((len(frames), THUMB, THUMB), dtype=np.uint8)
    for i, frame in enumerate(frames):
        out[i] = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    return out


def pack(thumbs: np.ndarray) -> bytes:
    """Thumbnails as bytes (zlib over the raw uint8 values, level 1): what tables and the frame store keep."""
    import zlib

    return zlib.compress(np.ascontiguousarray(thumbs, dtype=np.uint8).tobytes(), 1)


def unpack(data: bytes) -> np.ndarray:
    """(n, THUMB, THUMB) uint8 thumbnails from :func:`pack`'s bytes."""
    import zlib

    return np.frombuffer(zlib.decompress(data), dtype=np.uint8).reshape(-1, THUMB, THUMB)


def search_vectors(thumbs: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(n, 256) float32 appearance of the thumbnails shrunk to 16 x 16: the frame store's vectors (small enough
    to index a vector per window; the fine stage compares the full thumbnails).

    ``mask`` (THUMB x THUMB, 1 = keep): a query's vectors on the kept pixels only (mean-removed there, zero
    elsewhere, L2-normalised), so that pixels an edit laid over the frames (a caption bar, a logo) do not
    decide the match; their cosine with a stored vector is the correlation over the kept pixels, scaled by the
    stored frame's share of contrast there. A 16 x 16 pixel is kept where all of it is."""
    import cv2

    thumbs = np.asarray(thumbs, dtype=np.float32)
    small = np.stack([cv2.resize(t, (SEARCH_THUMB, SEARCH_THUMB), interpolation=cv2.INTER_AREA) for t in thumbs]) \
        if len(thumbs) else np.zeros((0, SEARCH_THUMB, SEARCH_THUMB), np.float32)
    if mask is None:
        return appearance(small)
    keep = cv2.resize(np.asarray(mask, np.float32), (SEARCH_THUMB, SEARCH_THUMB), interpolation=cv2.INTER_AREA)
    return _normalised(small, 1e-3, keep.reshape(-1) > 0.99)


def _normalised(values: np.ndarray, floor: float, keep: np.ndarray | None = None) -> np.ndarray:
    """Each row mean-removed and L2-normalised (zeros below ``floor``); with ``keep`` (a bool per value), on the
    kept values only, the others zero."""
    flat = values.reshape(len(values), -1).astype(np.float32)
    if keep is None:
        flat = flat - flat.mean(axis=1, keepdims=True)
    elif not keep.any():
        return np.zeros_like(flat)
    else:
        flat = np.where(keep[None], flat - flat[:, keep].mean(axis=1, keepdims=True), 0.0)
    norm = np.linalg.norm(flat, axis=1, keepdims=True)
    return np.where(norm > floor, flat / np.maximum(norm, 1e-6), 0.0).astype(np.float32)


def appearance(thumbs: np.ndarray) -> np.ndarray:
    """(n, 576) float32: each thumbnail mean-removed and L2-normalised (a flat grey frame gives zeros)."""
    return _normalised(np.asarray(thumbs, dtype=np.float32), 1e-3)


def change(thumbs: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """(n, 576) float32: each thumbnail minus the one before (``previous`` before the first; else the first
    frame counts as unchanged), normalised like :func:`appearance`; a frame that did not change gives zeros."""
    thumbs = np.asarray(thumbs, dtype=np.float32)
    before = np.concatenate([thumbs[:1] if previous is None else np.asarray(previous, np.float32)[None], thumbs[:-1]])
    return _normalised(thumbs - before, _MIN_CHANGE)


def foreground(thumbs: np.ndarray) -> np.ndarray:
    """(n, 576) float32: each thumbnail minus the median of them all (what moves against what stays: a still
    background, a caption bar and a logo drop out), normalised like :func:`appearance`."""
    thumbs = np.asarray(thumbs, dtype=np.float32)
    return _normalised(thumbs - np.median(thumbs, axis=0, keepdims=True), _MIN_CHANGE)


def mirrored(thumbs: np.ndarray) -> np.ndarray:
    """The thumbnails of the left-right mirrored frames."""
    return np.ascontiguousarray(np.asarray(thumbs)[..., ::-1])


def _warp_zoom(image: np.ndarray, zoom: float) -> np.ndarray:
    """One thumbnail through OpenCV's warp: its central ``1 / zoom`` part resampled to the full size."""
    import cv2

    c = (THUMB - 1) / 2
    matrix = np.array([[1 / zoom, 0, c - c / zoom], [0, 1 / zoom, c - c / zoom]], dtype=np.float32)
    return cv2.warpAffine(np.asarray(image, np.float32), matrix, (THUMB, THUMB),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)


@lru_cache(maxsize=4)
def _zoom_operator(zoom: float):
    """The zoom as a sparse (THUMB², THUMB²) matrix: a warp is linear in the pixels (bilinear weights, reflected
    edges), so warping each unit impulse gives its columns exactly, and one product zooms a whole stack."""
    from scipy import sparse

    columns = [_warp_zoom(np.eye(THUMB * THUMB, dtype=np.float32)[i].reshape(THUMB, THUMB), zoom).reshape(-1)
               for i in range(THUMB * THUMB)]
    return sparse.csr_matrix(np.stack(columns).astype(np.float32))  # row i: where pixel i's weight goes


def zoomed(thumbs: np.ndarray, zoom: float) -> np.ndarray:
    """The thumbnails' central ``1 / zoom`` part, resampled to the full size: what a central crop of the frames to
    ``1 / zoom`` of their width and height looks like (bilinear, edges reflected; OpenCV's warp, applied to the
    whole stack at once as the linear map it is)."""
    thumbs = np.asarray(thumbs)
    if zoom == 1:
        return thumbs
    if not len(thumbs):
        return np.zeros(thumbs.shape, np.float32)
    flat = thumbs.reshape(len(thumbs), -1).astype(np.float32)
    return np.asarray(_zoom_operator(float(zoom)).T.dot(flat.T).T, dtype=np.float32).reshape(thumbs.shape)


@dataclass(frozen=True)
class FrameSignal:
    """The frames of one video between two times: their start times and thumbnails, in time order."""

    video_path: str
    times: np.ndarray  # (n,) float64
    thumbs: np.ndarray  # (n, 16, 16) uint8

    def __len__(self) -> int:
        return len(self.times)

    @property
    def frame_s(self) -> float:
        """The median frame duration (1 / fps)."""
        steps = np.diff(self.times)
        return float(np.median(steps)) if len(steps) else 1 / 24

    def end_time(self, index: int) -> float:
        """The end of frame ``index`` (the next frame's start; the last frame lasts one frame duration)."""
        return float(self.times[index + 1]) if index + 1 < len(self.times) else float(self.times[index]) + self.frame_s

    def between(self, start_s: float, end_s: float) -> "FrameSignal":
        keep = (self.times >= start_s - 1e-9) & (self.times < end_s - 1e-9)
        return FrameSignal(self.video_path, self.times[keep], self.thumbs[keep])



def unzoomed(thumbs: np.ndarray, zoom: float) -> np.ndarray:
    """The inverse of :func:`zoomed`: thumbnails shrunk by ``zoom`` into the middle of a full-size one, the
    border filled by extending the edges; what the uncropped frames may have looked like (for searching a
    cropped copy among the full frames of its source)."""
    import cv2

    if zoom == 1:
        return np.asarray(thumbs)
    c = (THUMB - 1) / 2
    matrix = np.array([[zoom, 0, c - c * zoom], [0, zoom, c - c * zoom]], dtype=np.float32)
    return np.stack([cv2.warpAffine(np.asarray(t, np.float32), matrix, (THUMB, THUMB),
                                    flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
                     for t in thumbs])


__all__ = ["FrameSignal", "THUMB", "SEARCH_THUMB", "pack", "unpack", "search_vectors", "thumbnails", "appearance", "change", "foreground", "mirrored", "zoomed", "unzoomed"]
