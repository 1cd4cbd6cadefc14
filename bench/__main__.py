"""`make bench`: run the benchmarks in sequence and collect their results.

    python -m bench [--quick] [--only decode,embed,search]
    python -m bench --collect shots,long_cost      # re-run nothing: table their last full runs

Each benchmark is a module ``bench.bench_<name>`` exposing ``main(argv=None) -> dict`` that accepts
``--quick``, prints its own markdown and writes ``bench/out/<name>.json`` through :class:`bench.harness.BenchRun`;
its ``"targets"`` are records in the one schema of :class:`bench.harness.Record` (name, value, unit, target,
verdict, command, when, machine), which this runner tables without knowing which benchmark wrote them. A module
that is not there is reported as missing; one that raises is reported as failed and the others still run.
The collected results go to ``bench/out/results.json``; a summary is printed at the end and written as
markdown: the full run (all benchmarks) to ``bench/RESULTS.md``, which is committed, anything else to
``bench/out/RESULTS-<mode>.md``. It starts with one table of every benchmark's targets (PASS / FAIL / NOT JUDGED /
NOT MEASURED, with the measured value). ``--quick`` never judges a target (the quick-mode rule, :mod:`bench.harness`).
Exit status 1 if any benchmark failed.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path

from bench.harness import OUT_DIR, Record, describe, machine_info

# run in this order (the pipeline's order): decode, place windows (shots, windows), embed, memory, the cost of long
# videos, search, the segment aligners, segment search over dense windows (and what its fetches cost), localisation quality (and query ranges
# across a cut); the pose channel on real footage (and its landmarks against MediaPipe's own); then scaling out: Ray, a
# Milvus server
BENCHMARKS = ("decode", "shots", "windows", "embed", "memory", "long_cost", "search", "aligners", "segment_search",
              "lite_lookup", "localize", "query_cuts", "pose", "pose_oracle", "ray", "server", "server_network")
BENCH_DIR = Path(__file__).resolve().parent
RESULTS_MD = BENCH_DIR / "RESULTS.md"
TITLES = {"decode": "Decoding", "shots": "Shot boundaries", "windows": "Dense windows", "embed": "Embedding",
          "memory": "Memory", "long_cost": "Long-video cost", "search": "Search",
          "aligners": "Segment aligners on planted cases", "segment_search": "Segment search",
          "lite_lookup": "Milvus Lite: span filter against key lookup",
          "localize": "Localisation", "query_cuts": "Query ranges across a shot cut",
          "pose": "The pose channel across cameras (Pose2Sim)", "pose_oracle": "BlazePose against MediaPipe's own",
          "ray": "Extraction on Ray",
          "server": "Milvus standalone (C++) and bulk ingest", "server_network": "Milvus standalone: loopback-only cost"}


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


def records_of(result) -> list[Record]:
    """A benchmark result's target records; ValueError when they are not in the schema (an older bench's JSON)."""
    targets = result.get("targets") if isinstance(result, dict) else None
    if not isinstance(targets, list):
        raise ValueError("its targets are not a list of records")
    return [Record.from_dict(target) for target in targets]


def _target_rows(outcomes: dict[str, dict]) -> list[str]:
    """One markdown row per target record of every benchmark that ran: benchmark, target, measured, verdict."""
    return [record.row(name) for name, outcome in outcomes.items() if outcome["status"] == "ok"
            for record in records_of(outcome["result"])]


def results_markdown(outcomes: dict[str, dict], quick: bool, command: str) -> str:
    """The whole run as markdown: machine, targets table, then each benchmark's own summary."""
    lines = [f"# Benchmark results ({'quick' if quick else 'full'} mode)", "",
             f"Written by `{command}` on {datetime.date.today().isoformat()}: {describe(machine_info())} at the end. "
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
        lines += [f"Command: `{sub_command.strip()}` ({when}).", "", result.get("summary") or "(no summary)", ""]
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
        try:
            records_of(result)
        except ValueError as err:
            outcomes[entry] = {"status": "missing", "seconds": 0.0,
                               "error": f"{path} was written by an older bench ({err}): run `python -m bench.bench_{name}`"}
            continue
        when = result.get("when") or datetime.datetime.fromtimestamp(path.stat().st_mtime).isoformat(timespec="minutes")
        outcomes[entry] = {"status": "ok", "seconds": float(result.get("seconds") or 0),
                           "result": result, "collected": f"its run of {when}, JSON bench/out/{path.name}"}
    return outcomes


def _order(name: str) -> tuple[int, str]:
    base = name.partition("@")[0]
    return (BENCHMARKS.index(base) if base in BENCHMARKS else len(BENCHMARKS), name)


def _heading_name(heading: str) -> str:
    """``## Title (other.json)`` -> ``name@other.json`` (the inverse of results_markdown's section headings)."""
    text = heading[3:].strip()
    for name, title in sorted(TITLES.items(), key=lambda item: -len(item[1])):
        if text == title:
            return name
        if text.startswith(title + " (") and text.endswith(")"):
            return f"{name}@{text[len(title) + 2:-1]}"
    return text


def _split_block(block: str) -> tuple[dict[str, list[str]], dict[str, str]]:
    """A collected block's target rows by benchmark and its sections by benchmark (``_heading_name``)."""
    rows: dict[str, list[str]] = {}
    sections: dict[str, str] = {}
    parts = block.split("\n## ")
    for part in parts[1:]:
        heading, _, body = part.partition("\n")
        if heading.strip() == "Targets":
            for line in body.splitlines():
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if line.startswith("| ") and cells[0] != "benchmark" and not set(cells[0]) <= set("-"):
                    rows.setdefault(cells[0], []).append(line)
        else:
            sections[_heading_name("## " + heading)] = ("## " + part).rstrip() + "\n"
    return rows, sections


def merge_collected(outcomes: dict[str, dict]) -> Path:
    """Put the collected runs into bench/RESULTS.md between the collected markers. The benchmarks collected now
    replace their own rows and sections in the block (one whose JSON is missing keeps an earlier collection's);
    every other benchmark's stay as they were."""
    text = RESULTS_MD.read_text(encoding="utf-8") if RESULTS_MD.exists() else ""
    old = text.split(COLLECTED_BEGIN, 1)[1].split(COLLECTED_END, 1)[0] \
        if COLLECTED_BEGIN in text and COLLECTED_END in text else ""
    rows, sections = _split_block(old)
    fresh = results_markdown(outcomes, False, "python -m bench --collect").split("\n", 4)[4]
    new_rows, new_sections = _split_block("\n" + fresh)
    for name, outcome in outcomes.items():  # a run that is missing now keeps what an earlier collection tabled
        if outcome["status"] == "ok" or name not in sections:
            rows[name] = new_rows.get(name, [])
            sections[name] = new_sections.get(name, "")
    names = sorted(sections, key=_order)
    block = "\n".join([COLLECTED_BEGIN, "", f"# Collected runs: {', '.join(names)}", "",
                        "Each benchmark below was run on its own (`python -m bench --collect NAMES` read its JSON back "
                        "and replaced those benchmarks' rows and sections; a full `make bench` rewrites this file "
                        f"with everything in one run). Last collected on {datetime.date.today().isoformat()} "
                        f"({', '.join(outcomes)}); each section names its command and when it ran. The machine (2 "
                        "CPUs) was shared and loaded during these runs: read the ratios, measured side by side within "
                        "each run.", "", "## Targets", "", "| benchmark | target | measured | verdict |",
                        "|---|---|---|---|", *[row for name in sorted(rows, key=_order) for row in rows[name]], "",
                        *[sections[name] for name in names], COLLECTED_END])
    if old:
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
        print(f"wrote {merge_collected(outcomes)}")
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
