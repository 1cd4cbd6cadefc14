"""Search by time range: cut a query range into windows, find the moments of the collection that match it.

Evaluation over a list of queries (``motionmatch evaluate --segments``) is in :mod:`motionmatch.localize_eval`.

:func:`search_range` is the one entry point (the CLI's ``search``, notebooks and the API call it):

1. **Check the range before any work** (:func:`plan_query`): ``start_s < end_s``, no negative
   times, nothing past the file's end (real frame timestamps). A range shorter than one window is
   widened to one window inside the file, a file shorter than one window is padded by repeating
   its last frame (as the index pads short videos); both are recorded in ``notes``.
2. **Cut the range into windows the way the collection was cut**: the collection's ``clip_spec``
   gives the window (``frames_per_clip`` frames every ``frame_stride`` frames); windows start every
   ``stride_s`` seconds (``clip_spec["stride_s"]`` or ``clip_spec["windows"]["stride_s"]`` once
   dense windows are recorded; else one window length, so windows tile the range), and a last
   window ends at the range's end (when more than a quarter window would be left out). Where the
   collection's windows are bounded by shots, the range's own cuts are found by the same detector
   (:func:`motionmatch.shots.cuts_in_range`) and the windows restart at each, so none mixes two shots.
3. **Embed** with the encoder the collection records (:func:`~motionmatch.encoders.auto.encoder_from_id`).
4. **Candidates**: Milvus top-k per query window in one batched call; each video's vote is the sum
   over query windows of its best hit score; the best ``n_candidates`` videos go on.
5. **Segments**: each candidate's windows and vectors within a query length of its hits are fetched
   from the store (one query call, time order) and
   the query windows are aligned against them (:func:`motionmatch.segments.align`, the temporal
   network by default); a one-window query thresholds and merges adjacent windows instead
   (:func:`motionmatch.segments.merge_window_hits`). Neither bridges a gap wider than one stride.
   Aligned segments then grow along the reference axis while the motion goes on
   (:func:`motionmatch.segments.extend_segments`, :data:`DEFAULT_EXTEND_MARGIN`), except copies.
6. **Phases**: on a collection of dense windows each query window is also embedded shifted by 1 .. frame_stride - 1
   frames and the best phase counts (:func:`phase_plans`): on the tuning gallery copy R1@tIoU0.7 rose from 0.37 to
   0.57 (no growth) at 4x the query's embedding cost.

**Calibration persistence**: ``motionmatch index`` fits the gallery z-score statistics once and stores them with
the collection (:func:`save_gallery_calibration`, arrays ``segment_calibration.*``); a search loads them
(:func:`load_gallery_calibration`) and refits, with a note, when none is stored or the collection changed since.

**Cost** (p50 over 27 queries of 6 windows, 10 candidates, random 128-d vectors in 100-window videos,
Milvus Lite HNSW, 2 shared CPU cores; a throwaway script, see the issue-11 report; bench later): at 1e4 windows a
plain top-10 takes 7.7 ms, the segment search 80 ms with ``fetch_windows=True`` (the fetch and its
parsing dominate) and 14 ms with ``fetch_windows=False``; at 1e5, 64 ms against 313 ms (4.9x) and
76 ms against 75 ms (1.0x). On the tiny long-video set of the tests both modes give the same metrics.

``fetch_windows=True`` stays the default by measurement (bench/bench_localize.py, tuning seed 0): aligning the Milvus
hits alone gave copy R1@tIoU0.7 0.53 against 0.57 and same-motion R1@tIoU0.5 0.30 against 0.33; the temporal
network stays the aligner there too (Hough: 0.37 and 0.30; DTW lost copies: 0.00), and ``min_hits=2`` (3: 0.60 and
0.30, with a worse boundary error).

**Scores.** ``calibration=None`` keeps raw cosines. ``calibration="gallery"`` (the CLI default) or
a fitted PCA-whitening :class:`~motionmatch.calibrate.ScoreCalibration` turns every cosine into a
**z-score against the gallery**: for query window ``q`` the cosines to gallery windows have mean
``q . mu`` and variance ``sum_j lambda_j (q . v_j)^2`` (``mu``, ``v_j``, ``lambda_j``: the gallery
mean, principal axes and variances the whitening already fits), so ``z = (cos - q . mu) / sd_q``.
A query whose windows are similar to everything (a static scene, a common motion) no longer
outranks a distinctive one, and one threshold (in standard deviations) serves every query and
encoder; ``tests/test_localize.py`` shows two queries' gallery scores before and after.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .clips import ClipSpec, ClipWindow
from .errors import ParameterError
from .segments import ALIGNERS, DEFAULT_ALIGNER, Segment, WindowHit, align, extend_segments, merge_window_hits
from .validation import check_choice, check_scalar

GALLERY = "gallery"  # calibration="gallery": fit the z-score statistics on a sample of the collection
# standard deviations above a query window's mean cosine to the gallery. Measured on the tests' long videos
# (FlowEncoder, 12 copy + 12 same-motion queries, evaluate_search at each threshold; issue-11 report): segment µAP over
# both kinds 0.72 at z >= 0 and 0.71 at 0.5, against 0.53 at 1.0 (same-motion recall falls) and 0.67 for raw cosine
DEFAULT_Z_THRESHOLD = 0.0
# segments.extend_segments: margin (raw cosine; None: segments stay as aligned) and the copy level (an aligned
# segment whose windows are this close to the query is a copy and is not grown). Chosen on the tuning gallery of
# bench/bench_localize.py (seed 0, 8 x 60 s, 30 copy + 30 same-motion queries; `--seed 0 --sweep`) by copy
# R1@tIoU0.7 + same-motion R1@tIoU0.5, with coverage scoring (_by_coverage): 0.57 + 0.33 with growth against
# 0.63 + 0.17 without (median same-motion boundary error 1.1 s against 3.8 s); margin 0.05 or copy level 0.95 lower.
DEFAULT_EXTEND_MARGIN = 0.03
DEFAULT_COPY_LEVEL = 0.97
DEFAULT_RAW_THRESHOLD = 0.5  # cosine, when scores are not calibrated
READ_WINDOWS = 16  # windows decoded and embedded at a time (memory stays flat for long ranges)
_EPS = 1e-6


# ----------------------------------------------------------------------------- query windows
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


def clip_spec_of(info: Mapping[str, Any] | None, frames_per_clip: int) -> tuple[ClipSpec, float | None]:
    """(ClipSpec, stride_s or None) from a collection's recorded ``clip_spec`` (unknown keys are ignored)."""
    recorded = dict(info or {})
    keys = {k: int(recorded[k]) for k in ("frames_per_clip", "frame_stride", "clips_per_video") if k in recorded}
    spec = ClipSpec(**{"frames_per_clip": frames_per_clip, **keys})
    stride = recorded.get("stride_s", (recorded.get("windows") or {}).get("stride_s"))
    return spec, (None if stride in (None, "") else float(stride))


