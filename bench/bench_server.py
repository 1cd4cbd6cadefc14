"""Server benchmark: the real C++ Milvus standalone (the `milvus` wheel, v2.3.5) at 1e5 and 1e6 x 1024-d.

What runs, per size (1e5 and 1e6 in full mode; 1e4 with ``--quick``), on one standalone started on
loopback by :func:`motionmatch.index.standalone.start_standalone` in a temporary data folder:

* **Ingest, two ways, into MotionMatch collections** (the clip schema, a FLAT index so that no index build
  is timed as ingest): ``MotionStore.upsert`` in batches of 512 (what `motionmatch index` does), and
  :mod:`motionmatch.index.bulk` (what `motionmatch index --bulk` does: ``LocalBulkWriter`` NumPy files, one Import
  task per ~512 MB, waited for until every row is counted). Rows/s for each, and their ratio. Upserts stop
  after ``--upsert-cap-s`` (the rate is then over the rows written, and says so).
* **Search** on the bulk-imported collection: the FLAT index is replaced by each candidate index
  (``INDEX_CANDIDATES``; build time measured until every row is indexed), loaded, and one query at a time
  is timed (p50 / p99) with its recall@10 against exact numpy search over the same vectors (computed chunk
  by chunk, so 1e6 x 1024 float32 = 4 GB is never held twice). At the largest size only the candidate the
  previous size chose runs (IVF builds at 1e6 x 1024 on 2 cores take minutes; HNSW would take far longer).
  The choice: the fastest p50 among settings with recall@10 >= 0.95.

The data is bench_search's ``MixtureData`` (clustered unit vectors), regenerated chunk by chunk per pass.

Usage::

    python -m bench.bench_server --quick   # 1e4, about 2 minutes
    nice python -m bench.bench_server      # 1e5 and 1e6; 1e6 alone took 22 min on 2 busy cores, 7.2 GB peak RSS
    nice python -m bench.bench_server --sizes 1e6 --index-types IVF_FLAT --upsert-cap-s 150   # the committed run

Prints markdown and writes ``bench/out/server.json``; ``main(argv) -> dict`` with its target records
(``bench.harness.Record``).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path


from bench.harness import (K, BenchRun, MixtureData, PeakRss, exact_top_k_single, exact_truth, open_server_collection,
                           server_build_index, server_search_latency, time_calls, vectors_table)

DIM = 1024
CHUNK_ROWS = 125_000  # rows per generated chunk (~500 MB of float32 at 1024-d); one import task each
UPSERT_BATCH = 512  # MotionStore.upsert's default, what `motionmatch index` uses
FULL_SIZES = (100_000, 1_000_000)
QUICK_SIZES = (10_000,)
TARGET_P50_MS_AT_1E6 = 50.0
TARGET_RECALL = 0.95
TARGET_BULK_SPEEDUP_AT_1E6 = 5.0
ENCODER_ID = "bench:mixture"
# (label, index_type, build params, search settings): IVF lists sized for segments of ~128k rows
INDEX_CANDIDATES = (
    ("IVF_FLAT nlist=256", "IVF_FLAT", {"nlist": 256}, ({"nprobe": 16}, {"nprobe": 32}, {"nprobe": 64})),
    ("IVF_SQ8 nlist=256", "IVF_SQ8", {"nlist": 256}, ({"nprobe": 16}, {"nprobe": 32}, {"nprobe": 64})),
)
ROW_NAME = "Milvus standalone (C++)"


def ingest_upserts(uri: str, data: MixtureData, n: int, cap_s: float | None) -> dict:
    store = open_server_collection(uri, "bench_upsert", data.dim)
    written, spent = 0, 0.0
    try:
        for start, block in data.chunks(n, rows=10 * UPSERT_BATCH):
            table = vectors_table(start, block)
            started = time.perf_counter()
            written += store.upsert(table, batch_size=UPSERT_BATCH, progress=False)
            spent += time.perf_counter() - started
            if cap_s is not None and spent > cap_s:
                break
        started = time.perf_counter()
        while store.count() < written:
            time.sleep(0.2)
        spent += time.perf_counter() - started
    finally:
        store.drop()
        store.close()
    return {"rows": written, "seconds": spent, "rows_per_s": written / spent, "complete": written == n}


def ingest_bulk(uri: str, data: MixtureData, n: int, files_dir: Path) -> tuple[dict, object]:
    from motionmatch.index import bulk

    store = open_server_collection(uri, "bench_bulk", data.dim)
    write_s, batches = 0.0, []
    for start, block in data.chunks(n, rows=CHUNK_ROWS):
        table = vectors_table(start, block)
        started = time.perf_counter()
        batches += bulk.write_import_files(table, store, files_dir / f"c{start:09d}")
        write_s += time.perf_counter() - started
    started = time.perf_counter()
    bulk.import_files(store, batches)
    while store.count() < n:
        time.sleep(0.5)
    import_s = time.perf_counter() - started
    shutil.rmtree(files_dir, ignore_errors=True)
    spent = write_s + import_s
    return {"rows": n, "seconds": spent, "write_s": write_s, "import_s": import_s, "tasks": len(batches),
            "rows_per_s": n / spent, "import_only_rows_per_s": n / import_s}, store


def choose(rows: list[dict]) -> dict | None:
    good = [r for r in rows if r["recall_at_10"] >= TARGET_RECALL] or rows
    return min(good, key=lambda r: r["p50_ms"]) if good else None


RULE_SEARCH = (f"{ROW_NAME} at 1e6 x 1024-d: one-query p50 < {TARGET_P50_MS_AT_1E6:g} ms with recall@10 >= "
               f"{TARGET_RECALL}")
RULE_BULK = f"bulk import >= {TARGET_BULK_SPEEDUP_AT_1E6:g}x batched upserts' rows/s at 1e6"


def judge_targets(run: BenchRun, result: dict) -> None:
    """The issue's two server targets, as records (not measured below 1e6)."""
    chosen = choose([r for r in result["search"] if r["size"] == 1_000_000])
    if chosen:
        run.target("server_p50_under_50ms_at_1e6", chosen["p50_ms"], "ms", RULE_SEARCH,
                   passed=chosen["p50_ms"] < TARGET_P50_MS_AT_1E6 and chosen["recall_at_10"] >= TARGET_RECALL,
                   detail=f"{chosen['index']} {chosen['search']}, recall@10 {chosen['recall_at_10']:.3f}")
    else:
        run.not_measured("server_p50_under_50ms_at_1e6", RULE_SEARCH, "the 1e6 run did not happen (full mode only)")
    ingest = {r["size"]: r for r in result["ingest"]}
    if 1_000_000 in ingest:
        row = ingest[1_000_000]
        run.target("bulk_5x_upserts_at_1e6", row["bulk_speedup"], "x", RULE_BULK,
                   passed=row["bulk_speedup"] >= TARGET_BULK_SPEEDUP_AT_1E6,
                   detail=(f"{row['bulk']['rows_per_s']:,.0f} vs {row['upsert']['rows_per_s']:,.0f} rows/s; the "
                           f"server's import alone {row['bulk']['import_only_rows_per_s']:,.0f} rows/s"))
    else:
        run.not_measured("bulk_5x_upserts_at_1e6", RULE_BULK, "the 1e6 run did not happen (full mode only)")


