"""Segment search cost at 1e5 windows: ``localize.search_vectors(segments=True)`` against a plain top-k search.

One Milvus Lite collection (the store's default index, HNSW) holds ``--windows`` windows of
``--windows-per-video`` windows per video (1e5 = 1,000 videos x 100 windows in the full run), in
the FlowEncoder's dimension (176). The vectors are **structured**, as a video's windows are: each
video has its own direction and its windows drift around it (an AR(1) walk, correlation 0.9 between
neighbours), so a query range finds a run of neighbouring windows, not scattered points. Windows are
16 x 4 frames at 24 fps (2.54 s) every 0.5 s, the dense-window defaults, and the collection records
that ``clip_spec`` as ``motionmatch index`` does.

Queries are copies: ``--query-windows`` (6) consecutive windows of a random stored video plus noise
(cosine ~0.95 to the originals); with ``--query-phases`` > 1 (default: what ``search_range`` does on
a dense collection, its ``frame_stride``, when this version of ``localize`` has phase search) each
window also gets phase-shifted variants. For every query, in rotating order, each of these runs once:

* **plain**: ``MotionStore.search(query windows, k)``, one batched top-k call (what ``search``
  without ``--segments`` costs);
* **segments**: ``search_vectors(..., segments=True)`` with ``search_range``'s defaults (read from
  its signature: aligner, min_hits, extend margin, fetch_windows, ...), a gallery z-score calibration
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

    python -m bench.bench_segment_search --quick   # 5,000 windows, about 30 s (target not judged)
    python -m bench.bench_segment_search           # 100,000 windows, a few minutes (most of it inserting)

Prints markdown and writes ``bench/out/segment_search.json``. ``main(argv) -> dict`` for ``python -m bench``.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
if str(PROJECT_ROOT) not in sys.path:  # `python bench/bench_segment_search.py` from anywhere
    sys.path.insert(0, str(PROJECT_ROOT))

import numpy as np  # noqa: E402

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
    parser.add_argument("--out", type=Path, default=OUT_DIR / "segment_search.json")
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
    from motionmatch.video.clips import ClipWindow
    from motionmatch.video.windows import QueryPlan

    times = window_times(n_windows)
    span = int(round(STRIDE_S * FPS))
    windows = tuple(ClipWindow(i, tuple(range(i * span, i * span + FRAMES_PER_CLIP * FRAME_STRIDE, FRAME_STRIDE)),
                               float(s), float(e), 0) for i, (s, e) in enumerate(times))
    fields = {"path": f"/bench/segment_search/query_{index:04d}.mp4", "start_s": 0.0, "end_s": float(times[-1, 1]),
              "duration_s": float(times[-1, 1]), "window_s": WINDOW_S, "stride_s": STRIDE_S, "windows": windows}
    if "n_frames" in inspect.signature(QueryPlan).parameters:
        fields["n_frames"] = 0  # no phase plans are cut from it: the bench gives phase vectors itself
    return QueryPlan(**fields)


def wait_for_background_work(store) -> float:
    """Flush, then let the embedded Milvus Lite finish indexing and compaction before timing (best effort, as
    ``bench_search`` does: that work runs in this process and would slow every timed search); returns seconds."""
    started = time.perf_counter()
    try:
        store.client.flush(store.collection)
        from milvus_lite import server_manager_instance

        _, database, _ = server_manager_instance._servers[os.path.abspath(store.uri)]
        database.get_collection(store.collection)._wait_for_bg(timeout=600)
    except Exception:  # noqa: BLE001 - internal API: the timings stay valid, only noisier
        pass
    return time.perf_counter() - started


def gallery_calibration(vectors: np.ndarray, seed: int, max_videos: int = 200, n_components: int = 64):
    """The z-score statistics ``localize.fit_gallery_calibration`` fits (a PCA whitening on the windows of up to
    200 random videos), fitted on the same vectors in memory: reading them back from the store scans the whole
    collection (``store.videos()``), minutes at 1e5 here, and is a per-collection cost, not a per-search one."""
    from motionmatch.refine.calibrate import ScoreCalibration

    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(vectors), size=min(max_videos, len(vectors)), replace=False))
    sample = vectors[chosen].reshape(-1, vectors.shape[-1])
    return ScoreCalibration("whiten", n_components=min(n_components, len(sample) - 1, sample.shape[1])).fit(
        sample, encoder_id=ENCODER_ID)


# ----------------------------------------------------------------------------- the search modes
def range_defaults() -> dict:
    """``search_range``'s defaults for the arguments ``search_vectors`` takes (so the bench follows the CLI)."""
    from motionmatch.search import range as localize

    given = {name: p.default for name, p in inspect.signature(localize.search_range).parameters.items()
             if p.default is not inspect.Parameter.empty}
    accepted = set(inspect.signature(localize.search_vectors).parameters)
    chosen = {name: given[name] for name in ("aligner", "min_hits", "group_by_video", "fetch_windows", "extend_margin")
              if name in given and name in accepted}
    chosen["threshold"] = localize.DEFAULT_Z_THRESHOLD if given.get("threshold") is None else given["threshold"]
    return chosen


