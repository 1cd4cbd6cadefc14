"""Why a segment search's fetches cost what they do: Milvus Lite reads time spans by scanning, and by key in a lookup.

The coarse stage (the candidates' windows), the fine stage (the candidates' frames) and the same-motion ends (the
windows around a segment) each fetch a few videos' time spans with one filtered query
(``MotionStore.fetch_table(filters=[{"video_path": v, "start_s": (lo, hi)}, ...])``). Milvus Lite evaluates such a
filter on every row of the collection, so its cost grows with the collection, whatever the spans hold; a lookup of
the same rows by primary key (``MilvusClient.get``) does not scan. This bench measures both on one collection, side
by side, so that the fix the segment search's cost needs (fetch by key: docs/LONG_VIDEOS.md) is sized by a
measurement, not a guess.

One Milvus Lite collection of ``--windows`` windows (1e5: 1,000 videos x 100 windows, FlowEncoder's 176-d, the
structured vectors of :mod:`bench.bench_segment_search`), written with ``MotionStore.upsert`` and left to settle (Lite's background index and compaction work, as
:mod:`bench.bench_segment_search` does) before anything is timed. Each round picks
``--videos`` (20: a search's candidates, two groups of 10) random videos and a random 15 s span in each, then,
in alternating order, fetches those rows (a) with the span filter through ``fetch_table`` and (b) by their
``clip_id`` s through ``MilvusClient.get``; both must return the same rows. Recorded: the p50 of each over
``--rounds`` rounds and their ratio. A record, not a target.

Usage::

    python -m bench.bench_lite_lookup [--quick] [--windows 100000] [--videos 20] [--rounds 20]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_segment_search import ENCODER_ID, gallery_table, percentile  # noqa: E402
from bench.harness import BenchRun, lite_wait_for_background_work  # noqa: E402

SPAN_S = 15.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_lite_lookup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 windows and 5 rounds (nothing judged)")
    parser.add_argument("--windows", type=int, default=100_000)
    parser.add_argument("--windows-per-video", type=int, default=100)
    parser.add_argument("--dim", type=int, default=176)
    parser.add_argument("--videos", type=int, default=20, help="videos whose spans one fetch reads")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.windows, args.rounds = 5_000, 5
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from motionmatch.index import MotionStore

    run = BenchRun("lite_lookup", argv, quick=args.quick, out=args.out)
    n_videos = args.windows // args.windows_per_video
    table, _, _ = gallery_table(n_videos, args.windows_per_video, args.dim, args.seed)
    rng = np.random.default_rng(args.seed)
    spans_ms, keys_ms, rows = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench_lite_lookup_") as tmp:
        with MotionStore(str(Path(tmp) / "lookup.db"), "lookup_bench") as store:
            store.ensure_collection(ENCODER_ID, args.dim, {"kind": "bench"}, recreate=True)
            store.upsert(table, progress=False)
            settle_s = lite_wait_for_background_work(store.client, store.uri, store.collection)  # as a search finds it
            by_video = {video: group for video, group in table.groupby("video_path", sort=False)}
            videos = list(by_video)
            for round_ in range(args.rounds + 1):  # the first round warms up
                chosen = rng.choice(len(videos), size=min(args.videos, len(videos)), replace=False)
                spans = []
                for v in chosen:
                    group = by_video[videos[v]]
                    lo = float(rng.uniform(0.0, max(0.0, group["end_s"].max() - SPAN_S)))
                    spans.append({"video_path": videos[v], "start_s": (lo, lo + SPAN_S)})
                wanted = [cid for span in spans for cid in by_video[span["video_path"]].loc[
                    by_video[span["video_path"]]["start_s"].between(*span["start_s"]), "clip_id"]]
                timings = {}
                for mode in (("filter", "key") if round_ % 2 else ("key", "filter")):
                    began = time.perf_counter()
                    if mode == "filter":
                        got = set(store.fetch_table(["clip_id", "start_s", "embedding"], filters=spans)["clip_id"])
                    else:
                        got = {r["clip_id"] for r in store.client.get(store.collection, ids=wanted,
                                                                       output_fields=["clip_id", "start_s", "embedding"])}
                    timings[mode] = (time.perf_counter() - began) * 1000
                    if got != set(wanted):
                        raise RuntimeError(f"{mode} fetch returned {len(got)} rows, {len(wanted)} wanted")
                if round_:
                    spans_ms.append(timings["filter"])
                    keys_ms.append(timings["key"])
                    rows.append(len(wanted))
            stored = store.count()
    p50 = {"filter": percentile(spans_ms, 50), "key": percentile(keys_ms, 50)}
    ratio = p50["filter"] / max(p50["key"], 1e-9)
    note = "a record: sizes the fix of the segment search's fetches, no target"
    run.target("span_filter_over_key_lookup", ratio, "x",
               f"the same rows of {args.videos} videos' {SPAN_S:g} s spans: span-filter query p50 / key lookup p50",
               passed=True, detail=f"{p50['filter']:.1f} ms vs {p50['key']:.1f} ms, p50 of {args.rounds} rounds, "
                                   f"{int(np.median(rows))} rows a fetch, {stored:,} windows", not_judged=note)
    summary = "\n".join([
        f"Milvus Lite, {stored:,} windows of {n_videos} videos ({args.dim}-d); each round fetches the windows of "
        f"{args.videos} random videos' random {SPAN_S:g} s spans (median {int(np.median(rows))} rows) both ways, in "
        "alternating order.", "",
        "| fetch | p50 ms | p90 ms |", "|---|---:|---:|",
        f"| span filter (`fetch_table(filters=spans)`, what the search runs) | {p50['filter']:.1f} | "
        f"{percentile(spans_ms, 90):.1f} |",
        f"| the same rows by primary key (`MilvusClient.get`) | {p50['key']:.1f} | {percentile(keys_ms, 90):.1f} |",
        "", f"Ratio (p50): {ratio:.1f}x."])
    return run.finish(summary, windows=stored, settle_s=settle_s, videos=args.videos, rounds=args.rounds, p50_ms=p50,
                      filter_ms=spans_ms, key_ms=keys_ms, rows=rows)


if __name__ == "__main__":
    main()
