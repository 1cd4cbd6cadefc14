"""Search by time range: cut a query range into windows, find the moments of the collection that match it.

:func:`search_range` is the one entry point (the CLI's ``search``, notebooks and the API call it); every
setting is in one :class:`~motionmatch.search.config.SegmentSearchConfig`. Evaluation over a list of queries
(``motionmatch evaluate --segments``) is :func:`motionmatch.evaluation.evaluate_search`.

1. **Check the range before any work** (:func:`motionmatch.video.plan_query`): ``start_s < end_s``, no
   negative times, nothing past the file's end (real frame timestamps), at least one frame step long. A range shorter than one window is
   widened to one window inside the file, a file shorter than one window is padded by repeating its last
   frame (as the index pads short videos); both are recorded in ``notes``.
2. **Cut the range into windows the way the collection was cut**, by the one planner of
   :mod:`motionmatch.video.windows` (the collection's recorded clip and stride; restarting at shot cuts
   inside the range when the index's windows are bounded by shots, found by the same detector).
3. **Embed** with the encoder the collection records (:func:`~motionmatch.encoders.encoder_from_id`).
4. **Candidates**: Milvus top-k per query window in one batched call; each video's vote is the sum
   over query windows of its best hit score; the best ``n_candidates`` videos go on.
5. **Segments**: each candidate's windows and vectors within a query length of its hits are fetched from the
   store (one query call, time order) and the query windows are aligned against them
   (:func:`motionmatch.search.align.align`, the temporal network by default); a one-window query thresholds
   and merges adjacent windows instead (:func:`motionmatch.search.align.merge_window_hits`). Neither bridges a
   gap wider than one stride. Aligned segments then grow along the reference axis while the motion goes on
   (:func:`motionmatch.search.align.extend_segments`), except copies.
6. **Phases**: on a collection of dense windows each query window is also embedded shifted by
   1 .. frame_stride - 1 frames and the best phase counts (:func:`motionmatch.video.phase_plans`): on the
   tuning gallery copy R1@tIoU0.7 rose from 0.37 to 0.57 (no growth) at 4x the query's embedding cost.

**Scores.** ``calibration=None`` keeps raw cosines; ``"gallery"`` (the CLI default) or a fitted whitening turns
every cosine into a z-score against the gallery (:mod:`motionmatch.refine.zscore`, stored with the collection
by ``motionmatch index``), so one threshold in standard deviations serves every query and encoder.

``fetch_windows=True`` stays the default by measurement (bench/bench_localize.py, tuning seed 0): aligning the
Milvus hits alone gave copy R1@tIoU0.7 0.53 against 0.57 and same-motion R1@tIoU0.5 0.30 against 0.33; the
temporal network stays the aligner there too (Hough: 0.37 and 0.30; DTW lost copies: 0.00), and ``min_hits=2``
(3: 0.60 and 0.30, with a worse boundary error). Cost: ``python -m bench.bench_segment_search``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..video.clips import ClipSpec, open_with_timestamps
from ..video.windows import QueryPlan, collection_clip_spec, phase_plans, plan_query
from ..errors import ParameterError
from ..refine.zscore import GALLERY, gallery_moments, load_gallery_calibration
from .align import Segment, WindowHit, align, extend_segments, merge_window_hits, windows_by_video
from .config import SegmentSearchConfig
from .fine import refine, video_spans
from .query import DecodedRange, decode_range, embed_plans

_EPS = 1e-6


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
        """Segments as JSON-ready dicts: range, ``kind`` (copy | same_motion), score (the ranking scale of
        :func:`motionmatch.search.fine.ranking_score`), copy probability, query range and the supporting window
        hits (a copy found by the fine stage alone has none)."""
        records = []
        for s in self.segments:
            support = [{"video_path": h.video_path, "start_s": h.start_s, "end_s": h.end_s, "score": h.score,
                        "cosine": self._cosine(h),
                        "query_start_s": h.query_start_s, "query_end_s": h.query_end_s} for h in s.hits]
            records.append({"video_path": s.video_path, "start_s": s.start_s, "end_s": s.end_s, "kind": s.kind,
                            "score": s.score, "copy_probability": None if math.isnan(s.copy_probability)
                            else s.copy_probability, "query_path": self.query.path, "query_start_s": s.query_start_s,
                            "query_end_s": s.query_end_s, "scores": self.scores, "hits": support})
        return records


def own_videos(store, query_path: str | os.PathLike) -> list[str]:
    """Stored video paths that are the query's own file (same path, or same content fingerprint)."""
    from ..video.decode import fingerprint_file

    given = os.fspath(query_path)
    names = sorted({given, str(Path(given).resolve())})
    same_path = store.fetch_table(["video_path"], filters={"video_path": names})
    same_content = store.fetch_table(["video_path"], filters={"video_fingerprint": fingerprint_file(given)})
    return sorted(set(same_path["video_path"]) | set(same_content["video_path"]))


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
        for video, rows in windows_by_video(store, spans, filters).items():
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


