"""`make bench`: run the benchmarks in sequence and collect their results.

    python -m bench [--quick] [--only decode,embed,search]

Each benchmark is a module ``bench.bench_<name>`` exposing ``main(argv=None) -> dict`` that accepts
``--quick``, prints its own markdown table and writes ``bench/out/<name>.json``. A module that is not
there is reported as missing; one that raises is reported as failed and the others still run.
The collected results go to ``bench/out/results.json``; a summary is printed at the end (each result's
``summary`` markdown, when it has one). Exit status 1 if any benchmark failed.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path

BENCHMARKS = ("decode", "embed", "memory", "search")  # run in this order (the pipeline's order)
OUT_DIR = Path(__file__).resolve().parent / "out"


def run(names: list[str], quick: bool) -> dict[str, dict]:
    """Run ``bench.bench_<name>.main`` for each name; returns {name: {"status", "seconds", "result"|"error"}}."""
    outcomes: dict[str, dict] = {}
    for name in names:
        module_name = f"bench.bench_{name}"
        if importlib.util.find_spec(module_name) is None:
            outcomes[name] = {"status": "missing", "seconds": 0.0, "error": f"{module_name} is not there yet"}
            continue
        print(f"\n## {name}\n", flush=True)
        started = time.perf_counter()
        try:
            result = importlib.import_module(module_name).main(["--quick"] if quick else [])
            outcomes[name] = {"status": "ok", "seconds": time.perf_counter() - started, "result": result}
        except Exception as err:  # noqa: BLE001 - one broken benchmark must not stop the others
            traceback.print_exc()
            outcomes[name] = {"status": "failed", "seconds": time.perf_counter() - started,
                              "error": f"{type(err).__name__}: {err}"}
    return outcomes


def summary_markdown(outcomes: dict[str, dict], quick: bool) -> str:
    lines = [f"# Benchmark summary ({'quick' if quick else 'full'} mode)", "",
             "| benchmark | status | seconds | output |", "|---|---|---|---|"]
    for name, outcome in outcomes.items():
        output = f"bench/out/{name}.json" if outcome["status"] == "ok" else outcome.get("error", "")
        lines.append(f"| {name} | {outcome['status']} | {outcome['seconds']:.0f} | {output} |")
    lines.append(f"\nTotal: {sum(o['seconds'] for o in outcomes.values()):.0f} s; all results in bench/out/results.json")
    for name, outcome in outcomes.items():
        summary = outcome.get("result", {}).get("summary") if isinstance(outcome.get("result"), dict) else None
        if summary:
            lines += ["", f"### {name}", "", summary]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="each benchmark's quick mode")
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"--only: unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")

    started = time.perf_counter()
    outcomes = run(names, args.quick)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "results.json").write_text(json.dumps(
        {"mode": "quick" if args.quick else "full", "seconds": time.perf_counter() - started, "benchmarks": outcomes},
        indent=2, default=str))
    print("\n" + summary_markdown(outcomes, args.quick))
    return 1 if any(o["status"] == "failed" for o in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
