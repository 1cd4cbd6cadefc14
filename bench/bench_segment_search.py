"""Segment search cost at 1e5 windows, fine stage included: ``motionmatch.search.search_vectors`` against a plain top-k.

One Milvus Lite collection (the store's default index, HNSW) holds ``--windows`` windows of
``--windows-per-video`` windows per video (1e5 = 1,000 videos x 100 windows in the full run), in
the FlowEncoder's dimension (176). The vectors are **structured**, as a video's windows are: each
video has its own direction and its windows drift around it (an AR(1) walk, correlation 0.9 between
neighbours), so a query range finds a run of neighbouring windows, not scattered points. Windows are
16 x 4 frames at 24 fps (2.54 s) every 0.5 s, the dense-window defaults, and the collection records
that ``clip_spec`` as ``motionmatch index`` does.

**The frame store** (``<collection>__frames``, :mod:`motionmatch.index.frames`) is written for **every**
window, as ``motionmatch index`` writes it: one row per window holding its frame block (the 12 frames from
its first frame to the next window's, the last window all 61 of its frames; zlib-packed 24 x 24 thumbnails and
their times, base64) and the appearance of the block's first frame as its vector, made by
``index.frames.frame_rows`` and written with ``MotionStore.upsert`` in batches of 256 (``sync_frames``'
write step; its fingerprint diff is skipped: the collection is new, and the diff would read back the whole
collection before each chunk). The frames are **synthetic**: per video, a 24 x 24 view drifting one pixel a
frame across a smooth random texture (Gaussian-filtered noise, wandering up and down), so every frame differs
from the one before, no two videos look alike, and a copied range is findable by appearance. The bench
records the frame store's build: making the thumbnails, packing, ``frame_rows``, the upsert, and the Lite
file's growth on disk (its bytes depend on how well the synthetic textures compress; for real decoded frames
see ``bench_long_cost``).

Queries are copies: ``--query-windows`` (6) consecutive windows of a random stored video plus noise
(cosine ~0.95 to the originals); with ``--query-phases`` > 1 (default: what ``search_range`` does on
a dense collection: ``SegmentSearchConfig.query_phases``, or the collection's ``frame_stride`` when that is
None) each window also gets phase-shifted variants. Each query's frames (its ``FrameSignal``, what
``search_range`` decodes from the query file once) are the source video's frames of the copied range (121 frames,
5.04 s) plus Gaussian noise (sd 4 grey levels). For every query, in rotating order, each of these runs once:

* **plain**: ``MotionStore.search(query windows, k)``, one batched top-k call (what ``search``
  without ``--segments`` costs);
* **coarse**: ``search_vectors`` with ``SegmentSearchConfig(fine=False)`` (``--no-fine``): the window search,
  votes, the candidates' windows fetched and aligned, segments grown; what issue 11 timed;
* **segments** (the default): ``search_vectors(store, plan, vectors, config, query_frames=...)`` with
  ``SegmentSearchConfig``'s defaults (what ``search_range`` runs; only k and the candidates are set, from the
  options), so the fine stage runs (``search.fine.refine``): copy candidates searched by appearance in the frame
  store, the frames of the top 10 candidates' spans fetched and aligned frame by frame, copies verified, the
  other segments' ends snapped to changes;
* **segments, the other fetch mode** (``--hits-only`` when the default fetches the candidates'
  windows, and the reverse), fine stage included.

Segment modes use a gallery z-score calibration fitted once beforehand as ``fit_gallery_calibration`` does, on
the vectors in memory (reading them back from the store scans the whole collection; a per-collection cost,
not a per-search one). The fine stage's own time is measured inside each call too (``refine`` wrapped with a
timer).

Recorded: p50 / p90 latency per mode over ``--queries`` timed queries (after warm-up queries), each segment
mode's p50 / plain p50, and the fine stage's share (segments p50 - coarse p50, and the p50 of ``refine``'s own
time, each as a share of the segments p50). **Target (issue 19)**: the default segment search, fine stage
included, p50 <= 3x plain top-k, at 1e5 windows. Checks that the searches do real work: the share of queries
whose best segment is in the source video and overlaps the copied range (tIoU > 0), and, for the fine modes,
the share whose best segment is a verified copy (``kind == "copy"``) there, with its tIoU to the copied range;
a fine-mode call whose notes say the fine stage did not run (no frame store, or no frames of a found video)
stops the bench. The frame store's cost per video-hour (24 fps, a block per 0.5 s) is recorded, not judged:
packed bytes per frame and per block x 7,200 blocks, the Lite file's growth per block x 7,200, and the
seconds per block to pack, build the rows and upsert, x 7,200.

Usage::

    python -m bench.bench_segment_search --quick   # 5,000 windows, ~2.5 min on the 2 loaded cores here (not judged)
    python -m bench.bench_segment_search           # 100,000 windows, ~16 min here: 4 inserting the windows, 4
                                                   # writing the frame store, 8 for 33 queries x 4 modes

Prints markdown and writes ``bench/out/segment_search.json``. ``main(argv) -> dict`` for ``python -m bench``.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.harness import BenchRun, Latencies, StageTimers, lite_wait_for_background_work
from bench.segment_frames import (FPS, FRAME_STRIDE, FRAMES_PER_CLIP, STRIDE_S, disk_bytes, query_frames,
                                  write_frame_store)

TARGET_RATIO = 3.0  # segment p50 (fine stage included) / plain top-k p50
TARGET_WINDOWS = 100_000  # the size the target is stated at
WINDOW_S = (FRAMES_PER_CLIP - 1) * FRAME_STRIDE / FPS + 1 / FPS  # 61 frames
DIM = 176  # FlowEncoder's dimension
NEIGHBOUR_CORRELATION = 0.9  # AR(1) coefficient of a video's window walk
WALK_WEIGHT = 0.6  # share of a window vector that is the walk (the rest: the video's own direction)
QUERY_NOISE = 0.3  # query = window + this times a random unit vector (then normalised): cosine ~0.95
PHASE_NOISE = 0.2  # a phase-shifted query window: its window + this much noise
HOUR_BLOCKS = int(3600 / STRIDE_S)  # frame blocks per video-hour (one per window)
ENCODER_ID = "bench:structured-random"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_segment_search", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 windows and 8 queries (target not judged)")
    parser.add_argument("--windows", type=int, default=None, help=f"windows in the collection (default {TARGET_WINDOWS:,})")
    parser.add_argument("--windows-per-video", type=int, default=100)
    parser.add_argument("--dim", type=int, default=DIM)
    parser.add_argument("--queries", type=int, default=None, help="timed queries (default 30; quick 8)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed queries first")
    parser.add_argument("--query-windows", type=int, default=6, help="windows per query range")
    parser.add_argument("--query-phases", type=int, default=None,
                        help="query windows per window (phase shifts); default: what search_range does here")
    parser.add_argument("-k", type=int, default=10, help="hits per query window (search_range's default)")
    parser.add_argument("--candidates", type=int, default=10, help="videos aligned (search_range's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--uri", default="", help="Milvus Lite .db file (default: in a temporary folder, deleted)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the JSON (default bench/out/segment_search.json)")
    args = parser.parse_args(argv)
    args.windows = args.windows or (5_000 if args.quick else TARGET_WINDOWS)
    args.queries = args.queries or (8 if args.quick else 30)
    if args.windows < args.windows_per_video or args.windows_per_video < args.query_windows + 1:
        parser.error("--windows must hold at least one video, and a video more windows than --query-windows")
    return args


# ----------------------------------------------------------------------------- data
def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=-1, keepdims=True)


def video_vectors(rng: np.random.Generator, n_windows: int, dim: int) -> np.ndarray:
    """(n_windows, dim) unit vectors of one video: its own direction plus an AR(1) walk along its windows."""
    walk = np.empty((n_windows, dim))
    walk[0] = rng.standard_normal(dim)
    innovation = np.sqrt(1 - NEIGHBOUR_CORRELATION ** 2)
    for t in range(1, n_windows):
        walk[t] = NEIGHBOUR_CORRELATION * walk[t - 1] + innovation * rng.standard_normal(dim)
    direction = _unit(rng.standard_normal(dim))
    return _unit((1 - WALK_WEIGHT) * direction + WALK_WEIGHT * walk / np.sqrt(dim)).astype(np.float32)


def window_times(n_windows: int) -> np.ndarray:
    """(n, 2) start and end seconds of a video's dense windows."""
    starts = np.arange(n_windows) * STRIDE_S
    return np.stack([starts, starts + WINDOW_S], axis=1)