def _check_times(start_s: float | None, end_s: float | None) -> tuple[float | None, float | None]:
    for name, value in (("--start", start_s), ("--end", end_s)):
        if value is not None:
            check_scalar(value, f"{name} (seconds)", float, min_value=0)
    if start_s is not None and end_s is not None and float(start_s) >= float(end_s):
        raise ParameterError(f"--start ({float(start_s):g} s) must be before --end ({float(end_s):g} s)")
    return (None if start_s is None else float(start_s)), (None if end_s is None else float(end_s))


def plan_query(path: str | os.PathLike, spec: ClipSpec, start_s: float | None = None, end_s: float | None = None,
               stride_s: float | None = None, cuts_s: Sequence[float] = ()) -> QueryPlan:
    """Check ``[start_s, end_s)`` against the file and cut it into windows; decodes no frame.

    ``cuts_s``: shot cuts inside the range (:func:`motionmatch.shots.cuts_in_range`). The windows restart
    at each cut, as the index's do, so none mixes two shots; a piece shorter than one window gets one
    window padded with its last frame, as the index pads a short shot. Raises ParameterError for a bad
    range (naming the file and its duration) and VideoError for an unreadable file. ``start_s`` defaults
    to 0, ``end_s`` to the file's end.
    """
    from .clips import open_with_timestamps

    start_s, end_s = _check_times(start_s, end_s)
    if stride_s is not None:
        stride_s = check_scalar(stride_s, "stride_s", float, min_value=0, include_min=False)
    _, info, stamps = open_with_timestamps(path)
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
    inside = np.flatnonzero((stamps >= lo - 1e-6) & (stamps < hi - 1e-6))
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
    stride_frames = max(1, int(round((stride_s or window_s) * fps)))
    cut_frames = sorted({f for f in (int(np.searchsorted(stamps, c - 1e-6)) for c in cuts_s) if first < f <= last})
    if cut_frames:
        notes.append(f"the range crosses {len(cut_frames)} shot cut(s), at "
                     f"{', '.join(f'{stamps[c]:.2f}' for c in cut_frames)} s: its windows restart at each, as the "
                     "index's do")
    windows = []
    for piece_first, piece_last in zip([first] + cut_frames, [c - 1 for c in cut_frames] + [last]):
        last_start = max(piece_first, piece_last - span + 1)
        starts = list(range(piece_first, last_start + 1, stride_frames))
        if piece_last - (starts[-1] + span - 1) > span / 4:  # over a quarter window left: one more ends on the end
            starts.append(last_start)
        for begin in starts:  # a piece shorter than a window: its frames, then its last one repeated
            real = list(range(begin, min(piece_last + 1, begin + span), spec.frame_stride))
            padded = spec.frames_per_clip - len(real)
            windows.append(ClipWindow(len(windows), tuple(real + [real[-1]] * padded), float(stamps[real[0]]),
                                      end_time(real[-1]), padded))
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


