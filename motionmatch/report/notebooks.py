"""Run the numbered notebooks headlessly with papermill and render code-free HTML reports.

Executed notebooks and HTML go to ``reports/`` (git-ignored). Plotly figures are written
with the ``notebook`` renderer, which embeds plotly.js in the page, so the HTML works with
no internet (Plotly 6+ would otherwise leave figures out of nbconvert's HTML).
"""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..config import PROJECT_ROOT, REPORTS_DIR, absolute_environment, setting
from ..errors import ParameterError

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"


def list_notebooks(notebooks_dir: str | Path = NOTEBOOKS_DIR) -> list[Path]:
    """The numbered notebooks, in order."""
    return sorted(p for p in Path(notebooks_dir).glob("[0-9][0-9]-*.ipynb"))


def notebook_parameters(path: str | Path) -> dict[str, Any]:
    """The parameters a notebook declares (its cell tagged ``parameters``)."""
    import papermill

    return papermill.inspect_notebook(str(path))


def run_notebook(notebook: str | Path, out_dir: str | Path, parameters: dict[str, Any] | None = None,
                 html: bool = True, kernel_name: str = "python3", timeout_s: int = 1800) -> Path:
    """Execute one notebook with papermill into ``out_dir`` and, optionally, render HTML.

    Only parameters the notebook declares are passed; an unknown one is an error, so a
    typo never runs silently with defaults.
    """
    import papermill

    notebook = Path(notebook)
    if not notebook.exists():
        raise ParameterError(f"notebook {notebook} does not exist; available: {[p.name for p in list_notebooks()]}")
    declared = notebook_parameters(notebook)
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ParameterError(f"{notebook.name} has no parameter(s) {unknown}; it declares {sorted(declared)}")
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / notebook.name
    # The kernel starts in the notebook's folder through nbclient's resources (its own process's cwd), not
    # papermill's cwd=, which changes this whole process's directory: no place for notebooks run side by side.
    with kernel_environment():
        papermill.execute_notebook(str(notebook.absolute()), str(executed), parameters=parameters,
                                   kernel_name=kernel_name, progress_bar=False, execution_timeout=timeout_s,
                                   stdout_file=EstimateEcho(notebook.name),
                                   resources={"metadata": {"path": str(notebook.absolute().parent)}})
    if html:
        render_html(executed)
    return executed


@contextmanager
def kernel_environment() -> Iterator[None]:
    """The environment a notebook kernel inherits, set while the block runs and restored after it.

    plotly.js embedded in the page; no progress bars in shared reports; MOTIONMATCH_* folders made
    absolute, since the kernel runs in notebooks/, not where they were set. :func:`run_all` sets it once
    around all its notebooks, so kernels started side by side never see another thread restore it.
    """
    settings = {"PLOTLY_RENDERER": "notebook", "TQDM_DISABLE": "1", **absolute_environment()}
    previous = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class EstimateEcho:
    """A file papermill writes a running notebook's stdout to: passes the extraction estimate to the terminal.

    Everything else a notebook prints stays in the notebook; the estimate (and its advice) is what
    someone watching ``make demo`` needs before the notebook ends, perhaps hours later.
    """

    def __init__(self, notebook_name: str, stream: Any = None):
        self.notebook_name = notebook_name
        self.stream = stream  # None: sys.stdout at the time of writing
        self._pending = ""  # a line not yet ended
        self._inside = False  # within an estimate message (its first line, then indented advice)

    def write(self, text: str) -> int:
        from ..extract.estimate import PREFIX

        stream = self.stream or sys.stdout
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._inside = line.startswith(PREFIX) or (self._inside and line.startswith("  "))
            if self._inside:
                stream.write(f"[report] {self.notebook_name}: {line}\n")
        stream.flush()
        return len(text)

    def flush(self) -> None:
        (self.stream or sys.stdout).flush()


def notebook_timings(executed_notebook: str | Path) -> dict[str, Any]:
    """Execution time of a notebook papermill ran, and its slowest cell (from papermill's metadata).

    Returns ``{"notebook", "seconds", "slowest_cell", "slowest_seconds", "slowest_source"}``;
    ``slowest_cell`` is the cell's execution count (``In [n]`` in the executed notebook) and
    ``slowest_source`` its first statement that is not an import.
    """
    import nbformat

    executed_notebook = Path(executed_notebook)
    nb = nbformat.read(str(executed_notebook), as_version=4)
    cells = [(cell.get("execution_count") or 0, float(cell.metadata.get("papermill", {}).get("duration") or 0.0),
              cell.source) for cell in nb.cells if cell.cell_type == "code"]
    total = nb.metadata.get("papermill", {}).get("duration")
    seconds = float(total) if total is not None else sum(duration for _, duration, _ in cells)
    count, slowest, source = max(cells, key=lambda cell: cell[1], default=(0, 0.0, ""))
    lines = [line.strip() for line in source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    statement = next((line for line in lines if not line.startswith(("import ", "from "))), lines[0] if lines else "")
    return {"notebook": executed_notebook.name, "seconds": seconds, "slowest_cell": count,
            "slowest_seconds": slowest, "slowest_source": statement[:70]}


def format_timings(executed_notebooks: Sequence[str | Path], wall_s: float | None = None) -> str:
    """A table of each notebook's time and its slowest cell, for the summary at the end of ``make demo``.

    ``wall_s``: the run's wall-clock time, shown beside the summed notebook times (notebooks may run side by side).
    """
    from ..extract.estimate import format_duration

    rows = [notebook_timings(path) for path in executed_notebooks]
    if not rows:
        return "notebook times: no notebook was run"
    width = max(len(row["notebook"]) for row in rows)
    wall = "" if wall_s is None else f"; wall clock {format_duration(wall_s)}"
    lines = [f"notebook times (total {format_duration(sum(row['seconds'] for row in rows))}{wall}):"]
    for row in rows:
        lines.append(f"  {row['notebook']:<{width}}  {format_duration(row['seconds']):>10}   slowest cell "
                     f"In [{row['slowest_cell']}] {format_duration(row['slowest_seconds'])}: {row['slowest_source']}")
    return "\n".join(lines)


def render_html(executed_notebook: str | Path) -> Path:
    """Code-free HTML of an executed notebook (``--no-input``), next to it."""
    import nbformat
    from nbconvert import HTMLExporter

    from .records import RECORD_MIME

    executed_notebook = Path(executed_notebook)
    nb = nbformat.read(str(executed_notebook), as_version=4)
    for cell in nb.cells:  # recorded test values are for machines, not readers
        if cell.get("outputs"):
            cell["outputs"] = [o for o in cell["outputs"] if RECORD_MIME not in o.get("data", {})]
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb)
    target = executed_notebook.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