def default_phases(frame_stride: int) -> int:
    """How many phases ``search_range`` embeds per query window on a dense collection (1 without phase search)."""
    from motionmatch.search import range as localize

    has_phases = ("query_phases" in inspect.signature(localize.search_range).parameters
                  and "phase_vectors" in inspect.signature(localize.search_vectors).parameters)
    return frame_stride if has_phases else 1


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


def run_queries(store, queries: list[dict], args, calibration, defaults: dict, warmup: int) -> dict:
    """Time every mode on every query (rotating order); returns latencies (ms) and the segments' sanity check."""
    from motionmatch.search.range import search_vectors

    fetch_default = bool(defaults.get("fetch_windows", True))
    modes = {"plain": None, "segments": fetch_default, "segments_other": not fetch_default}
    latencies = {mode: [] for mode in modes}
    found = {mode: [] for mode in modes if mode != "plain"}
    options = {k: v for k, v in defaults.items() if k != "fetch_windows"}
    for number, query in enumerate(queries):
        plan = query_plan(number, args.query_windows)
        order = list(modes)[number % 3:] + list(modes)[:number % 3]
        for mode in order:
            started = time.perf_counter()
            if mode == "plain":
                store.search(query["vectors"], k=args.k)
            else:
                extra = {"phase_vectors": query["phase_vectors"]} if query["phase_vectors"] is not None else {}
                result = search_vectors(store, plan, query["vectors"], k=args.k, segments=True, excluded=(),
                                        calibration=calibration, filters=None, n_candidates=args.candidates,
                                        max_segments=args.k, fetch_windows=modes[mode], **options, **extra)
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
    from motionmatch.index.store import MotionStore

    started = time.perf_counter()
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
            settle_s = wait_for_background_work(store)
            print(f"[segment_search] {stored:,} windows in {n_videos} videos inserted in {insert_s:.0f} s",
                  file=sys.stderr, flush=True)
            fit_0 = time.perf_counter()
            calibration = gallery_calibration(vectors, args.seed)
            fit_s = time.perf_counter() - fit_0
            print(f"[segment_search] gallery calibration fitted in {fit_s:.0f} s", file=sys.stderr, flush=True)
            timed = run_queries(store, queries, args, calibration, defaults, args.warmup)
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
    note = "" if judged else f"; {stored:,} windows, the target is at {TARGET_WINDOWS:,}: not judged"
    targets = {}
    for mode in ("segments", "segments_other"):
        targets[mode] = {
            "target": f"{label[mode]}: p50 <= {TARGET_RATIO:g}x a plain top-k search on the same collection at 1e5 windows",
            "measured": (f"{ratio[mode]:.2f}x ({p50[mode]:.1f} ms vs {p50['plain']:.1f} ms, p50 of {len(latencies[mode])} "
                         f"queries, {stored:,} windows){note}"),
            "passed": bool(ratio[mode] <= TARGET_RATIO) if judged else None}
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
    lines.append("")
    lines += [f"- **{ {True: 'PASS', False: 'FAIL', None: 'NOT JUDGED'}[t['passed']] }**: {t['target']}; measured "
              f"{t['measured']}." for t in targets.values()]
    summary = "\n".join(lines)
    result = {"mode": "quick" if args.quick else "full",
              "command": "python -m bench.bench_segment_search" + (" --quick" if args.quick else ""),
              "settings": {"windows": stored, "videos": n_videos, "windows_per_video": args.windows_per_video,
                           "dim": args.dim, "queries": args.queries, "warmup": args.warmup,
                           "query_windows": args.query_windows, "query_phases": phases, "k": args.k,
                           "candidates": args.candidates, "seed": args.seed, "search_range_defaults": defaults,
                           "index": index},
              "insert_s": insert_s, "settle_s": settle_s, "calibration_fit_s": fit_s, "data_s": build_s, "latencies_ms": latencies,
              "p50_ms": p50, "p90_ms": p90, "ratio_p50": ratio,
              "top_segment_is_source": timed["top_segment_is_source"], "targets": targets, "summary": summary,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
              "seconds_total": time.perf_counter() - started}
    print(summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\n(segment_search bench: {result['seconds_total']:.0f} s; JSON: {args.out})")
    return result


if __name__ == "__main__":
    main()