def _query_cuts(plan: QueryPlan, windows: Mapping[str, Any], config: SegmentSearchConfig, opened
                ) -> tuple[list[float], list[str], DecodedRange | None]:
    """(cut times inside the planned range, notes, the range decoded once for them): cuts found by the index's shot
    detector when ``config.split_at_cuts`` (None: when the collection's windows are bounded by shots).

    The range is decoded once and held (:func:`~motionmatch.search.query.decode_range`) for the detector and then
    for the windows, when its frames fit ``config.query_buffer_mb``; beyond, the detector decodes it on its own
    (:func:`~motionmatch.video.shots.cuts_in_range`) and a note says it was decoded twice.
    """
    from ..errors import MissingPackageError
    from ..video.shots import TRANSNET_SIZE, cuts_in_chunks, cuts_in_range

    method, split = str(windows.get("shots") or "none"), config.split_at_cuts
    if split is False or (split is None and method == "none"):
        return [], [], None
    method = "content" if method == "none" else method  # asked for, on a collection not split at shots
    _, info, stamps = opened
    first, stop = (int(np.searchsorted(stamps, t - 1e-6)) for t in (plan.start_s, plan.end_s))
    megabytes = (stop - first) * info.width * info.height * 3 / 2**20
    decoded, notes = None, []
    try:
        if megabytes > config.query_buffer_mb:
            notes.append(f"the query range was decoded twice, for its cuts and for its windows: its frames take "
                         f"{megabytes:.0f} MB, above query_buffer_mb {config.query_buffer_mb:g}")
            return cuts_in_range(plan.path, plan.start_s, plan.end_s, method), notes, None
        decoded = decode_range(plan.path, first, plan.end_s, TRANSNET_SIZE if method == "transnetv2" else None,
                               opened=opened[0])
        return cuts_in_chunks(decoded.chunks, plan.start_s, plan.end_s, info.fps, method), notes, decoded
    except MissingPackageError as error:
        return [], [*notes, f"the query range is not split at shot cuts: {error}"], decoded
    except BaseException:
        if decoded is not None:
            decoded.close()
        raise


