"""Run the numbered notebooks headlessly with papermill and render code-free HTML reports.

Executed notebooks and HTML go to ``reports/`` (git-ignored). Plotly figures are written
with the ``notebook`` renderer, which embeds plotly.js in the page, so the HTML works with
no internet (Plotly 6+ would otherwise leave figures out of nbconvert's HTML).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

from .config import PROJECT_ROOT, REPORTS_DIR
from .errors import ParameterError

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"


def list_notebooks() -> list[Path]:
    """The numbered notebooks, in order."""
    return sorted(p for p in NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb"))


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
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / notebook.name
    # The kernel inherits these: plotly.js embedded in the page; no progress bars in shared reports.
    settings = {"PLOTLY_RENDERER": "notebook", "TQDM_DISABLE": "1"}
    previous = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        papermill.execute_notebook(str(notebook), str(executed), parameters=parameters, kernel_name=kernel_name,
                                   cwd=str(notebook.parent), progress_bar=False, execution_timeout=timeout_s)
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if html:
        render_html(executed)
    return executed


def render_html(executed_notebook: str | Path) -> Path:
    """Code-free HTML of an executed notebook (``--no-input``), next to it."""
    import nbformat
    from nbconvert import HTMLExporter

    from .notebook import RECORD_MIME

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


def run_all(out_dir: str | Path = REPORTS_DIR, parameters: dict[str, Any] | None = None,
            only: Sequence[str] | None = None, html: bool = True) -> list[Path]:
    """Run every numbered notebook in order with the shared parameters each one declares."""
    parameters = parameters or {}
    done = []
    for notebook in list_notebooks():
        if only and not any(notebook.name.startswith(prefix) for prefix in only):
            continue
        declared = notebook_parameters(notebook)
        own = {k: v for k, v in parameters.items() if k in declared}
        started = time.perf_counter()
        print(f"[report] running {notebook.name} ...", flush=True)
        executed = run_notebook(notebook, out_dir, own, html=html)
        print(f"[report] {notebook.name} done in {time.perf_counter() - started:.0f} s -> {executed.with_suffix('.html' if html else '.ipynb')}", flush=True)
        done.append(executed)
    return done
