"""FlowEncoder: a weight-free motion descriptor from dense optical flow, fully offline on a CPU.

What it measures. Farneback optical flow between consecutive frames (grey, downscaled so the
short side is ``short_side`` pixels) gives every pixel a motion vector. The camera's own motion
is removed first, then the remaining (object) motion is summarised as:

* histograms of flow orientation, magnitude-weighted, for the whole frame and for a
  ``grid`` x ``grid`` layout of cells, in ``temporal_segments`` consecutive parts of the clip
  (which way things move, where, and in which order);
* a histogram of flow magnitudes (how fast, how much of the frame moves);
* clip-level terms that separate motions a direction histogram cannot: coherence (the moving
  pixels share one direction: translation), divergence and curl about the moving region's
  centroid (zooming/scaling, spinning), turning of the mean motion over time (orbiting
  clockwise vs counter-clockwise), persistence and reversals of the motion direction
  (translating vs oscillating).

Why fit an affine camera model instead of subtracting the median flow? The median removes a pan
but not a zoom or a roll of the camera; an affine field ``u = a0 + a1 x + a2 y`` (same for v),
fitted by least squares and refitted on the best-fitting ``camera_inlier_fraction`` of pixels so the
moving subject does not drag the fit, removes pan, tilt, zoom and roll together. The cost: when one
subject fills most of the frame its own motion is partly taken for camera motion.

Histogram blocks are power-normalised (signed square root) and L2-normalised block by block,
weighted, concatenated with the clip-level terms and L2-normalised; the result is invariant to
the overall speed of the motion. ``encoder_id`` is ``"flow:v1"``: any change of the descriptor
must bump the version, because stored vectors are only comparable with the same descriptor.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ParameterError
from .base import check_batch_size, check_clips, l2_normalize

DESCRIPTOR_VERSION = "v1"
GLOBAL_TERMS = ("coherence", "divergence", "spin", "turning", "persistence", "axis_persistence", "reversals",
                "stillness")


@dataclass(frozen=True)
class FlowSettings:
    """The descriptor's settings; every field is part of ``preprocessing()`` (vectors made otherwise differ)."""

    frames_per_clip: int = 16  # frames per clip the ClipSpec should sample (any T >= 2 is accepted)
    short_side: int = 64  # frames are downscaled so their shorter side has this many pixels
    temporal_segments: int = 2  # the clip's flow pairs are split into this many consecutive parts
    grid: int = 3  # spatial cells per side for the per-cell orientation histograms
    orientation_bins: int = 8  # direction bins over 360 degrees (soft-assigned)
    magnitude_edges: tuple[float, ...] = (0.5, 1.5, 4.0)  # px/frame at short_side scale; bins [thr,e0),...,[e_last,inf)
    motion_threshold: float = 0.15  # px/frame after camera compensation below which a pixel counts as still
    ignore_border: int = 4  # px at short_side scale along each edge left out (Farneback invents flow there)
    noise_factor: float = 3.0  # ... or below this many times the median residual of the camera fit (flow noise)
    camera_model: str = "affine"  # global camera motion removed per frame pair: "affine", "median" or "none"
    camera_inlier_fraction: float = 0.7  # share of best-fitting pixels the affine camera model is refitted on
    turning_lag_fraction: float = 0.25  # turning / reversals compare motion this fraction of the clip apart
    weight_global_hof: float = 1.0  # weight of the whole-frame orientation histograms
    weight_grid_hof: float = 0.7  # weight of the per-cell orientation histograms
    weight_magnitude: float = 0.5  # weight of the magnitude histogram
    weight_terms: float = 1.5  # weight of the clip-level terms (coherence, divergence, spin, turning, ...)
    farneback: tuple[float, int, int, int, int, float] = (0.5, 2, 9, 3, 5, 1.1)  # pyr_scale, levels, winsize, iterations, poly_n, poly_sigma

    def __post_init__(self):
        checks = {"frames_per_clip": self.frames_per_clip >= 2, "short_side": self.short_side >= 16,
                  "temporal_segments": self.temporal_segments >= 1, "grid": self.grid >= 1,
                  "orientation_bins": self.orientation_bins >= 4, "motion_threshold": self.motion_threshold >= 0,
                  "ignore_border": 0 <= self.ignore_border < self.short_side // 4,
                  "camera_model": self.camera_model in ("affine", "median", "none"),
                  "camera_inlier_fraction": 0.2 <= self.camera_inlier_fraction <= 1.0,
                  "turning_lag_fraction": 0 < self.turning_lag_fraction < 1,
                  "magnitude_edges": list(self.magnitude_edges) == sorted(self.magnitude_edges)
                  and all(edge > self.motion_threshold for edge in self.magnitude_edges)}
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ParameterError(f"invalid FlowSettings field(s) {bad}: {self}; frames_per_clip >= 2, short_side >= 16, "
                                 "temporal_segments/grid >= 1, orientation_bins >= 4, camera_model in affine/median/none, "
                                 "0.2 <= camera_inlier_fraction <= 1, 0 < turning_lag_fraction < 1, "
                                 "0 <= ignore_border < short_side / 4, "
                                 "magnitude_edges increasing and above motion_threshold")

    @property
    def dim(self) -> int:
        """Length of the descriptor."""
        segments, bins = self.temporal_segments, self.orientation_bins
        return (segments * bins + segments * self.grid ** 2 * bins + segments * (len(self.magnitude_edges) + 1)
                + len(GLOBAL_TERMS))


