"""Where a reference's motion changes, and same-motion segments bounded by those changes (step 4 of the fine stage).

A moment of motion ends where the motion changes (:mod:`motionmatch.search.fine`, step 4). The changes of one
video (:func:`motion_changes`) are the index's own shot cuts, read from how its windows tile the video (windows
never straddle a cut: :func:`window_cuts`), the change points of its window embeddings inside each shot
(:func:`kernel_changes`: ruptures' kernel change-point detection on their rbf self-similarity), and, in a pose
collection, where someone comes into view or leaves (:func:`presence_changes`). Frame-level cuts
(:func:`cut_points`) stand in only for a video with no windows there.

A same-motion segment is cut at a change inside it and its ends move out to the nearest changes
(:func:`bound_to_changes`); segments of one video that then lie between the same two changes, and no further apart
than an end may move, are one moment of motion, and become one segment (:func:`join_moments`).
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence

import numpy as np

from ..video.fingerprint import FrameSignal, appearance
from .align import Segment

# Motion changes without a cut (kernel_changes), chosen on seeds 0, 2 and 3 (docs/LONG_VIDEOS.md): ruptures'
# KernelCPD, rbf kernel; a change is a third of a window into its first window (median 0.79-0.96 s into 2.67 s ones)
CPD_PENALTY = 4.0
CPD_MIN_WINDOWS = 4  # 2 s at the default 0.5 s stride
CPD_OFFSET = 1 / 3


def cut_points(signal: FrameSignal, level: float = 0.6) -> np.ndarray:
    """Times of hard cuts: frames whose appearance correlates below ``level`` with the frame before."""
    if len(signal) < 2:
        return np.zeros(0)
    app = appearance(signal.thumbs)
    step = np.einsum("ij,ij->i", app[1:], app[:-1])
    return signal.times[1:][step < level]


def kernel_changes(times: np.ndarray, vectors: np.ndarray, penalty: float = CPD_PENALTY,
                   min_windows: int = CPD_MIN_WINDOWS) -> np.ndarray:
    """Times where one shot's window sequence changes content (``times`` (n, 2) start and end, in order; ``vectors``
    (n, dim)): ruptures' kernel change-point detection (``KernelCPD``, rbf kernel, PELT with ``penalty``, segments
    of at least ``min_windows`` windows). A change found at window k is placed :data:`CPD_OFFSET` of a window's
    length after k's start: the first windows of the new motion still hold some of the old."""
    import ruptures

    times = np.asarray(times, dtype=float).reshape(-1, 2)
    if len(times) < 2 * min_windows:
        return np.zeros(0)
    v = np.asarray(vectors, dtype=np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    found = ruptures.KernelCPD(kernel="rbf", min_size=min_windows).fit(v).predict(pen=penalty)[:-1]
    return np.asarray([times[k, 0] + CPD_OFFSET * (times[k, 1] - times[k, 0]) for k in found], dtype=float)


def window_cuts(times: np.ndarray) -> np.ndarray:
    """The index's shot cuts inside a run of one video's windows (``times`` (n, 2) start and end): window starts
    that no window straddles (dense windows restart at each cut and never cross one)."""
    times = np.asarray(times, dtype=float).reshape(-1, 2)
    if len(times) < 2:
        return np.zeros(0)
    starts, ends = times[:, 0], times[:, 1]
    first = starts.min()
    return np.asarray([t for t in np.unique(starts) if t > first + 1e-6
                       and not np.any((starts < t - 1e-6) & (ends > t + 1e-6))], dtype=float)


def presence_changes(times: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """Times where someone comes into view or leaves, from a pose collection's windows (``times`` (n, 2) start
    and end, in order; ``coverage`` (n,) the share of each window's frames with a person): after a window with
    nobody, the first window that shows someone places the arrival ``coverage`` of its length before its end;
    before a window with nobody, the last one that shows someone places the departure ``coverage`` of its
    length after its start (coverage counts the frames with a person, who is taken to stay in view between)."""
    times = np.asarray(times, dtype=float).reshape(-1, 2)
    seen = np.asarray(coverage, dtype=float).reshape(-1) > 0
    length = times[:, 1] - times[:, 0]
    share = np.clip(np.asarray(coverage, dtype=float).reshape(-1), 0.0, 1.0)
    arrive = [times[k, 1] - share[k] * length[k] for k in range(1, len(times)) if seen[k] and not seen[k - 1]]
    leave = [times[k, 0] + share[k] * length[k] for k in range(len(times) - 1) if seen[k] and not seen[k + 1]]
    return np.asarray(sorted(arrive + leave), dtype=float)


def motion_changes(times: np.ndarray, vectors: np.ndarray, coverage: np.ndarray | None = None,
                   until_s: float | None = None) -> np.ndarray:
    """Where one video's motion changes, from its windows (``times`` (n, 2), ``vectors`` (n, dim)): the index's
    cuts (:func:`window_cuts`), the changes of the window embeddings inside each shot (:func:`kernel_changes`),
    where someone comes into view or leaves when a pose collection's ``coverage`` is given
    (:func:`presence_changes`: a shot too short for the kernel detector still has them), 0 (a video's start
    bounds every moment in it) and, when the windows were read up to ``until_s`` (those that start before it) and
    no window starts a step after the last one inside it, the end of the last one: the footage ends there, and its
    end bounds every moment too."""
    times = np.asarray(times, dtype=float).reshape(-1, 2)
    order = np.argsort(times[:, 0], kind="stable")
    times, vectors = times[order], np.asarray(vectors)[order]
    cuts = window_cuts(times)
    shot = np.searchsorted(cuts, times[:, 0] + 1e-6)  # windows never straddle a cut: each lies in one shot
    inside = [kernel_changes(times[shot == k], vectors[shot == k]) for k in np.unique(shot)]
    if coverage is not None:
        covered = np.asarray(coverage, dtype=float).reshape(-1)[order]
        inside += [presence_changes(times[shot == k], covered[shot == k]) for k in np.unique(shot)]
    ends = []
    steps = np.diff(np.unique(times[:, 0]))
    if until_s is not None and len(steps):  # windows were read by their start: one more would start a step later
        if float(times[:, 0].max()) + float(np.median(steps)) < float(until_s):
            ends.append(float(times[:, 1].max()))
    return np.unique(np.r_[0.0, cuts, *inside, ends])


def bound_to_changes(start_s: float, end_s: float, changes: np.ndarray, reach_s: float,
                     inside_s: float = 0.75) -> tuple[float, float]:
    """``(start, end)`` bounded by the reference's changes: cut at changes more than ``inside_s`` inside it
    (keeping the longest part), then each end moved out to the nearest change within ``reach_s`` (a change
    within ``inside_s`` inside an end counts as that end's). Unchanged where no change is near; never
    inverted."""
    changes = np.sort(np.asarray(changes, dtype=float))
    lo, hi = float(start_s), float(end_s)
    inner = changes[(changes > lo + inside_s) & (changes < hi - inside_s)]
    if len(inner):
        parts = np.r_[lo, inner, hi]
        j = int(np.argmax(np.diff(parts)))
        lo, hi = float(parts[j]), float(parts[j + 1])
    before = changes[(changes <= lo + inside_s) & (changes >= lo - reach_s)]
    after = changes[(changes >= hi - inside_s) & (changes <= hi + reach_s)]
    new_lo = float(before.max()) if len(before) else lo
    new_hi = float(after.min()) if len(after) else hi
    if new_hi > new_lo:
        return new_lo, new_hi
    return (lo, hi) if hi > lo else (float(start_s), float(end_s))


def join_moments(segments: Sequence[Segment], changes: np.ndarray, max_gap_s: float = math.inf) -> list[Segment]:
    """Same-motion segments of one video that lie between the same two changes (by their midpoints) and are at most
    ``max_gap_s`` apart (footage no segment covers), joined into one: from the first start to the last end, the
    best score, the query ranges' union, every hit. Two answers in one moment of motion are one answer (an
    aligner's gap inside a moment, or two query windows' parts of it); segments on either side of a change, or
    further apart (where a change between them may have been missed), stay apart. Copies are left as they are.
    Returned in the order each group's first segment appears."""
    changes = np.sort(np.asarray(changes, dtype=float))
    between: dict[tuple[str, int], list[Segment]] = {}
    for i, s in enumerate(segments):
        key = (s.video_path, -1 - i) if s.kind == "copy" else \
            (s.video_path, int(np.searchsorted(changes, 0.5 * (s.start_s + s.end_s))))
        between.setdefault(key, []).append(s)
    groups: list[list[Segment]] = []
    for members in between.values():
        run: list[Segment] = []
        run_end = -math.inf
        for s in sorted(members, key=lambda s: s.start_s):
            if run and s.start_s - run_end > max_gap_s:
                groups.append(run)
                run, run_end = [], -math.inf
            run.append(s)
            run_end = max(run_end, s.end_s)
        groups.append(run)
    first = {id(s): i for i, s in enumerate(segments)}
    joined = []
    for members in sorted(groups, key=lambda group: min(first[id(s)] for s in group)):
        best = max(members, key=lambda s: s.score)
        if len(members) == 1:
            joined.append(best)
            continue
        q_starts = [s.query_start_s for s in members if not np.isnan(s.query_start_s)]
        q_ends = [s.query_end_s for s in members if not np.isnan(s.query_end_s)]
        joined.append(replace(best, start_s=min(s.start_s for s in members), end_s=max(s.end_s for s in members),
                              query_start_s=min(q_starts) if q_starts else best.query_start_s,
                              query_end_s=max(q_ends) if q_ends else best.query_end_s,
                              hits=tuple(h for s in members for h in s.hits)))
    return joined


__all__ = ["CPD_PENALTY", "CPD_MIN_WINDOWS", "CPD_OFFSET", "cut_points", "kernel_changes", "window_cuts",
           "presence_changes", "motion_changes", "bound_to_changes", "join_moments"]
