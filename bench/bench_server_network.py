"""What loopback-only costs: the C++ Milvus standalone in its own network namespace against on the host network.

Milvus 2.3.5 listens on every interface whatever its config says, so
:func:`motionmatch.index.standalone.start_standalone` runs it in a network namespace and relays its ports from the
host's 127.0.0.1 (:mod:`motionmatch.index.netns`, a Python relay). This bench measures that relay, side by side in
one run, on one data folder:

1. namespace: create a collection, time batched upserts of N rows (``MotionStore.upsert``, batches of 512),
   build IVF_FLAT (nlist 256), time one query at a time (nprobe 16) with recall@10 against numpy;
2. host network (the server restarted on the same data folder, listening on every interface): time the same
   upserts into a second collection, and the same queries on the first;
3. and 4. the two again, queries only, so each mode is timed twice and in alternation.

The ratio of p50s (namespace / host, the median of each mode's rounds) is judged against our own bound of
1.25x: the relay must not cost more than a quarter of a query.

Usage::

    python -m bench.bench_server_network            # 1e5 x 1024-d, about 4 minutes on 2 cores
    python -m bench.bench_server_network --quick    # 1e4

Prints markdown; writes ``bench/out/server_network.json`` with a "targets" row.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from bench.harness import (BenchRun, MixtureData, exact_truth, open_server_collection, server_build_index,
                           server_search_latency, vectors_table)

UPSERT_BATCH = 512  # MotionStore.upsert's default, what `motionmatch index` uses
TARGET_RATIO = 1.25  # our bound: namespace p50 / host p50
ROUNDS = ("namespace", "host", "namespace", "host")
SEARCH = {"nprobe": 16}


def upsert_rate(uri: str, name: str, data: MixtureData, n: int) -> tuple[object, dict]:
    store = open_server_collection(uri, name, data.dim)
    started = time.perf_counter()
    for start, block in data.chunks(n, rows=10 * UPSERT_BATCH):
        store.upsert(vectors_table(start, block), batch_size=UPSERT_BATCH, progress=False)
    while store.count() < n:
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    return store, {"rows": n, "seconds": seconds, "rows_per_s": n / seconds}


def one_round(folder: Path, network: str, first: bool, data: MixtureData, n: int, queries, truth, cap_s) -> dict:
    from motionmatch.index import MotionStore
    from motionmatch.index.standalone import listening_addresses, start_standalone

    started = time.perf_counter()
    server = start_standalone(folder, network=network)
    row = {"network": server.network, "start_s": time.perf_counter() - started,
           "host_listeners": listening_addresses(server)["host"]}
    try:
        if first:  # the namespace round builds the searched collection; the host round times its own upserts
            store, row["upsert"] = upsert_rate(server.uri, f"net_{network}", data, n)
            if network == ROUNDS[0]:
                row["build_s"] = server_build_index(store, "IVF_FLAT", {"nlist": 256})
            else:
                store.drop()
            store.close()
        with MotionStore(server.uri, f"net_{ROUNDS[0]}") as store:
            store.client.load_collection(store.collection)
            row["search"] = server_search_latency(store, queries, truth, SEARCH, cap_s)
    finally:
        server.stop()
    print(f"[server_network] {network}: p50 {row['search']['p50_ms']:.2f} ms"
          + (f", upserts {row['upsert']['rows_per_s']:,.0f} rows/s" if "upsert" in row else ""), file=sys.stderr,
          flush=True)
    return row


RULE = (f"loopback-only server (network namespace + relay): one-query p50 <= {TARGET_RATIO:g}x the host-network "
        "server's (our bound)")


def judge_targets(run: BenchRun, rounds: list[dict]) -> None:
    p50 = {mode: float(np.median([r["search"]["p50_ms"] for r in rounds if r["network"] == mode]))
           for mode in ("namespace", "host")}
    ups = {r["network"]: r["upsert"]["rows_per_s"] for r in rounds if "upsert" in r}
    ratio = p50["namespace"] / p50["host"]
    run.target("relay_p50", ratio, "x", RULE,
               passed=ratio <= TARGET_RATIO,
               detail=(f"p50 {p50['namespace']:.2f} vs {p50['host']:.2f} ms, median of 2 alternating rounds each; "
                       f"upserts {ups['namespace']:,.0f} vs {ups['host']:,.0f} rows/s = "
                       f"{ups['namespace'] / ups['host']:.2f}x"))


def markdown(result: dict) -> str:
    lines = ["| round | network | start s | upserts rows/s | p50 ms | p99 ms | recall@10 | host listeners |",
             "|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(result["rounds"], 1):
        up = f"{r['upsert']['rows_per_s']:,.0f}" if "upsert" in r else "–"
        listeners = ", ".join(f"{a}:{p}" for a, p in r["host_listeners"])
        lines.append(f"| {i} | {r['network']} | {r['start_s']:.0f} | {up} | {r['search']['p50_ms']:.2f} | "
                     f"{r['search']['p99_ms']:.2f} | {r['search']['recall_at_10']:.3f} | {listeners} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1e4 vectors (about 2 minutes)")
    parser.add_argument("--size", type=float, default=None, help="rows (default 1e5; 1e4 with --quick)")
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the JSON (default bench/out/server_network.json)")
    args = parser.parse_args(argv)
    run = BenchRun("server_network", argv, quick=args.quick, out=args.out)
    n = int(args.size or (10_000 if args.quick else 100_000))
    from motionmatch.index.netns import isolation_error

    refused = isolation_error()
    if refused:  # the namespace round cannot run here: nothing to compare
        run.not_measured("relay_p50", RULE, f"no network namespace can be made on this machine: {refused}")
        return run.finish(f"Not run: {refused}.", settings={"size": n, "dim": args.dim})
    data = MixtureData(args.dim, seed=0)
    queries = data.queries(50 if args.quick else 200)
    truth = exact_truth(data, n, queries)
    folder = Path(tempfile.mkdtemp(prefix="bench_server_network_"))
    try:
        rounds = [one_round(folder / "milvus", network, i < 2, data, n, queries, truth, 4.0 if args.quick else 15.0)
                  for i, network in enumerate(ROUNDS)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    judge_targets(run, rounds)
    result = {"settings": {"size": n, "dim": args.dim, "queries": len(queries), "search": SEARCH},
              "rounds": rounds}
    return run.finish(markdown(result), **result)


if __name__ == "__main__":
    main()
