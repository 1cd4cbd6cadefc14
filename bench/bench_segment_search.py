"""Segment search cost at 1e5 windows: ``motionmatch.search.search_vectors`` (segments) against a plain top-k search.

One Milvus Lite collection (the store's default index, HNSW) holds ``--windows`` windows of
``--windows-per-video`` windows per video (1e5 = 1,000 videos x 100 windows in the full run), in
the FlowEncoder's dimension (176). The vectors are **structured**, as a video's windows are: each
video has its own direction and its windows drift around it (an AR(1) walk, correlation 0.9 between
neighbours), so a query range finds a run of neighbouring windows, not scattered points. Windows are
16 x 4 frames at 24 fps (2.54 s) every 0.5 s, the dense-window defaults, and the collection records
that ``clip_spec`` as ``motionmatch index`` does.

Queries are copies: ``--query-windows`` (6) consecutive windows of a random stored video plus noise
(cosine ~0.95 to the originals); with ``--query-phases`` > 1 (default: what ``search_range`` does on
a dense collection: ``SegmentSearchConfig.query_phases``, or the collection's ``frame_stride`` when that is None)
each window also gets phase-shifted variants. For every query, in rotating order, each of these runs once:

* **plain**: ``MotionStore.search(query windows, k)``, one batched top-k call (what ``search``
  without ``--segments`` costs);
* **segments**: ``search_vectors(store, plan, vectors, config)`` with ``SegmentSearchConfig``'s defaults
  (what ``search_range`` runs: aligner, min_hits, extend margin, fetch_windows, ...; only k and the candidates
  are set, from the options), a gallery z-score calibration
  fitted once beforehand as ``fit_gallery_calibration`` does, on the vectors in memory (reading them
  back from the store scans the whole collection: 52 s at 2e4 windows on this loaded machine; it is a
  per-collection cost, not a per-search one);
* **segments, the other fetch mode** (``--hits-only`` when the default fetches the candidates'
  windows, and the reverse).

p50 / p90 latency per mode over ``--queries`` timed queries (after warm-up queries), and each
segment mode's p50 / plain p50. Target (issue 11): the default segment search's p50 <= 3x plain.
A sanity check that the segment search does real work: the share of queries whose best segment is
in the source video and overlaps the copied range (tIoU > 0).

Usage::

    python -m bench.bench_segment_search --quick   # 5,000 windows, about 30 s (not judged)
    python -m bench.bench_segment_search           # 100,000 windows, a few minutes (most of it inserting)

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

from bench.harness import BenchRun, Latencies, lite_wait_for_background_work

TARGET_RATIO = 3.0  # segment p50 / plain top-k p50
TARGET_WINDOWS = 100_000  # the size the target is stated at
FPS = 24.0
FRAMES_PER_CLIP, FRAME_STRIDE, STRIDE_S = 16, 4, 0.5  # the dense-window defaults
WINDOW_S = (FRAMES_PER_CLIP - 1) * FRAME_STRIDE / FPS + 1 / FPS  # 61 frames
DIM = 176  # FlowEncoder's dimension
NEIGHBOUR_CORRELATION = 0.9  # AR(1) coefficient of a video's window walk
WALK_WEIGHT = 0.6  # share of a window vector that is the walk (the rest: the video's own direction)
QUERY_NOISE = 0.3  # query = window + this times a random unit vector (then normalised): cosine ~0.95
PHASE_NOISE = 0.2  # a phase-shifted query window: its window + this much noise
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


def gallery_table(n_videos: int, per_video: int, dim: int, seed: int):
    """The embeddings table of the collection (TABLE_COLUMNS) and the (n_videos, per_video, dim) vectors."""
    import pandas as pd

    from motionmatch.table import make_clip_id

    rng = np.random.default_rng(seed)
    vectors = np.stack([video_vectors(rng, per_video, dim) for _ in range(n_videos)])
    times = window_times(per_video)
    paths = [f"/bench/segment_search/video_{v:05d}.mp4" for v in range(n_videos)]
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
    return QueryPlan(path=f"/bench/segment_search/query_{index:04d}.mp4", start_s=0.0, end_s=float(times[-1, 1]),
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
SHOWN_DEFAULTS = ("aligner", "min_hits", "group_by_video", "fetch_windows", "extend_margin", "copy_level", "coverage")


def search_config(k: int, candidates: int, calibration):
    """What ``search_range`` runs (``SegmentSearchConfig``'s defaults), with this bench's k, candidates and the
    fitted calibration."""
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


def run_queries(store, queries: list[dict], args, calibration, warmup: int) -> dict:
    """Time every mode on every query (rotating order); returns latencies (ms) and the segments' sanity check."""
    from motionmatch.search import search_vectors

    config = search_config(args.k, args.candidates, calibration)
    fetch_default = config.fetch_windows
    modes = {"plain": None, "segments": config, "segments_other": config.replace(fetch_windows=not fetch_default)}
    latencies = {mode: [] for mode in modes}
    found = {mode: [] for mode in modes if mode != "plain"}
    for number, query in enumerate(queries):
        plan = query_plan(number, args.query_windows)
        order = list(modes)[number % 3:] + list(modes)[:number % 3]
        for mode in order:
            started = time.perf_counter()
            if mode == "plain":
                store.search(query["vectors"], k=args.k)
            else:
                result = search_vectors(store, plan, query["vectors"], modes[mode], excluded=(),
                                        phase_vectors=query["phase_vectors"])
            elapsed = (time.perf_counter() - started) * 1e3
            if number < warmup:
                continue
            latencies[mode].append(elapsed)
            if mode != "plain":
                found[mode].append(_top_segment_is_source(result, query, args.query_windows))
        if (number + 1) % 10 == 0:
            print(f"[segment_search] {number + 1} of {len(queries)} queries", file=sys.stderr, flush=True)
    return {"latencies_ms": latencies, "top_segment_is_source": {m: float(np.mean(v)) for m, v in found.items()},
            "fetch_default": fetch_default}


def _top_segment_is_source(result, query: dict, n_windows: int) -> bool:
    """The best segment lies in the query's source video and overlaps the copied range."""
    if not result.segments:
        return False
    best = result.segments[0]
    times = window_times(query["first"] + n_windows)[query["first"]:]
    source = f"/bench/segment_search/video_{query['video']:05d}.mp4"
    return best.video_path == source and best.start_s < times[-1, 1] and best.end_s > times[0, 0]


# ----------------------------------------------------------------------------- main
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
            fit_0 = time.perf_counter()
            calibration = gallery_calibration(vectors, args.seed)
            fit_s = time.perf_counter() - fit_0
            print(f"[segment_search] gallery calibration fitted in {fit_s:.0f} s", file=sys.stderr, flush=True)
            timed = run_queries(store, queries, args, calibration, args.warmup)
            index = {"index_type": store.index.index_type, "index_params": dict(store.index.index_params),
                     "search_params": dict(store.index.search_params)} if hasattr(store, "index") else {}
    latencies = timed["latencies_ms"]
    p50 = {mode: percentile(values, 50) for mode, values in latencies.items()}
    p90 = {mode: percentile(values, 90) for mode, values in latencies.items()}
    ratio = {mode: p50[mode] / p50["plain"] for mode in ("segments", "segments_other")}
    fetch_default = timed["fetch_default"]
    label = {"plain": f"plain top-{args.k} (`store.search`, {args.query_windows} windows)",
             "segments": f"segment search, default (fetch_windows={fetch_default})",
             "segments_other": f"segment search, fetch_windows={not fetch_default}"
                               + (" (`--hits-only`)" if fetch_default else "")}
    judged = stored >= TARGET_WINDOWS
    for mode in ("segments", "segments_other"):
        run.target(mode, ratio[mode], "x",
                   f"{label[mode]}: p50 <= {TARGET_RATIO:g}x a plain top-k search on the same collection at 1e5 windows",
                   passed=bool(ratio[mode] <= TARGET_RATIO),
                   detail=(f"{p50[mode]:.1f} ms vs {p50['plain']:.1f} ms, p50 of {len(latencies[mode])} queries, "
                           f"{stored:,} windows"),
                   not_judged="" if judged else f"{stored:,} windows, the target is at {TARGET_WINDOWS:,}")
    lines = [f"{stored:,} windows ({n_videos} videos x {args.windows_per_video}, {args.dim}-d structured vectors) in one "
             f"Milvus Lite collection ({index.get('index_type', 'the store default')} {index.get('index_params', '')}, "
             f"search {index.get('search_params', '')}); inserted in {insert_s:.0f} s, background indexing waited for "
             f"{settle_s:.0f} s, gallery calibration fitted in "
             f"{fit_s:.1f} s (once, in memory, not in the times). Queries: {args.query_windows} windows x {phases} phase(s), "
             f"k={args.k}, {args.candidates} candidates; search_range's defaults: "
             + ", ".join(f"{k}={v}" for k, v in defaults.items()) + f"; {args.queries} timed queries after "
             f"{args.warmup} warm-up ones, modes in rotating order.", "",
             "| mode | p50 ms | p90 ms | p50 / plain | best segment in the source video |",
             "|---|---:|---:|---:|---:|"]
    for mode in ("plain", "segments", "segments_other"):
        sanity = timed["top_segment_is_source"].get(mode)
        lines.append(f"| {label[mode]} | {p50[mode]:.1f} | {p90[mode]:.1f} | "
                     f"{'-' if mode == 'plain' else f'{ratio[mode]:.2f}x'} | {'-' if sanity is None else f'{sanity:.2f}'} |")
    summary = "\n".join(lines)
    return run.finish(summary, settings={"windows": stored, "videos": n_videos, "windows_per_video": args.windows_per_video,
                                         "dim": args.dim, "queries": args.queries, "warmup": args.warmup,
                                         "query_windows": args.query_windows, "query_phases": phases, "k": args.k,
                                         "candidates": args.candidates, "seed": args.seed,
                                         "search_range_defaults": defaults, "index": index},
                      insert_s=insert_s, settle_s=settle_s, calibration_fit_s=fit_s, data_s=build_s,
                      latencies_ms=latencies, p50_ms=p50, p90_ms=p90, ratio_p50=ratio,
                      top_segment_is_source=timed["top_segment_is_source"])


if __name__ == "__main__":
    main()
