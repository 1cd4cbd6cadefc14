"""The fine stage of a segment search: frame-level alignment, copy verification, boundaries snapped to changes.

The coarse stage (:mod:`motionmatch.search.range`) finds candidate videos and rough offsets from 2 s windows.
This stage works on every frame, from the 24 x 24 grey thumbnails the frame store holds
(:mod:`motionmatch.index.frames`) and the query's own frames (decoded once):

1. **Copy candidates** (:func:`copy_candidates`): the query's frames every half second (and their mirror
   images, their uncropped look, and their pixels the query ever changes, so that an overlay does not hide the
   source) searched in the frame store by appearance, voted per video. A copy is found whatever its motion
   looks like: mirrored, sped up, slowed down.
2. **Copy alignment** (:func:`align_copy`): per candidate, a frame x frame similarity (the better of
   appearance, appearance at a 1.25x central zoom, and change; :mod:`motionmatch.video.fingerprint`), in both
   orientations; the best straight line ``reference frame = a * query frame + b`` over slopes 0.8-1.25 (speed
   changes); along it, the longest run of matching frames is the copied part. A frame whose query moves while
   the reference, along the line, does not move the same way (change similarity below :data:`CHANGE_FLOOR` on
   its steps in and out) is no copied frame, however alike the two look, and the run starts and ends on
   :data:`ANCHOR_FRAMES` frames that match in change or exactly in look: footage around a copy from a shot that
   looks like the source's (padding) is left out. Its ends are frames, so a copy's boundaries are exact to a
   frame, and a partial copy (the query inside the reference, or the reverse) is bounded where the match
   starts and ends.
3. **Copy verification** (:func:`copy_probability`): the run's mean appearance and change similarity and its
   length, through a logistic model fitted on the tuning gallery (:data:`COPY_MODEL`). A copy is reported with
   ``kind="copy"`` when its probability reaches the search's ``copy_threshold``; it is never grown.
4. **Same-motion boundaries** (:mod:`motionmatch.search.changes`): a moment of motion ends where the reference's
   motion changes, so a same-motion segment is cut at a change inside it (keeping its longer part), its ends move
   out to the reference's nearest changes within ``snap_s``, and a video's segments that then lie between the
   same two changes are joined into one (``join_moments``). The changes are the index's own shot cuts, read from
   how its windows tile the video, the change points of the reference's window embeddings inside each shot
   (ruptures' kernel change-point detection, on windows read :data:`CHANGE_CONTEXT_S` past the reach), and, in a
   pose collection, where someone comes into view or leaves. Measured in docs/LONG_VIDEOS.md (`python -m
   bench.bench_localize --changes`, and each seed's run before and after these change points replaced peaks of
   Foote's novelty); cuts detected from the 24 x 24 frames (a synthetic sprite that wraps around the frame "cuts"
   every 2 s) made the answers worse.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..video.fingerprint import FrameSignal, appearance, change, foreground, mirrored, search_vectors, unzoomed, zoomed
from .align import Segment, windows_by_video
from .changes import bound_to_changes, cut_points, join_moments, motion_changes

SLOPES = tuple(np.round(np.arange(0.80, 1.2501, 0.05), 2))  # reference frames per query frame (speed changes)
ZOOM = 1.25  # a central crop to 80 % of the width and height
MATCH_LEVEL = 0.5  # a frame pair at or above this similarity matches (along the best line)
MIN_RUN_S = 0.5  # the shortest copied part reported
KEYFRAME_S = 0.5  # query frames searched in the frame store, one every this many seconds
# Copy verification: P(copy) = sigmoid(w . copy_features + b), fitted by
# `python -m bench.bench_localize --seed 0 --fit-copy-model` (logistic regression on the tuning gallery's
# alignments: every edited copy against its source, every query against the other candidates).
COPY_MODEL = {"weights": (1.1695, 4.8684, 0.8548, 3.0701, 4.7652), "bias": -11.8771,
              "fitted_on": "python -m bench.bench_localize --seed 0 --fit-copy-model"}
EXACT_LEVEL = 0.9
CHANGE_FLOOR = 0.2  # along the line, a moving query frame whose change matches below this is no copy frame
ANCHOR_FRAMES = 3  # a copied part starts and ends on this many frames in a row that match in change (or look)
# Windows read past an end's reach (snap_s) before the changes are found, so that a change near the reach's edge has
# windows on both sides (the kernel detector needs CPD_MIN_WINDOWS a side). Chosen on seeds 0, 2 and 3 (4 s against
# 0: tIoU given the right moment 0.891 / 0.698 / 0.864 -> 0.891 / 0.719 / 0.870, docs/LONG_VIDEOS.md).
CHANGE_CONTEXT_S = 4.0
STATIC_LEVEL = 2.0  # grey levels: a query pixel that never changes by more is static (an overlay, a still background)


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
    foreground: float  # mean foreground similarity over the run (what moves against the still background)
    exact: float  # share of the run's frames whose best similarity is >= EXACT_LEVEL (a copy's are nearly all)
    run_s: float  # length of the run on the query's clock
    evidence: float  # the line's score (:func:`_best_line`): how much of the query matches, how well
    probability: float  # copy_probability of the above

    @property
    def features(self) -> tuple[float, ...]:
        return copy_features(self.appearance, self.change, self.foreground, self.exact, self.run_s)


def copy_features(appearance_sim: float, change_sim: float, foreground_sim: float, exact: float,
                  run_s: float) -> tuple[float, ...]:
    """The copy model's inputs: mean appearance, change and foreground similarity, share of exact frames, log
    run length."""
    return (float(appearance_sim), float(change_sim), float(foreground_sim), float(exact),
            math.log(max(run_s, 1e-3)))


def copy_probability(features: Sequence[float], model: Mapping = COPY_MODEL) -> float:
    """P(the run is a copy) from :func:`copy_features` (:data:`COPY_MODEL`, a logistic model)."""
    z = float(np.dot(model["weights"], features)) + float(model["bias"])
    return float(1.0 / (1.0 + math.exp(-z)))


def fit_copy_model(features: np.ndarray, labels: np.ndarray, note: str = "") -> dict:
    """A :data:`COPY_MODEL` fitted by logistic regression (scikit-learn) on alignments with known labels
    (1: the run is the query's source range): ``{"weights", "bias", "fitted_on"}``."""
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(C=10.0, max_iter=1000).fit(np.asarray(features, float), np.asarray(labels, int))
    return {"weights": tuple(round(float(w), 4) for w in fitted.coef_[0]),
            "bias": round(float(fitted.intercept_[0]), 4), "fitted_on": note}


def _features(thumbs: np.ndarray) -> tuple[np.ndarray, ...]:
    """(appearance, change, foreground) of thumbnails."""
    return appearance(thumbs), change(thumbs), foreground(thumbs)


@dataclass(frozen=True)
class QueryView:
    """The query as :func:`align_copy` compares it in one orientation; the same for every candidate, so
    :func:`query_views` makes it once per query."""

    flip: bool  # the query mirrored left-right
    features: tuple[np.ndarray, ...]  # appearance, change, foreground
    mask: np.ndarray  # live_mask of the thumbs
    moving: np.ndarray  # (n,) bool: the frame changes from the one before at all


def query_views(query: FrameSignal) -> tuple[QueryView, QueryView]:
    """The query as it is and mirrored left-right."""
    views = []
    for flip in (False, True):
        thumbs = (mirrored(query.thumbs) if flip else query.thumbs).astype(np.float32)
        steps = np.abs(np.diff(thumbs, axis=0)).sum(axis=(1, 2))  # empty for a one-frame query
        views.append(QueryView(flip, _features(thumbs), live_mask(thumbs), np.r_[False, steps > 1.0]))
    return views[0], views[1]


def live_mask(thumbs: np.ndarray) -> np.ndarray:
    """(THUMB, THUMB) float32 1/0: the pixels a query's frames ever change by more than :data:`STATIC_LEVEL`.
    The reference's change is read through it, so pixels the query never changes (a caption bar, a logo, a
    still background) count in neither (motion passing under an overlay would otherwise count against a
    copy). All ones when fewer than 10 % of the pixels change (nothing to say where the motion is)."""
    thumbs = np.asarray(thumbs, dtype=np.float32)
    if len(thumbs) < 2:
        return np.ones(thumbs.shape[1:], np.float32)
    live = np.abs(np.diff(thumbs, axis=0)).max(axis=0) > STATIC_LEVEL
    return live.astype(np.float32) if live.mean() >= 0.1 else np.ones(thumbs.shape[1:], np.float32)


def _evidence(*similarities: np.ndarray) -> np.ndarray:
    """Per frame pair, the mean over channels of ``max(0, s - MATCH_LEVEL) ** 2``: pairs that match well count
    much more than pairs that match a little, and channels add up, so a static shot (whose frames all look
    alike) is told apart by what moves in it."""
    return sum(np.maximum(s - MATCH_LEVEL, 0.0) ** 2 for s in similarities) / len(similarities)


def _best_line(similarity: np.ndarray, min_valid: int) -> tuple[float, float, int]:
    """(score, slope, offset) of the best line r = round(a q + b) through an (n_q, n_r) evidence matrix
    (:func:`_evidence`): a line scores its evidence summed over query frames / n_q, so frames that do not match
    (the rest of a partial copy) count nothing and the copied part decides the line."""
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


def align_copy(query: FrameSignal, reference: FrameSignal, model: Mapping = COPY_MODEL,
               views: tuple[QueryView, QueryView] | None = None) -> CopyMatch | None:
    """The best frame-level alignment of ``query`` with ``reference`` (None when nothing lines up). ``views``:
    :func:`query_views` of the query, when it is aligned with several references."""
    if len(query) < 2 or len(reference) < 2:
        return None
    views = views or query_views(query)
    ref = reference.thumbs.astype(np.float32)
    ref_zoomed = zoomed(ref, ZOOM)
    ref_plain, ref_zoom = _features(ref), _features(ref_zoomed)
    min_valid = max(2, len(query) // 2)
    best = None
    for view in views:
        q = view.features
        ref_change = (change(ref * view.mask), change(ref_zoomed * view.mask))
        app, fg = (np.maximum(q[c] @ ref_plain[c].T, q[c] @ ref_zoom[c].T) for c in (0, 2))
        chg = np.maximum(q[1] @ ref_change[0].T, q[1] @ ref_change[1].T)
        level, slope, offset = _best_line(_evidence(app, chg, fg), min(min_valid, len(reference) // 2 + 1))
        if best is None or level > best[0]:
            best = (level, slope, offset, view, app, fg)
    level, slope, offset, view, appearance_sim, foreground_sim = best
    rows = np.arange(len(query))
    cols = np.round(offset + rows * slope).astype(int)
    inside = (cols >= 0) & (cols < len(reference))
    appearance_line, foreground_line = np.full(len(query), -1.0), np.full(len(query), -1.0)
    appearance_line[inside] = appearance_sim[rows[inside], cols[inside]]
    foreground_line[inside] = foreground_sim[rows[inside], cols[inside]]
    change_line = _line_change(view, (ref, ref_zoomed), cols, inside)
    per_frame = np.maximum(np.maximum(appearance_line, change_line), foreground_line)
    # footage that only looks like the reference (padding from a look-alike shot) is no copy: _unlike
    held = np.r_[False, cols[1:] == cols[:-1]]  # the line maps two query frames to one reference frame: no change
    unlike = _unlike(change_line, view.moving & ~held & (change_line > -1.0))
    run = _longest_run((per_frame >= MATCH_LEVEL) & ~unlike, max_gap=max(1, int(round(0.25 / query.frame_s))))
    if run is None:
        return None
    first, last = run
    # the run starts and ends on ANCHOR_FRAMES frames that change as the reference does (or do not change): a
    # look-alike frame that the gap bridging took in at an end is trimmed off (a first frame's own change may
    # be a splice's: the frames after it say)
    steady = (per_frame >= MATCH_LEVEL) & ((change_line >= MATCH_LEVEL) | (appearance_line >= EXACT_LEVEL)
                                           | ~view.moving | held | (change_line <= -1.0))
    while first < last and not steady[first + 1:first + ANCHOR_FRAMES].all():
        first += 1
    while last > first and not steady[max(first, last - ANCHOR_FRAMES + 1):last + 1].all():
        last -= 1
    run_s = query.end_time(last) - float(query.times[first])
    if run_s < MIN_RUN_S:
        return None
    span = np.arange(first, last + 1)
    span = span[inside[span]]
    app = float(appearance_line[span].mean())
    with_motion = span[view.moving[span]]  # frames where the query changes at all (a slowed copy repeats frames)
    chg = float(change_line[with_motion].mean()) if len(with_motion) else 0.0
    fg = float(foreground_line[span].mean())
    exact = float((per_frame[span] >= EXACT_LEVEL).mean())
    ref_first, ref_last = int(cols[first]), int(cols[last])
    return CopyMatch(reference.video_path, float(reference.times[ref_first]), reference.end_time(ref_last),
                     float(query.times[first]), query.end_time(last), slope, view.flip, app, chg, fg, exact, run_s,
                     level, copy_probability(copy_features(app, chg, fg, exact, run_s), model))


def _unlike(change_line: np.ndarray, telling: np.ndarray) -> np.ndarray:
    """(n,) bool: query frames the reference does not move like. Frame q's step is the pair (q - 1, q);
    ``telling`` marks the steps that say something (the query moves, and the line maps the two frames to two
    reference frames); a step that does not takes the last telling step's word. A frame is unlike when its
    steps into and out of it both match below :data:`CHANGE_FLOOR` (a splice's first frame has one such step)."""
    contradicts = telling & (change_line < CHANGE_FLOOR)
    last = np.maximum.accumulate(np.where(telling, np.arange(len(telling)), -1))
    step = np.where(last >= 0, contradicts[np.maximum(last, 0)], False)
    return step & np.r_[step[1:], True]


def _line_change(view: QueryView, references: tuple[np.ndarray, np.ndarray], cols: np.ndarray,
                 inside: np.ndarray) -> np.ndarray:
    """Per query frame, the change similarity along the line.

    The reference's change is taken between the two reference frames the line maps query frames q - 1 and q to,
    not between consecutive reference frames, so a copy at another speed changes by as much as its source
    (with and without the 1.25x zoom, the better: ``references`` is the reference's thumbnails, then zoomed)."""
    out = np.full(len(view.moving), -1.0)
    pairs = np.flatnonzero(inside[1:] & inside[:-1]) + 1  # query frames q with q - 1 and q both on the reference
    if not len(pairs):
        return out
    q_change = view.features[1]
    best = np.full(len(pairs), -1.0)
    for frames in references:
        ref_steps = (frames[cols[pairs]] - frames[cols[pairs - 1]]) * view.mask
        flat = ref_steps.reshape(len(pairs), -1)
        flat = flat - flat.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(flat, axis=1, keepdims=True)
        ref_change = np.where(norm > 1.0, flat / np.maximum(norm, 1e-6), 0.0)
        best = np.maximum(best, np.einsum("ij,ij->i", q_change[pairs], ref_change))
    out[pairs] = best
    return out


# ----------------------------------------------------------------------------- copy candidates
def query_keyframes(query: FrameSignal, every_s: float = KEYFRAME_S) -> np.ndarray:
    """Indices of the query frames searched in the frame store: one every ``every_s`` seconds."""
    if not len(query):
        return np.zeros(0, dtype=int)
    marks = np.arange(float(query.times[0]), float(query.times[-1]) + 1e-9, every_s)
    return np.unique(np.searchsorted(query.times, marks - 1e-9).clip(0, len(query) - 1))


def copy_candidates(frames_store, query: FrameSignal, excluded: Sequence[str] = (), n_candidates: int = 10,
                    k: int = 20, filters: Mapping | None = None, near: float = 0.05,
                    max_span_s: float = 120.0, mask: np.ndarray | None = None) -> dict[str, tuple[float, float]]:
    """``{video: (start_s, end_s)}``: the videos whose frames look most like the query's (as they are, mirrored,
    uncropped by 1.25x, and on the pixels the query changes only (:func:`live_mask`), so that an overlay does not
    hide its source: one search call for all), each with the span a copy could occupy there.

    Videos are ranked by their best hit per query keyframe (summed over keyframes, the part above 0.5). A
    video's span covers every hit within ``near`` of its best score, as offsets of the query's start, plus a
    margin for speed changes (0.8-1.25x): within one static shot every frame looks alike at 16 x 16, so the
    keyframes cannot say where in the shot a copy sits, but the fine alignment, given the whole shot, can
    (what moves in it, :func:`motionmatch.video.fingerprint.foreground`). Spans are capped at ``max_span_s``
    around the heaviest offset."""
    keys = query_keyframes(query)
    if not len(keys):
        return {}
    keyframes = query.thumbs[keys]  # as they are, mirrored, and as the uncropped frames of a cropped copy may be
    sets = [search_vectors(keyframes), search_vectors(mirrored(keyframes)), search_vectors(unzoomed(keyframes, ZOOM))]
    mask = live_mask(query.thumbs) if mask is None else mask  # (the query's, when the caller has it)
    if mask.min() < 1:  # and on the pixels the query changes only: a caption bar or a logo left out
        sets.append(search_vectors(keyframes, mask))
    vectors = np.concatenate(sets)
    rows = np.flatnonzero(np.abs(vectors).sum(axis=1) > 0)  # a flat frame has no appearance to search with
    key_of_row = np.tile(keys, len(sets))[rows]
    searched = frames_store.search(vectors[rows], k=k, filters=filters,
                                   exclude_video=excluded[0] if excluded else None) if len(rows) else []
    votes: dict[str, float] = {}
    offsets: dict[str, list[tuple[float, float]]] = {}
    for row, hits in enumerate(searched):
        q_t = float(query.times[key_of_row[row]])
        best: dict[str, float] = {}
        for hit in hits:
            if hit.video_path in excluded:
                continue
            best[hit.video_path] = max(best.get(hit.video_path, -1.0), float(hit.score))
            offsets.setdefault(hit.video_path, []).append((hit.start_s - q_t, float(hit.score)))
        for video, score in best.items():
            votes[video] = votes.get(video, 0.0) + max(0.0, score - 0.5)
    duration = query.end_time(len(query) - 1) - float(query.times[0])
    margin = 0.3 * duration + 1.5
    spans = {}
    for video in sorted(votes, key=lambda v: (-votes[v], v))[:n_candidates]:
        if votes[video] <= 0:
            continue
        values = np.array(offsets[video])
        strong = values[values[:, 1] >= values[:, 1].max() - near, 0]
        heaviest = float(np.median(strong))
        low, high = max(strong.min(), heaviest - max_span_s / 2), min(strong.max(), heaviest + max_span_s / 2)
        start = float(query.times[0])
        spans[video] = (max(0.0, start + low - margin), start + high + duration + margin)
    return spans


# ----------------------------------------------------------------------------- the stage
def copy_matches(frames_store, query: FrameSignal, segments: Sequence[Segment], n_candidates: int,
                 excluded: Sequence[str] = (), filters: Mapping | None = None) -> dict[str, CopyMatch]:
    """Steps 1-2 of the module docstring: ``{video: its best frame-level alignment with the query}`` over the copy
    candidates (:func:`copy_candidates`) and the videos of the coarse stage's top ``n_candidates`` segments
    (what :func:`refine` verifies, and what ``--fit-copy-model`` of bench_localize fits the copy model on)."""
    from ..index.frames import fetch_frames

    duration = query.end_time(len(query) - 1) - float(query.times[0])
    views = query_views(query)
    spans = [copy_candidates(frames_store, query, excluded, n_candidates=n_candidates, filters=filters,
                             mask=views[0].mask)]
    # and where the coarse stage put its best segments (a copy whose look was edited away: a caption bar, a crop),
    # all of a video's top segments in one span: a sped-up copy's best window may be a look-alike elsewhere in it
    spans.append(video_spans(segments[:n_candidates], 0.3 * duration + 1.5))
    merged = merge_spans(spans)
    best: dict[str, CopyMatch] = {}
    for video, signal in fetch_frames(frames_store, merged).items():  # one fetch for both groups
        for lo, hi in merged[video]:
            match = align_copy(query, signal.between(lo, hi), views=views)
            if match is not None and (video not in best or _exact_frames(match) > _exact_frames(best[video])):
                best[video] = match
    return best


def video_spans(segments: Sequence[Segment], margin_s: float = 0.0) -> dict[str, tuple[float, float]]:
    """``{video: (start_s, end_s)}``: the one span that holds every segment of each video, ``margin_s`` wider on
    each side (never before 0)."""
    spans: dict[str, tuple[float, float]] = {}
    for s in segments:
        lo, hi = spans.get(s.video_path, (math.inf, -math.inf))
        spans[s.video_path] = (max(0.0, min(lo, s.start_s - margin_s)), max(hi, s.end_s + margin_s))
    return spans


def merge_spans(groups: Sequence[Mapping[str, tuple[float, float]]], gap_s: float = 1.0
                ) -> dict[str, list[tuple[float, float]]]:
    """``{video: [(start_s, end_s), ...]}``: every group's span of each video, those that overlap or lie within
    ``gap_s`` of each other joined, in time order (each is aligned once, the frames of all fetched at once)."""
    out: dict[str, list[tuple[float, float]]] = {}
    for video in dict.fromkeys(v for group in groups for v in group):
        joined: list[list[float]] = []
        for lo, hi in sorted(group[video] for group in groups if video in group):
            if joined and lo <= joined[-1][1] + gap_s:
                joined[-1][1] = max(joined[-1][1], hi)
            else:
                joined.append([lo, hi])
        out[video] = [(float(lo), float(hi)) for lo, hi in joined]
    return out


def _exact_frames(match: CopyMatch) -> float:
    """Of several alignments with one video (spans at different offsets), the copy is the one with the most
    evidence (frames of one shot all look alike; what moves in them does not)."""
    return match.evidence

def ranking_score(segment: Segment) -> float:
    """The one ranking scale of a search's segments, in [0, 1]: a verified copy scores 0.5 + 0.5 x its copy
    probability x the share of the query it covers (a whole copy above a partial one); a same-motion segment
    0.5 x the logistic of its raw score (a z-score, or a cosine), so below every verified copy, in the raw
    score's order."""
    if segment.kind == "copy":
        return 0.5 + 0.5 * float(segment.score)  # refine() sets a copy's raw score to probability x coverage
    return 0.5 / (1.0 + math.exp(-float(segment.score)))


def snapping_spans(segments: Sequence[Segment], snap_s: float, context_s: float = CHANGE_CONTEXT_S
                   ) -> dict[str, tuple[float, float]]:
    """``{video: (start_s, end_s)}``: the windows read to find the changes a video's segments snap to: every segment
    with its ends' reach (``snap_s``) and ``context_s`` more, so that a change near the edge of the reach is seen
    with windows on both sides of it."""
    return video_spans(segments, snap_s + 0.1 + context_s)


def refine(segments: Sequence[Segment], store, query: FrameSignal | None, copy_threshold: float, snap_s: float,
           n_candidates: int, excluded: Sequence[str] = (), filters: Mapping | None = None,
           join_gap_s: float | None = None) -> tuple[list[Segment], list[str]]:
    """Steps 1-4 of the module docstring on the coarse segments; returns ``(segments, notes)``, best first.

    A same-motion segment's changes (:func:`~motionmatch.search.changes.motion_changes`) are read from the store's
    windows around it (one query, :func:`snapping_spans`: its ends' reach and :data:`CHANGE_CONTEXT_S` more);
    frame-level cuts (:func:`~motionmatch.search.changes.cut_points`) stand in for a video with no windows there.
    With ``join_gap_s``, a video's same-motion segments that then lie between the same two changes, at most that far
    apart, become one (:func:`~motionmatch.search.changes.join_moments`).
    Verified copies replace the same-motion segments of the same video they overlap; every segment's ``score``
    becomes :func:`ranking_score`.
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
        best = copy_matches(frames, query, segments, n_candidates, excluded, filters)
        for match in best.values():
            if match.probability >= copy_threshold:
                coverage = min(1.0, (match.query_end_s - match.query_start_s) / max(duration, 1e-6))
                copies.append(Segment(match.video_path, match.start_s, match.end_s, match.probability * coverage,
                                      match.query_start_s, match.query_end_s, (), "copy", match.probability))
    kept = [s for s in segments if not any(c.video_path == s.video_path and min(c.end_s, s.end_s) > max(c.start_s, s.start_s)
                                           for c in copies)]
    if frames is not None and snap_s > 0 and kept:
        spans = snapping_spans(kept, snap_s)
        # every window, a person in view or not: where one appears or leaves is a change too
        changes = {video: motion_changes(rows[["start_s", "end_s"]].to_numpy(float), np.stack(rows["embedding"].to_numpy()),
                                         rows["coverage"].to_numpy(float) if "coverage" in rows else None,
                                         until_s=spans[video][1])
                   for video, rows in windows_by_video(store, spans, content_only=False).items() if len(rows)}
        missing = {video: span for video, span in spans.items() if video not in changes}
        signals = fetch_frames(frames, missing)  # frames only where no windows are there to read changes from
        changes.update({video: cut_points(signal) for video, signal in signals.items()})
        by_video: dict[str, list[Segment]] = {}
        for s in kept:
            start, end = bound_to_changes(s.start_s, s.end_s, changes.get(s.video_path, np.zeros(0)), snap_s)
            by_video.setdefault(s.video_path, []).append(replace(s, start_s=start, end_s=end))
        kept = [s for video, found in by_video.items()
                for s in (found if join_gap_s is None else
                          join_moments(found, changes.get(video, np.zeros(0)), max_gap_s=join_gap_s))]
    ranked = [replace(s, score=ranking_score(s)) for s in [*copies, *kept]]
    return sorted(ranked, key=lambda s: -s.score), notes


__all__ = ["SLOPES", "ZOOM", "MATCH_LEVEL", "EXACT_LEVEL", "COPY_MODEL", "CopyMatch", "copy_features",
           "copy_probability", "fit_copy_model", "QueryView", "query_views", "align_copy", "copy_matches", "video_spans",
           "merge_spans",
           "live_mask",
           "query_keyframes", "copy_candidates", "ranking_score", "snapping_spans", "refine"]
