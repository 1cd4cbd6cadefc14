"""Where windows go: the one planner for dense windows over an indexed video and for a query range.

A **window** is one clip of a :class:`~motionmatch.video.clips.ClipSpec` (``frames_per_clip`` frames every
``frame_stride`` frames, spanning ``ClipSpec.span_frames`` frames). Windows start every ``stride_s`` seconds of
the file's real timestamps, from the start of each **piece** (a shot of an indexed video, or the part of a
query range between two cuts), so no window straddles a cut. :func:`place_windows` is the one rule both sides
use (:func:`plan_windows` for ``motionmatch extract --stride-s``, :func:`plan_query` for ``search --start
--end``), so a query range is cut exactly as the collection was:

* **the grid**: a window at each ``piece start + k * stride_s`` whose span fits inside the piece;
* **the tail**: when the grid leaves frames at the end of a piece uncovered, one more window ends on the
  piece's last frame, so every frame of every piece lies in some window;
* **short pieces**: a piece shorter than one window gets one window from its first frame, padded by
  repeating its last real frame (``padded_frames`` says how many).

Until issue 18 the query side added a tail window only when more than a quarter window was left over; the
index side always did. They now share the index's rule (a query may get one more window; nothing is left
unsearched).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ParameterError
from ..validation import check_choice, check_scalar
from .clips import ClipSpec, ClipWindow, _check_timestamps, _fps, _frame_times, open_with_timestamps
from .decode import VideoInfo
from .shots import DEFAULT_METHOD as SHOT_DEFAULT
from .shots import METHODS as SHOT_METHODS
from .shots import Shot

# Defaults of dense windows, chosen by measurement (bench/bench_windows.py, numbers in WindowSpec's docstring):
DEFAULT_STRIDE_S = 0.5  # seconds between window starts
DEFAULT_WINDOW_FRAMES = 16  # frames per window (V-JEPA 2's own evaluations use 16 frames x step 4)
DEFAULT_WINDOW_FRAME_STRIDE = 4  # every 4th frame: a window spans 61 frames, 2.5 s at 24 fps, 2.0 s at 30 fps
NO_SHOTS = "none"
SHOT_CHOICES = (*SHOT_METHODS, NO_SHOTS)
PADDED_NOTE = "padded"
_EPS = 1e-6


@dataclass(frozen=True)
class WindowSpec:
    """Dense windows over a whole video, the alternative to ``ClipSpec.clips_per_video``.

    Recorded in ``extract_meta.json`` under ``"windows"`` (and with the collection) so queries are cut the
    same way.

    **Defaults, measured** (``python -m bench.bench_windows``: 8 generated videos x 120 s at 160x120,
    24 fps, seed 0, windows inside the true shots, FlowEncoder; each labelled segment is localised by the
    longest run of windows whose 1-NN label (from other videos) is its own, scored by temporal IoU; cost on
    2 shared CPU cores, decode + encode):

    =============  ========  ========  =========  ========================  ==================  ===============
    frames x step  window s  stride s  mean tIoU  best - this (95% CI)      windows/video-hour  s / video-hour
    =============  ========  ========  =========  ========================  ==================  ===============
    16 x 2         1.29      0.5       0.484      +0.016 .. +0.129          7005                329
    16 x 2         1.29      1         0.490      +0.015 .. +0.118          3630                170
    16 x 2         1.29      2         0.472      +0.013 .. +0.154          1942                91
    16 x 4         2.54      0.5       0.554      (best)                    6566                546
    16 x 4         2.54      1         0.519      +0.006 .. +0.074          3409                283
    16 x 4         2.54      2         0.465      +0.036 .. +0.153          1834                152
    =============  ========  ========  =========  ========================  ==================  ===============

    The rule (``bench_windows.recommend``): the largest stride whose mean tIoU is not significantly below
    the best (paired bootstrap over the 72 labelled segments). Only 16 x 4 at 0.5 s passes, so it is the
    default: a window of about 2 s every 0.5 s, about 7200 windows per video-hour. ``--stride-s 1`` halves
    the cost for 0.035 less tIoU. Caveats: synthetic motion repeats in 2 s cycles, which favours a window of
    at least 2 s; the encoder is FlowEncoder, not V-JEPA 2.
    """

    stride_s: float = DEFAULT_STRIDE_S  # seconds between window starts
    shots: str = SHOT_DEFAULT  # shot detection method (motionmatch.video.shots.METHODS) or "none" (one shot)
    windows_per_chunk: int = 32  # windows per parquet part: a killed run resumes at the last finished part

    def __post_init__(self) -> None:
        check_scalar(self.stride_s, "WindowSpec.stride_s", float, min_value=0.0, include_min=False)
        check_choice(self.shots, "WindowSpec.shots", SHOT_CHOICES)
        check_scalar(self.windows_per_chunk, "WindowSpec.windows_per_chunk", int, min_value=1)


def dense_clip_spec(frames_per_clip: int = 0, frame_stride: int = 0) -> ClipSpec:
    """The clip of one dense window: the measured default (16 frames every 4th) unless given (0 = default)."""
    return ClipSpec(frames_per_clip=frames_per_clip or DEFAULT_WINDOW_FRAMES,
                    frame_stride=frame_stride or DEFAULT_WINDOW_FRAME_STRIDE)


def recorded_clip_spec(meta: Mapping[str, Any]) -> dict:
    """What a collection records about how its windows were cut, from an extraction's meta: the clip, and the
    dense windows when there are any (:func:`collection_clip_spec` reads it back)."""
    return {**meta["clip_spec"], **({"windows": meta["windows"]} if "windows" in meta else {})}


def collection_clip_spec(recorded: Mapping[str, Any] | None, frames_per_clip: int) -> tuple[ClipSpec, float | None]:
    """(ClipSpec, stride_s or None) from a collection's recorded ``clip_spec`` (unknown keys are ignored)."""
    recorded = dict(recorded or {})
    keys = {k: int(recorded[k]) for k in ("frames_per_clip", "frame_stride", "clips_per_video") if k in recorded}
    spec = ClipSpec(**{"frames_per_clip": frames_per_clip, **keys})
    stride = recorded.get("stride_s", (recorded.get("windows") or {}).get("stride_s"))
    return spec, (None if stride in (None, "") else float(stride))


