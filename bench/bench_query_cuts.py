"""Query ranges that cross a shot cut: restart the query's windows at the cut (the default) or not.

The index's dense windows never straddle a detected cut. A query range that crosses one is, by default,
cut into windows the same way (:func:`motionmatch.video.cuts_in_range` with the index's detector, then
:func:`motionmatch.video.plan_query` with the cuts); ``--ignore-cuts`` / ``split_at_cuts=False`` tiles
the range as if it were one shot. This bench measures both, side by side in one run, on bench_localize's
gallery (``bench.harness.gallery``: 8 x 60 s, seed 1, shots by PySceneDetect content, FlowEncoder, cached under
``bench/out``):

* **cut-crossing copies**: for every planted hard cut with >= 4.5 s of video on both sides, the 8 s around
  it (4 s each side: more than one 2.67 s window) re-encoded at crf 30, as ``write_copy_queries`` does;
  relevant: the source range;
* **bench_localize's own queries** (30 copies and 30 same-motion ranges, inside one labelled segment each):
  what splitting costs where the detector fires falsely inside a range.

Target (ours): splitting must not lower cut-crossing copies' R1@tIoU0.7, and must not lower the in-segment
queries' R1@tIoU0.5 by more than one query in 30. Usage::

    python -m bench.bench_query_cuts           # about 5 minutes on 2 cores once bench_localize's gallery exists
    python -m bench.bench_query_cuts --quick   # the quick gallery (4 x 30 s; not judged)

Prints markdown; writes ``bench/out/query_cuts.json`` (``query_cuts_quick.json`` for --quick).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.harness import LONG_FULL, LONG_QUICK, OUT_DIR, BenchRun, build_gallery, gallery_root, open_store, query_lists

HALF_S = 4.0  # seconds of the query on each side of the cut: more than one window (2.67 s) on each
N_BOOT = 1000
METRICS = ("R1@tIoU=0.5", "R1@tIoU=0.7", "mean_IoU", "segment_uAP")


def write_cut_copies(videos: Path, half_s: float = HALF_S, crf: int = 30) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Copy queries of ``2 * half_s`` seconds centred on each planted cut (queries_cut_*/*.mp4); (queries, relevant)."""
    from motionmatch.video import open_video, write_video

    cuts = pd.read_csv(videos / "cuts.csv")
    queries, relevant = [], []
    for index, cut in enumerate(cuts.itertuples(index=False)):
        video = open_video(videos / cut.video)
        stamps, fps, duration = video.timestamps(), video.info().fps, video.info().duration_s
        if cut.time_s - half_s - 0.5 < 0 or cut.time_s + half_s + 0.5 > duration:
            continue
        frames = np.flatnonzero((stamps >= cut.time_s - half_s - 1e-9) & (stamps < cut.time_s + half_s - 1e-9))
        name = f"queries_cut_{half_s:g}s/cut_{index:03d}.mp4"
        if not (videos / name).is_file():
            write_video(videos / name, (frame for start in range(0, len(frames), 48)  # 48 frames at a time
                                        for frame in video.read(frames[start:start + 48])), fps, crf=crf)
        first, last = float(stamps[frames[0]]), float(stamps[frames[-1]]) + 1.0 / fps
        query_id = f"cut_{index:03d}"
        queries.append({"query_id": query_id, "path": str(videos / name), "kind": "cut_copy", "label": "",
                        "video": cut.video, "start_s": first, "end_s": last, "query_start_s": np.nan,
                        "query_end_s": np.nan})
        relevant.append({"query_id": query_id, "video": str((videos / cut.video).resolve()), "start_s": first,
                         "end_s": last, "query_start_s": 0.0, "query_end_s": len(frames) / fps})
    return pd.DataFrame(queries), pd.DataFrame(relevant)


