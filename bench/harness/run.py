"""One benchmark run: its command, start time and machine (written once), its records, its JSON.

A benchmark's ``main`` makes a :class:`BenchRun` first, adds a record per target with :meth:`BenchRun.target`
(or :meth:`~BenchRun.not_measured`), and ends with :meth:`BenchRun.finish`, which appends the verdict lines to
its summary, writes ``bench/out/<name>.json`` and returns the dict ``python -m bench`` collects::

    run = BenchRun("memory", argv, quick=args.quick)
    run.target("flat_memory", slope, "MiB per video", "pipeline peak grows < 0.42 MiB per added video",
               passed=slope < 0.42, detail="48 -> 96 videos")
    return run.finish(summary, rows=rows)
"""
from __future__ import annotations

import datetime
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

from .machine import machine_info
from .records import FAIL, NOT_JUDGED, NOT_MEASURED, PASS, Record, verdict_lines

BENCH_DIR = Path(__file__).resolve().parent.parent
PROJECT_ROOT = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"


def _plain(value):
    """numpy values (and anything json cannot write) for json.dumps: the package's one coercer, else str."""
    from motionmatch.table import jsonable

    plain = jsonable(value)
    return str(plain) if plain is value else plain


def save_result(result: dict, out: Path, label: str = "") -> dict:
    """Print ``result["summary"]``, write ``result`` as JSON to ``out``; return it."""
    print(result.get("summary", ""))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=_plain))
    seconds = result.get("seconds")
    print(f"\n({label or result.get('bench', '')} bench: {seconds:.0f} s; JSON: {out})" if seconds is not None
          else f"\n(JSON: {out})")
    return result


class BenchRun:
    """The bookkeeping of one benchmark run (see the module docstring)."""

    def __init__(self, bench: str, argv: Sequence[str] | None, quick: bool, out: Path | None = None):
        self.bench, self.quick = bench, bool(quick)
        arguments = list(sys.argv[1:] if argv is None else argv)
        self.command = f"python -m bench.bench_{bench}" + (f" {shlex.join(arguments)}" if arguments else "")
        self.when = datetime.datetime.now().isoformat(timespec="seconds")
        self.machine = machine_info()
        self.out = Path(out) if out is not None else OUT_DIR / f"{bench}.json"
        self.records: list[Record] = []
        self.started = time.perf_counter()

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"

    def _add(self, name: str, value, unit: str, target: str, verdict: str, detail: str) -> Record:
        value = None if value is None else float(value)
        record = Record(self.bench, name, value, unit, target, verdict, detail, self.mode, self.command, self.when,
                        self.machine)
        self.records.append(record)
        return record

    def target(self, name: str, value, unit: str, target: str, passed: bool | None, detail: str = "",
               not_judged: str = "") -> Record:
        """A target measured in this run. ``passed`` None (or ``value`` None) means not measured. The verdict is
        PASS or FAIL, except NOT JUDGED in quick mode (the quick-mode rule, :mod:`bench.harness`) or when
        ``not_judged`` says why the measurement does not meet the target's conditions (e.g. a smaller size)."""
        if value is None or passed is None:
            return self._add(name, value, unit, target, NOT_MEASURED, detail)
        if self.quick:
            reason = f"quick mode: too small to judge (`{self.command.replace(' --quick', '')}` judges it)"
            return self._add(name, value, unit, target, NOT_JUDGED, "; ".join(p for p in (detail, reason) if p))
        if not_judged:
            return self._add(name, value, unit, target, NOT_JUDGED, "; ".join(p for p in (detail, not_judged) if p))
        return self._add(name, value, unit, target, PASS if passed else FAIL, detail)

    def not_measured(self, name: str, target: str, why: str) -> Record:
        """A target this run could not measure (no GPU, a size that did not run); ``why`` says what would."""
        return self._add(name, None, "", target, NOT_MEASURED, why)

    def adopt(self, record: Record) -> Record:
        """A record measured by another run of this benchmark (e.g. `make bench-large`), kept with its own
        command, time and machine."""
        self.records.append(record)
        return record

    def finish(self, summary: str, **data) -> dict:
        """The result dict (bench, mode, command, when, machine, seconds, targets, summary, ``data``), written to
        the run's JSON and printed; the verdict lines are appended to ``summary``."""
        lines = verdict_lines(self.records)
        result = {"bench": self.bench, "mode": self.mode, "command": self.command, "when": self.when,
                  "machine": self.machine, **data,
                  "targets": [record.as_dict() for record in self.records],
                  "summary": summary.rstrip() + ("\n\n" + lines if lines else ""),
                  "seconds": time.perf_counter() - self.started}
        return save_result(result, self.out, self.bench)


__all__ = ["BENCH_DIR", "PROJECT_ROOT", "OUT_DIR", "save_result", "BenchRun"]