# ----------------------------------------------------------------------------- the one planner
def place_windows(stamps: np.ndarray, end_time, pieces: Sequence[tuple[int, int]], spec: ClipSpec,
                  stride_s: float) -> list[ClipWindow]:
    """Windows over ``pieces`` (``[first_frame, end_frame)`` each, in order), by the module's rule.

    ``stamps`` are the start times of the file's frames; ``end_time(i)`` is the end of frame ``i``.
    ``clip_index`` is the window's ordinal over all pieces.
    """
    span = spec.span_frames
    firsts: list[tuple[int, int]] = []  # (first frame, end of its piece)
    for first, end in pieces:
        if end <= first:
            continue
        if end - first <= span:  # one window (padded when the piece is shorter than a window)
            firsts.append((first, end))
            continue
        last_start, t0, k = end - span, float(stamps[first]), 0
        starts = []
        while True:
            start = max(first, int(np.searchsorted(stamps, t0 + k * stride_s - 1e-9)))
            if start > last_start:
                break
            if not starts or start > starts[-1]:
                starts.append(start)
            k += 1
        if starts[-1] < last_start:  # the tail: one more window ends on the piece's last frame
            starts.append(last_start)
        firsts.extend((s, end) for s in starts)
    windows = []
    for index, (first, end) in enumerate(firsts):
        real = list(range(first, min(end, first + span), spec.frame_stride))
        padded = spec.frames_per_clip - len(real)
        windows.append(ClipWindow(clip_index=index, frame_indices=tuple(real + [real[-1]] * padded),
                                  start_s=float(stamps[real[0]]), end_s=float(end_time(real[-1])),
                                  padded_frames=padded))
    return windows


def plan_windows(info: VideoInfo, spec: ClipSpec, window_spec: WindowSpec, timestamps: np.ndarray | None = None,
                 shots: Sequence[Shot] | None = None) -> tuple[list[ClipWindow], list[str]]:
    """Dense windows of a video, in time order, and notes on the unusual ones; no decoding.

    ``shots`` (from :func:`motionmatch.video.shots.detect_shots`; None = the whole video is one shot) bound the
    windows (:func:`place_windows`).
    """
    timestamps = _check_timestamps(info, timestamps)
    n = info.num_frames
    stamps = timestamps if timestamps is not None else np.arange(n) / _fps(info)
    _, end_time = _frame_times(info, timestamps)
    pieces = [(0, n)] if not shots else [(s.start_frame, min(n, s.end_frame)) for s in shots]
    windows = place_windows(stamps, end_time, pieces, spec, window_spec.stride_s) or \
        place_windows(stamps, end_time, [(0, n)], spec, window_spec.stride_s)
    span, window_s = spec.span_frames, spec.span_frames / _fps(info)
    short = sum(w.padded_frames > 0 for w in windows)
    notes = []
    if n < span:
        notes.append(f"{PADDED_NOTE}: no full window: the video has {n} frames ({end_time(n - 1):.2f} s) and a window "
                     f"needs {span} ({window_s:.2f} s); one window was made from frame 0 and padded with "
                     f"{windows[0].padded_frames} repeats of the last frame, as clips-per-video mode pads a short video")
    elif short:
        notes.append(f"{PADDED_NOTE}: {short} window(s) padded: their shot is shorter than one window "
                     f"({span} frames, {window_s:.2f} s); padded_frames says how many frames repeat")
    return windows, notes