def search_range(store, query_path: str | os.PathLike, start_s: float | None = None, end_s: float | None = None,
                 config: SegmentSearchConfig | None = None, exclude_video: bool | None = None,
                 filters: Mapping[str, Any] | None = None, encoder=None) -> SearchResult:
    """Search the collection with the windows of ``query_path`` between ``start_s`` and ``end_s`` (seconds).

    ``config`` (default :class:`SegmentSearchConfig`'s defaults) holds every setting of the search.
    ``exclude_video``: True drops the query's own file from the results, False keeps it; None (the default)
    drops it when it is indexed (matched by path or content fingerprint), since the range would otherwise find
    itself. ``filters``: scalar filters on the collection (``{"domain": "studio"}``). ``encoder``: the query
    encoder (default: the one the collection records). Everything is checked before the encoder is built.
    """
    from ..encoders.auto import encoder_from_id

    config = SegmentSearchConfig() if config is None else config
    if not isinstance(config, SegmentSearchConfig):
        raise ParameterError(f"config must be a SegmentSearchConfig, got {type(config).__name__}")
    if exclude_video is not None and not isinstance(exclude_video, bool):
        raise ParameterError(f"exclude_video must be True, False or None (auto), got {exclude_video!r}")
    info = store.encoder_info()
    # a collection without a recorded clip_spec: check the range now with the default clip, cut it once the
    # encoder (and so its clip length) is known
    spec, stride = collection_clip_spec(info.get("clip_spec"), ClipSpec().frames_per_clip)
    # the query file's header and times are read once, with the decoder its windows are cut with (PyAV, as the
    # index's dense windows are), and the range is decoded once below
    opened = open_with_timestamps(query_path, "pyav")
    plan = plan_query(query_path, spec, start_s, end_s, stride, opened=opened)
    cuts, notes, decoded = _query_cuts(plan, (info.get("clip_spec") or {}).get("windows") or {}, config, opened)
    try:
        if cuts:
            plan = plan_query(query_path, spec, start_s, end_s, stride, cuts, opened=opened)
        own = own_videos(store, query_path)
        excluded = tuple(own if (exclude_video or (exclude_video is None and own)) else ())
        if config.calibration == GALLERY and config.segments:
            calibration, note = load_gallery_calibration(store)
            config = config.replace(calibration=calibration)
            notes.append(note)
        encoder = encoder or encoder_from_id(info["encoder_id"])
        if not info.get("clip_spec") and encoder.frames_per_clip != spec.frames_per_clip:
            plan = plan_query(query_path, ClipSpec(frames_per_clip=encoder.frames_per_clip), start_s, end_s, stride,
                              cuts, opened=opened)
        notes[:0] = plan.notes
        if excluded and exclude_video is None:
            notes.append(f"the query file is indexed ({', '.join(excluded)}): its own windows are left out "
                         "(include them with exclude_video=False / --include-video)")
        query_phases = config.query_phases
        if query_phases is None:
            recorded = info.get("clip_spec") or {}
            query_phases = spec.frame_stride if ("windows" in recorded or "stride_s" in recorded) else 1
        phases = phase_plans(plan, query_phases) if config.segments else []
        if decoded is not None and not 0 <= decoded.first_frame <= min(min(w.frame_indices) for w in plan.windows):
            decoded.close()  # replanned for the encoder's clip: it starts before the held frames
            decoded = None
        embedded, query_frames = embed_plans([plan, *phases], encoder, config.batch_size,
                                             thumbnails=config.segments and config.fine, decoded=decoded,
                                             opened=opened[0])
        vectors = embedded[0]
        phase_vectors = np.stack(embedded[1:]) if phases else None
        shown = encoder.shows_content(vectors) if hasattr(encoder, "shows_content") else None
        return search_vectors(store, plan, vectors, config, excluded=excluded, phase_vectors=phase_vectors,
                              filters=filters, encoder_id=encoder.encoder_id, preprocessing=encoder.preprocessing(),
                              notes=notes, query_frames=query_frames, shows_content=shown)
    finally:
        if decoded is not None:
            decoded.close()


