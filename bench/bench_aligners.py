"""The three segment aligners of :mod:`motionmatch.search.align` on planted similarity matrices, side by side.

Each trial plants copies of a 10-window query in a 90-window reference (:func:`planted_case`): ``diagonal`` (one
copy), ``two_copies``, ``partial`` (query windows 3..7 only), ``speed`` (the copy played 1.5x slower), ``hard``
(weak matches in strong noise, a fifth of them dropped) and ``no_match``; every aligner sees the same matrices.
Scored with the localisation metrics (:func:`motionmatch.metrics.evaluate_localization`, no bootstrap): segment
P / R / F1 (VCSL's, averaged within each query first: its "query macro", ``query_macro_P/R/F1``, as align.py's
table reports them), segment µAP (VSC22), the top-1's mean IoU on the reference axis, false segments per query
(overlapping no planted box) and ms per alignment.

Target (ours): the default, ``motionmatch.search.align.DEFAULT_ALIGNER``, has the best pooled top-1 mean IoU and
a pooled µAP within 0.01 of the best (the table in align.py's docstring is this bench's full run).

Usage::

    python -m bench.bench_aligners --quick   # 8 trials per case (seconds; not judged)
    python -m bench.bench_aligners           # 40 trials per case, seed 0, threshold 0.6, min_hits 2

Prints markdown and writes ``bench/out/aligners.json``. ``main(argv) -> dict`` for ``python -m bench``.
"""
from __future__ import annotations

import argparse
import time
from typing import Sequence

import numpy as np
import pandas as pd

from bench.harness import BenchRun

PLANTED_CASES = ("diagonal", "two_copies", "partial", "speed", "hard", "no_match")
METRICS = ("query_macro_P", "query_macro_R", "query_macro_F1", "segment_uAP", "mean_IoU")
UAP_TIE = 0.01  # µAP differences below this are ties


def window_times(n_windows: int, window_s: float = 2.0, stride_s: float = 1.0) -> np.ndarray:
    """(n, 2) start and end of ``n_windows`` windows of ``window_s`` every ``stride_s`` seconds."""
    starts = np.arange(int(n_windows)) * float(stride_s)
    return np.stack([starts, starts + float(window_s)], axis=1)


def planted_case(kind: str, rng: np.random.Generator, n_query: int = 10,
                 n_ref: int = 90) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[float, float, float, float]]]:
    """A similarity matrix with planted copies -> (sim, query_times, ref_times, true boxes ``(q0, q1, r0, r1)``).

    Noise ~ N(0.3, 0.1) (``hard``: N(0.45, 0.1)); a copied query window matches its reference
    window with N(0.8, 0.08) (``hard``: N(0.7, 0.1), a fifth of the matches dropped to noise).
    ``partial`` copies query windows 3..7 only; ``speed`` plays the copy 1.5x slower in the
    reference; ``two_copies`` plants the query twice; ``no_match`` plants nothing.
    """
    if kind not in PLANTED_CASES:
        raise ValueError(f"kind must be one of {PLANTED_CASES}, got {kind!r}")
    query, ref = window_times(n_query), window_times(n_ref)
    hard = kind == "hard"
    sim = rng.normal(0.45 if hard else 0.3, 0.1, size=(n_query, n_ref))
    copies = {"no_match": 0, "two_copies": 2}.get(kind, 1)
    starts = np.sort(rng.choice(np.arange(5, n_ref - 2 * n_query, 2 * n_query), size=copies, replace=False))
    boxes = []
    for start in starts:
        rows = np.arange(3, 8) if kind == "partial" else np.arange(n_query)
        cols = start + (np.round((rows - rows[0]) * 1.5).astype(int) if kind == "speed" else rows - rows[0])
        matched = rng.normal(0.7 if hard else 0.8, 0.1 if hard else 0.08, size=len(rows))
        if hard:
            dropped = rng.random(len(rows)) < 0.2
            matched[dropped] = sim[rows[dropped], cols[dropped]]
        sim[rows, cols] = matched
        if kind == "speed":  # the neighbouring reference window of a slowed copy is nearly as similar
            sim[rows[:-1], cols[:-1] + 1] = np.maximum(sim[rows[:-1], cols[:-1] + 1], matched[:-1] - 0.05)
        boxes.append((query[rows[0], 0], query[rows[-1], 1], ref[cols[0], 0], ref[cols[-1], 1]))
    return np.clip(sim, -1, 1), query, ref, boxes