# ----------------------------------------------------------------------------- query ranges
@dataclass(frozen=True)
class QueryPlan:
    """The windows a query range is cut into, checked against the file, with notes on anything unusual."""

    path: str
    start_s: float  # the range searched (after widening a range shorter than one window)
    end_s: float
    duration_s: float  # of the whole file
    window_s: float  # one window's length
    stride_s: float  # between window starts
    windows: tuple[ClipWindow, ...]
    notes: tuple[str, ...] = ()
    n_frames: int = 0  # frames in the whole file (0: unknown; no phase-shifted windows then)
    cut_frames: tuple[int, ...] = ()  # first frames of new shots inside the range: no window straddles one

    @property
    def times(self) -> np.ndarray:
        """(n_windows, 2) start and end of each window, seconds."""
        return np.array([[w.start_s, w.end_s] for w in self.windows], dtype=float).reshape(-1, 2)


def check_range(start_s: float | None, end_s: float | None) -> tuple[float | None, float | None]:
    """``start_s < end_s``, neither negative; None stays None (the file's start / end)."""
    for name, value in (("--start", start_s), ("--end", end_s)):
        if value is not None:
            check_scalar(value, f"{name} (seconds)", float, min_value=0)
    if start_s is not None and end_s is not None and float(start_s) >= float(end_s):
        raise ParameterError(f"--start ({float(start_s):g} s) must be before --end ({float(end_s):g} s)")
    return (None if start_s is None else float(start_s)), (None if end_s is None else float(end_s))


