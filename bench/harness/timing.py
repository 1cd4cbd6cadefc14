"""Time, measured one way: the latency of single calls (:func:`time_calls`), and the time spent inside chosen
functions of a pipeline that only reports its total (:class:`StageTimers`)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np


@dataclass
class Latencies:
    """Seconds of each timed call, and what each call returned (when kept)."""

    seconds: list[float] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.seconds)

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(np.asarray(self.seconds, dtype=float), q) * 1e3) if self.seconds else float("nan")

    @property
    def p50_ms(self) -> float:
        return self.percentile_ms(50)

    @property
    def p90_ms(self) -> float:
        return self.percentile_ms(90)

    @property
    def p99_ms(self) -> float:
        return self.percentile_ms(99)

    def ms(self) -> list[float]:
        return [s * 1e3 for s in self.seconds]


def time_calls(call: Callable[[Any], Any], inputs: Iterable[Any], warmup: int = 5, cap_s: float | None = None,
               min_calls: int = 20, keep: bool = False) -> Latencies:
    """Latency of ``call(x)`` for each input after ``warmup`` untimed calls on the first inputs (they are timed
    too, afterwards); stops once ``min_calls`` are timed and ``cap_s`` seconds have passed. ``keep``: also keep
    each timed call's return value (e.g. the hits, for recall)."""
    inputs = list(inputs)
    for item in inputs[:warmup]:
        call(item)
    timed = Latencies()
    started = time.perf_counter()
    for item in inputs:
        tick = time.perf_counter()
        result = call(item)
        timed.seconds.append(time.perf_counter() - tick)
        if keep:
            timed.results.append(result)
        if cap_s is not None and timed.n >= min_calls and time.perf_counter() - started > cap_s:
            break
    return timed


class StageTimers:
    """Wall and CPU seconds spent inside wrapped functions (and inside a wrapped generator's ``next``).

    ``clocks`` maps each stage to its CPU clock: ``time.process_time`` (the whole process: a stage that runs
    alone) or ``time.thread_time`` (the calling thread: stages that overlap).
    """

    def __init__(self, clocks: Mapping[str, Callable[[], float]]):
        self.clocks = dict(clocks)
        self.wall = {stage: 0.0 for stage in self.clocks}
        self.cpu = {stage: 0.0 for stage in self.clocks}
        self.calls = {stage: 0 for stage in self.clocks}

    def _add(self, stage: str, wall_0: float, cpu_0: float) -> None:
        self.wall[stage] += time.perf_counter() - wall_0
        self.cpu[stage] += self.clocks[stage]() - cpu_0
        self.calls[stage] += 1

    def wrap(self, stage: str, function):
        def timed(*args, **kwargs):
            wall_0, cpu_0 = time.perf_counter(), self.clocks[stage]()
            try:
                return function(*args, **kwargs)
            finally:
                self._add(stage, wall_0, cpu_0)
        return timed

    def wrap_iter(self, stage: str, function):
        def timed(*args, **kwargs):
            iterator = function(*args, **kwargs)
            try:
                while True:
                    wall_0, cpu_0 = time.perf_counter(), self.clocks[stage]()
                    try:
                        item = next(iterator)
                    except StopIteration:
                        return
                    finally:
                        self._add(stage, wall_0, cpu_0)
                    yield item
            finally:
                iterator.close()
        return timed

    def patch(self, module, name: str, stage: str, iterator: bool = False):
        """Replace ``module.name`` with its timed wrapper; returns a function that puts the original back."""
        original = getattr(module, name)
        setattr(module, name, (self.wrap_iter if iterator else self.wrap)(stage, original))
        return lambda: setattr(module, name, original)


__all__ = ["Latencies", "time_calls", "StageTimers"]