def evaluate_mode(store, queries: pd.DataFrame, relevant: pd.DataFrame, split: bool | None,
        n_boot: int = N_BOOT) -> tuple[pd.DataFrame, float, int]:
    """(metrics by kind, seconds per query, queries whose range was split)."""
    from motionmatch.evaluation import evaluate_search
    from motionmatch.search import SegmentSearchConfig

    began = time.perf_counter()
    metrics, _, notes = evaluate_search(store, queries, relevant, SegmentSearchConfig(split_at_cuts=split),
                                        n_boot=n_boot)
    split_queries = len({note.split(":")[0] for note in notes if "shot cut(s)" in note})
    return metrics[metrics["kind"] != "all"], (time.perf_counter() - began) / len(queries), split_queries


def value(metrics: pd.DataFrame, kind: str, metric: str) -> float:
    row = metrics[(metrics["kind"] == kind) & (metrics["metric"] == metric)]
    return float(row["value"].iloc[0])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_query_cuts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="bench_localize's quick gallery (4 x 30 s; not judged)")
    args = parser.parse_args(argv)
    run = BenchRun("query_cuts", argv, quick=args.quick,
                   out=OUT_DIR / ("query_cuts_quick.json" if args.quick else "query_cuts.json"))
    size = LONG_QUICK if args.quick else LONG_FULL
    root = gallery_root(size, args.seed, "content")
    gallery = build_gallery(root, args.seed, size["n_videos"], size["duration_s"], size["n_queries"], "content")
    cut_queries, cut_relevant = write_cut_copies(gallery["videos"])
    with open_store(gallery) as store:
        own_queries, own_relevant = query_lists(gallery)
        queries = pd.concat([cut_queries, own_queries], ignore_index=True)
        relevant = pd.concat([cut_relevant, own_relevant], ignore_index=True)
        runs = {}
        for name, split in (("split at cuts (default)", None), ("ignore cuts", False)):
            runs[name] = evaluate_mode(store, queries, relevant, split, 200 if args.quick else N_BOOT)
    rows = []
    for name, (metrics, per_query, n_split) in runs.items():
        for kind in ("cut_copy", "copy", "same_motion"):
            rows.append({"mode": name, "kind": kind, "n": int((queries["kind"] == kind).sum()),
                         **{m: value(metrics, kind, m) for m in METRICS}, "s_per_query": per_query,
                         "queries_split": n_split})
    table = pd.DataFrame(rows)
    split, kept = (table[table["mode"] == m].set_index("kind") for m in runs)
    n_own = int(split.loc["same_motion", "n"])
    cut_split, cut_kept = split.loc["cut_copy", "R1@tIoU=0.7"], kept.loc["cut_copy", "R1@tIoU=0.7"]
    run.target("cut_copies", cut_split - cut_kept, "R1@tIoU0.7 gained",
               "cut-crossing copies: R1@tIoU0.7 with the query split at cuts >= without (ours)",
               passed=bool(cut_split >= cut_kept),
               detail=f"{cut_split:.3f} vs {cut_kept:.3f} ({int(split.loc['cut_copy', 'n'])} queries)")
    lost = max(kept.loc[k, "R1@tIoU=0.5"] - split.loc[k, "R1@tIoU=0.5"] for k in ("copy", "same_motion"))
    run.target("in_segment", lost, "R1@tIoU0.5 lost (worst kind)",
               "in-segment queries: splitting costs at most one query in 30 of R1@tIoU0.5 (ours)",
               passed=bool(lost <= 1.0 / n_own + 1e-9),
               detail="; ".join(f"{kind} {split.loc[kind, 'R1@tIoU=0.5']:.3f} vs {kept.loc[kind, 'R1@tIoU=0.5']:.3f}"
                                for kind in ("copy", "same_motion")))
    lines = ["| mode | query kind | n | " + " | ".join(METRICS) + " | s/query | queries split |",
             "|---|---|---|" + "---|" * (len(METRICS) + 2)]
    for row in rows:
        lines.append(f"| {row['mode']} | {row['kind']} | {row['n']} | "
                     + " | ".join(f"{row[m]:.3f}" for m in METRICS) + f" | {row['s_per_query']:.2f} | "
                     f"{row['queries_split']} |")
    return run.finish("\n".join(lines), seed=args.seed, rows=rows)


if __name__ == "__main__":
    main()
