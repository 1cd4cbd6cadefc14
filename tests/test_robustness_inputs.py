"""Hostile inputs and bad parameters, through discovery + extraction, in the CLI and the API alike.

One generated folder (:mod:`hostile`) holds every odd entry next to ordinary videos. It is
extracted once in process (``load_source`` + ``extract_embeddings``) and once by the CLI in a
subprocess (with decoding in a worker process). Each case is then checked in both runs: broken
files are skipped with their file and reason in ``failures.csv`` and the summary, the run goes on,
and valid-but-odd videos are embedded. Bad parameters are refused before any work starts.
"""
from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hostile import CLI_TIMEOUT_S, IS_ROOT, ROOT_SKIP_REASON, HostileCase, cli, record_tally, write_hostile_folder

from motionmatch.data import sources as datasets
from motionmatch.extract import local as pipeline
from motionmatch import table as table_module
from motionmatch.video.clips import ClipSpec
from motionmatch.encoders import build_encoder
from motionmatch.errors import ParameterError, StoreError
from motionmatch.index.store import MotionStore

SPEC = ClipSpec(frames_per_clip=8, frame_stride=2, clips_per_video=2)
SPEC_ARGS = ["--encoder", "flow", "--frames-per-clip", "8", "--frame-stride", "2", "--clips-per-video", "2"]
pytestmark = pytest.mark.timeout(300)  # an in-process hang (e.g. opening a FIFO) fails instead of blocking the suite
CASE_NAMES = ["plain_0", "plain_1", "one_frame", "uhd_4k", "tall_16x1000", "wide_1000x16", "rotated_90",
              "variable_frame_rate", "unicode_spaces", "zero_bytes", "truncated", "text_as_mp4", "audio_only",
              "fifo_as_mp4", "directory_named_mp4", "symlink_loop_dir", "symlink_loop_file",
              "symlink_loop_file_2", "dangling_symlink"]




@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile") / "hostile"


@pytest.fixture(scope="module")
def cases(hostile_root) -> dict[str, HostileCase]:
    """Every entry of the generated hostile folder, by name."""
    return {case.name: case for case in write_hostile_folder(hostile_root)}


@pytest.fixture(scope="module")
def api_run(cases, hostile_root, tmp_path_factory) -> dict:
    """Discovery + extraction in process; a second run shows what is skipped as done."""
    out = tmp_path_factory.mktemp("api") / "emb"
    manifest, failures = datasets.load_source(hostile_root)
    encoder = build_encoder("flow")
    summary = pipeline.extract_embeddings(manifest, encoder, out, clip_spec=SPEC, discovery_failures=failures,
                                          progress=False)
    rerun = pipeline.extract_embeddings(manifest, encoder, out, clip_spec=SPEC, discovery_failures=failures,
                                        progress=False)
    return {"summary": summary.as_dict(), "rerun": rerun.as_dict(), "text": str(summary), "out": out,
            "failures": pd.read_csv(out / "failures.csv", keep_default_na=False),
            "table": table_module.load_embeddings(out)}


@pytest.fixture(scope="module")
def cli_run(cases, hostile_root, tmp_path_factory) -> dict:
    """The same folder through `motionmatch extract`, decoding in a worker process."""
    out = tmp_path_factory.mktemp("cli") / "emb"
    started = time.monotonic()
    done = cli("extract", str(hostile_root), "--out", str(out), "--workers", "1", *SPEC_ARGS)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    return {"summary": json.loads((out / "summary.json").read_text()), "text": done.stdout, "out": out,
            "failures": pd.read_csv(out / "failures.csv", keep_default_na=False),
            "table": table_module.load_embeddings(out), "seconds": seconds}


def _expected(cases: dict[str, HostileCase], expect: str) -> list[HostileCase]:
    return [case for case in cases.values() if case.expect == expect]


