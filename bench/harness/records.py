"""The one schema of what a benchmark reports: a :class:`Record` per measured value, with its target and verdict.

Every benchmark returns its records under ``"targets"`` (a list of ``Record.as_dict()``); ``python -m bench``
tables them without knowing which benchmark wrote which (``--collect`` reads them back from the JSON).

Verdicts: **PASS** / **FAIL** (measured at the target's conditions and judged), **NOT JUDGED** (measured, but
not at the target's conditions: a quick run, a smaller size; the detail says why), **NOT MEASURED** (nothing to
judge: no GPU, a size that did not run; the detail says what would measure it).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

PASS, FAIL, NOT_JUDGED, NOT_MEASURED = "PASS", "FAIL", "NOT JUDGED", "NOT MEASURED"
VERDICTS = (PASS, FAIL, NOT_JUDGED, NOT_MEASURED)


@dataclass(frozen=True)
class Record:
    """One measured value of one benchmark run, with the target it is judged against."""

    bench: str  # the benchmark, e.g. "embed"
    name: str  # the record within it, e.g. "pipeline_vs_naive"
    value: float | None  # the measured value; None when nothing was measured
    unit: str  # of the value: "x", "ms", "MiB per video", "" for a bare number
    target: str  # the target in words, e.g. "CPU: pipeline >= 2x naive clips/s (same model)"
    verdict: str  # one of VERDICTS
    detail: str = ""  # what the value was measured on, and why it was not judged or measured
    mode: str = "full"  # "full" or "quick": the run that measured it
    command: str = ""  # the command that measured it
    when: str = ""  # when that run started (ISO 8601, local time)
    machine: dict = field(default_factory=dict)  # machine_info() of that run

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    @property
    def measured(self) -> str:
        """The value with its unit, then the detail: what the targets table shows."""
        shown = "" if self.value is None or math.isnan(self.value) else \
            _number(self.value) + (self.unit if self.unit in ("x", "%") else f" {self.unit}" if self.unit else "")
        return "; ".join(part for part in (shown, self.detail) if part)

    @property
    def shown_verdict(self) -> str:
        if self.verdict in (PASS, FAIL):
            return f"**{self.verdict}**"
        return f"{self.verdict} (quick)" if self.verdict == NOT_JUDGED and self.mode == "quick" else self.verdict

    def row(self, bench: str = "") -> str:
        """``| benchmark | target | measured | verdict |``."""
        return f"| {bench or self.bench} | {self.target} | {self.measured} | {self.shown_verdict} |"

    def line(self) -> str:
        """``- **PASS**: target; measured 2.4x; detail.`` for a benchmark's own summary."""
        if self.verdict == NOT_MEASURED:
            return f"- {self.shown_verdict}: {self.target}" + (f" ({self.detail})." if self.detail else ".")
        return f"- {self.shown_verdict}: {self.target}; measured {self.measured}."

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Record":
        """A record read back from a benchmark's JSON; ValueError when it is not in this schema (an older bench)."""
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or not {"bench", "name", "value", "unit", "target", "verdict"} <= set(data):
            raise ValueError(f"not a benchmark record: {str(data)[:120]}")
        return cls(**{k: v for k, v in data.items() if k in names})


def _number(value: float) -> str:
    """3 decimals below 10 (ratios, R², IoU), 1 below 1,000 (milliseconds), else thousands with commas."""
    size = abs(value)
    return f"{value:.3f}" if size < 10 else f"{value:.1f}" if size < 1000 else f"{value:,.0f}"


def verdict_lines(records) -> str:
    """One markdown line per record (``Record`` or its dict)."""
    return "\n".join((r if isinstance(r, Record) else Record.from_dict(r)).line() for r in records)


__all__ = ["PASS", "FAIL", "NOT_JUDGED", "NOT_MEASURED", "VERDICTS", "Record", "verdict_lines"]