def video_path(video: int) -> str:
    return f"/bench/segment_search/video_{video:05d}.mp4"


def query_plan_path(index: int) -> str:
    return f"/bench/segment_search/query_{index:04d}.mp4"


def gallery_table(n_videos: int, per_video: int, dim: int, seed: int):
    """The embeddings table of the collection (TABLE_COLUMNS) and the (n_videos, per_video, dim) vectors."""
    import pandas as pd

    from motionmatch.table import make_clip_id

    rng = np.random.default_rng(seed)
    vectors = np.stack([video_vectors(rng, per_video, dim) for _ in range(n_videos)])
    times = window_times(per_video)
    paths = [video_path(v) for v in range(n_videos)]
    rows = {"clip_id": [make_clip_id(p, i, ENCODER_ID) for p in paths for i in range(per_video)],
            "video_path": np.repeat(paths, per_video), "video_fingerprint": np.repeat([f"fp{v:05d}" for v in range(n_videos)],
                                                                                       per_video),
            "clip_index": np.tile(np.arange(per_video), n_videos), "start_s": np.tile(times[:, 0], n_videos),
            "end_s": np.tile(times[:, 1], n_videos), "padded_frames": 0, "label": "", "domain": "", "group": "",
            "split": "", "encoder_id": ENCODER_ID}
    table = pd.DataFrame(rows)
    table["embedding"] = list(vectors.reshape(-1, dim))
    return table, vectors, paths


