"""`make bench`: run the benchmarks in sequence and collect their results.

    python -m bench [--quick] [--only decode,embed,search]

Each benchmark is a module ``bench.bench_<name>`` exposing ``main(argv=None) -> dict`` that accepts
``--quick``, prints its own markdown table and writes ``bench/out/<name>.json``. A module that is not
there is reported as missing; one that raises is reported as failed and the others still run.
The collected results go to ``bench/out/results.json``; a summary is printed at the end (each result's
``summary`` markdown, when it has one) and written as markdown: the full run (all benchmarks) to
``bench/RESULTS.md``, which is committed, anything else to ``bench/out/RESULTS-<mode>.md``. It starts
with one table of every benchmark's targets (PASS / FAIL / NOT MEASURED, with the measured value).
Exit status 1 if any benchmark failed.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path

# run in this order (the pipeline's order): decode, place windows (shots, windows), embed, memory, the cost of long
# videos, search, segment search over dense windows, localisation quality (and query ranges across a cut); then
# scaling out: Ray, a Milvus server
BENCHMARKS = ("decode", "shots", "windows", "embed", "memory", "long_cost", "search", "segment_search", "localize",
              "query_cuts", "ray", "server", "server_network")
BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
LARGE_SEARCH_MD = BENCH_DIR / "RESULTS_search_large.md"  # `make bench-large`: Milvus Lite at 1e6 (too slow for `make bench`)
TITLES = {"decode": "Decoding", "shots": "Shot boundaries", "windows": "Dense windows", "embed": "Embedding",
          "memory": "Memory", "long_cost": "Long-video cost", "search": "Search", "segment_search": "Segment search",
          "localize": "Localisation", "query_cuts": "Query ranges across a shot cut", "ray": "Extraction on Ray",
          "server": "Milvus standalone (C++) and bulk ingest", "server_network": "Milvus standalone: loopback-only cost"}
VERDICTS = {"PASS": "**PASS**", "FAIL": "**FAIL**"}  # a target's "verdict" string, as the table shows it


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


def _large_search_verdict(fallback: str) -> tuple[str, str]:
    """The 1e6 search target as judged by the separate `make bench-large` run (bench/RESULTS_search_large.md)."""
    import re

    for line in LARGE_SEARCH_MD.read_text(encoding="utf-8").splitlines():
        match = re.match(r"- \*\*(PASS|FAIL)\*\* at 1e6 vectors.*?\)\. (.*)", line)
        if match:
            return (f"**{match.group(1)}**",
                    f"{match.group(2)} (not in this run: `make bench-large`, bench/RESULTS_search_large.md)")
    return "NOT MEASURED", fallback


def _target_rows(outcomes: dict[str, dict]) -> list[str]:
    """One markdown row per target any benchmark judged: benchmark, target, measured, verdict."""
    rows = []
    for name, outcome in outcomes.items():
        result = outcome.get("result") if isinstance(outcome.get("result"), dict) else {}
        targets = result.get("targets") or {}
        for target in (targets.values() if isinstance(targets, dict) else targets):  # {name: target} or [target, ...]
            text = target.get("target") or target.get("rule", "")
            measured = target.get("measured")
            if measured is None:
                if "p50_ms" in target:
                    measured = (f"{target['judged_on']}: p50 {target['p50_ms']:.1f} ms, "
                                f"recall@10 {target['recall_at_10']:.3f}")
                elif "passing_settings" in target and target.get("passed") is not None:
                    measured = (f"numpy p50 {target['numpy_p50_ms']:.1f} ms; closest: {target.get('closest', '-')}; "
                                f"passing: {', '.join(target['passing_settings']) or 'none'}")
                else:
                    measured = target.get("note", "")
            if "verdict" in target:  # "PASS" / "FAIL" / "NOT MEASURED" given as a string
                verdict = VERDICTS.get(str(target["verdict"]).strip("* ").upper(), "NOT MEASURED")
            else:
                verdict = {True: "**PASS**", False: "**FAIL**", None: "NOT MEASURED"}[target.get("passed")]
            if name == "search" and target.get("passed") is None and "1e6" in text and LARGE_SEARCH_MD.exists():
                verdict, measured = _large_search_verdict(measured)
            rows.append(f"| {name} | {text} | {measured} | {verdict} |")
    return rows


def results_markdown(outcomes: dict[str, dict], quick: bool, command: str) -> str:
    """The whole run as markdown: machine, targets table, then each benchmark's own summary."""
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [f"# Benchmark results ({'quick' if quick else 'full'} mode)", "",
             f"Written by `{command}` on {datetime.date.today().isoformat()}: {os.cpu_count()} CPUs, "
             f"{platform.platform()}, python {platform.python_version()}; load average {load} at the end. "
             "Absolute times on this shared machine are noisy: read the ratios, which are measured side by "
             "side in one run. Every number below is printed by that command (JSON in `bench/out/`).", "",
             "## Targets", "", "| benchmark | target | measured | verdict |", "|---|---|---|---|",
             *_target_rows(outcomes), ""]
    for name, outcome in outcomes.items():
        base, _, other_run = name.partition("@")
        lines += [f"## {TITLES.get(base, base)}" + (f" ({other_run})" if other_run else ""), ""]
        result = outcome.get("result") if isinstance(outcome.get("result"), dict) else None
        if outcome["status"] != "ok" or result is None:
            lines += [f"{outcome['status']}: {outcome.get('error', '')}", ""]
            continue
        sub_command = result.get("command") or f"python -m bench.bench_{name}{' --quick' if quick else ''}"
        when = f"{outcome['collected']}" if outcome.get("collected") else f"{outcome['seconds']:.0f} s"
        lines += [f"Command: `{sub_command.strip()}` ({when}).", ""]
        if name == "search" and result.get("table_markdown"):
            lines += [result["table_markdown"], ""]
        lines += [result.get("summary") or "(no summary)", ""]
    return "\n".join(lines)