def embed_query(plan: QueryPlan, encoder, batch_size: int = 8) -> np.ndarray:
    """(n_windows, dim) L2-normalised vectors of the plan's windows, decoded ``READ_WINDOWS`` at a time."""
    from .decode import open_video

    video = open_video(plan.path)
    out = []
    for begin in range(0, len(plan.windows), READ_WINDOWS):
        chunk = plan.windows[begin:begin + READ_WINDOWS]
        needed = np.unique(np.concatenate([np.asarray(w.frame_indices) for w in chunk]))
        frames = video.read(needed)
        position = {int(index): row for row, index in enumerate(needed)}
        clips = [frames[[position[i] for i in w.frame_indices]] for w in chunk]
        out.append(np.asarray(encoder.encode(clips, batch_size=batch_size), dtype=np.float32))
    return np.concatenate(out)


# ----------------------------------------------------------------------------- score calibration
def fit_gallery_calibration(store, max_videos: int = 200, n_components: int = 64, seed: int = 0):
    """A PCA whitening (:class:`~motionmatch.calibrate.ScoreCalibration`) fitted on the windows of up to
    ``max_videos`` videos drawn at random from the collection: the z-score statistics of segment scores."""
    from .calibrate import ScoreCalibration
    from .table import embedding_matrix

    videos = store.videos()["video_path"].tolist()
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(videos, size=min(max_videos, len(videos)), replace=False).tolist()) if videos else []
    table = store.fetch_table(["video_path", "embedding"], filters={"video_path": chosen}) if chosen else None
    if table is None or len(table) < 3:
        raise ParameterError(f"collection '{store.collection}' holds {0 if table is None else len(table)} windows: too few "
                             "to fit score statistics; index more videos or search with calibration=None (--calibration none)")
    vectors = embedding_matrix(table)
    components = min(n_components, len(vectors) - 1, vectors.shape[1])
    return ScoreCalibration("whiten", n_components=components).fit(vectors, encoder_id=store.encoder_info()["encoder_id"])


CALIBRATION_PREFIX = "segment_calibration."  # array-name prefix of the gallery calibration stored with a collection
FITTED_ON = "fitted_on"  # with the prefix: JSON (rows, encoder_id) of the collection the calibration was fitted on


def save_gallery_calibration(store, calibration=None, **fit_options: Any):
    """Fit the gallery calibration (unless given) and store it with the collection (``store.save_array``, the
    arrays of :meth:`ScoreCalibration.to_arrays`), with the row count it was fitted on; returns it.

    ``motionmatch index`` calls this after each upsert, so a search loads the statistics instead of refitting them.
    """
    from .calibrate import json_to_array

    calibration = calibration if calibration is not None else fit_gallery_calibration(store, **fit_options)
    arrays = {**calibration.to_arrays(),
              FITTED_ON: json_to_array({"rows": int(store.count()), "encoder_id": store.encoder_info()["encoder_id"]})}
    for name in [n for n in store.list_arrays() if n.startswith(CALIBRATION_PREFIX)]:
        store.delete_array(name)
    for key, array in arrays.items():
        store.save_array(CALIBRATION_PREFIX + key, array)
    return calibration