def _fmt(value, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def markdown(result: dict) -> str:
    lines = ["| backend | index | search | size | p50 ms | p99 ms | n | recall@10 | build s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["search"]:
        lines.append(f"| {ROW_NAME} | {r['index']} | {r['search']} | {r['size']:,} | {_fmt(r['p50_ms'], 2)} "
                     f"| {_fmt(r['p99_ms'], 2)} | {r['queries']} | {_fmt(r['recall_at_10'], 3)} | {_fmt(r['build_s'])} |")
    for r in result["numpy"]:
        lines.append(f"| numpy | exact | | {r['size']:,} | {_fmt(r['p50_ms'], 2)} | {_fmt(r['p99_ms'], 2)} "
                     f"| {r['queries']} | 1.000 | – |")
    lines += ["", "| size | batched upserts rows/s | bulk import rows/s (write files + import) | server import "
                  "alone rows/s | bulk / upserts |", "|---|---|---|---|---|"]
    for r in result["ingest"]:
        up, bk = r["upsert"], r["bulk"]
        partial = "" if up["complete"] else f" (first {up['rows']:,} rows, capped)"
        lines.append(f"| {r['size']:,} | {_fmt(up['rows_per_s'], 0)}{partial} | {_fmt(bk['rows_per_s'], 0)} "
                     f"({_fmt(bk['write_s'])} s + {_fmt(bk['import_s'])} s, {bk['tasks']} tasks) "
                     f"| {_fmt(bk['import_only_rows_per_s'], 0)} | {_fmt(r['bulk_speedup'], 2)}x |")
    lines.append("")
    if result.get("chosen"):
        lines.append(f"- Index chosen by measurement: {result['chosen']}")
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1e4 vectors only (about 2 minutes)")
    parser.add_argument("--sizes", type=lambda s: [int(float(x)) for x in s.split(",")], default=None,
                        help="comma-separated vector counts (default 1e5,1e6; quick 1e4)")
    parser.add_argument("--dim", type=int, default=DIM)
    parser.add_argument("--queries", type=int, default=None, help="single queries timed per setting (200; quick 50)")
    parser.add_argument("--upsert-cap-s", type=float, default=None,
                        help="stop the batched upserts after this many seconds (default: none; the rate is over "
                             "the rows written)")
    parser.add_argument("--index-types", default=None,
                        help="comma-separated candidate index types to run (default: all of INDEX_CANDIDATES)")
    parser.add_argument("--data-dir", type=Path, default=None, help="server data folder (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON (default bench/out/server.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print markdown; write bench/out/server.json; return the results."""
    from motionmatch.index.standalone import start_standalone

    warnings.simplefilter("ignore")  # pymilvus' ORM deprecation notes
    args = parse_args(argv)
    run = BenchRun("server", argv, quick=args.quick, out=args.out)
    sizes = sorted(args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES))
    n_queries = args.queries or (50 if args.quick else 200)
    cap_s = 4.0 if args.quick else 15.0
    data = MixtureData(args.dim, seed=args.seed)
    queries = data.queries(n_queries)
    folder = Path(args.data_dir or tempfile.mkdtemp(prefix="bench_server_"))
    result = {"settings": {"dim": args.dim, "k": K, "sizes": sizes, "queries": n_queries, "upsert_batch": UPSERT_BATCH,
                           "chunk_rows": CHUNK_ROWS, "upsert_cap_s": args.upsert_cap_s, "index_types": args.index_types,
                           "load_average_at_start": run.machine["load_average"]},
              "search": [], "numpy": [], "ingest": [], "chosen": ""}
    only = {t.strip().upper() for t in args.index_types.split(",")} if args.index_types else None
    candidates = [c for c in INDEX_CANDIDATES if not only or c[1] in only]
    server = start_standalone(folder / "milvus")
    result["server_version"] = server.version
    try:
        with PeakRss() as rss:
            for size in sizes:
                truth = exact_truth(data, size, queries)
                if size <= 100_000:  # the exact floor, one query at a time (the matrix fits in memory)
                    matrix = data.vectors(size)
                    timed = time_calls(lambda q, m=matrix: exact_top_k_single(m, q), queries, warmup=0)
                    result["numpy"].append({"size": size, "queries": timed.n, "p50_ms": timed.p50_ms,
                                            "p99_ms": timed.p99_ms})
                    del matrix
                print(f"[server] {size:,}: exact truth ready", file=sys.stderr, flush=True)
                upsert = ingest_upserts(server.uri, data, size, args.upsert_cap_s)
                print(f"[server] {size:,}: upserts {upsert['rows_per_s']:,.0f} rows/s", file=sys.stderr, flush=True)
                bulk, store = ingest_bulk(server.uri, data, size, folder / "bulk_files")
                print(f"[server] {size:,}: bulk {bulk['rows_per_s']:,.0f} rows/s", file=sys.stderr, flush=True)
                result["ingest"].append({"size": size, "upsert": upsert, "bulk": bulk,
                                         "bulk_speedup": bulk["rows_per_s"] / upsert["rows_per_s"]})
                size_rows = []
                try:
                    for label, index_type, params, settings in candidates:
                        build_s = server_build_index(store, index_type, params)
                        print(f"[server] {size:,}: {label} built in {build_s:.0f} s", file=sys.stderr, flush=True)
                        for setting in settings:
                            row = {"size": size, "index": label, "index_type": index_type, "params": params,
                                   "search": " ".join(f"{k}={v}" for k, v in setting.items()), "build_s": build_s,
                                   **server_search_latency(store, queries, truth, setting, cap_s)}
                            print(f"[server] {size:,}: {label} {row['search']}: p50 {row['p50_ms']:.1f} ms, "
                                  f"recall {row['recall_at_10']:.3f}", file=sys.stderr, flush=True)
                            size_rows.append(row)
                finally:
                    store.drop()
                    store.close()
                result["search"] += size_rows
                best = choose(size_rows)
                if best:  # the larger sizes run only the index type this size chose
                    result["chosen"] = (f"{best['index']} (at {size:,}: {best['search']} p50 {best['p50_ms']:.1f} ms, "
                                        f"recall@10 {best['recall_at_10']:.3f}, build {best['build_s']:.0f} s)")
                    candidates = [c for c in candidates if c[0] == best["index"]]
        result["peak_rss_mb_bench_and_server"] = rss.peak_mb
    finally:
        server.stop()
        if args.data_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    judge_targets(run, result)
    return run.finish(markdown(result), **result)


if __name__ == "__main__":
    main()