@dataclass(frozen=True)
class NotebookPlan:
    """What a notebook needs before it may run, from its metadata ``"motionmatch": {"needs": [...], "locks": [...]}``.

    ``needs``: the notebooks (two-digit prefixes) whose outputs it reads; ``locks``: what only one notebook
    may use at a time. ``"milvus"`` is the Milvus Lite file, which one process opens at a time.
    """

    notebook: Path
    needs: tuple[str, ...] = ()
    locks: tuple[str, ...] = ()

    @property
    def prefix(self) -> str:
        return self.notebook.name[:2]


def notebook_plan(path: str | Path) -> NotebookPlan:
    """The :class:`NotebookPlan` a notebook declares (none declared: it needs nothing and locks nothing)."""
    import nbformat

    path = Path(path)
    declared = nbformat.read(str(path), as_version=4).metadata.get("motionmatch", {})
    return NotebookPlan(path, tuple(declared.get("needs", ())), tuple(declared.get("locks", ())))


def run_all(out_dir: str | Path = REPORTS_DIR, parameters: dict[str, Any] | None = None,
            only: Sequence[str] | None = None, html: bool = True, jobs: int | str | None = None,
            notebooks_dir: str | Path = NOTEBOOKS_DIR) -> list[Path]:
    """Run the numbered notebooks with the shared parameters each one declares; ``jobs`` of them at once.

    A notebook starts, in number order, once every selected notebook it ``needs`` has finished and no
    running one holds a lock it takes (:class:`NotebookPlan`); ``jobs`` defaults to the ``report_jobs``
    setting. Notebooks left out by ``only`` count as done: their outputs are expected to be there already.
    After a failure no other notebook starts; those running finish, then the first error is raised.
    Prints each notebook's time and slowest cell as it finishes; :func:`format_timings` of the returned
    paths (in notebook order) gives the table for a final summary.
    """
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    jobs = _parse_jobs(setting("report_jobs", "" if jobs is None else str(jobs)))
    parameters = parameters or {}
    plans = [notebook_plan(path) for path in list_notebooks(notebooks_dir)
             if not only or any(path.name.startswith(prefix) for prefix in only)]
    selected = {plan.prefix for plan in plans}
    pending, running, finished, done, errors = list(plans), {}, set(), {}, []
    with kernel_environment(), ThreadPoolExecutor(jobs, thread_name_prefix="notebook") as pool:
        while pending or running:
            for plan in list(pending):
                if errors or len(running) >= jobs:
                    break
                waiting = [need for need in plan.needs if need in selected and need not in finished]
                held = {lock for other in running.values() for lock in other.locks}
                if waiting or held.intersection(plan.locks):
                    continue
                pending.remove(plan)
                running[pool.submit(_run_one, plan.notebook, out_dir, parameters, html)] = plan
            if not running:  # nothing can start: a need that never finishes (a cycle, or a failure)
                if errors:
                    break
                raise ParameterError(f"notebooks {[p.notebook.name for p in pending]} wait for each other: check the "
                                     "'needs' in their metadata")
            for future in wait(running, return_when=FIRST_COMPLETED).done:
                plan = running.pop(future)
                try:
                    done[plan.prefix] = future.result()
                except Exception as error:  # noqa: BLE001 - kept, and raised once the running ones end
                    errors.append(error)
                finished.add(plan.prefix)
    if errors:
        raise errors[0]
    return [done[plan.prefix] for plan in plans]


def _parse_jobs(value: str) -> int:
    try:
        jobs = int(value)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise ParameterError(f"report jobs must be a whole number >= 1 (MOTIONMATCH_REPORT_JOBS or --jobs), got {value!r}")
    return jobs


def _run_one(notebook: Path, out_dir: str | Path, parameters: dict[str, Any], html: bool) -> Path:
    declared = notebook_parameters(notebook)
    own = {k: v for k, v in parameters.items() if k in declared}
    started = time.perf_counter()
    _say(f"[report] running {notebook.name} ...")
    executed = run_notebook(notebook, out_dir, own, html=html)
    timing = notebook_timings(executed)
    _say(f"[report] {notebook.name} done in {time.perf_counter() - started:.0f} s (slowest cell "
         f"In [{timing['slowest_cell']}], {timing['slowest_seconds']:.0f} s) -> "
         f"{executed.with_suffix('.html' if html else '.ipynb')}")
    return executed


def _say(line: str) -> None:
    """One line to the terminal in one write, so lines of notebooks running side by side never interleave."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