def search_vectors(store, plan: QueryPlan, vectors: np.ndarray, config: SegmentSearchConfig,
                   excluded: Sequence[str] = (), phase_vectors: np.ndarray | None = None,
                   filters: Mapping[str, Any] | None = None, encoder_id: str | None = None,
                   preprocessing: Mapping | None = None, notes: Sequence[str] = (),
                   query_frames=None, shows_content: np.ndarray | None = None) -> SearchResult:
    """Steps 4 and 5 of the module docstring for query windows already embedded (``vectors``, one per window
    of ``plan``; ``phase_vectors`` (n_phases - 1, n, dim) their phase-shifted copies). ``config.calibration``
    is None or a fitted whitening here (:func:`search_range` resolves "gallery"). Cost beyond a plain top-k: one
    fetch of the candidates' windows (``fetch_windows=False``: none, the Milvus hits alone are aligned) and one
    alignment per candidate. ``query_frames`` (the range's :class:`~motionmatch.video.fingerprint.FrameSignal`)
    enables the fine stage (:func:`motionmatch.search.fine.refine`) when ``config.fine``. ``shows_content`` ((n,)
    bool, from the encoder's ``shows_content``: the pose channel's windows with a person): the other query windows
    have nothing to match, so they get no hits (a note says how many); with none left nothing is searched."""
    if config.segments and isinstance(config.calibration, str):
        raise ParameterError("search_vectors needs a fitted calibration or None: load the gallery's with "
                             "motionmatch.refine.zscore.load_gallery_calibration(store)")
    k, threshold = config.k, config.score_threshold
    calibration = config.calibration if config.segments else None  # window hits are raw cosines
    excluded, notes = tuple(excluded), list(notes)
    blank = np.zeros(len(vectors), dtype=bool) if shows_content is None else ~np.asarray(shows_content, dtype=bool)
    if blank.any():
        notes.append(f"{int(blank.sum())} of {len(vectors)} query windows show no person (the pose channel saw "
                     "nobody): they are not searched" + ("; choose a range where a person is in view"
                                                         if blank.all() else ""))
    if blank.all():
        return SearchResult(plan, vectors, [[] for _ in vectors], pd.DataFrame(
            {"video_path": [], "votes": [], "n_windows": []}), [], "raw cosine", threshold, excluded, notes)
    fetch_k = min(16384, k + 4 * len(excluded[1:]))  # extra paths of the same file are dropped after the search
    all_vectors = vectors if phase_vectors is None else np.concatenate([vectors[None], phase_vectors]).reshape(
        -1, vectors.shape[1])
    searched = store.search(all_vectors, k=fetch_k, filters=filters, group_by_video=config.group_by_video,
                            encoder_id=encoder_id, preprocessing=preprocessing,
                            exclude_video=excluded[0] if excluded else None)
    window_hits = []
    for window in range(len(vectors)):  # each query window's hits over its phases: the best score per indexed window
        best: dict[str, Any] = {}
        for hits in searched[window::len(vectors)]:
            for hit in hits:
                if hit.video_path not in excluded and (hit.clip_id not in best or hit.score > best[hit.clip_id].score):
                    best[hit.clip_id] = hit
        window_hits.append([] if blank[window] else sorted(best.values(), key=lambda h: -h.score)[:k])
    votes: dict[str, float] = {}
    for hits in window_hits:
        best: dict[str, float] = {}
        for hit in hits:
            best[hit.video_path] = max(best.get(hit.video_path, -np.inf), float(hit.score))
        for video, score in best.items():
            votes[video] = votes.get(video, 0.0) + score
    ranked = sorted(votes, key=lambda v: (-votes[v], v))[:config.n_candidates]
    candidates = pd.DataFrame({"video_path": ranked, "votes": [votes[v] for v in ranked]})
    scores = "raw cosine" if calibration is None or not config.segments else "z-score against the gallery"
    result = SearchResult(plan, vectors, window_hits, candidates, [], scores, threshold, excluded, notes)
    if not config.segments or not ranked:
        candidates["n_windows"] = 0
        return result
    mean, sd = (np.zeros(len(vectors)), np.ones(len(vectors))) if calibration is None \
        else gallery_moments(calibration, vectors)
    result.moments = {round(float(t), 6): (float(m), float(d)) for t, m, d in zip(plan.times[:, 0], mean, sd)}
    found: list[Segment] = []
    counts = []
    q_times = plan.times
    phased = vectors[None] if phase_vectors is None else np.concatenate([vectors[None], phase_vectors])
    for video, r_times, cosine in _candidate_grids(store, plan, phased, window_hits, ranked, filters,
                                                   config.fetch_windows):
        sim = np.nan_to_num((cosine - mean[:, None]) / sd[:, None], nan=-1e3)  # a pair no hit scored: no match
        counts.append((video, len(r_times)))
        if len(q_times) == 1:
            hits = [WindowHit(video, float(r0), float(r1), float(s), float(q_times[0, 0]), float(q_times[0, 1]))
                    for (r0, r1), s in zip(r_times, sim[0])]
            found.extend(merge_window_hits(hits, threshold, _reference_stride(r_times),
                                           query_range=(float(q_times[0, 0]), float(q_times[0, 1]))))
        else:
            aligned = align(sim, q_times, r_times, video, method=config.aligner, threshold=threshold,
                            min_hits=min(config.min_hits, len(q_times)))
            if config.coverage:
                aligned = _by_coverage(aligned, len(q_times))
            if config.extend_margin is not None:
                aligned = extend_segments(aligned, np.nan_to_num(cosine, nan=-1.0).max(axis=0), r_times, threshold,
                                          config.extend_margin, scores=sim.max(axis=0),
                                          query_range=(plan.start_s, plan.end_s), copy_level=config.copy_level)
            found.extend(aligned)
    result.candidates["n_windows"] = result.candidates["video_path"].map(dict(counts)).fillna(0).astype(int)
    found = sorted(found, key=lambda s: -s.score)[:config.segment_limit]
    if config.fine:
        found, fine_notes = refine(found, store, query_frames, config.copy_threshold, config.snap_s,
                                   config.n_candidates, excluded, filters,
                                   join_gap_s=config.join_gap_s if config.join_moments else None)
        result.notes.extend(fine_notes)
        result.notes.extend(_fine_stage_gaps(store, plan, query_frames, found[:config.segment_limit]))
    result.segments = found[:config.segment_limit]
    return result