def make_queries(vectors: np.ndarray, n_queries: int, query_windows: int, phases: int, seed: int) -> list[dict]:
    """Copy queries: consecutive windows of a random video, noised; phase variants noised again."""
    rng = np.random.default_rng([seed, 1])
    n_videos, per_video, dim = vectors.shape
    queries = []
    for _ in range(n_queries):
        video = int(rng.integers(n_videos))
        first = int(rng.integers(per_video - query_windows + 1))
        source = vectors[video, first:first + query_windows].astype(np.float64)
        query = _unit(source + QUERY_NOISE * _unit(rng.standard_normal(source.shape)))
        shifted = [_unit(query + PHASE_NOISE * _unit(rng.standard_normal(source.shape))) for _ in range(phases - 1)]
        queries.append({"video": video, "first": first, "vectors": query.astype(np.float32),
                        "phase_vectors": np.stack(shifted).astype(np.float32) if shifted else None})
    return queries


def query_plan(index: int, n_windows: int):
    """The QueryPlan of a query file's first ``n_windows`` dense windows (no file is read)."""
    from motionmatch.video import ClipWindow, QueryPlan

    times = window_times(n_windows)
    span = int(round(STRIDE_S * FPS))
    windows = tuple(ClipWindow(i, tuple(range(i * span, i * span + FRAMES_PER_CLIP * FRAME_STRIDE, FRAME_STRIDE)),
                               float(s), float(e), 0) for i, (s, e) in enumerate(times))
    # n_frames=0: no phase plans are cut from it, the bench gives the phase vectors itself
    return QueryPlan(path=query_plan_path(index), start_s=0.0, end_s=float(times[-1, 1]),
                     duration_s=float(times[-1, 1]), window_s=WINDOW_S, stride_s=STRIDE_S, windows=windows, n_frames=0)


def gallery_calibration(vectors: np.ndarray, seed: int, max_videos: int = 200, n_components: int = 64):
    """The z-score statistics ``motionmatch.refine.fit_gallery_calibration`` fits (a PCA whitening on the windows of up to
    200 random videos), fitted on the same vectors in memory: reading them back from the store scans the whole
    collection (``store.videos()``), minutes at 1e5 here, and is a per-collection cost, not a per-search one."""
    from motionmatch.refine import ScoreCalibration

    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(vectors), size=min(max_videos, len(vectors)), replace=False))
    sample = vectors[chosen].reshape(-1, vectors.shape[-1])
    return ScoreCalibration("whiten", n_components=min(n_components, len(sample) - 1, sample.shape[1])).fit(
        sample, encoder_id=ENCODER_ID)