# ----------------------------------------------------------------------------- one test per hostile entry
@pytest.mark.parametrize("name", CASE_NAMES)
def test_each_hostile_entry_gets_the_right_outcome_in_cli_and_api(name, cases, api_run, cli_run):
    case = cases[name]
    outcomes = []
    for run_name, run in (("api", api_run), ("cli", cli_run)):
        failures = run["failures"]
        mine = failures[failures.path == case.path]
        table = run["table"]
        rows = table[table.video_path == case.path]
        if case.expect == "embedded":
            assert mine.empty, f"{run_name}: {case.path} was skipped: {mine.to_dict('records')}"
            assert len(rows) >= 1, f"{run_name}: no rows for {case.path}"
            vectors = table_module.embedding_matrix(rows)
            assert np.isfinite(vectors).all()
            np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
            outcomes.append(len(rows))
        else:
            assert len(mine) == 1, f"{run_name}: {case.path} should be listed once in failures.csv, got {len(mine)}"
            stage = "discover" if case.expect == "discover" else "decode"
            assert mine.stage.iloc[0] == stage
            assert case.reason in mine.reason.iloc[0].lower(), mine.reason.iloc[0]
            assert rows.empty
            # the printed summary names the file and the reason
            assert f"{case.path}: {mine.reason.iloc[0]}" in run["text"]
            outcomes.append(mine.reason.iloc[0].replace(case.path, Path(case.path).name)[:110])
    if case.expect == "embedded":
        record_tally("hostile inputs", f"{name}: {case.description}", "embedded (CLI and API)",
                     f"{outcomes[0]} clip rows (API), {outcomes[1]} (CLI), unit-norm")
    else:
        record_tally("hostile inputs", f"{name}: {case.description}",
                     f"{'skipped at discovery' if case.expect == 'discover' else 'failed'}: {outcomes[0]}",
                     "0 rows; listed in failures.csv (CLI and API)")


def test_odd_but_valid_videos_keep_their_properties(cases, api_run):
    table = api_run["table"]
    one_frame = table[table.video_path == cases["one_frame"].path]
    assert one_frame.padded_frames.tolist() == [SPEC.frames_per_clip - 1]  # one real frame, padded to a clip
    vfr = table[table.video_path == cases["variable_frame_rate"].path].sort_values("clip_index")
    # variable frame rate: clip times come from the real timestamps (the last frame is at 1.41 s, not 23/12 s)
    assert vfr.end_s.max() <= 1.5 and vfr.start_s.iloc[-1] > vfr.start_s.iloc[0]


def test_summaries_count_embedded_skipped_and_failed(cases, api_run, cli_run):
    embedded, failed, discover = (_expected(cases, e) for e in ("embedded", "failed", "discover"))
    for run in (api_run, cli_run):
        summary = run["summary"]
        assert summary["embedded"] == len(embedded)
        assert summary["failed"] == len(failed)
        assert summary["videos_total"] == len(embedded) + len(failed)
        assert summary["skipped_done"] == 0
        stages = run["failures"].stage.value_counts().to_dict()
        assert stages == {"decode": len(failed), "discover": len(discover)}
        assert run["table"].video_path.nunique() == len(embedded)
        assert run["table"].clip_id.is_unique
    assert f"{len(embedded)} embedded, 0 already done, {len(failed)} failed" in cli_run["text"]
    rerun = api_run["rerun"]  # finished videos are skipped; bad files are tried again and reported again
    assert (rerun["embedded"], rerun["skipped_done"], rerun["failed"]) == (0, len(embedded), len(failed))
    assert cli_run["seconds"] < CLI_TIMEOUT_S
    record_tally("hostile inputs", "whole hostile folder, one run",
                 f"API and CLI: {len(embedded)} embedded, {len(failed)} failed, {len(discover)} skipped at discovery; "
                 f"rerun: {rerun['skipped_done']} skipped as done, {rerun['embedded']} recomputed",
                 f"{len(api_run['table'])} rows (API) / {len(cli_run['table'])} rows (CLI), clip_id unique")


def test_permission_denied_file_is_skipped_with_its_reason(cases, api_run, cli_run):
    if IS_ROOT:
        pytest.skip(ROOT_SKIP_REASON)
    case = cases["permission_denied"]
    for run in (api_run, cli_run):
        mine = run["failures"][run["failures"].path == case.path]
        assert len(mine) == 1 and "permission denied" in mine.reason.iloc[0]
    record_tally("hostile inputs", f"permission_denied: {case.description}", f"failed: {mine.reason.iloc[0]}",
                 "0 rows")