def plan_query(path: str | os.PathLike, spec: ClipSpec, start_s: float | None = None, end_s: float | None = None,
               stride_s: float | None = None, cuts_s: Sequence[float] = (), opened=None) -> QueryPlan:
    """Check ``[start_s, end_s)`` against the file and cut it into windows; decodes no frame.

    ``cuts_s``: shot cuts inside the range (:func:`motionmatch.video.shots.cuts_in_range`); the windows
    restart at each (:func:`place_windows`). ``stride_s`` defaults to one window length (windows tile the
    range). ``opened``: the ``(video, info, timestamps)`` of :func:`~motionmatch.video.clips.open_with_timestamps`
    when the caller has opened the file already. Raises ParameterError for a bad range (past the file's end, or
    shorter than one frame step: no frame to search; naming the file and what to give instead) and VideoError for an unreadable file. ``start_s`` defaults to 0, ``end_s`` to the file's end.
    """
    start_s, end_s = check_range(start_s, end_s)
    if stride_s is not None:
        stride_s = check_scalar(stride_s, "stride_s", float, min_value=0, include_min=False)
    _, info, stamps = opened or open_with_timestamps(path)
    n = info.num_frames
    fps = info.fps if info.fps > 0 else n / max(info.duration_s, _EPS)
    duration = max(float(info.duration_s), float(stamps[-1]) + 1.0 / fps) if n else 0.0
    where = f"{os.fspath(path)} lasts {duration:.2f} s"
    if start_s is not None and start_s >= duration - 0.5 / fps:
        raise ParameterError(f"--start {start_s:g} s is past the end: {where}; give a start before {duration:.2f} s")
    if end_s is not None and end_s > duration + 1.0 / fps:
        raise ParameterError(f"--end {end_s:g} s is past the end: {where}; give --end {duration:.2f} or less "
                             "(or leave it out)")
    lo, hi = (0.0 if start_s is None else start_s), (duration if end_s is None else min(end_s, duration))

    def end_time(index: int) -> float:
        return float(stamps[index + 1]) if index + 1 < n else duration

    span, notes = spec.span_frames, []
    window_s = span / fps
    frame_step = 1.0 / fps
    if hi - lo < frame_step - 1e-6:
        raise ParameterError(f"the range {lo:g}-{hi:g} s of {os.fspath(path)} is shorter than one frame step "
                             f"({frame_step:.3f} s at {fps:g} fps): give a range of at least one frame, e.g. "
                             f"--start {max(0.0, min(lo, duration - frame_step)):.3f} --end "
                             f"{min(duration, max(lo, 0.0) + frame_step):.3f} (a range shorter than one window is "
                             "widened to one window)")
    inside = np.flatnonzero((stamps >= lo - 1e-6) & (stamps < hi - 1e-6))
    if not len(inside):  # a variable frame rate can leave a gap longer than the median frame step
        raise ParameterError(f"no frame of {os.fspath(path)} starts within {lo:g}-{hi:g} s (its frames start at "
                             f"{float(stamps[max(0, int(np.searchsorted(stamps, lo)) - 1)]):.3f} s and "
                             f"{float(stamps[min(n - 1, int(np.searchsorted(stamps, lo)))]):.3f} s): widen the range "
                             "to hold a frame's start")
    first, last = int(inside[0]), int(inside[-1])
    if n < span:
        notes.append(f"padded: {os.fspath(path)} has no full window: {n} frames ({duration:.2f} s) where a window needs "
                     f"{span} ({window_s:.2f} s); one window from frame 0, padded with {span - n} repeats of the "
                     "last frame, as the index pads a short video")
        first, last = 0, n - 1
    elif last - first + 1 < span:
        grow = span - (last - first + 1)
        first = max(0, min(first - grow // 2, n - span))
        last = first + span - 1
        notes.append(f"padded: the range {lo:.2f}-{hi:.2f} s is shorter than one window ({window_s:.2f} s); "
                     f"searched {float(stamps[first]):.2f}-{end_time(last):.2f} s instead")
    cut_frames = sorted({f for f in (int(np.searchsorted(stamps, c - 1e-6)) for c in cuts_s) if first < f <= last})
    if cut_frames:
        notes.append(f"the range crosses {len(cut_frames)} shot cut(s), at "
                     f"{', '.join(f'{stamps[c]:.2f}' for c in cut_frames)} s: its windows restart at each, as the "
                     "index's do")
    pieces = list(zip([first] + cut_frames, cut_frames + [last + 1]))
    windows = place_windows(stamps, end_time, pieces, spec, float(stride_s or window_s))
    return QueryPlan(os.fspath(path), float(stamps[first]), end_time(last), duration, window_s,
                     float(stride_s or window_s), tuple(windows), tuple(notes), n, tuple(cut_frames))


def phase_plans(plan: QueryPlan, n_phases: int) -> list[QueryPlan]:
    """The plan's windows shifted by 1 .. ``n_phases - 1`` frames, one plan per shift (a window that would run
    past the file's last frame, or over a cut, keeps its place).

    Why? An indexed window samples every ``frame_stride``-th frame from its start, and window starts are a
    multiple of ``frame_stride`` frames apart, so a query window samples the same frames as an indexed one only
    when its start has the same phase modulo ``frame_stride``. A copy of a range starts at any frame; with one
    plan per phase, one of them samples exactly the indexed frames (measured on FlowEncoder: a copy's best
    window cosine 0.89-0.92 at the wrong phase, 0.98-0.99 at the right one).
    """
    n_phases = check_scalar(n_phases, "query_phases", int, min_value=1)
    out = []
    for shift in range(1, n_phases):
        windows = tuple(w if (plan.n_frames and max(w.frame_indices) + shift >= plan.n_frames)
                        or any(max(w.frame_indices) < c <= max(w.frame_indices) + shift for c in plan.cut_frames) else
                        ClipWindow(w.clip_index, tuple(i + shift for i in w.frame_indices), w.start_s, w.end_s,
                                   w.padded_frames) for w in plan.windows)
        out.append(QueryPlan(plan.path, plan.start_s, plan.end_s, plan.duration_s, plan.window_s, plan.stride_s,
                             windows, plan.notes, plan.n_frames, plan.cut_frames))
    return out


__all__ = ["DEFAULT_STRIDE_S", "DEFAULT_WINDOW_FRAMES", "DEFAULT_WINDOW_FRAME_STRIDE", "NO_SHOTS", "SHOT_CHOICES",
           "PADDED_NOTE", "WindowSpec", "dense_clip_spec", "recorded_clip_spec", "collection_clip_spec",
           "place_windows", "plan_windows", "QueryPlan", "check_range", "plan_query", "phase_plans"]