def compare_aligners(n_trials: int = 40, seed: int = 0, threshold: float = 0.6, min_hits: int = 2,
                     methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Score each aligner on :data:`PLANTED_CASES` with the localisation metrics (no bootstrap).

    Returns one row per (method, case) and per method over all cases pooled (``case == "all"``):
    segment P / R / F1 (VCSL, query macro), segment µAP (VSC22), mean IoU of the top-1 on the reference axis,
    ``false_per_query``, the mean number of predicted segments that overlap no true box, and
    ``ms_per_query``, the mean time one alignment took.
    """
    from motionmatch.metrics import RELEVANT_COLUMNS, evaluate_localization
    from motionmatch.search import ALIGNERS
    from motionmatch.search.align import segments_frame

    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials must be a whole number >= 1, got {n_trials!r}")
    rows = []
    for method in (tuple(ALIGNERS) if methods is None else methods):
        aligner = ALIGNERS[method]
        rng = np.random.default_rng(seed)  # every method sees the same matrices
        predictions, relevant, false, seconds = [], [], [], 0.0
        for case in PLANTED_CASES:
            for trial in range(n_trials):
                query_id = f"{case}-{trial}"
                sim, query, ref, boxes = planted_case(case, rng)
                began = time.perf_counter()
                segments = aligner(sim, query, ref, "ref", threshold=threshold, min_hits=min_hits)
                found = segments_frame(segments, query_id)
                seconds += time.perf_counter() - began
                predictions.append(found)
                relevant.extend({"query_id": query_id, "video": "ref", "start_s": r0, "end_s": r1,
                                 "query_start_s": q0, "query_end_s": q1} for q0, q1, r0, r1 in boxes)
                hits = [any(min(q1, s.query_end_s) > max(q0, s.query_start_s) and min(r1, s.end_s) > max(r0, s.start_s)
                            for q0, q1, r0, r1 in boxes) for s in found.itertuples()]
                false.append((case, len(hits) - sum(hits)))
        predictions_all = pd.concat(predictions, ignore_index=True)
        relevant_all = pd.DataFrame(relevant, columns=list(RELEVANT_COLUMNS))
        false_frame = pd.DataFrame(false, columns=["case", "false"])
        for case in PLANTED_CASES + ("all",):
            chosen, truth = predictions_all, relevant_all
            if case != "all":
                chosen = chosen[chosen["query_id"].str.startswith(case + "-")]
                truth = truth[truth["query_id"].str.startswith(case + "-")]
            row = {"method": method, "case": case}
            if len(truth):
                values = evaluate_localization(chosen, truth, n_boot=0).set_index("metric")["value"]
                row.update({name: float(values[name]) for name in METRICS})
            mask = np.ones(len(false_frame), bool) if case == "all" else false_frame["case"].to_numpy() == case
            row["false_per_query"] = float(false_frame.loc[mask, "false"].mean())
            row["ms_per_query"] = 1000 * seconds / len(false_frame)
            rows.append(row)
    return pd.DataFrame(rows)


def table_markdown(table: pd.DataFrame, case: str = "all") -> str:
    """The pooled (or one case's) rows as the docstring table of align.py shows them."""
    lines = ["| aligner | segment_P | segment_R | segment_F1 | segment_µAP | mean IoU | false seg./query | ms/query |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in table[table["case"] == case].itertuples(index=False):
        lines.append(f"| {row.method} | {row.query_macro_P:.3f} | {row.query_macro_R:.3f} | {row.query_macro_F1:.3f} | "
                     f"{row.segment_uAP:.3f} | {row.mean_IoU:.3f} | {row.false_per_query:.2f} | {row.ms_per_query:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    from motionmatch.search import DEFAULT_ALIGNER

    parser = argparse.ArgumentParser(prog="python -m bench.bench_aligners", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 trials per case (not judged)")
    parser.add_argument("--trials", type=int, default=None, help="trials per planted case (40; quick 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument("--min-hits", type=int, default=2)
    parser.add_argument("--out", default=None, help="where to write the JSON (default bench/out/aligners.json)")
    args = parser.parse_args(argv)
    run = BenchRun("aligners", argv, quick=args.quick, out=args.out)
    trials = args.trials or (8 if args.quick else 40)
    table = compare_aligners(trials, seed=args.seed, threshold=args.threshold, min_hits=args.min_hits)
    pooled = table[table["case"] == "all"].set_index("method")
    default = pooled.loc[DEFAULT_ALIGNER]
    best_iou, best_uap = pooled["mean_IoU"].max(), pooled["segment_uAP"].max()
    run.target("default_aligner", default["mean_IoU"], "mean IoU",
               f"the default aligner ({DEFAULT_ALIGNER}) has the best pooled top-1 mean IoU and a pooled µAP within "
               f"{UAP_TIE} of the best (ours)",
               passed=bool(default["mean_IoU"] >= best_iou and default["segment_uAP"] >= best_uap - UAP_TIE),
               detail=f"{DEFAULT_ALIGNER}: IoU {default['mean_IoU']:.3f} (best {best_iou:.3f}), µAP "
                      f"{default['segment_uAP']:.3f} (best {best_uap:.3f}); {trials} trials per case")
    by_case = {case: table_markdown(table, case) for case in PLANTED_CASES}
    summary = "\n".join([
        f"{trials} trials per planted case ({', '.join(PLANTED_CASES)}), seed {args.seed}, threshold "
        f"{args.threshold:g}, min_hits {args.min_hits}; pooled over all cases:", "", table_markdown(table), "",
        "`hard` alone (weak matches in strong noise):", "", by_case["hard"], "",
        "`speed` alone (a copy played 1.5x slower):", "", by_case["speed"]])
    return run.finish(summary, settings={"trials": trials, "seed": args.seed, "threshold": args.threshold,
                                         "min_hits": args.min_hits},
                      rows=table.to_dict(orient="records"))


if __name__ == "__main__":
    main()
