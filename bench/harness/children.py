"""A measurement in a fresh interpreter: its peak RSS, its decoder and its imports are its own.

* :func:`run_child` runs ``python -m MODULE --child SPEC`` and returns the JSON dict the child printed last;
* :func:`child_main` is that child's side, called first in a benchmark's ``main`` when ``--child`` is given.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Callable, Mapping, Sequence

from .run import PROJECT_ROOT


class ChildFailed(RuntimeError):
    """A benchmark's child process exited non-zero or ran past its time limit."""


def child_env(env: Mapping[str, str] | None = None, first_paths: Sequence[str] = ()) -> dict:
    """This environment plus ``env``; PYTHONPATH starts with ``first_paths`` and the project root."""
    paths = [*map(str, first_paths), str(PROJECT_ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH")
                                                          else [])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "TQDM_DISABLE": "1", **(env or {})}


def run_child(module: str, spec: dict, timeout_s: float, env: Mapping[str, str] | None = None,
              what: str = "", first_paths: Sequence[str] = (), unset: Sequence[str] = ()) -> dict:
    """Run ``python -m MODULE --child JSON(spec)`` from the project root; the dict it printed on its last line.

    The child gets this environment plus ``env``, without ``unset``, with ``first_paths`` and the project root
    first on PYTHONPATH. ChildFailed with the tail of its stderr when it fails or runs past ``timeout_s``.
    """
    full_env = child_env(env, first_paths)
    for name in unset:
        full_env.pop(name, None)
    label = what or f"{module} child"
    try:
        done = subprocess.run([sys.executable, "-m", module, "--child", json.dumps(spec)], capture_output=True,
                              text=True, timeout=timeout_s, cwd=PROJECT_ROOT, env=full_env)
    except subprocess.TimeoutExpired as error:
        raise ChildFailed(f"{label} timed out after {timeout_s:.0f} s") from error
    if done.returncode != 0:
        raise ChildFailed(f"{label} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_main(spec_json: str, measure: Callable[[dict], dict]) -> dict:
    """The child's side of :func:`run_child`: measure, print the result as one JSON line, return it."""
    result = measure(json.loads(spec_json))
    print(json.dumps(result))
    return result


__all__ = ["ChildFailed", "child_env", "run_child", "child_main"]