COLLECTED_BEGIN, COLLECTED_END = "<!-- collected: begin -->", "<!-- collected: end -->"


def collect(names: list[str]) -> dict[str, dict]:
    """Outcomes read back from each benchmark's last full run (``bench/out/<name>.json``), nothing re-run.

    A JSON that is missing, or was written by a ``--quick`` run, is reported as missing: only full runs count.
    """
    outcomes: dict[str, dict] = {}
    for entry in names:  # NAME reads bench/out/NAME.json; NAME@FILE another run of it (e.g. server@server_1e5.json)
        name, _, file_name = entry.partition("@")
        path = OUT_DIR / (file_name or f"{name}.json")
        result = json.loads(path.read_text()) if path.exists() else None
        if not isinstance(result, dict) or result.get("mode") != "full" or not result.get("command"):
            outcomes[entry] = {"status": "missing", "seconds": 0.0,
                               "error": f"no full run recorded in {path}: run `python -m bench.bench_{name}`"}
            continue
        written = datetime.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        outcomes[entry] = {"status": "ok", "seconds": float(result.get("seconds") or result.get("elapsed_s") or 0),
                           "result": result, "collected": f"its run of {written}, JSON bench/out/{path.name}"}
    return outcomes


def merge_collected(markdown: str, names: list[str]) -> Path:
    """Put the collected runs into bench/RESULTS.md between the collected markers (replacing an earlier block)."""
    block = "\n".join([COLLECTED_BEGIN, "", f"# Collected runs: {', '.join(names)}", "",
                        "Each benchmark below was run on its own (`python -m bench --collect` read its JSON back; "
                        f"a full `make bench` rewrites this file with everything in one run). Collected on "
                        f"{datetime.date.today().isoformat()}; each section names its command and when it ran. "
                        "The machine (2 CPUs) was shared and loaded during these runs: read the ratios, measured side "
                        "by side within each run.", "",
                        markdown.split("\n", 4)[4], COLLECTED_END])
    text = RESULTS_MD.read_text(encoding="utf-8") if RESULTS_MD.exists() else ""
    if COLLECTED_BEGIN in text and COLLECTED_END in text:
        head, rest = text.split(COLLECTED_BEGIN, 1)
        text = head + block + rest.split(COLLECTED_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS_MD.write_text(text, encoding="utf-8")
    return RESULTS_MD


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="each benchmark's quick mode")
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--collect", default="", metavar="NAMES",
                        help="re-run nothing: read these benchmarks' last full-run JSONs and put them in bench/RESULTS.md")
    args = parser.parse_args(argv)
    if args.collect:
        names = [n.strip() for n in args.collect.split(",") if n.strip()]
        if unknown := [n for n in names if n.partition("@")[0] not in BENCHMARKS]:
            parser.error(f"--collect: unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
        outcomes = collect(names)
        print(f"wrote {merge_collected(results_markdown(outcomes, False, 'python -m bench --collect'), names)}")
        return 1 if any(o["status"] != "ok" for o in outcomes.values()) else 0
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
    command = "python -m bench" + ("" if argv is None and len(sys.argv) <= 1 else " " + " ".join(
        argv if argv is not None else sys.argv[1:]))
    full_run = not args.quick and set(names) == set(BENCHMARKS)
    target = RESULTS_MD if full_run else OUT_DIR / f"RESULTS-{'quick' if args.quick else 'partial'}.md"
    target.write_text(results_markdown(outcomes, args.quick, "make bench" if full_run and argv is None
                                       and len(sys.argv) <= 1 else command))
    print(f"\nwrote {target}")
    return 1 if any(o["status"] == "failed" for o in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