def _fine_stage_gaps(store, plan: QueryPlan, query_frames, segments: Sequence[Segment]) -> list[str]:
    """Notes on what the fine stage could not do: verify a copy of a one-frame query, or refine segments in
    videos the frame store holds no frames of (they keep their window boundaries)."""
    from ..index.frames import videos_without_frames

    frames = store.frame_store() if query_frames is not None else None
    if frames is None:  # refine() has said so
        return []
    notes = []
    if len(query_frames) < 2:
        notes.append(f"the query range of {plan.path} holds {len(query_frames)} frame: no copy can be verified "
                     "(the frame-level alignment needs 2 frames or more); give a longer range")
    missing = videos_without_frames(frames, video_spans([s for s in segments if s.kind != "copy"]))
    if missing:
        notes.append(f"frame store '{frames.collection}' holds no frames of {', '.join(missing[:3])}"
                     f"{f' and {len(missing) - 3} more' if len(missing) > 3 else ''} where segments were found: "
                     "those keep their window boundaries (no copy check, no snapping to changes); index the run "
                     "again (`motionmatch index`) to write its frames")
    return notes


def search(query_path: str | os.PathLike, start_s: float | None = None, end_s: float | None = None,
           config: SegmentSearchConfig | None = None, milvus_uri: str = "", collection: str = "",
           **options: Any) -> SearchResult:
    """:func:`search_range` on a store opened here (config's Milvus URI and collection for what is empty) and
    closed after; ``options`` are search_range's (``exclude_video``, ``filters``, ``encoder``)."""
    from ..index.store import MotionStore

    with MotionStore(milvus_uri, collection) as store:
        return search_range(store, query_path, start_s, end_s, config, **options)


__all__ = ["SearchResult", "own_videos", "search_range", "search_vectors", "search"]
