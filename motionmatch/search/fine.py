"""The fine stage of a segment search: frame-level alignment, copy verification, boundaries snapped to changes.

The coarse stage (:mod:`motionmatch.search.range`) finds candidate videos and rough offsets from 2 s windows.
This stage works on every frame, from the 16 x 16 thumbnails the frame store holds
(:mod:`motionmatch.index.frames`) and the query's own frames (decoded once):

1. **Copy candidates** (:func:`copy_candidates`): the query's frames every half second (and their mirror
   images) searched in the frame store by appearance, voted per video. A copy is found whatever its motion
   looks like: mirrored, sped up, slowed down.
2. **Copy alignment** (:func:`align_copy`): per candidate, a frame x frame similarity (the better of
   appearance, appearance at a 1.25x central zoom, and change; :mod:`motionmatch.video.fingerprint`), in both
   orientations; the best straight line ``reference frame = a * query frame + b`` over slopes 0.8-1.25 (speed
   changes); along it, the longest run of matching frames is the copied part. Its ends are frames, so a copy's
   boundaries are exact to a frame, and a partial copy (the query inside the reference, or the reverse) is
   bounded where the match starts and ends.
3. **Copy verification** (:func:`copy_probability`): the run's mean appearance and change similarity and its
   length, through a logistic model fitted on the tuning gallery (:data:`COPY_MODEL`). A copy is reported with
   ``kind="copy"`` when its probability reaches the search's ``copy_threshold``; it is never grown.
4. **Same-motion boundaries** (:func:`snap_to_changes`): a same-motion segment's ends move to the nearest
   change of the reference's own signal, within ``snap_s``: a hard cut (a jump in appearance between two
   frames) or a change of motion (a peak of the novelty of the reference's window embeddings: Foote's
   checkerboard kernel on their self-similarity).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..video.fingerprint import FrameSignal, appearance, change, mirrored, zoomed
from .align import Segment

SLOPES = tuple(np.round(np.arange(0.80, 1.2501, 0.05), 2))  # reference frames per query frame (speed changes)
ZOOM = 1.25  # a central crop to 80 % of the width and height
MATCH_LEVEL = 0.5  # a frame pair at or above this similarity matches (along the best line)
MIN_RUN_S = 0.5  # the shortest copied part reported
KEYFRAME_S = 0.5  # query frames searched in the frame store, one every this many seconds
# Copy verification: P(copy) = sigmoid(w . [appearance, change, log(run seconds)] + b), fitted by
# `python -m bench.bench_localize --seed 0 --fit-copy-model` (logistic regression on the tuning gallery's
# alignments: every edited copy against its source, every query against the other candidates).
COPY_MODEL = {"weights": (9.0, 6.0, 1.0), "bias": -9.5, "fitted_on": "not fitted yet"}


@dataclass(frozen=True)
class CopyMatch:
    """The best frame-level alignment of a query with one video."""

    video_path: str
    start_s: float  # the copied part in the reference, frame-exact
    end_s: float
    query_start_s: float  # and in the query
    query_end_s: float
    slope: float  # reference frames per query frame
    mirrored: bool  # the query is the reference mirrored left-right
    appearance: float  # mean appearance similarity over the run (the better of plain and zoomed)
    change: float  # mean change similarity over the run
    run_s: float  # length of the run on the query's clock
    probability: float  # copy_probability of the above

    @property
    def features(self) -> tuple[float, float, float]:
        return self.appearance, self.change, math.log(max(self.run_s, 1e-3))


def copy_probability(appearance_sim: float, change_sim: float, run_s: float,
                     model: Mapping = COPY_MODEL) -> float:
    """P(the run is a copy) from its mean similarities and length (:data:`COPY_MODEL`)."""
    w, b = model["weights"], model["bias"]
    z = w[0] * appearance_sim + w[1] * change_sim + w[2] * math.log(max(run_s, 1e-3)) + b
    return float(1.0 / (1.0 + math.exp(-z)))


def _features(signal: FrameSignal, flip: bool = False, zoom: bool = False) -> tuple[np.ndarray, np.ndarray]:
    thumbs = mirrored(signal.thumbs) if flip else signal.thumbs
    if zoom:
        thumbs = zoomed(thumbs, ZOOM)
    return appearance(thumbs), change(thumbs)


def _best_line(similarity: np.ndarray, min_valid: int) -> tuple[float, float, int]:
    """(score, slope, offset) of the best line r = round(a q + b) through a (n_q, n_r) matrix.

    A line scores the mean over query frames of ``max(0, s - MATCH_LEVEL) ** 2``: frames that match well count
    much more than frames that match a little (a static shot looks alike at every offset), and frames that do
    not match (the rest of a partial copy) count nothing, so the copied part decides the line."""
    similarity = np.where(np.isnan(similarity), np.nan, np.maximum(similarity - MATCH_LEVEL, 0.0) ** 2)
    n_q, n_r = similarity.shape
    pad = int(math.ceil(n_q * max(SLOPES))) + 2
    padded = np.full((n_q, n_r + 2 * pad), np.nan, dtype=np.float32)
    padded[:, pad:pad + n_r] = similarity
    rows = np.arange(n_q)
    best = (-np.inf, 1.0, 0)
    for slope in SLOPES:
        steps = np.round(rows * slope).astype(int)
        offsets = np.arange(-steps[-1], n_r)
        values = padded[rows[:, None], offsets[None, :] + steps[:, None] + pad]
        valid = ~np.isnan(values)
        count = valid.sum(axis=0)
        means = np.where(count >= min_valid, np.nansum(values, axis=0) / n_q, -np.inf)
        j = int(np.argmax(means))
        if means[j] > best[0]:
            best = (float(means[j]), float(slope), int(offsets[j]))
    return best


def _longest_run(matches: np.ndarray, max_gap: int) -> tuple[int, int] | None:
    """(first, last) of the longest run of True, bridging gaps of at most ``max_gap`` False values."""
    true = np.flatnonzero(matches)
    if not len(true):
        return None
    breaks = np.flatnonzero(np.diff(true) > max_gap + 1)
    starts, ends = np.r_[true[0], true[breaks + 1]], np.r_[true[breaks], true[-1]]
    longest = int(np.argmax(ends - starts))
    return int(starts[longest]), int(ends[longest])


def align_copy(query: FrameSignal, reference: FrameSignal, model: Mapping = COPY_MODEL) -> CopyMatch | None:
    """The best frame-level alignment of ``query`` with ``reference`` (None when nothing lines up)."""
    if len(query) < 2 or len(reference) < 2:
        return None
    ref_app, ref_change = _features(reference)
    ref_zoom, ref_zoom_change = _features(reference, zoom=True)
    min_valid = max(2, len(query) // 2)
    best = None
    for flip in (False, True):
        q_app, q_change = _features(query, flip=flip)
        appearance_sim = np.maximum(q_app @ ref_app.T, q_app @ ref_zoom.T)
        change_sim = np.maximum(q_change @ ref_change.T, q_change @ ref_zoom_change.T)
        similarity = np.maximum(appearance_sim, change_sim)
        level, slope, offset = _best_line(similarity, min(min_valid, len(reference) // 2 + 1))
        if best is None or level > best[0]:
            best = (level, slope, offset, flip, appearance_sim, change_sim, similarity)
    level, slope, offset, flip, appearance_sim, change_sim, similarity = best
    rows = np.arange(len(query))
    cols = np.round(offset + rows * slope).astype(int)
    inside = (cols >= 0) & (cols < len(reference))
    per_frame = np.full(len(query), -1.0)
    per_frame[inside] = similarity[rows[inside], cols[inside]]
    frame_s = query.frame_s
    run = _longest_run(per_frame >= MATCH_LEVEL, max_gap=max(1, int(round(0.25 / frame_s))))
    if run is None:
        return None
    first, last = run
    run_s = query.end_time(last) - float(query.times[first])
    if run_s < MIN_RUN_S:
        return None
    span = np.arange(first, last + 1)
    span = span[inside[span]]
    app = float(appearance_sim[span, cols[span]].mean())
    chg = float(change_sim[span, cols[span]].mean())
    ref_first, ref_last = int(cols[first]), int(cols[last])
    return CopyMatch(reference.video_path, float(reference.times[ref_first]), reference.end_time(ref_last),
                     float(query.times[first]), query.end_time(last), slope, flip, app, chg, run_s,
                     copy_probability(app, chg, run_s, model))


# ----------------------------------------------------------------------------- copy candidates
def query_keyframes(query: FrameSignal, every_s: float = KEYFRAME_S) -> np.ndarray:
    """Indices of the query frames searched in the frame store: one every ``every_s`` seconds."""
    if not len(query):
        return np.zeros(0, dtype=int)
    marks = np.arange(float(query.times[0]), float(query.times[-1]) + 1e-9, every_s)
    return np.unique(np.searchsorted(query.times, marks - 1e-9).clip(0, len(query) - 1))


def copy_candidates(frames_store, query: FrameSignal, excluded: Sequence[str] = (), n_candidates: int = 10,
                    k: int = 20, filters: Mapping | None = None, bin_s: float = 0.5,
                    peaks: int = 2) -> list[dict[str, tuple[float, float]]]:
    """``[{video: (start_s, end_s)}, ...]`` (the best offset of each video, then its second best, ...): the
    videos whose frames look most like the query's (and their mirror images'), each with the span a copy of the
    whole query could occupy there at that offset (any speed in 0.8-1.25x).

    Each hit votes for its time offset (reference time - query time) with its similarity above 0.5; a video's
    offsets are its heaviest ``bin_s`` bins (each with its two neighbours), so a static shot, whose frames all
    look alike, does not smear them; the ``peaks`` best, at least a query length apart, are kept."""
    keys = query_keyframes(query)
    if not len(keys):
        return []
    vectors = np.concatenate([appearance(query.thumbs[keys]), appearance(mirrored(query.thumbs[keys]))])
    searched = frames_store.search(vectors, k=k, filters=filters, exclude_video=excluded[0] if excluded else None)
    votes: dict[str, float] = {}
    offsets: dict[str, list[tuple[float, float]]] = {}
    n = len(keys)
    for row, hits in enumerate(searched):
        q_t = float(query.times[keys[row % n]])
        best: dict[str, float] = {}
        for hit in hits:
            if hit.video_path in excluded:
                continue
            weight = max(0.0, float(hit.score) - 0.5)
            best[hit.video_path] = max(best.get(hit.video_path, 0.0), weight)
            offsets.setdefault(hit.video_path, []).append((hit.start_s - q_t, weight))
        for video, weight in best.items():
            votes[video] = votes.get(video, 0.0) + weight
    duration = query.end_time(len(query) - 1) - float(query.times[0])
    margin = 0.3 * duration + 1.5
    spans: list[dict[str, tuple[float, float]]] = [{} for _ in range(peaks)]
    for video in sorted(votes, key=lambda v: (-votes[v], v))[:n_candidates]:
        values = np.array(offsets[video])
        bins = np.round(values[:, 0] / bin_s).astype(int)
        smooth = np.convolve(np.bincount(bins - bins.min(), weights=values[:, 1]), np.ones(3), mode="same")
        chosen: list[int] = []
        for j in np.argsort(-smooth, kind="stable"):
            if smooth[j] <= 0 or len(chosen) == peaks:
                break
            if all(abs(int(j) - c) * bin_s >= duration for c in chosen):
                chosen.append(int(j))
        for peak, j in enumerate(chosen):
            start = (j + bins.min()) * bin_s + float(query.times[0])
            spans[peak][video] = (max(0.0, start - margin), start + duration + margin)
    return [group for group in spans if group]


# ----------------------------------------------------------------------------- same-motion boundaries
def cut_points(signal: FrameSignal, level: float = 0.6) -> np.ndarray:
    """Times of hard cuts: frames whose appearance correlates below ``level`` with the frame before."""
    if len(signal) < 2:
        return np.zeros(0)
    app = appearance(signal.thumbs)
    step = np.einsum("ij,ij->i", app[1:], app[:-1])
    return signal.times[1:][step < level]


def novelty_points(times: np.ndarray, vectors: np.ndarray, half: int = 3, level: float = 0.1) -> np.ndarray:
    """Times where a window sequence's content changes: peaks of Foote's checkerboard novelty (``half`` windows
    each side) of the windows' self-similarity, above ``level``, at least ``half`` windows apart."""
    n = len(vectors)
    if n < 2 * half + 1:
        return np.zeros(0)
    v = np.asarray(vectors, dtype=np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    similarity = v @ v.T
    novelty = np.zeros(n)
    for i in range(half, n - half + 1):
        past, future = similarity[i - half:i, i - half:i], similarity[i:i + half, i:i + half]
        novelty[i] = (past.mean() + future.mean()) / 2 - similarity[i - half:i, i:i + half].mean()
    peaks = [i for i in range(1, n - 1) if novelty[i] >= novelty[i - 1] and novelty[i] >= novelty[i + 1]
             and novelty[i] > level]
    kept: list[int] = []
    for i in sorted(peaks, key=lambda j: -novelty[j]):
        if all(abs(i - j) >= half for j in kept):
            kept.append(i)
    return np.asarray(sorted(times[i] for i in kept), dtype=float)


def snap_to_changes(start_s: float, end_s: float, changes: np.ndarray, snap_s: float) -> tuple[float, float]:
    """``(start, end)`` with each end moved to the nearest change within ``snap_s`` (unchanged where none is);
    never inverted."""
    changes = np.asarray(changes, dtype=float)
    new_start, new_end = start_s, end_s
    if len(changes):
        near = changes[np.abs(changes - start_s) <= snap_s]
        if len(near):
            new_start = float(near[np.argmin(np.abs(near - start_s))])
        near = changes[np.abs(changes - end_s) <= snap_s]
        if len(near):
            new_end = float(near[np.argmin(np.abs(near - end_s))])
    return (new_start, new_end) if new_end > new_start else (start_s, end_s)


# ----------------------------------------------------------------------------- the stage
def ranking_score(segment: Segment) -> float:
    """The one ranking scale of a search's segments, in [0, 1]: a verified copy scores 0.5 + 0.5 x its copy
    probability x the share of the query it covers (a whole copy above a partial one); a same-motion segment
    0.5 x the logistic of its raw score (a z-score, or a cosine), so below every verified copy, in the raw
    score's order."""
    if segment.kind == "copy":
        return 0.5 + 0.5 * float(segment.score)  # refine() sets a copy's raw score to probability x coverage
    return 0.5 / (1.0 + math.exp(-float(segment.score)))


def refine(segments: Sequence[Segment], store, query: FrameSignal | None, copy_threshold: float, snap_s: float,
           n_candidates: int, excluded: Sequence[str] = (), filters: Mapping | None = None,
           windows: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> tuple[list[Segment], list[str]]:
    """Steps 1-4 of the module docstring on the coarse segments; returns ``(segments, notes)``, best first.

    ``windows``: per candidate video, the (start times, vectors) of its windows the coarse stage fetched (for
    motion change points; without them only cuts are snapped to). Verified copies replace the same-motion
    segments of the same video they overlap; every segment's ``score`` becomes :func:`ranking_score`.
    """
    from dataclasses import replace

    from ..index.frames import fetch_frames

    notes: list[str] = []
    frames = store.frame_store() if query is not None else None
    copies: list[Segment] = []
    if frames is None:
        notes.append("no fine stage: collection '%s' has no frame store (index dense windows, `motionmatch extract "
                     "--stride-s`, to build one); segments keep their window boundaries" % store.collection)
    else:
        duration = query.end_time(len(query) - 1) - float(query.times[0])
        spans = copy_candidates(frames, query, excluded, n_candidates=n_candidates, filters=filters)
        coarse: dict[str, tuple[float, float]] = {}  # and where the coarse stage put its best segments (a copy
        for s in segments[:n_candidates]:  # whose look was edited away: a caption bar, a crop)
            if s.video_path not in coarse:
                coarse[s.video_path] = (max(0.0, s.start_s - 0.3 * duration - 1.5), s.end_s + 0.3 * duration + 1.5)
        spans.append(coarse)
        best: dict[str, CopyMatch] = {}
        for group in spans:
            for signal in fetch_frames(frames, group).values():
                match = align_copy(query, signal)
                if match is not None and (signal.video_path not in best or
                                          match.probability * match.run_s > best[signal.video_path].probability
                                          * best[signal.video_path].run_s):
                    best[signal.video_path] = match
        for match in best.values():
            if match.probability >= copy_threshold:
                coverage = min(1.0, (match.query_end_s - match.query_start_s) / max(duration, 1e-6))
                copies.append(Segment(match.video_path, match.start_s, match.end_s, match.probability * coverage,
                                      match.query_start_s, match.query_end_s, (), "copy", match.probability))
    kept = [s for s in segments if not any(c.video_path == s.video_path and min(c.end_s, s.end_s) > max(c.start_s, s.start_s)
                                           for c in copies)]
    if frames is not None and snap_s > 0 and kept:
        spans = {}
        for s in kept:
            lo, hi = spans.get(s.video_path, (np.inf, -np.inf))
            spans[s.video_path] = (max(0.0, min(lo, s.start_s - snap_s - 0.1)), max(hi, s.end_s + snap_s + 0.1))
        signals = fetch_frames(frames, spans)
        snapped = []
        for s in kept:
            changes = list(cut_points(signals[s.video_path])) if s.video_path in signals else []
            if windows and s.video_path in windows:
                changes += list(novelty_points(*windows[s.video_path]))
            start, end = snap_to_changes(s.start_s, s.end_s, np.asarray(changes), snap_s)
            snapped.append(replace(s, start_s=start, end_s=end))
        kept = snapped
    ranked = [replace(s, score=ranking_score(s)) for s in [*copies, *kept]]
    return sorted(ranked, key=lambda s: -s.score), notes


__all__ = ["SLOPES", "ZOOM", "MATCH_LEVEL", "COPY_MODEL", "CopyMatch", "copy_probability", "align_copy",
           "query_keyframes", "copy_candidates", "cut_points", "novelty_points", "snap_to_changes",
           "ranking_score", "refine"]
