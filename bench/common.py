"""What every benchmark does the same way: run a measurement in a fresh child process, and save its result.

* :func:`run_child` runs ``python -m bench.bench_<name> --child SPEC`` (a fresh interpreter, so its peak RSS and
  its decoder are its own) and returns the JSON dict the child printed last;
* :func:`child_main` is that child's side, called first in a benchmark's ``main`` when ``--child`` is given;
* :func:`save_result` prints a result's markdown summary and writes its JSON under ``bench/out``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Mapping

from motionmatch.table import jsonable

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ChildFailed(RuntimeError):
    """A benchmark's child process exited non-zero or ran past its time limit."""


def run_child(module: str, spec: dict, timeout_s: float, env: Mapping[str, str] | None = None,
              what: str = "") -> dict:
    """Run ``python -m MODULE --child JSON(spec)`` from the project root; the dict it printed on its last line.

    ``env`` adds to (or overrides) this process's environment; the project root is put first on PYTHONPATH
    unless ``env`` sets PYTHONPATH itself. ChildFailed with the tail of its stderr when it fails.
    """
    python_path = os.pathsep.join([str(PROJECT_ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH")
                                                         else []))
    full_env = {**os.environ, "PYTHONPATH": python_path, "TQDM_DISABLE": "1", **(env or {})}
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


def _plain(value):
    """numpy values (and anything json cannot write) for json.dumps: the package's one coercer, else str."""
    plain = jsonable(value)
    return str(plain) if plain is value else plain


def save_result(result: dict, out: Path, label: str = "") -> dict:
    """Print ``result["summary"]``, write ``result`` as JSON to ``out``; return it."""
    print(result["summary"])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=_plain))
    if label:
        seconds = result.get("seconds_total") or result.get("elapsed_s")
        print(f"\n({label} bench: {seconds:.0f} s; JSON: {out})" if seconds else f"\n({label} bench; JSON: {out})")
    return result