def load_gallery_calibration(store):
    """``(calibration, note)``: the calibration stored with the collection by :func:`save_gallery_calibration`,
    or, when none is stored or it is stale (the collection's row count or encoder changed since), one fitted now
    with a note saying so and what to run."""
    from .calibrate import ScoreCalibration, array_to_json

    names = [n for n in store.list_arrays() if n.startswith(CALIBRATION_PREFIX)]
    reason = f"collection '{store.collection}' stores no gallery calibration"
    if names:
        arrays = {n[len(CALIBRATION_PREFIX):]: store.load_array(n) for n in names}
        fitted_on = array_to_json(arrays.pop(FITTED_ON)) if FITTED_ON in arrays else {}
        rows, encoder_id = int(store.count()), store.encoder_info()["encoder_id"]
        if fitted_on.get("rows") == rows and fitted_on.get("encoder_id") == encoder_id:
            calibration = ScoreCalibration.from_arrays(arrays)
            return calibration, (f"scores are z-scores against the gallery calibration stored with collection "
                                 f"'{store.collection}' ({calibration.n_fitted_} windows, "
                                 f"{calibration.components_.shape[0]} axes)")
        reason = (f"the gallery calibration stored with collection '{store.collection}' is stale (fitted on "
                  f"{fitted_on.get('rows')} rows of {fitted_on.get('encoder_id')!r}; the collection now holds {rows} "
                  f"rows of {encoder_id!r})")
    calibration = fit_gallery_calibration(store)
    return calibration, (f"{reason}: refitted on {calibration.n_fitted_} gallery windows for this search; "
                         "`motionmatch index` stores it with the collection")