# ----------------------------------------------------------------------------- the search modes
SHOWN_DEFAULTS = ("aligner", "min_hits", "group_by_video", "fetch_windows", "extend_margin", "copy_level", "coverage",
                  "fine", "copy_threshold", "snap_s")
MODES = ("plain", "coarse", "segments", "segments_other")
FINE_MODES = ("segments", "segments_other")


def search_config(k: int, candidates: int, calibration):
    """What ``search_range`` runs (``SegmentSearchConfig``'s defaults, fine stage included), with this bench's k,
    candidates and the fitted calibration."""
    from motionmatch.search import SegmentSearchConfig

    return SegmentSearchConfig(k=k, n_candidates=candidates, calibration=calibration, max_segments=k)


def range_defaults() -> dict:
    """``SegmentSearchConfig``'s defaults that shape a segment search, and its threshold on z-scores."""
    from motionmatch.search import SegmentSearchConfig

    config = SegmentSearchConfig()
    shown = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name in SHOWN_DEFAULTS}
    return {**shown, "threshold": config.score_threshold}


def default_phases(frame_stride: int) -> int:
    """How many phases ``search_range`` embeds per query window on a dense collection."""
    from motionmatch.search import SegmentSearchConfig

    phases = SegmentSearchConfig().query_phases
    return frame_stride if phases is None else phases


def percentile(values: list[float], q: float) -> float:
    return Latencies([v / 1e3 for v in values]).percentile_ms(q)


FINE_PARTS = ("refine", "frame_gaps", "copy_candidates", "fetch_frames", "align_copy")  # refine holds the last three


FINE_LABELS = {"refine": "refine, all", "frame_gaps": "check for found videos without frames (one query)",
               "copy_candidates": "refine: copy candidates (frame-store search by appearance)",
               "fetch_frames": "refine: frame fetches (query and decode, copy and snapping spans)",
               "align_copy": "refine: frame-level alignments (align_copy, every candidate)"}


def fine_stage_timers():
    """The fine stage's functions wrapped with timers, where ``search_vectors`` and ``refine`` look them up: all of
    ``refine`` and the check after it for found videos with no frames (``range._fine_stage_gaps``: one query of the
    frame store); in ``refine``, the frame-store search for copy candidates, the frame fetches (query and decode; the copy
    spans', then the snapping spans'), and the frame-level alignments. Returns the timers and a function that
    puts the originals back."""
    import motionmatch.index.frames as frames_module
    import motionmatch.search.fine as fine_module
    import motionmatch.search.range as range_module

    timers = StageTimers({part: time.thread_time for part in FINE_PARTS})
    undo = [timers.patch(range_module, "refine", "refine"), timers.patch(range_module, "_fine_stage_gaps", "frame_gaps"),
            timers.patch(fine_module, "copy_candidates", "copy_candidates"),
            timers.patch(frames_module, "fetch_frames", "fetch_frames"), timers.patch(fine_module, "align_copy", "align_copy")]
    return timers, lambda: [restore() for restore in reversed(undo)]


def _check_fine_stage_ran(result, mode: str, number: int) -> None:
    """Stop when the fine stage did not run on every candidate: the timings would not be the target's."""
    missed = [n for n in result.notes if n.startswith("no fine stage") or "holds no frames of" in n]
    if missed:
        raise RuntimeError(f"query {number}, mode {mode}: the fine stage did not run as it should: {missed[0]}")