# ----------------------------------------------------------------------------- bad parameters, before any work
def _closed_port_uri() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the socket is closed


def _bad_cli_calls(cases: dict[str, HostileCase], root: Path, embeddings: Path, out: Path
                   ) -> list[tuple[str, list[str], str]]:
    query = cases["plain_0"].path
    closed = _closed_port_uri()
    return [
        ("k <= 0", ["search", query, "-k", "0"], "-k must be > 0"),
        ("unknown encoder", ["extract", str(root), "--out", str(out), "--encoder", "nope"],
         "invalid choice: 'nope'"),
        ("frames not a multiple of the tubelet", ["extract", str(root), "--out", str(out), "--encoder",
                                                  "vjepa2-tiny", "--frames-per-clip", "5"], "tubelet size 2"),
        ("missing folder", ["extract", str(out.parent / "no-such-folder"), "--out", str(out), "--encoder", "flow"],
         "does not exist"),
        ("unreachable Milvus (index)", ["index", "--embeddings", str(embeddings), "--milvus-uri", closed],
         f"could not reach the Milvus server at {closed}"),
        ("unreachable Milvus (search)", ["search", query, "--milvus-uri", closed],
         f"could not reach the Milvus server at {closed}"),
    ]


def test_cli_refuses_bad_parameters_before_any_work(cases, hostile_root, api_run, tmp_path):
    out = tmp_path / "never-written"
    for label, args, message in _bad_cli_calls(cases, hostile_root, api_run["out"], out):
        started = time.monotonic()
        done = cli(*args, timeout=60)
        seconds = time.monotonic() - started
        assert done.returncode == 2, f"{label}: rc {done.returncode}\n{done.stderr}"
        assert message in done.stderr, f"{label}: {done.stderr}"
        assert "Traceback" not in done.stderr
        assert seconds < 20, f"{label} took {seconds:.1f} s"
        assert not out.exists(), f"{label}: {out} was written"
        record_tally("parameters refused before work", f"CLI: {label}",
                     f"exit 2 in {seconds:.1f} s: {done.stderr.strip().splitlines()[-1][:110]}", "no output written")


def test_api_refuses_the_same_parameters_before_any_work(hostile_root, tmp_path):
    out = tmp_path / "never-written"
    manifest, _ = datasets.load_source(hostile_root)
    with pytest.raises(ParameterError, match="unknown encoder 'nope'"):
        build_encoder("nope")
    with pytest.raises(ParameterError, match="tubelet size 2"):
        pipeline.extract_embeddings(manifest, build_encoder("vjepa2-tiny"), out,
                                    clip_spec=ClipSpec(frames_per_clip=5, frame_stride=1, clips_per_video=1))
    with pytest.raises(ParameterError, match="does not exist"):
        datasets.load_source(tmp_path / "no-such-folder")
    closed = _closed_port_uri()
    started = time.monotonic()
    with pytest.raises(StoreError, match=f"could not reach the Milvus server at {closed}"):
        MotionStore(closed, "clips", timeout_s=3)
    assert time.monotonic() - started < 10
    assert not out.exists()
    record_tally("parameters refused before work", "API: unknown encoder, tubelet, missing folder, unreachable Milvus",
                 f"ParameterError / StoreError; unreachable server in {time.monotonic() - started:.1f} s",
                 "no output written")


@pytest.mark.slow
def test_notebook_03_refuses_k_0_in_its_first_code_cell(tmp_path):
    papermill = pytest.importorskip("papermill")
    from motionmatch.report.notebooks import list_notebooks, run_notebook

    notebook = next(p for p in list_notebooks() if p.name.startswith("03-"))
    db = tmp_path / "never.db"
    with pytest.raises(papermill.PapermillExecutionError) as raised:
        run_notebook(notebook, tmp_path / "out", {"k": 0, "milvus_uri": str(db),
                                                  "embeddings_dir": str(tmp_path / "none")}, html=False)
    assert raised.value.ename == "ParameterError"
    assert "k must be >= 1, got 0" in raised.value.evalue
    assert not db.exists()  # the store was never opened
    record_tally("parameters refused before work", "notebook 03 with k=0 (papermill)",
                 f"PapermillExecutionError {raised.value.ename}: {raised.value.evalue}", "no store opened")
