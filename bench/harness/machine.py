"""The machine a run measured on, described once: every record of a run carries it, every report prints it."""
from __future__ import annotations

import functools
import os
import platform


@functools.lru_cache(maxsize=1)
def _fixed() -> dict:
    import psutil

    return {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(), "python": platform.python_version()}


def machine_info() -> dict:
    """CPUs, memory, platform, python, and the 1/5/15-minute load averages now (the machine may be shared)."""
    return {**_fixed(), "load_average": [round(x, 2) for x in os.getloadavg()]}


def load_average_text() -> str:
    """``load average 1.63 / 1.56 / 1.61 on 2 cores``: how busy the machine is, for a reader judging timing noise."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} cores"


def describe(machine: dict) -> str:
    """One line for a report: ``2 CPUs, 23.5 GiB, Linux-..., python 3.11.7; load average 1.6/1.6/1.6``."""
    load = "/".join(f"{x:.2f}" for x in machine.get("load_average", ()))
    return (f"{machine.get('cpus')} CPUs, {machine.get('memory_gib')} GiB, {machine.get('platform')}, python "
            f"{machine.get('python')}" + (f"; load average {load}" if load else ""))


__all__ = ["machine_info", "load_average_text", "describe"]
