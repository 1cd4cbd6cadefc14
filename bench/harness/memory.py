"""Peak memory, measured one way: a process's own high-water mark, or a process tree sampled while a block runs."""
from __future__ import annotations

import resource
import threading


def own_peak_mib() -> float:
    """This process's peak resident memory in MiB.

    ``VmHWM`` in /proc/self/status belongs to this process image alone; ``getrusage().ru_maxrss`` is kept across
    ``exec`` on Linux, so in a child it can report the parent's peak, and is only the fallback off Linux.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_mib() -> float:
    """The largest peak resident memory of this process's finished (waited-for) children, in MiB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


class PeakRss:
    """Samples the resident memory of this process and its children every ``interval_s``; ``peak_mb`` after
    the ``with`` block (for in-process servers and pools whose memory is not this process's VmHWM)."""

    def __init__(self, interval_s: float = 0.05):
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def current_bytes() -> int:
        import psutil

        process = psutil.Process()
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self.current_bytes())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "PeakRss":
        self.peak_bytes = self.current_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self.current_bytes())

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 2**20


__all__ = ["own_peak_mib", "children_peak_mib", "PeakRss"]