def flow_threads() -> int:
    """Threads :meth:`FlowEncoder.encode` describes clips in: the CPUs this process may run on, at most 4.

    Read at each call, so a process pinned to one core (``bench_pose``'s cost) describes on one thread.
    Two threads on this 2-core machine described 24 clips 1.46x faster than one; 3 or 4 were slower than 2.
    """
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    return max(1, min(4, available))


class FlowEncoder:
    """Weight-free clip embeddings from camera-compensated optical-flow statistics (see the module docstring)."""

    def __init__(self, settings: FlowSettings = FlowSettings()):
        import cv2  # noqa: F401 - fail at construction, not at the first clip, when OpenCV is missing

        self.settings = settings
        self.encoder_id = f"flow:{DESCRIPTOR_VERSION}"
        self.dim = settings.dim
        self.frames_per_clip = settings.frames_per_clip

    def preprocessing(self) -> dict:
        """JSON-serialisable description of the descriptor (all settings)."""
        values = asdict(self.settings)
        values["magnitude_edges"] = list(self.settings.magnitude_edges)
        values["farneback"] = list(self.settings.farneback)
        return {"kind": "flow", "version": DESCRIPTOR_VERSION, "global_terms": list(GLOBAL_TERMS), **values}

    def encode(self, clips: Sequence[np.ndarray], batch_size: int = 8, progress: bool = False) -> np.ndarray:
        """(n, dim) float32 L2-normalised descriptors. ``batch_size`` is accepted for the common interface.

        Clips are described in :func:`flow_threads` threads (OpenCV's flow and most of NumPy's work run
        outside the GIL); each clip's descriptor is the same as when described alone.
        """
        check_batch_size(batch_size)
        clips = check_clips(clips)
        if not clips:
            return np.zeros((0, self.dim), dtype=np.float32)
        from tqdm.auto import tqdm

        threads = min(flow_threads(), len(clips))
        pool = None
        if threads > 1:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(threads, thread_name_prefix="flow")
        try:
            described = pool.map(self.describe, clips) if pool else map(self.describe, clips)
            rows = list(tqdm(described, total=len(clips), desc=self.encoder_id, unit="clip",
                             disable=not progress or len(clips) <= batch_size))
        finally:
            if pool:
                pool.shutdown(cancel_futures=True)
        return l2_normalize(np.stack(rows))

    # ------------------------------------------------------------------ one clip
    def describe(self, clip: np.ndarray) -> np.ndarray:
        """The (dim,) descriptor of one (T, H, W, 3) uint8 clip, before the final L2 normalisation."""
        settings = self.settings
        grey = self._grey_frames(clip)
        if len(grey) < 2:  # a single frame has no motion
            grey = np.concatenate([grey, grey])
        height, width = grey.shape[1:]
        pairs = len(grey) - 1
        border = min(settings.ignore_border, (min(height, width) - 1) // 4)
        xs, ys = self._coordinates(height, width)
        camera = _CameraFit(xs, ys, settings.camera_model, settings.camera_inlier_fraction)
        cell_index = self._cell_index(height, width)
        segments, bins, cells = settings.temporal_segments, settings.orientation_bins, settings.grid ** 2
        grid_hof = np.zeros((segments, cells * bins))
        magnitude_hist = np.zeros((segments, len(settings.magnitude_edges) + 1))
        edges = np.asarray((settings.motion_threshold, *settings.magnitude_edges))
        stats = np.zeros((pairs, 6))  # energy, mean u, mean v, divergence, curl, spread-normalised rms

        for pair in range(pairs):
            flow, noise = camera.remove(self._flow(grey[pair], grey[pair + 1]))
            if border:
                flow[:border], flow[-border:], flow[:, :border], flow[:, -border:] = 0, 0, 0, 0
            u, v = flow[..., 0].ravel(), flow[..., 1].ravel()
            magnitude = np.hypot(u, v)
            moving = magnitude > max(settings.motion_threshold, settings.noise_factor * noise)
            count = int(moving.sum())
            if count < 3:
                continue
            segment = pair * segments // pairs
            u, v, magnitude = u[moving], v[moving], magnitude[moving]
            magnitude_hist[segment] += np.bincount(np.searchsorted(edges, magnitude, side="right") - 1,
                                                   minlength=len(edges))[:len(edges)] / moving.size
            lower, upper, weight_upper = self._soft_orientation(np.arctan2(v, u))
            weight = magnitude / moving.size
            cell = cell_index[moving] * bins
            grid_hof[segment] += np.bincount(cell + lower, weight * (1 - weight_upper), minlength=cells * bins)
            grid_hof[segment] += np.bincount(cell + upper, weight * weight_upper, minlength=cells * bins)
            stats[pair] = (magnitude.sum() / moving.size, *_local_affine(xs.ravel()[moving], ys.ravel()[moving], u, v))

        global_hof = grid_hof.reshape(segments, cells, bins).sum(axis=1)
        terms = self._clip_terms(stats)
        blocks = [(global_hof.ravel(), settings.weight_global_hof), (grid_hof.ravel(), settings.weight_grid_hof),
                  (magnitude_hist.ravel(), settings.weight_magnitude)]
        parts = [weight * _unit(np.sign(block) * np.sqrt(np.abs(block))) for block, weight in blocks]
        parts.append(settings.weight_terms * terms)
        return np.concatenate(parts).astype(np.float32)

    def _clip_terms(self, stats: np.ndarray) -> np.ndarray:
        """The GLOBAL_TERMS of a clip from per-pair statistics (pairs weighted by their motion energy)."""
        energy, mean_motion, divergence, curl, coherence = stats[:, 0], stats[:, 1:3], stats[:, 3], stats[:, 4], stats[:, 5]
        total_energy = energy.sum()
        if total_energy <= 0:
            return np.array([0, 0, 0, 0, 0, 0, 0, 1.0])  # nothing moves: only "stillness"
        share = energy / total_energy
        lag = max(1, int(round(len(energy) * self.settings.turning_lag_fraction)))
        now, later = mean_motion[:-lag], mean_motion[lag:]
        speeds = np.hypot(mean_motion[:, 0], mean_motion[:, 1])
        pair_norms = np.hypot(now[:, 0], now[:, 1]) * np.hypot(later[:, 0], later[:, 1])
        norm_sum = pair_norms.sum()
        turning = np.sum(now[:, 0] * later[:, 1] - now[:, 1] * later[:, 0]) / norm_sum if norm_sum > 0 else 0.0
        reversals = np.sum(np.maximum(0, -(now * later).sum(axis=1))) / norm_sum if norm_sum > 0 else 0.0
        speed_sum = speeds.sum()
        persistence = np.hypot(*mean_motion.sum(axis=0)) / speed_sum if speed_sum > 0 else 0.0
        angle = np.arctan2(mean_motion[:, 1], mean_motion[:, 0])
        squared = speeds ** 2
        axis_persistence = (np.hypot(np.dot(squared, np.cos(2 * angle)), np.dot(squared, np.sin(2 * angle)))
                            / squared.sum()) if squared.sum() > 0 else 0.0
        return np.array([np.dot(share, coherence), np.dot(share, divergence), abs(np.dot(share, curl)), turning,
                         persistence, axis_persistence, reversals, 0.0])

    # ------------------------------------------------------------------ pieces
    def _grey_frames(self, clip: np.ndarray) -> np.ndarray:
        """(T, h, w) uint8 grey frames with the short side at settings.short_side (area-averaged)."""
        import cv2

        height, width = clip.shape[1:3]
        scale = self.settings.short_side / min(height, width)
        size = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
        frames = []
        for frame in clip:
            grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            if size != (width, height):
                grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            frames.append(grey)
        return np.stack(frames)

    def _flow(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        import cv2

        pyr_scale, levels, winsize, iterations, poly_n, poly_sigma = self.settings.farneback
        return cv2.calcOpticalFlowFarneback(previous, current, None, pyr_scale, int(levels), int(winsize),
                                            int(iterations), int(poly_n), poly_sigma, 0)

    @staticmethod
    def _coordinates(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates centred on the frame and scaled by the short side (so terms are size-free)."""
        scale = min(height, width)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        return (xs - (width - 1) / 2) / scale, (ys - (height - 1) / 2) / scale

    def _cell_index(self, height: int, width: int) -> np.ndarray:
        grid = self.settings.grid
        rows = np.minimum(np.arange(height) * grid // height, grid - 1)
        cols = np.minimum(np.arange(width) * grid // width, grid - 1)
        return (rows[:, None] * grid + cols[None, :]).ravel()

    def _soft_orientation(self, angle: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Linear interpolation of each angle between its two nearest orientation bin centres."""
        bins = self.settings.orientation_bins
        position = (angle % (2 * np.pi)) / (2 * np.pi) * bins
        lower = np.floor(position).astype(np.int64) % bins
        return lower, (lower + 1) % bins, position - np.floor(position)


class _CameraFit:
    """Removes the global camera motion from a flow field (see the module docstring for the choice).

    The affine model is fitted on every other pixel in each direction (4x cheaper, same answer),
    then refitted on the best-fitting ``inlier_fraction`` of them. ``remove`` also returns the
    median residual of that fit, the flow noise level of the still background.
    """

    def __init__(self, xs: np.ndarray, ys: np.ndarray, model: str, inlier_fraction: float, step: int = 2):
        self.model, self.inlier_fraction, self.step = model, inlier_fraction, step
        self.xs, self.ys = xs, ys
        self.design = np.stack([np.ones_like(xs[::step, ::step]), xs[::step, ::step], ys[::step, ::step]],
                               axis=-1).reshape(-1, 3).astype(np.float64)
        self.pseudo_inverse = np.linalg.pinv(self.design)

    def remove(self, flow: np.ndarray) -> tuple[np.ndarray, float]:
        sample = flow[::self.step, ::self.step].reshape(-1, 2).astype(np.float64)
        if self.model == "none":
            return flow, float(np.median(np.hypot(sample[:, 0], sample[:, 1])))
        if self.model == "median":
            shift = np.median(sample, axis=0)
            residual = np.hypot(*(sample - shift).T)
            return flow - shift.astype(np.float32), float(np.median(residual))
        coefficients = self.pseudo_inverse @ sample
        residual = np.hypot(*(sample - self.design @ coefficients).T)
        keep = max(3, int(len(residual) * self.inlier_fraction))
        inliers = np.argpartition(residual, keep - 1)[:keep]
        design = self.design[inliers]
        gram = design.T @ design
        if np.linalg.cond(gram) < 1e8:
            coefficients = np.linalg.solve(gram, design.T @ sample[inliers])
            residual = np.hypot(*(sample - self.design @ coefficients).T)
        camera = coefficients[0] + self.xs[..., None] * coefficients[1] + self.ys[..., None] * coefficients[2]
        return flow - camera.astype(np.float32), float(np.median(residual))


def _local_affine(xs: np.ndarray, ys: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[float, ...]:
    """Mean motion, divergence, curl and coherence of the moving pixels from a first-order (affine) flow fit.

    With ``r`` the position relative to the moving pixels' centroid, ``flow ~ t + A r``; divergence
    and curl are ``tr(A)/2`` and the antisymmetric part of ``A``, scaled by the spatial spread over the
    rms flow so they lie near [-1, 1] whatever the speed: +-1 for pure scaling or spinning, 0 for a
    translation. Coherence ``|t| / rms flow`` is 1 for a pure translation.
    """
    rx, ry = xs - xs.mean(), ys - ys.mean()
    mean_u, mean_v = float(u.mean()), float(v.mean())
    rms_flow = math.sqrt(float(np.mean(u * u + v * v)))
    spread = math.sqrt(float(np.mean(rx * rx + ry * ry)))
    gram = np.array([[np.dot(rx, rx), np.dot(rx, ry)], [np.dot(rx, ry), np.dot(ry, ry)]])
    if rms_flow <= 0 or spread <= 0 or np.linalg.det(gram) <= 1e-12 * max(1e-30, np.trace(gram)) ** 2:
        return mean_u, mean_v, 0.0, 0.0, (math.hypot(mean_u, mean_v) / rms_flow if rms_flow > 0 else 0.0)
    (a_xx, a_yx), (a_xy, a_yy) = np.linalg.solve(gram, np.array([[np.dot(rx, u), np.dot(rx, v)],
                                                                 [np.dot(ry, u), np.dot(ry, v)]]))
    scale = spread / rms_flow
    divergence = float(np.clip((a_xx + a_yy) / 2 * scale, -1, 1))
    curl = float(np.clip((a_yx - a_xy) / 2 * scale, -1, 1))
    return mean_u, mean_v, divergence, curl, math.hypot(mean_u, mean_v) / rms_flow


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 0 else vector


__all__ = ["FlowSettings", "FlowEncoder", "DESCRIPTOR_VERSION", "GLOBAL_TERMS"]