def gallery_moments(calibration, query_vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each query vector's cosine over the gallery a whitening was fitted on."""
    if getattr(calibration, "mode", None) != "whiten":
        raise ParameterError("z-scored segment scores need a PCA-whitening calibration (ScoreCalibration('whiten'), "
                             "`motionmatch calibrate --mode whiten`), or calibration='gallery'")
    q = np.asarray(query_vectors, dtype=np.float64)
    mean = q @ calibration.mean_.astype(np.float64)
    projected = q @ calibration.components_.T.astype(np.float64)
    sd = np.sqrt(np.maximum((projected ** 2) @ calibration.explained_variance_.astype(np.float64), 0.0))
    return mean, np.maximum(sd, _EPS)


# ----------------------------------------------------------------------------- the search
@dataclass
class SearchResult:
    """What :func:`search_range` found: the query's windows, Milvus hits per window, candidates and segments."""

    query: QueryPlan
    vectors: np.ndarray  # (n_windows, dim) the query windows' embeddings
    window_hits: list[list[Any]]  # per query window, store.Hit objects (raw cosine scores), best first
    candidates: pd.DataFrame  # video_path, votes, n_windows: the videos that were aligned
    segments: list[Segment]  # best first; each keeps its supporting hits (WindowHit, calibrated scores)
    scores: str  # "raw cosine" or "z-score against the gallery"
    threshold: float
    excluded: tuple[str, ...] = ()  # the query's own file(s), left out of the results
    notes: list[str] = field(default_factory=list)
    moments: dict = field(default_factory=dict, repr=False)  # query window start -> (gallery mean, sd) of its cosine

    def hit_records(self, k: int, one_per_video: bool = False) -> list[dict]:
        """The window hits of every query window fused: best score per clip (raw cosine), ``k`` best (one per
        video if asked), as dicts of the hit's fields plus the query window it matched."""
        best: dict[str, tuple[Any, int]] = {}
        for window, hits in enumerate(self.window_hits):
            for hit in hits:
                if hit.clip_id not in best or hit.score > best[hit.clip_id][0].score:
                    best[hit.clip_id] = (hit, window)
        ranked = sorted(best.values(), key=lambda pair: -pair[0].score)
        if one_per_video:
            seen: set[str] = set()
            ranked = [pair for pair in ranked if not (pair[0].video_path in seen or seen.add(pair[0].video_path))]
        times = self.query.times
        return [{**vars(hit), "query_start_s": float(times[w, 0]), "query_end_s": float(times[w, 1])}
                for hit, w in ranked[:k]]

    def _cosine(self, hit: WindowHit) -> float:
        """The raw cosine behind a (possibly z-scored) hit score."""
        mean, sd = self.moments.get(round(float(hit.query_start_s), 6), (0.0, 1.0))
        return float(hit.score) * sd + mean

    def segment_records(self) -> list[dict]:
        """Segments as JSON-ready dicts: range, score, query range and the window hits that support each."""
        records = []
        for s in self.segments:
            support = [{"video_path": h.video_path, "start_s": h.start_s, "end_s": h.end_s, "score": h.score,
                        "cosine": self._cosine(h),
                        "query_start_s": h.query_start_s, "query_end_s": h.query_end_s} for h in s.hits]
            records.append({"video_path": s.video_path, "start_s": s.start_s, "end_s": s.end_s, "score": s.score,
                            "query_path": self.query.path, "query_start_s": s.query_start_s,
                            "query_end_s": s.query_end_s, "scores": self.scores, "hits": support})
        return records


def own_videos(store, query_path: str | os.PathLike) -> list[str]:
    """Stored video paths that are the query's own file (same path, or same content fingerprint)."""
    from .decode import fingerprint_file

    given = os.fspath(query_path)
    names = sorted({given, str(Path(given).resolve())})
    same_path = store.fetch_table(["video_path"], filters={"video_path": names})
    same_content = store.fetch_table(["video_path"], filters={"video_fingerprint": fingerprint_file(given)})
    return sorted(set(same_path["video_path"]) | set(same_content["video_path"]))


def _windows_by_video(store, spans: Mapping[str, tuple[float, float]], filters: Mapping[str, Any] | None
                      ) -> dict[str, pd.DataFrame]:
    """The windows (with vectors) of each candidate video that start inside its span, in time order."""
    user = dict(filters or {})
    wanted = [{**user, "video_path": video, **({} if "start_s" in user else {"start_s": span})}
              for video, span in spans.items()]
    table = store.fetch_table(["video_path", "clip_index", "start_s", "end_s", "embedding"], filters=wanted)
    return {video: rows.sort_values("start_s", kind="stable") for video, rows in table.groupby("video_path", sort=False)}


def _candidate_grids(store, plan: QueryPlan, vectors: np.ndarray, window_hits: list[list[Any]], videos: Sequence[str],
                     filters: Mapping[str, Any] | None, fetch_windows: bool):
    """Per candidate video: (its reference window times (n, 2), the (n_query, n) cosine matrix, NaN = unknown).

    ``vectors`` is (n_phases, n_query, dim): a cell is the best cosine over a query window's phases.
    ``fetch_windows``: every window starting within a query length (plus a window) of the video's hits,
    with its vector, from the store (one query call); else only the Milvus hits (no fetch; a pair that
    was not among a query window's top-k stays NaN).
    """
    if fetch_windows:
        margin = plan.end_s - plan.start_s + plan.window_s
        starts = {video: [h.start_s for hits in window_hits for h in hits if h.video_path == video] for video in videos}
        spans = {video: (max(0.0, min(s) - margin), max(s) + margin) for video, s in starts.items()}
        for video, rows in _windows_by_video(store, spans, filters).items():
            ref = np.stack(rows["embedding"].to_numpy()).astype(np.float64)
            yield video, rows[["start_s", "end_s"]].to_numpy(float), (vectors.astype(np.float64) @ ref.T).max(axis=0)
        return
    for video in videos:
        windows = sorted({(h.start_s, h.end_s) for hits in window_hits for h in hits if h.video_path == video})
        column = {w: j for j, w in enumerate(windows)}
        cosine = np.full((len(window_hits), len(windows)), np.nan)
        for i, hits in enumerate(window_hits):
            for h in hits:
                if h.video_path == video:
                    cosine[i, column[(h.start_s, h.end_s)]] = h.score
        yield video, np.array(windows, dtype=float).reshape(-1, 2), cosine


def _by_coverage(segments: Sequence[Segment], n_query_windows: int) -> list[Segment]:
    """Score each aligned segment by its hits' summed score over all query windows (a window it does not match
    counts 0: a complete alignment beats a short one of the same level), then keep, per video, only segments
    whose reference range overlaps no better one (a repeating motion gives parallel diagonals of one copy)."""
    from dataclasses import replace

    rescored = sorted((replace(s, score=float(sum(h.score for h in s.hits)) / n_query_windows) if s.hits else s
                       for s in segments), key=lambda s: -s.score)
    kept: list[Segment] = []
    for seg in rescored:
        if not any(k.video_path == seg.video_path and min(k.end_s, seg.end_s) > max(k.start_s, seg.start_s)
                   for k in kept):
            kept.append(seg)
    return kept


def _reference_stride(times: np.ndarray) -> float:
    steps = np.diff(times[:, 0])
    steps = steps[steps > 0]
    return float(np.median(steps)) if steps.size else float(times[0, 1] - times[0, 0])


def _query_cuts(plan: QueryPlan, windows: Mapping[str, Any], split: bool | None) -> tuple[list[float], list[str]]:
    """(cut times inside the planned range, notes): found by the index's shot detector when ``split`` (None: when
    the collection's windows are bounded by shots)."""
    from .errors import MissingPackageError
    from .shots import cuts_in_range

    method = str(windows.get("shots") or "none")
    if split is False or (split is None and method == "none"):
        return [], []
    method = "content" if method == "none" else method  # asked for, on a collection not split at shots
    try:
        return cuts_in_range(plan.path, plan.start_s, plan.end_s, method), []
    except MissingPackageError as error:
        return [], [f"the query range is not split at shot cuts: {error}"]


def search_range(store, query_path: str | os.PathLike, start_s: float | None = None, end_s: float | None = None,
                 k: int = 10, segments: bool = True, exclude_video: bool | None = None,
                 calibration: Any = GALLERY, filters: Mapping[str, Any] | None = None, n_candidates: int = 10,
                 threshold: float | None = None, aligner: str = DEFAULT_ALIGNER, min_hits: int = 2,
                 max_segments: int | None = None, group_by_video: bool = False, fetch_windows: bool = True,
                 encoder=None, batch_size: int = 8, query_phases: int | None = None,
                 extend_margin: float | None = DEFAULT_EXTEND_MARGIN, split_at_cuts: bool | None = None) -> SearchResult:
    """Search the collection with the windows of ``query_path`` between ``start_s`` and ``end_s`` (seconds).

    ``exclude_video``: True drops the query's own file from the results, False keeps it; None (the
    default) drops it when it is indexed (matched by path or content fingerprint), since the range
    would otherwise find itself. ``calibration``: None (raw cosine), "gallery" (fit the z-score
    statistics on the collection, see the module docstring) or a fitted whitening ScoreCalibration.
    ``threshold`` defaults to 0 (z-scores: above the query window's gallery mean) or 0.5 (raw cosine).
    ``segments=False`` stops after the window hits; ``group_by_video`` keeps one hit per video and query
    window (Milvus group_by). ``fetch_windows=False`` aligns the Milvus hits alone (no fetch of the candidates' windows:
    faster, segments may be shorter). ``query_phases``: with segments, each query window is also embedded shifted
    by 1 .. n-1 frames and the best phase counts (:func:`phase_plans`); default: the collection's ``frame_stride``
    when it records dense windows, else 1. ``extend_margin``: see :func:`search_vectors`. ``split_at_cuts``: find
    the shot cuts inside the range with the detector the index used and restart the query windows at each
    (:func:`plan_query`); default: when the collection records windows bounded by shots.
    Everything is checked before the encoder is built.
    """
    from .encoders.auto import encoder_from_id

    k = check_scalar(k, "k", int, min_value=1)
    n_candidates = check_scalar(n_candidates, "n_candidates", int, min_value=1)
    min_hits = check_scalar(min_hits, "min_hits", int, min_value=1)
    max_segments = check_scalar(k if max_segments is None else max_segments, "max_segments", int, min_value=1)
    check_choice(aligner, "aligner", tuple(ALIGNERS))
    if extend_margin is not None:
        extend_margin = check_scalar(extend_margin, "extend_margin", float, min_value=0)
    if query_phases is not None:
        query_phases = check_scalar(query_phases, "query_phases", int, min_value=1)
    for name, value in (("exclude_video", exclude_video), ("split_at_cuts", split_at_cuts)):
        if value is not None and not isinstance(value, bool):
            raise ParameterError(f"{name} must be True, False or None (auto), got {value!r}")
    if isinstance(calibration, str) and calibration != GALLERY:
        raise ParameterError(f"calibration must be None, {GALLERY!r} or a fitted ScoreCalibration, got {calibration!r}")
    if calibration is not None and not isinstance(calibration, str) and getattr(calibration, "mode", None) != "whiten":
        gallery_moments(calibration, np.zeros((1, 1)))  # raises the clear error
    threshold = (DEFAULT_RAW_THRESHOLD if calibration is None else DEFAULT_Z_THRESHOLD) if threshold is None \
        else check_scalar(threshold, "threshold", float)
    info = store.encoder_info()
    # a collection without a recorded clip_spec: check the range now with the default clip, cut it once the
    # encoder (and so its clip length) is known
    spec, stride = clip_spec_of(info.get("clip_spec"), ClipSpec().frames_per_clip)
    plan = plan_query(query_path, spec, start_s, end_s, stride)
    cuts, notes = _query_cuts(plan, (info.get("clip_spec") or {}).get("windows") or {}, split_at_cuts)
    if cuts:
        plan = plan_query(query_path, spec, start_s, end_s, stride, cuts)
    own = own_videos(store, query_path)
    excluded = tuple(own if (exclude_video or (exclude_video is None and own)) else ())
    if calibration == GALLERY and segments:
        calibration, note = load_gallery_calibration(store)
        notes.append(note)
    encoder = encoder or encoder_from_id(info["encoder_id"])
    if not info.get("clip_spec") and encoder.frames_per_clip != spec.frames_per_clip:
        plan = plan_query(query_path, ClipSpec(frames_per_clip=encoder.frames_per_clip), start_s, end_s, stride, cuts)
    notes[:0] = plan.notes
    if excluded and exclude_video is None:
        notes.append(f"the query file is indexed ({', '.join(excluded)}): its own windows are left out "
                     "(include them with exclude_video=False / --include-video)")
    vectors = embed_query(plan, encoder, batch_size)
    if query_phases is None:
        recorded = info.get("clip_spec") or {}
        query_phases = spec.frame_stride if ("windows" in recorded or "stride_s" in recorded) else 1
    phases = phase_plans(plan, query_phases) if segments else []
    phase_vectors = np.stack([embed_query(shifted, encoder, batch_size) for shifted in phases]) if phases else None
    return search_vectors(store, plan, vectors, k=k, segments=segments, excluded=excluded, calibration=calibration,
                          phase_vectors=phase_vectors, extend_margin=extend_margin,
                          filters=filters, n_candidates=n_candidates, threshold=threshold, aligner=aligner,
                          min_hits=min_hits, max_segments=max_segments, group_by_video=group_by_video,
                          fetch_windows=bool(fetch_windows),
                          encoder_id=encoder.encoder_id, preprocessing=encoder.preprocessing(), notes=notes)


def search_vectors(store, plan: QueryPlan, vectors: np.ndarray, k: int, segments: bool, excluded: Sequence[str],
                   calibration: Any, filters: Mapping[str, Any] | None, n_candidates: int, threshold: float,
                   aligner: str, min_hits: int, max_segments: int, group_by_video: bool = False,
                   encoder_id: str | None = None, preprocessing: Mapping | None = None,
                   notes: Sequence[str] = (), fetch_windows: bool = True, phase_vectors: np.ndarray | None = None,
                   extend_margin: float | None = None, copy_level: float = DEFAULT_COPY_LEVEL,
                   coverage: bool = True) -> SearchResult:
    """Steps 4 and 5 of the module docstring for query windows already embedded (``vectors``, one per window
    of ``plan``); :func:`search_range` checks every argument and calls this. ``calibration`` is None or a
    fitted whitening. Cost beyond a plain top-k: one fetch of the candidates' windows (``fetch_windows=False``:
    none, the Milvus hits alone are aligned) and one alignment per candidate."""
    excluded, notes = tuple(excluded), list(notes)
    fetch_k = min(16384, k + 4 * len(excluded[1:]))  # extra paths of the same file are dropped after the search
    all_vectors = vectors if phase_vectors is None else np.concatenate([vectors[None], phase_vectors]).reshape(
        -1, vectors.shape[1])
    searched = store.search(all_vectors, k=fetch_k, filters=filters, group_by_video=group_by_video,
                            encoder_id=encoder_id, preprocessing=preprocessing,
                            exclude_video=excluded[0] if excluded else None)
    window_hits = []
    for window in range(len(vectors)):  # each query window's hits over its phases: the best score per indexed window
        best: dict[str, Any] = {}
        for hits in searched[window::len(vectors)]:
            for hit in hits:
                if hit.video_path not in excluded and (hit.clip_id not in best or hit.score > best[hit.clip_id].score):
                    best[hit.clip_id] = hit
        window_hits.append(sorted(best.values(), key=lambda h: -h.score)[:k])
    votes: dict[str, float] = {}
    for hits in window_hits:
        best: dict[str, float] = {}
        for hit in hits:
            best[hit.video_path] = max(best.get(hit.video_path, -np.inf), float(hit.score))
        for video, score in best.items():
            votes[video] = votes.get(video, 0.0) + score
    ranked = sorted(votes, key=lambda v: (-votes[v], v))[:n_candidates]
    candidates = pd.DataFrame({"video_path": ranked, "votes": [votes[v] for v in ranked]})
    scores = "raw cosine" if calibration is None or isinstance(calibration, str) or not segments \
        else "z-score against the gallery"
    result = SearchResult(plan, vectors, window_hits, candidates, [], scores, threshold, excluded, notes)
    if not segments or not ranked:
        candidates["n_windows"] = 0
        return result
    mean, sd = (np.zeros(len(vectors)), np.ones(len(vectors))) if calibration is None \
        else gallery_moments(calibration, vectors)
    result.moments = {round(float(t), 6): (float(m), float(d)) for t, m, d in zip(plan.times[:, 0], mean, sd)}
    found: list[Segment] = []
    counts = []
    q_times = plan.times
    phased = vectors[None] if phase_vectors is None else np.concatenate([vectors[None], phase_vectors])
    for video, r_times, cosine in _candidate_grids(store, plan, phased, window_hits, ranked, filters, fetch_windows):
        sim = np.nan_to_num((cosine - mean[:, None]) / sd[:, None], nan=-1e3)  # a pair no hit scored: no match
        counts.append((video, len(r_times)))
        if len(q_times) == 1:
            hits = [WindowHit(video, float(r0), float(r1), float(s), float(q_times[0, 0]), float(q_times[0, 1]))
                    for (r0, r1), s in zip(r_times, sim[0])]
            found.extend(merge_window_hits(hits, threshold, _reference_stride(r_times),
                                           query_range=(float(q_times[0, 0]), float(q_times[0, 1]))))
        else:
            aligned = align(sim, q_times, r_times, video, method=aligner, threshold=threshold,
                            min_hits=min(min_hits, len(q_times)))
            if coverage:
                aligned = _by_coverage(aligned, len(q_times))
            if extend_margin is not None:
                aligned = extend_segments(aligned, np.nan_to_num(cosine, nan=-1.0).max(axis=0), r_times, threshold,
                                          extend_margin, scores=sim.max(axis=0), query_range=(plan.start_s, plan.end_s),
                                          copy_level=copy_level)
            found.extend(aligned)
    result.candidates["n_windows"] = result.candidates["video_path"].map(dict(counts)).fillna(0).astype(int)
    result.segments = sorted(found, key=lambda s: -s.score)[:max_segments]
    return result


__all__ = ["GALLERY", "DEFAULT_Z_THRESHOLD", "DEFAULT_RAW_THRESHOLD", "QueryPlan", "SearchResult", "clip_spec_of",
           "plan_query", "embed_query", "fit_gallery_calibration", "save_gallery_calibration",
           "load_gallery_calibration", "CALIBRATION_PREFIX", "gallery_moments", "own_videos", "search_range",
           "search_vectors"]