def run_queries(store, queries: list[dict], args, calibration, warmup: int) -> dict:
    """Time every mode on every query (rotating order); returns latencies (ms), the fine stage's own time, and the
    segments' sanity checks."""
    from motionmatch.search import search_vectors

    config = search_config(args.k, args.candidates, calibration)
    fetch_default = config.fetch_windows
    configs = {"coarse": config.replace(fine=False), "segments": config,
               "segments_other": config.replace(fetch_windows=not fetch_default)}
    latencies = {mode: [] for mode in MODES}
    fine_ms = {mode: {part: [] for part in FINE_PARTS} for mode in FINE_MODES}
    found = {mode: [] for mode in configs}
    copies = {mode: [] for mode in FINE_MODES}
    timers, restore = fine_stage_timers()
    try:
        for number, query in enumerate(queries):
            plan = query_plan(number, args.query_windows)
            shift = number % len(MODES)
            for mode in MODES[shift:] + MODES[:shift]:
                before = dict(timers.wall)
                started = time.perf_counter()
                if mode == "plain":
                    store.search(query["vectors"], k=args.k)
                else:
                    result = search_vectors(store, plan, query["vectors"], configs[mode], excluded=(),
                                            phase_vectors=query["phase_vectors"], query_frames=query["frames"])
                elapsed = (time.perf_counter() - started) * 1e3
                if mode in FINE_MODES:
                    _check_fine_stage_ran(result, mode, number)
                if number < warmup:
                    continue
                latencies[mode].append(elapsed)
                if mode == "plain":
                    continue
                found[mode].append(_top_segment_is_source(result, query, args.query_windows))
                if mode in FINE_MODES:
                    for part in FINE_PARTS:
                        fine_ms[mode][part].append((timers.wall[part] - before[part]) * 1e3)
                    copies[mode].append(_top_copy_tiou(result, query, args.query_windows))
            if (number + 1) % 10 == 0:
                print(f"[segment_search] {number + 1} of {len(queries)} queries", file=sys.stderr, flush=True)
    finally:
        restore()
    return {"latencies_ms": latencies, "fine_ms": fine_ms, "fetch_default": fetch_default,
            "top_segment_is_source": {m: float(np.mean(v)) for m, v in found.items()},
            "top_copy_found": {m: float(np.mean([t is not None for t in v])) for m, v in copies.items()},
            "top_copy_tiou": {m: float(np.mean([t for t in v if t is not None])) if any(t is not None for t in v)
                              else float("nan") for m, v in copies.items()}}


def _copied_range(query: dict, n_windows: int) -> tuple[float, float]:
    times = window_times(query["first"] + n_windows)[query["first"]:]
    return float(times[0, 0]), float(times[-1, 1])


def _top_segment_is_source(result, query: dict, n_windows: int) -> bool:
    """The best segment lies in the query's source video and overlaps the copied range."""
    if not result.segments:
        return False
    best = result.segments[0]
    start, end = _copied_range(query, n_windows)
    return best.video_path == video_path(query["video"]) and best.start_s < end and best.end_s > start


def _top_copy_tiou(result, query: dict, n_windows: int) -> float | None:
    """The tIoU of the best segment with the copied range when it is a verified copy in the source video, else None."""
    if not result.segments or result.segments[0].kind != "copy":
        return None
    best = result.segments[0]
    start, end = _copied_range(query, n_windows)
    if best.video_path != video_path(query["video"]):
        return None
    overlap = max(0.0, min(end, best.end_s) - max(start, best.start_s))
    return overlap / (max(end, best.end_s) - min(start, best.start_s))


# ----------------------------------------------------------------------------- main
def _not_judged(stored: int) -> str:
    return "" if stored >= TARGET_WINDOWS else f"{stored:,} windows, the target is at {TARGET_WINDOWS:,}"


def frame_store_per_hour(cost: dict, disk_growth: int) -> dict:
    """The frame store's cost per video-hour (24 fps: 86,400 frames, 7,200 blocks) from what writing it cost here."""
    blocks, frames = max(1, cost["blocks"]), max(1, cost["frames"])
    return {"packed_bytes_per_frame": cost["packed_bytes"] / frames,
            "packed_bytes_per_block": cost["packed_bytes"] / blocks,
            "packed_mb": cost["packed_bytes"] / frames * FPS * 3600 / 1e6,
            "stored_text_mb": cost["base64_chars"] / blocks * HOUR_BLOCKS / 1e6,
            "disk_mb": disk_growth / blocks * HOUR_BLOCKS / 1e6,
            "pack_s": cost["pack_s"] / blocks * HOUR_BLOCKS, "rows_s": cost["rows_s"] / blocks * HOUR_BLOCKS,
            "upsert_s": cost["upsert_s"] / blocks * HOUR_BLOCKS,
            "write_s": (cost["pack_s"] + cost["rows_s"] + cost["upsert_s"]) / blocks * HOUR_BLOCKS}


