"""Localisation benchmark (issue 11): segment search on long synthetic videos against the issue's targets.

The chain is the one a user runs, through the same API the CLI calls:

The gallery (steps 1-3) is ``bench.harness.gallery``'s, shared with bench_query_cuts:

1. ``generate_long_videos`` (``generate-sample --long``): long videos with labelled motion
   segments, hard cuts, continuous transitions and distractor footage, ``ground_truth.csv`` and ``cuts.csv``;
   ``write_copy_queries`` (copy queries: a range re-encoded at another bitrate) and
   ``write_same_motion_queries`` (a range of an indexed video; relevant: the same label in other
   groups of other videos).
2. ``extract_embeddings`` with dense windows and the CLI's defaults (``extract --stride-s``: 16 frames
   x step 4 every ``video.DEFAULT_STRIDE_S``), FlowEncoder; shots by ``--shots`` (default ``content``: the CLI's
   default TransNetV2 costs about 2,500 s per video-hour on 2 CPU cores, 20x the content detector, and both find
   the generated cuts; ``--shots transnetv2`` runs it).
3. ``index_run`` into a Milvus Lite file (``motionmatch index``), which also fits and saves the
   gallery calibration.
4. ``evaluate_search`` (``motionmatch evaluate --segments``) with the package defaults, and the **naive
   baseline** of the issue side by side: per gallery window the maximum raw cosine over the query's windows,
   a threshold, adjacent windows merged (never across a gap wider than one stride); no candidate voting, no
   alignment, no calibration. Its threshold is the best of a grid **on the tuning seed**, like the method's.

Tuning and reporting are separate: ``--seed`` (default 1) builds the reported gallery; every choice in
``motionmatch.search`` (threshold, aligner, min_hits, merging) was made on seed 0 (``--seed 0 --sweep``
prints the grid). Targets (issue 11): copy R1@tIoU0.7 >= 0.95 and µAP >= 0.90; same-motion segment F1 >= 0.70,
R1@tIoU0.5 >= 0.80, median boundary error <= one stride. 95% CIs are percentile bootstraps over queries.

Usage::

    python -m bench.bench_localize --quick   # 4 x 30 s, 8 + 8 queries (about a minute; targets not judged)
    python -m bench.bench_localize           # 8 x 60 s, 30 + 30 queries (3-5 minutes on 2 cores)

Prints a markdown table and writes ``bench/out/localize.json``. ``main(argv) -> dict`` for ``python -m bench``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.harness import (LONG_FULL, LONG_QUICK, OUT_DIR, QUERY_S, BenchRun, build_gallery, gallery_root, open_store,
                           query_lists)

TUNING_SEED = 0  # the gallery every default was chosen on; never the reported one
BASELINE_THRESHOLDS = (0.8, 0.85, 0.9)  # raw cosine grid for the naive baseline
BASELINE_THRESHOLD = 0.85  # tuning seed: best same-motion R1@0.5 + copy R1@0.7 (0.33, tied with 0.8; better F1), --sweep
N_BOOT = 1000
SWEEP_GRID = (  # option sets tried on the tuning seed (search_vectors keywords over cached query vectors)
    {"extend_margin": None, "coverage": False}, {"extend_margin": None}, {"extend_margin": None, "calibration": None},
    {"coverage": False}, {}, {"calibration": None},
    {"extend_margin": 0.05}, {"copy_level": 0.95}, {"extend_margin": 0.05, "copy_level": 0.95},
    {"min_hits": 3}, {"aligner": "hough"}, {"fetch_windows": False},
)
TARGETS = (  # (key, kind, metric, comparison, value, text)
    ("copy_r1_07", "copy", "R1@tIoU=0.7", ">=", 0.95, "copy queries: R1@tIoU0.7 >= 0.95"),
    ("copy_uap", "copy", "segment_uAP", ">=", 0.90, "copy queries: µAP >= 0.90"),
    ("same_f1", "same_motion", "VCSL_F1", ">=", 0.70, "same-motion queries: segment F1 (VCSL) >= 0.70"),
    ("same_r1_05", "same_motion", "R1@tIoU=0.5", ">=", 0.80, "same-motion queries: R1@tIoU0.5 >= 0.80"),
    ("same_boundary", "same_motion", "boundary_error_s", "<=", None,
     "same-motion queries: median boundary error <= one stride"),
)
SHOWN = ("R1@tIoU=0.5", "R1@tIoU=0.7", "mean_IoU", "VCSL_P", "VCSL_R", "VCSL_F1", "segment_uAP",
         "boundary_error_s")


# ----------------------------------------------------------------------------- the naive baseline
def baseline_predictions(gallery: dict, queries: pd.DataFrame, threshold: float, vectors_by_query: dict) -> pd.DataFrame:
    """Per gallery window the max raw cosine over the query windows; threshold; merge adjacent windows."""
    from motionmatch.search import merge_window_hits
    from motionmatch.table import embedding_matrix, load_embeddings

    table = gallery.setdefault("_table", load_embeddings(gallery["embeddings"]))
    matrix = gallery.setdefault("_matrix", embedding_matrix(table).astype(np.float64))
    paths = table["video_path"].map(lambda p: str(Path(p).resolve())).to_numpy()
    rows = []
    for query in queries.itertuples(index=False):
        plan, vectors = vectors_by_query[query.query_id][:2]
        best = (vectors.astype(np.float64) @ matrix.T).max(axis=0)
        own = paths == str(Path(query.path).resolve())
        hits = [_Hit(p, s, e, c) for p, s, e, c, o in zip(paths, table["start_s"], table["end_s"], best, own) if not o]
        for seg in merge_window_hits(hits, threshold, gallery["stride_s"], query_range=(plan.start_s, plan.end_s)):
            rows.append({"query_id": query.query_id, "video": seg.video_path, "start_s": seg.start_s,
                         "end_s": seg.end_s, "score": seg.score, "query_start_s": plan.start_s,
                         "query_end_s": plan.end_s, "kind": query.kind})
    return pd.DataFrame(rows, columns=["query_id", "video", "start_s", "end_s", "score", "query_start_s",
                                       "query_end_s", "kind"])


class _Hit:
    __slots__ = ("video_path", "start_s", "end_s", "score")

    def __init__(self, video_path, start_s, end_s, score):
        self.video_path, self.start_s, self.end_s, self.score = video_path, float(start_s), float(end_s), float(score)


def embed_queries(store, queries: pd.DataFrame, n_phases: int | None = None) -> dict:
    """{query_id: (QueryPlan, vectors, phase vectors (n_phases - 1, n, dim), the range's frames)} cut and embedded
    as search_range does (one decode per query for every phase: ``embed_plans``)."""
    from motionmatch.encoders import encoder_from_id
    from motionmatch.search import embed_plans
    from motionmatch.video import ClipSpec, collection_clip_spec, phase_plans, plan_query

    info = store.encoder_info()
    encoder = encoder_from_id(info["encoder_id"])
    spec, stride = collection_clip_spec(info.get("clip_spec"), ClipSpec().frames_per_clip)
    n_phases = spec.frame_stride if n_phases is None else n_phases  # search_range's default on a dense collection
    out = {}
    for query in queries.itertuples(index=False):
        start = None if pd.isna(query.query_start_s) else float(query.query_start_s)
        end = None if pd.isna(query.query_end_s) else float(query.query_end_s)
        plan = plan_query(query.path, spec, start, end, stride)
        vectors, frames = embed_plans([plan, *phase_plans(plan, n_phases)], encoder)
        out[query.query_id] = (plan, vectors[0], np.stack(vectors[1:]) if len(vectors) > 1 else None, frames)
    return out


def score(predictions: pd.DataFrame, queries: pd.DataFrame, relevant: pd.DataFrame, n_boot: int,
          seed: int = 0) -> pd.DataFrame:
    """evaluate_localization per query kind (the same tables evaluate_search returns)."""
    from motionmatch.metrics import evaluate_localization

    tables = []
    for kind in dict.fromkeys(queries["kind"]):
        ids = set(queries.loc[queries["kind"] == kind, "query_id"])
        tables.append(evaluate_localization(predictions[predictions["query_id"].isin(ids)],
                                            relevant[relevant["query_id"].isin(ids)], n_boot=n_boot,
                                            seed=seed).assign(kind=kind))
    return pd.concat(tables, ignore_index=True)


# ----------------------------------------------------------------------------- report
def value_of(metrics: pd.DataFrame, kind: str, metric: str) -> dict:
    row = metrics[(metrics["kind"] == kind) & (metrics["metric"] == metric)].iloc[0]
    return {"value": float(row["value"]), "ci_low": float(row["ci_low"]), "ci_high": float(row["ci_high"])}


def measured(metrics: pd.DataFrame, kind: str, metric: str, stride_s: float) -> tuple[float, str]:
    """A metric's value and its text with the 95% CI (NaN: no top-1 segment overlapped a relevant moment)."""
    v = value_of(metrics, kind, metric)
    if np.isnan(v["value"]):
        return v["value"], "no value (no top-1 segment overlapped a relevant moment)"
    unit = " s" if metric == "boundary_error_s" else ""
    text = f"{v['value']:.3f}{unit} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"
    return v["value"], text + (f" (stride {stride_s:g} s)" if metric == "boundary_error_s" else "")


def judge(run: BenchRun, metrics: pd.DataFrame, stride_s: float) -> list:
    """One record per target of the issue, on the segment search's metrics (value, and its 95% CI as the detail)."""
    records = []
    for key, kind, metric, op, goal, text in TARGETS:
        goal = stride_s if goal is None else goal
        v = value_of(metrics, kind, metric)
        if np.isnan(v["value"]):
            records.append(run.target(key, None, "", text, passed=None,
                                      detail="no value (no top-1 segment overlapped a relevant moment)"))
            continue
        passed = bool(v["value"] >= goal) if op == ">=" else bool(v["value"] <= goal)
        detail = f"95% CI [{v['ci_low']:.3f}, {v['ci_high']:.3f}]" + (
            f" (stride {stride_s:g} s)" if metric == "boundary_error_s" else "")
        records.append(run.target(key, v["value"], "s" if metric == "boundary_error_s" else "", text, passed=passed,
                                  detail=detail))
    return records


def table_markdown(named: dict[str, pd.DataFrame]) -> str:
    lines = ["| method | query kind | n | " + " | ".join(SHOWN) + " |", "|---|---|---|" + "---|" * len(SHOWN)]
    for name, metrics in named.items():
        for kind, rows in metrics.groupby("kind", sort=False):
            values = rows.set_index("metric")
            cells = []
            for metric in SHOWN:
                r = values.loc[metric]
                cells.append("-" if np.isnan(r["value"]) else
                             f"{r['value']:.3f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]")
            lines.append(f"| {name} | {kind} | {int(rows['n_queries'].iloc[0])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_method(store, queries, relevant, n_boot: int, config=None) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """``evaluate_search`` (``motionmatch evaluate --segments``) with ``config`` (default: the package's defaults)."""
    from motionmatch.evaluation import evaluate_search

    began = time.perf_counter()
    metrics, predictions, _ = evaluate_search(store, queries, relevant, config, n_boot=n_boot)
    metrics = metrics[metrics["kind"] != "all"].reset_index(drop=True)
    return metrics, predictions, (time.perf_counter() - began) / max(1, len(queries))


def cached_predictions(store, queries: pd.DataFrame, vectors_by_query: dict, calibration, **options) -> pd.DataFrame:
    """Segments of every query by ``search_vectors`` (what search_range runs once the query is embedded), with
    ``SegmentSearchConfig``'s defaults changed by ``options`` (its fields, and ``query_phases``)."""
    from motionmatch.search import SegmentSearchConfig, own_videos, search_vectors

    n_phases = options.pop("query_phases", None)
    config = SegmentSearchConfig(k=10, n_candidates=10, max_segments=10, calibration=calibration, **options)
    rows = []
    for query in queries.itertuples(index=False):
        plan, vectors, phase_vectors, frames = vectors_by_query[query.query_id]
        if n_phases is not None:
            phase_vectors = None if n_phases == 1 else phase_vectors[:n_phases - 1]
        found = search_vectors(store, plan, vectors, config, excluded=own_videos(store, query.path),
                               phase_vectors=phase_vectors, query_frames=frames)
        rows.extend({"query_id": query.query_id, "video": str(Path(s.video_path).resolve()), "start_s": s.start_s,
                     "end_s": s.end_s, "score": s.score, "query_start_s": s.query_start_s,
                     "query_end_s": s.query_end_s, "kind": query.kind} for s in found.segments)
    return pd.DataFrame(rows, columns=["query_id", "video", "start_s", "end_s", "score", "query_start_s",
                                       "query_end_s", "kind"])


def sweep(store, gallery, queries, relevant, vectors) -> list[dict]:
    """The tuning grid (run on the tuning seed only): each option set's headline numbers, no bootstrap."""
    from motionmatch.refine import load_gallery_calibration

    calibration, _ = load_gallery_calibration(store)
    rows = []
    for options in SWEEP_GRID:
        chosen = {**options, "calibration": options.get("calibration", calibration)}
        began = time.perf_counter()
        metrics = score(cached_predictions(store, queries, vectors, **chosen), queries, relevant, 0)
        rows.append({"options": options, **_headline(metrics),
                     "s_per_query": (time.perf_counter() - began) / len(queries)})
        print(json.dumps(rows[-1], default=str), flush=True)
    for threshold in BASELINE_THRESHOLDS:
        metrics = score(baseline_predictions(gallery, queries, threshold, vectors), queries, relevant, 0)
        rows.append({"options": {"baseline_threshold": threshold}, **_headline(metrics)})
        print(json.dumps(rows[-1], default=str), flush=True)
    return rows


def _headline(metrics: pd.DataFrame) -> dict:
    return {f"{kind}:{metric}": round(value_of(metrics, kind, metric)["value"], 3)
            for kind in ("copy", "same_motion") for metric in ("R1@tIoU=0.5", "R1@tIoU=0.7", "VCSL_F1",
                                                               "segment_uAP", "boundary_error_s")}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_localize", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{LONG_QUICK} (not judged)")
    parser.add_argument("--seed", type=int, default=1, help=f"gallery seed (reported: 1; tuning: {TUNING_SEED})")
    parser.add_argument("--shots", default="content", help="shot detector for extraction (content, transnetv2, none)")
    parser.add_argument("--sweep", action="store_true", help="print the tuning grid (use with --seed 0)")
    parser.add_argument("--workdir", default="", help="where the gallery is built (default bench/out/localize_*)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON (default bench/out/localize.json)")
    args = parser.parse_args(argv)
    run = BenchRun("localize", argv, quick=args.quick, out=args.out)
    size = LONG_QUICK if args.quick else LONG_FULL
    root = Path(args.workdir) if args.workdir else gallery_root(size, args.seed, args.shots)
    gallery = build_gallery(root, args.seed, size["n_videos"], size["duration_s"], size["n_queries"], args.shots)
    n_boot = 200 if args.quick else N_BOOT
    with open_store(gallery) as store:
        queries, relevant = query_lists(gallery)
        vectors = embed_queries(store, queries)
        if args.sweep:
            grid = sweep(store, gallery, queries, relevant, vectors)
            (OUT_DIR / f"localize_sweep_seed{args.seed}.json").write_text(json.dumps(grid, indent=2, default=str))
            return {"sweep": grid}
        method, predictions, per_query = run_method(store, queries, relevant, n_boot)
        raw = score(cached_predictions(store, queries, vectors, calibration=None), queries, relevant, n_boot)
    baseline = score(baseline_predictions(gallery, queries, BASELINE_THRESHOLD, vectors), queries, relevant,
                     n_boot)
    named = {"segment search (defaults)": method, "same, raw cosine (no calibration)": raw,
             f"naive baseline (max cosine >= {BASELINE_THRESHOLD:g}, merge)": baseline}
    records = judge(run, method, gallery["stride_s"])
    table = table_markdown(named)
    summary_lines = [
        f"{size['n_videos']} long synthetic videos x {size['duration_s']:g} s (seed {args.seed}; every default tuned on "
        f"seed {TUNING_SEED}), dense windows every {gallery['stride_s']:g} s (FlowEncoder, shots: {args.shots}), "
        f"{len(queries)} queries of {QUERY_S:g} s; 95% bootstrap CIs over queries.", "",
        "| target | measured (segment search) | verdict | naive baseline |", "|---|---|---|---|"]
    for record, (_, kind, metric, *_rest) in zip(records, TARGETS):
        summary_lines.append(f"| {record.target} | {measured(method, kind, metric, gallery['stride_s'])[1]} | "
                             f"{record.shown_verdict} | {measured(baseline, kind, metric, gallery['stride_s'])[1]} |")
    summary_lines += ["", table]
    return run.finish("\n".join(summary_lines), seed=args.seed, size=size, shots=args.shots,
                      stride_s=gallery["stride_s"], n_queries=int(len(queries)),
                      n_windows=len(gallery.get("_table", [])) or None, timings=gallery["timings"],
                      s_per_query=per_query, metrics={name: m.to_dict(orient="records") for name, m in named.items()},
                      table_markdown=table)


if __name__ == "__main__":
    main()
