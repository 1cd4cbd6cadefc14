"""Nothing lost: a killed extraction resumes without recomputing or duplicating, and indexing
through the CLI is an idempotent, fingerprint-aware sync (changed, renamed and removed files).

Everything runs the real CLI (``python -m motionmatch.cli``) in subprocesses on real generated
videos, with the weight-free flow encoder and a Milvus Lite file.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hostile import CLI_TIMEOUT_S, cli_ok, record_tally

from motionmatch.data import sources as datasets
from motionmatch.extract import local as pipeline
from motionmatch import table as table_module
from motionmatch.video.clips import ClipSpec
from motionmatch.config import PROJECT_ROOT
from motionmatch.encoders import build_encoder
from motionmatch.index.store import MotionStore
from motionmatch.data.synthetic import MOTION_CLASSES, render_motion_clip
from motionmatch.video import write_video

N_VIDEOS = 12
CLIPS_PER_VIDEO = 2
SPEC = ClipSpec(frames_per_clip=16, frame_stride=1, clips_per_video=CLIPS_PER_VIDEO)
SPEC_ARGS = ["--encoder", "flow", "--frames-per-clip", "16", "--frame-stride", "1",
             "--clips-per-video", str(CLIPS_PER_VIDEO)]
pytestmark = pytest.mark.timeout(300)  # nothing may hang: a stuck test fails after 5 minutes
INDEX_LINE = re.compile(r"(\d+) -> (\d+) rows; (\d+) videos written \((\d+) changed\), (\d+) unchanged, (\d+) removed")






def index_counts(stdout: str) -> dict[str, int]:
    """The numbers of the IndexSummary line the CLI prints."""
    match = INDEX_LINE.search(stdout)
    assert match, f"no index summary in:\n{stdout}"
    names = ("rows_before", "rows_after", "written", "changed", "unchanged", "removed")
    return dict(zip(names, map(int, match.groups())))


def write_videos(root: Path, count: int, num_frames: int = 40, seed: int = 0) -> list[Path]:
    """``count`` real labelled motion videos, ``root/<label>/vNN.mp4``."""
    paths = []
    for index in range(count):
        label = MOTION_CLASSES[index % len(MOTION_CLASSES)]
        frames = render_motion_clip(label, "studio", np.random.default_rng([seed, index]), num_frames=num_frames,
                                    size=(96, 64))
        paths.append(write_video(root / label / f"v{index:02d}.mp4", frames, fps=24))
    return paths


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume") / "videos"
    write_videos(root, N_VIDEOS)
    return root


@pytest.fixture(scope="module")
def clean_table(videos, tmp_path_factory) -> pd.DataFrame:
    """The table of an uninterrupted run (in process, same settings as the CLI runs)."""
    out = tmp_path_factory.mktemp("clean") / "emb"
    manifest, failures = datasets.load_source(videos)
    summary = pipeline.extract_embeddings(manifest, build_encoder("flow"), out, clip_spec=SPEC, progress=False,
                                          discovery_failures=failures)
    assert summary.embedded == N_VIDEOS and summary.failed == 0
    return table_module.load_embeddings(out)


def kill_when(command: list[str], ready, what: str) -> None:
    """Start ``command`` (cwd: the project), SIGKILL it as soon as ``ready()`` is true; it must not end first."""
    child = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=dict(os.environ, TQDM_DISABLE="1"))
    deadline = time.monotonic() + CLI_TIMEOUT_S
    try:
        while not ready():
            assert child.poll() is None, f"the run ended before it could be killed: make {what} longer"
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL


def _finished_parts(out: Path) -> dict[str, int]:
    folder = table_module.parts_dir(out)
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.parquet")} if folder.is_dir() else {}


@pytest.mark.slow
def test_killed_extraction_resumes_without_recomputing_or_duplicating(videos, clean_table, tmp_path):
    out = tmp_path / "emb"
    command = [sys.executable, "-m", "motionmatch.cli", "extract", str(videos), "--out", str(out), *SPEC_ARGS]
    kill_when(command, lambda: len(_finished_parts(out)) >= 3, "the videos")
    done_before = _finished_parts(out)
    assert 3 <= len(done_before) < N_VIDEOS, f"{len(done_before)} videos done when killed"

    cli_ok("extract", str(videos), "--out", str(out), *SPEC_ARGS)
    second = json.loads((out / "summary.json").read_text())

    # no finished video recomputed: counts and untouched files
    assert second["embedded"] == N_VIDEOS - len(done_before)
    assert second["skipped_done"] == len(done_before)
    assert second["failed"] == 0
    after = _finished_parts(out)
    assert {name: after[name] for name in done_before} == done_before, "a finished part was rewritten"
    assert len(after) == N_VIDEOS

    # no duplicate rows, and the same table as a run that was never interrupted
    table = table_module.load_embeddings(out)
    assert table.clip_id.is_unique
    assert len(table) == N_VIDEOS * CLIPS_PER_VIDEO
    resumed = table.sort_values("clip_id").reset_index(drop=True)
    clean = clean_table.sort_values("clip_id").reset_index(drop=True)
    assert resumed.clip_id.tolist() == clean.clip_id.tolist()
    assert resumed.video_fingerprint.tolist() == clean.video_fingerprint.tolist()
    np.testing.assert_allclose(resumed[["start_s", "end_s"]].to_numpy(), clean[["start_s", "end_s"]].to_numpy())
    np.testing.assert_allclose(table_module.embedding_matrix(resumed), table_module.embedding_matrix(clean), atol=1e-6)
    record_tally("faults injected and survived", "SIGKILL of `motionmatch extract` after "
                 f"{len(done_before)}/{N_VIDEOS} videos, then rerun",
                 f"survived: rerun embedded {second['embedded']}, skipped {second['skipped_done']}, "
                 f"{len(done_before)} finished parts untouched (mtime)",
                 f"{len(table)} rows = {N_VIDEOS} x {CLIPS_PER_VIDEO}, clip_id unique, equal to a clean run (allclose)")


def _same_size_different_content(path: Path, seed: int) -> None:
    """Replace ``path`` by another real video of exactly the same size and the same mtime.

    The new video is encoded at a lower quality (so it is smaller) and padded to the old size with
    an ISO-BMFF ``free`` box, which players ignore. Only a content fingerprint can tell it changed.
    """
    before = path.stat()
    replacement = path.with_name("replacement.tmp.mp4")
    frames = render_motion_clip("zoom_in", "studio", np.random.default_rng(seed), num_frames=40, size=(96, 64))
    write_video(replacement, frames, fps=24, crf=40)
    data = replacement.read_bytes()
    replacement.unlink()
    padding = before.st_size - len(data)
    assert padding >= 8, "the replacement is not smaller than the original"
    path.write_bytes(data + padding.to_bytes(4, "big") + b"free" + bytes(padding - 8))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def _store_videos(uri: str, collection: str) -> pd.DataFrame:
    with MotionStore(uri, collection) as store:  # closed again before the next CLI call takes the file
        return store.videos()


@pytest.mark.slow
def test_cli_index_is_an_idempotent_fingerprint_aware_sync(tmp_path):
    videos = tmp_path / "videos"
    paths = write_videos(videos, 6, seed=7)
    out, uri, collection = tmp_path / "emb", str(tmp_path / "mm.db"), "sync"
    store_args = ["--embeddings", str(out), "--milvus-uri", uri, "--collection", collection]
    rows = 6 * CLIPS_PER_VIDEO

    # 1. the same folder indexed twice: the same rows, nothing rewritten
    cli_ok("extract", str(videos), "--out", str(out), *SPEC_ARGS)
    first = index_counts(cli_ok("index", *store_args))
    second = index_counts(cli_ok("index", *store_args))
    assert first["rows_after"] == second["rows_after"] == rows
    assert second["written"] == 0 and second["unchanged"] == 6
    record_tally("idempotent indexing", "index the same folder twice (CLI)",
                 f"second run wrote {second['written']} videos, {second['unchanged']} unchanged",
                 f"{first['rows_after']} -> {second['rows_after']} rows")

    # 2. same size, same mtime, different content: found by the content fingerprint
    changed = paths[0]
    old_fingerprint = _store_videos(uri, collection).set_index("video_path").video_fingerprint[str(changed)]
    _same_size_different_content(changed, seed=99)
    cli_ok("extract", str(videos), "--out", str(out), *SPEC_ARGS)
    extract_summary = json.loads((out / "summary.json").read_text())
    assert (extract_summary["embedded"], extract_summary["skipped_done"], extract_summary["failed"]) == (1, 5, 0)
    synced = index_counts(cli_ok("index", *store_args))
    assert (synced["written"], synced["changed"], synced["unchanged"]) == (1, 1, 5)
    stored = _store_videos(uri, collection).set_index("video_path")
    table = table_module.load_embeddings(out)
    new_fingerprint = table[table.video_path == str(changed)].video_fingerprint.iloc[0]
    assert new_fingerprint != old_fingerprint and stored.video_fingerprint[str(changed)] == new_fingerprint
    assert synced["rows_after"] == len(table) == rows
    record_tally("idempotent indexing", "file replaced, same size and mtime (os.utime back)",
                 f"re-embedded {extract_summary['embedded']}, index replaced {synced['changed']}",
                 f"{synced['rows_after']} rows, stored fingerprint = new fingerprint")

    # 3. one file removed and one renamed (identical bytes, new path); first without pruning
    removed, renamed = paths[1], paths[2]
    renamed_to = renamed.with_name("renamed copy.mp4")
    renamed_fingerprint = stored.video_fingerprint[str(renamed)]
    removed.unlink()
    renamed.rename(renamed_to)
    cli_ok("extract", str(videos), "--out", str(out), *SPEC_ARGS)
    extract_summary = json.loads((out / "summary.json").read_text())
    assert (extract_summary["embedded"], extract_summary["skipped_done"]) == (1, 4)  # the renamed file is new
    kept = index_counts(cli_ok("index", *store_args))
    assert kept["removed"] == 0 and kept["rows_after"] == rows + CLIPS_PER_VIDEO  # old rows stay
    stored = set(_store_videos(uri, collection).video_path)
    assert {str(removed), str(renamed), str(renamed_to)} <= stored
    record_tally("idempotent indexing", "file removed + file renamed, re-sync WITHOUT --prune/--remove-missing",
                 f"renamed file embedded as a new path; {kept['removed']} videos removed",
                 f"{kept['rows_after']} rows (old rows of both stay)")

    cli_ok("extract", str(videos), "--out", str(out), "--prune", *SPEC_ARGS)
    pruned_table = table_module.load_embeddings(out)
    assert set(pruned_table.video_path) == {str(p) for p in (paths[0], *paths[3:], renamed_to)}
    dropped = index_counts(cli_ok("index", *store_args, "--remove-missing"))
    assert dropped["removed"] == 2 and dropped["rows_after"] == len(pruned_table) == rows - CLIPS_PER_VIDEO
    stored = _store_videos(uri, collection).set_index("video_path")
    assert set(stored.index) == set(pruned_table.video_path)
    assert stored.video_fingerprint[str(renamed_to)] == renamed_fingerprint  # same bytes, new path
    assert (stored.n_clips == CLIPS_PER_VIDEO).all()
    record_tally("idempotent indexing", "then `extract --prune` + `index --remove-missing`",
                 f"{dropped['removed']} videos removed (the deleted one and the old name)",
                 f"{dropped['rows_after']} rows = table rows; renamed path kept its fingerprint")