def fine_stage_share(latencies: dict, fine_ms: dict, p50: dict) -> dict:
    """The fine stage's share of the default segment search: its p50 over coarse-only's, and its parts' own time
    (p50 ms, and the median share of each call)."""
    total = np.asarray(latencies["segments"])
    stage = np.asarray(fine_ms["refine"]) + np.asarray(fine_ms["frame_gaps"])
    parts = {"fine stage, all": stage, **{FINE_LABELS[part]: np.asarray(v) for part, v in fine_ms.items()}}
    parts["refine, the rest (copy model, snapping, ranking)"] = np.asarray(fine_ms["refine"]) - sum(
        np.asarray(fine_ms[part]) for part in ("copy_candidates", "fetch_frames", "align_copy"))
    return {"p50_difference_ms": p50["segments"] - p50["coarse"],
            "p50_difference_share": (p50["segments"] - p50["coarse"]) / p50["segments"],
            "stage_p50_ms": percentile(list(stage), 50), "stage_p90_ms": percentile(list(stage), 90),
            "stage_share_p50": float(np.median(stage / total)),
            "parts": {name: {"p50_ms": percentile(list(values), 50), "share_p50": float(np.median(values / total))}
                      for name, values in parts.items()}}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from motionmatch.index import MotionStore

    run = BenchRun("segment_search", argv, quick=args.quick, out=args.out)
    n_videos = args.windows // args.windows_per_video
    phases = args.query_phases or default_phases(FRAME_STRIDE)
    defaults = range_defaults()
    build_0 = time.perf_counter()
    table, vectors, _ = gallery_table(n_videos, args.windows_per_video, args.dim, args.seed)
    queries = make_queries(vectors, args.warmup + args.queries, args.query_windows, phases, args.seed)
    for number, query in enumerate(queries):
        query["frames"] = query_frames(query, number, args.windows_per_video, args.query_windows, args.seed,
                                       query_plan_path(number))
    build_s = time.perf_counter() - build_0
    with tempfile.TemporaryDirectory(prefix="bench_segment_search_") as tmp:
        uri = args.uri or str(Path(tmp) / "segments.db")
        with MotionStore(uri, "segment_bench") as store:
            clip_spec = {"frames_per_clip": FRAMES_PER_CLIP, "frame_stride": FRAME_STRIDE, "clips_per_video": 4,
                         "windows": {"stride_s": STRIDE_S, "shots": "none", "windows_per_chunk": 32}}
            store.ensure_collection(ENCODER_ID, args.dim, {"kind": "bench", "note": "structured random vectors"},
                                    recreate=True, clip_spec=clip_spec)
            insert_0 = time.perf_counter()
            store.upsert(table, progress=False)
            stored = store.count()
            insert_s = time.perf_counter() - insert_0
            settle_s = lite_wait_for_background_work(store.client, store.uri, store.collection)
            print(f"[segment_search] {stored:,} windows in {n_videos} videos inserted in {insert_s:.0f} s",
                  file=sys.stderr, flush=True)
            disk_windows = disk_bytes(uri)
            frame_cost = write_frame_store(uri, store.collection, table, n_videos, args.windows_per_video, args.seed)
            disk_growth = disk_bytes(uri) - disk_windows
            print(f"[segment_search] frame store: {frame_cost['stored_blocks']:,} blocks "
                  f"({frame_cost['frames']:,} frames) written in {frame_cost['upsert_s']:.0f} s",
                  file=sys.stderr, flush=True)
            fit_0 = time.perf_counter()
            calibration = gallery_calibration(vectors, args.seed)
            fit_s = time.perf_counter() - fit_0
            print(f"[segment_search] gallery calibration fitted in {fit_s:.0f} s", file=sys.stderr, flush=True)
            timed = run_queries(store, queries, args, calibration, args.warmup)
            index = {"index_type": store.index.index_type, "index_params": dict(store.index.index_params),
                     "search_params": dict(store.index.search_params)} if hasattr(store, "index") else {}
    latencies, fine_ms = timed["latencies_ms"], timed["fine_ms"]
    p50 = {mode: percentile(values, 50) for mode, values in latencies.items()}
    p90 = {mode: percentile(values, 90) for mode, values in latencies.items()}
    ratio = {mode: p50[mode] / p50["plain"] for mode in MODES if mode != "plain"}
    fine_share = fine_stage_share(latencies, fine_ms["segments"], p50)
    per_hour = frame_store_per_hour(frame_cost, disk_growth)
    fetch_default = timed["fetch_default"]
    label = {"plain": f"plain top-{args.k} (`store.search`, {args.query_windows} windows)",
             "coarse": "segment search, coarse stage only (`fine=False`, `--no-fine`)",
             "segments": f"segment search, default: fine stage included (fetch_windows={fetch_default})",
             "segments_other": f"segment search, fine stage, fetch_windows={not fetch_default}"
                               + (" (`--hits-only`)" if fetch_default else "")}
    size_note = _not_judged(stored)
    record_note = size_note or "a record: issue 19 asks for it, no target"
    copies = timed["top_copy_found"]["segments"]
    run.target("segments_with_fine_stage", ratio["segments"], "x",
               f"issue 19: a segment search at 1e5 windows, fine stage for the top {args.candidates} candidates "
               f"included, p50 <= {TARGET_RATIO:g}x a plain top-k in one run",
               passed=bool(ratio["segments"] <= TARGET_RATIO),
               detail=(f"{p50['segments']:.1f} ms vs {p50['plain']:.1f} ms, p50 of "
                       f"{len(latencies['segments'])} queries, {stored:,} windows; fine stage p50 "
                       f"{fine_share['stage_p50_ms']:.1f} ms, {fine_share['stage_share_p50']:.0%} of a call; "
                       f"best segment a verified copy of the source in {copies:.0%} of queries"),
               not_judged=size_note)
    run.target("fine_stage_share", fine_share["p50_difference_ms"], "ms",
               "issue 19: the fine stage's share of a segment search (segments p50 - coarse-only p50)", passed=True,
               detail=(f"{fine_share['p50_difference_share']:.0%} of the segments p50 ({p50['segments']:.1f} vs "
                       f"{p50['coarse']:.1f} ms); the stage's own time p50 {fine_share['stage_p50_ms']:.1f} ms, "
                       f"{fine_share['stage_share_p50']:.0%} of a call (median)"), not_judged=record_note)
    run.target("frame_store_mb_per_hour", per_hour["disk_mb"], "MB per video-hour",
               "issue 19: the frame store's bytes per video-hour (Milvus Lite file growth)", passed=True,
               detail=(f"packed thumbnails {per_hour['packed_bytes_per_frame']:.0f} B a frame, "
                       f"{per_hour['packed_mb']:.1f} MB an hour, {per_hour['stored_text_mb']:.1f} MB as stored text; "
                       "synthetic textures (real frames: bench_long_cost)"), not_judged=record_note)
    run.target("frame_store_write_s_per_hour", per_hour["write_s"], "s per video-hour",
               "issue 19: seconds to write a video-hour's frame store (pack, frame_rows, upsert)", passed=True,
               detail=(f"pack {per_hour['pack_s']:.1f} s, frame_rows {per_hour['rows_s']:.1f} s, upsert "
                       f"{per_hour['upsert_s']:.1f} s; thumbnails of decoded frames: bench_long_cost"),
               not_judged=record_note)
    lines = [f"{stored:,} windows ({n_videos} videos x {args.windows_per_video}, {args.dim}-d structured vectors) in one "
             f"Milvus Lite collection ({index.get('index_type', 'the store default')} {index.get('index_params', '')}, "
             f"search {index.get('search_params', '')}); inserted in {insert_s:.0f} s, background indexing waited for "
             f"{settle_s:.0f} s. Frame store: {frame_cost['stored_blocks']:,} blocks, {frame_cost['frames']:,} synthetic "
             f"frames (a block per window), written in {frame_cost['pack_s'] + frame_cost['rows_s'] + frame_cost['upsert_s']:.0f} s "
             f"(pack {frame_cost['pack_s']:.1f}, frame_rows {frame_cost['rows_s']:.1f}, upsert {frame_cost['upsert_s']:.0f}; "
             f"thumbnails made in {frame_cost['make_s']:.0f} s, not a real cost). Gallery calibration fitted in "
             f"{fit_s:.1f} s (once, in memory, not in the times). Queries: {args.query_windows} windows x {phases} "
             f"phase(s) and {len(queries[0]['frames'])} frames, k={args.k}, {args.candidates} candidates; "
             "search_range's defaults: " + ", ".join(f"{k}={v}" for k, v in defaults.items())
             + f"; {args.queries} timed queries after {args.warmup} warm-up ones, modes in rotating order.", "",
             "| mode | p50 ms | p90 ms | p50 / plain | best segment in the source video | best segment a verified copy "
             "(tIoU) |", "|---|---:|---:|---:|---:|---:|"]
    for mode in MODES:
        sanity = timed["top_segment_is_source"].get(mode)
        copy = (f"{timed['top_copy_found'][mode]:.2f} ({timed['top_copy_tiou'][mode]:.3f})"
                if mode in FINE_MODES else "-")
        lines.append(f"| {label[mode]} | {p50[mode]:.1f} | {p90[mode]:.1f} | "
                     f"{'-' if mode == 'plain' else f'{ratio[mode]:.2f}x'} | {'-' if sanity is None else f'{sanity:.2f}'} "
                     f"| {copy} |")
    lines += ["", f"Fine stage share: segments p50 - coarse p50 = {fine_share['p50_difference_ms']:.1f} ms "
              f"({fine_share['p50_difference_share']:.0%} of the segments p50). Its own time in the default mode, "
              "wall ms per call (the parts of `refine` timed where it calls them):", "",
              "| part | p50 ms | median share of a call |", "|---|---:|---:|"]
    lines += [f"| {name} | {part['p50_ms']:.1f} | {part['share_p50']:.0%} |" for name, part in fine_share["parts"].items()]
    lines += ["",
              f"Frame store per video-hour (24 fps, {HOUR_BLOCKS:,} blocks): packed thumbnails "
              f"{per_hour['packed_bytes_per_frame']:.0f} B a frame ({per_hour['packed_bytes_per_block']:.0f} B a block), "
              f"{per_hour['packed_mb']:.1f} MB; {per_hour['stored_text_mb']:.1f} MB as the stored base64 text; Milvus Lite "
              f"file growth {per_hour['disk_mb']:.1f} MB ({disk_growth / 1e6:.1f} MB for {frame_cost['blocks']:,} blocks, "
              "vectors and index included); writing it "
              f"{per_hour['write_s']:.1f} s (pack {per_hour['pack_s']:.1f}, frame_rows {per_hour['rows_s']:.1f}, upsert "
              f"{per_hour['upsert_s']:.1f}). The textures are synthetic: bytes on real frames in bench_long_cost."]
    summary = "\n".join(lines)
    return run.finish(summary, settings={"windows": stored, "videos": n_videos, "windows_per_video": args.windows_per_video,
                                         "dim": args.dim, "queries": args.queries, "warmup": args.warmup,
                                         "query_windows": args.query_windows, "query_phases": phases, "k": args.k,
                                         "candidates": args.candidates, "seed": args.seed,
                                         "search_range_defaults": defaults, "index": index},
                      insert_s=insert_s, settle_s=settle_s, calibration_fit_s=fit_s, data_s=build_s,
                      latencies_ms=latencies, p50_ms=p50, p90_ms=p90, ratio_p50=ratio, fine_ms=fine_ms,
                      fine_stage=fine_share, frame_store={**frame_cost, "disk_bytes_windows": disk_windows,
                                                          "disk_bytes_growth": disk_growth, "per_hour": per_hour},
                      top_segment_is_source=timed["top_segment_is_source"], top_copy_found=timed["top_copy_found"],
                      top_copy_tiou=timed["top_copy_tiou"])


if __name__ == "__main__":
    main()
