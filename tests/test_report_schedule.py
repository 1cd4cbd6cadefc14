"""`motionmatch report` runs notebooks side by side only when nothing stops them (real kernels, tiny notebooks).

A notebook declares ``"motionmatch": {"needs": [...], "locks": [...]}`` in its metadata. The tiny notebooks
here wait for each other's marker files, so a schedule that ran them one after the other would time out:
the side-by-side case is proven by the files, not by timing.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from motionmatch.errors import ParameterError
from motionmatch.report.notebooks import NOTEBOOKS_DIR, notebook_plan, run_all

WAIT_S = 90  # a marker that never comes: the two notebooks were not run side by side


def tiny_notebook(folder: Path, name: str, code: str, needs=(), locks=()) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["motionmatch"] = {"needs": list(needs), "locks": list(locks)}
    parameters = nbformat.v4.new_code_cell('marks = ""')
    parameters.metadata["tags"] = ["parameters"]
    helpers = ("import time\nfrom pathlib import Path\nmarks = Path(marks)\n"
               "def mark(name):\n    (marks / name).touch()\n"
               f"def wait_for(name):\n    deadline = time.time() + {WAIT_S}\n"
               "    while not (marks / name).exists():\n"
               "        assert time.time() < deadline, f'{name} never came: not run side by side'\n"
               "        time.sleep(0.05)\n")
    nb.cells = [parameters, nbformat.v4.new_code_cell(helpers), nbformat.v4.new_code_cell(code)]
    path = folder / name
    nbformat.write(nb, str(path))
    return path


def test_independent_notebooks_run_together_a_need_waits_and_a_lock_is_held_by_one(tmp_path):
    notebooks, marks = tmp_path / "notebooks", tmp_path / "marks"
    notebooks.mkdir()
    marks.mkdir()
    tiny_notebook(notebooks, "01-a.ipynb", "mark('a_started')\nwait_for('b_started')\nmark('a_done')")
    tiny_notebook(notebooks, "02-b.ipynb", "mark('b_started')\nwait_for('a_started')\ntime.sleep(1)\nmark('b_done')",
                  locks=["milvus"])
    tiny_notebook(notebooks, "03-c.ipynb",  # needs 01; locks what 02 holds: starts after both
                  "assert (marks / 'a_done').exists() and (marks / 'b_done').exists()\nmark('c_done')",
                  needs=["01"], locks=["milvus"])
    done = run_all(tmp_path / "out", {"marks": str(marks)}, html=False, jobs=2, notebooks_dir=notebooks)
    assert [path.name for path in done] == ["01-a.ipynb", "02-b.ipynb", "03-c.ipynb"]  # notebook order
    assert (marks / "c_done").exists()


def test_after_a_failure_nothing_else_starts_and_the_error_is_raised(tmp_path):
    import papermill

    notebooks, marks = tmp_path / "notebooks", tmp_path / "marks"
    notebooks.mkdir()
    marks.mkdir()
    tiny_notebook(notebooks, "01-fails.ipynb", "raise RuntimeError('broken on purpose')")
    tiny_notebook(notebooks, "02-after.ipynb", "mark('after_ran')", needs=["01"])
    with pytest.raises(papermill.PapermillExecutionError, match="broken on purpose"):
        run_all(tmp_path / "out", {"marks": str(marks)}, html=False, jobs=2, notebooks_dir=notebooks)
    assert not (marks / "after_ran").exists()


def test_bad_jobs_and_needs_that_never_finish_are_clear_errors(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    tiny_notebook(notebooks, "01-a.ipynb", "pass", needs=["02"])
    tiny_notebook(notebooks, "02-b.ipynb", "pass", needs=["01"])
    for jobs in (0, "two"):
        with pytest.raises(ParameterError, match="whole number >= 1"):
            run_all(tmp_path / "out", {}, html=False, jobs=jobs, notebooks_dir=notebooks)
    monkeypatch.setenv("MOTIONMATCH_REPORT_JOBS", "-1")
    with pytest.raises(ParameterError, match="MOTIONMATCH_REPORT_JOBS"):
        run_all(tmp_path / "out", {}, html=False, notebooks_dir=notebooks)
    with pytest.raises(ParameterError, match="wait for each other"):
        run_all(tmp_path / "out", {}, html=False, jobs=2, notebooks_dir=notebooks)


def _code(path: Path) -> str:
    nb = json.loads(path.read_text())
    return "\n".join("".join(cell["source"]) for cell in nb["cells"] if cell["cell_type"] == "code")


@pytest.mark.parametrize("path", sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb")), ids=lambda p: p.name[:2])
def test_each_notebook_declares_what_it_needs_and_locks(path):
    """A notebook that opens Milvus locks it (one process per Lite file); one that reads the clips table
    notebook 01 writes needs 01; searching the index needs the notebook that builds it (02)."""
    plan, code = notebook_plan(path), _code(path)
    assert set(plan.locks) <= {"milvus"} and all(re.fullmatch(r"\d\d", need) for need in plan.needs)
    assert ("milvus" in plan.locks) == bool(re.search(r"milvus_uri", code)), "opens Milvus: lock 'milvus'"
    reads_table = plan.prefix != "01" and bool(re.search(r"\bembeddings_dir\b", code))
    assert reads_table == ("01" in plan.needs or "02" in plan.needs), "reads notebook 01's table: need '01'"
    assert ("collection" in re.findall(r'setting\("(\w+)"', code)) == (plan.prefix in ("02", "03"))
    if plan.prefix == "03":
        assert plan.needs == ("02",)


def test_side_by_side_kernels_start_in_their_notebooks_folder_and_leave_ours_alone(tmp_path, monkeypatch):
    """papermill's cwd= changes the whole process's directory, a race between threads; the kernels must still
    start in the notebooks' folder, and relative output folders land where the caller meant."""
    notebooks, marks = tmp_path / "notebooks", tmp_path / "marks"
    notebooks.mkdir()
    marks.mkdir()
    monkeypatch.chdir(tmp_path)
    for name, other in (("01-a.ipynb", "b"), ("02-b.ipynb", "a")):
        me = name[3]
        tiny_notebook(notebooks, name, f"import os\nassert Path(os.getcwd()) == Path({str(notebooks)!r}), os.getcwd()\n"
                                       f"mark('{me}_started')\nwait_for('{other}_started')")
    done = run_all("out", {"marks": str(marks)}, html=True, jobs=2, notebooks_dir=notebooks)
    assert Path.cwd() == tmp_path
    assert [path.parent for path in done] == [tmp_path / "out"] * 2
    assert all(path.with_suffix(".html").exists() for path in done) and not (notebooks / "out").exists()
