"""Moved to :mod:`bench.harness` (``from bench.harness import run_child, child_main, save_result``).

Kept only for ``bench/bench_pose.py``, which the pose work has open and still imports from here; delete this
module once it imports ``bench.harness``.
"""
from bench.harness import ChildFailed, child_main, run_child, save_result

__all__ = ["ChildFailed", "child_main", "run_child", "save_result"]
