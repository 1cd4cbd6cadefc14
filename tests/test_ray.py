"""Extraction on Ray Data (issue 12): the same rows as the local path, bad files, a killed driver, a real sink.

One real local Ray (``ray.init(num_cpus=2)``) is shared by the module; the CLI runs in a subprocess join
it with ``--ray-address``. Videos are small generated ones; the encoder is the weight-free FlowEncoder
(plus tiny randomly initialised V-JEPA 2 / CLIP models for the shrink-before-encode check).
"""
from __future__ import annotations

import functools
import json
import os
import signal
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from motionmatch import cli
from motionmatch.data import sources as datasets
from motionmatch.extract import local as pipeline
from motionmatch import table as table_module
from motionmatch.video.clips import ClipSpec, sample_clips
from motionmatch.video.windows import WindowSpec
from motionmatch.config import PROJECT_ROOT
from motionmatch.encoders import build_encoder
from motionmatch.errors import MissingPackageError, ParameterError
from motionmatch.index.store import MotionStore
from motionmatch.data.long_synthetic import generate_long_videos
from motionmatch.data.synthetic import generate_sample_dataset

ray = pytest.importorskip("ray", reason="Ray Data is an optional extra: pip install -e .[ray]")
from motionmatch.extract import ray_data as ray_extract  # noqa: E402 - after the skip

pytestmark = pytest.mark.ray
SPEC = ClipSpec(frames_per_clip=8, frame_stride=2, clips_per_video=2)
SPEC_ARGS = ["--encoder", "flow", "--frames-per-clip", "8", "--frame-stride", "2", "--clips-per-video", "2"]
DENSE = WindowSpec(stride_s=1.0, shots="none", windows_per_chunk=3)
QUIET = dict(progress=False, print_fn=lambda *_: None)


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray for the module; its GCS address lets CLI subprocesses join it."""
    from motionmatch.extract.ray_data import connect

    started = connect(num_cpus=2, print_fn=lambda *_: None)  # the package's start, with its retry on a slow start
    yield ray.get_runtime_context().gcs_address
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ray_sample")
    return generate_sample_dataset(root, seed=5, videos_per_class_per_domain=1, groups_per_class_per_domain=1,
                                   num_frames=24, size=(96, 64))


@pytest.fixture(scope="module")
def flow():
    return build_encoder("flow")


def _table(out: Path) -> pd.DataFrame:
    return table_module.load_embeddings(out).sort_values("clip_id").reset_index(drop=True)


def assert_same_rows(ray_out: Path, local_out: Path) -> None:
    got, expected = _table(ray_out), _table(local_out)
    assert got.clip_id.tolist() == expected.clip_id.tolist()
    assert got.clip_id.is_unique
    scalars = [c for c in table_module.TABLE_COLUMNS if c != "embedding"]
    pd.testing.assert_frame_equal(got[scalars], expected[scalars])
    np.testing.assert_allclose(np.stack(got.embedding), np.stack(expected.embedding), rtol=0, atol=1e-6)
    extra = list(table_module.FRAME_COLUMNS) + [table_module.COVERAGE_COLUMN]
    frames = [c for c in extra if c in expected.columns]  # dense runs keep frame blocks; every run its coverage
    assert table_module.COVERAGE_COLUMN in frames and frames == [c for c in extra if c in got.columns]
    pd.testing.assert_frame_equal(got[frames], expected[frames])


# ----------------------------------------------------------------------------- the same rows as the local path
def test_ray_gives_the_local_rows_and_records_that_it_ran(ray_address, sample, flow, tmp_path):
    manifest = datasets.load_source(sample)[0]
    summary = ray_extract.extract_embeddings_ray(manifest, flow, tmp_path / "ray", clip_spec=SPEC, **QUIET)
    local = pipeline.extract_embeddings(manifest, flow, tmp_path / "local", clip_spec=SPEC, workers=0, **QUIET)
    assert (summary.embedded, summary.failed, summary.clips_embedded) == (local.embedded, 0, local.clips_embedded)
    assert summary.embedded == len(manifest)
    assert_same_rows(tmp_path / "ray", tmp_path / "local")
    meta = table_module.read_extract_meta(tmp_path / "ray")
    assert meta["ray"] == {"actors": 1, "gpus_per_actor": 0, "address": "local"}
    # the local path resumes a Ray run's folder (the "ray" entry is a note, not a setting): nothing to redo
    again = pipeline.extract_embeddings(manifest, flow, tmp_path / "ray", clip_spec=SPEC, workers=0, **QUIET)
    assert (again.embedded, again.skipped_done) == (0, len(manifest))


def test_ray_dense_windows_give_the_local_rows_and_plans(ray_address, flow, tmp_path):
    folder = tmp_path / "long"
    generate_long_videos(folder, n_videos=2, duration_s=7.0, seed=4, min_segment_s=2.0, max_segment_s=4.0,
                         size=(96, 64))
    manifest = datasets.load_source(folder)[0]
    summary = ray_extract.extract_embeddings_ray(manifest, flow, tmp_path / "ray", clip_spec=SPEC,
                                                 window_spec=DENSE, **QUIET)
    local = pipeline.extract_embeddings(manifest, flow, tmp_path / "local", clip_spec=SPEC, window_spec=DENSE,
                                        workers=0, **QUIET)
    assert summary.embedded == local.embedded == len(manifest)
    assert summary.clips_embedded == local.clips_embedded > 2 * DENSE.windows_per_chunk  # several chunks a video
    assert_same_rows(tmp_path / "ray", tmp_path / "local")
    parts = lambda out: sorted(p.name for p in table_module.parts_dir(out).iterdir())  # noqa: E731
    assert parts(tmp_path / "ray") == parts(tmp_path / "local")
    for plan in table_module.parts_dir(tmp_path / "local").glob("*.plan.json"):
        assert json.loads((table_module.parts_dir(tmp_path / "ray") / plan.name).read_text()) == json.loads(plan.read_text())
    # one chunk lost: the Ray rerun redoes that chunk only
    lost = sorted(table_module.parts_dir(tmp_path / "ray").glob("*.c00001.parquet"))[0]
    kept = {p.name: p.stat().st_mtime_ns for p in table_module.parts_dir(tmp_path / "ray").glob("*.parquet") if p != lost}
    lost.unlink()
    again = ray_extract.extract_embeddings_ray(manifest, flow, tmp_path / "ray", clip_spec=SPEC, window_spec=DENSE,
                                               **QUIET)
    assert (again.embedded, again.skipped_done, again.clips_embedded) == (1, 1, DENSE.windows_per_chunk)
    assert all(p.stat().st_mtime_ns == kept[p.name] for p in table_module.parts_dir(tmp_path / "ray").glob("*.parquet")
               if p.name in kept)
    assert_same_rows(tmp_path / "ray", tmp_path / "local")


@pytest.mark.parametrize("name", ["flow", "vjepa2-tiny", "clip-tiny"])
def test_clips_shrunk_in_decode_tasks_give_the_same_vectors(sample, name):
    """fit_to_encoder does the encoder's own first steps in uint8, so encoding the small clip changes nothing."""
    encoder = build_encoder(name, device="cpu") if name != "flow" else build_encoder(name)
    path = datasets.load_source(sample)[0].path.iloc[0]
    spec = ClipSpec(frames_per_clip=encoder.frames_per_clip, frame_stride=1, clips_per_video=2)
    clips = [c.frames for c in sample_clips(path, spec)]
    shrunk = [ray_extract.fit_to_encoder(c, encoder.preprocessing()) for c in clips]
    assert sum(s.nbytes for s in shrunk) < sum(c.nbytes for c in clips) or name != "flow"
    shrunk = [ray_extract.EncodeActor._clip(s.tobytes(), s.shape) for s in shrunk]  # as the actors see them
    np.testing.assert_allclose(encoder.encode(shrunk, batch_size=2), encoder.encode(clips, batch_size=2),
                               rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- bad inputs
def test_a_corrupt_file_among_good_ones_fails_only_itself(ray_address, sample, flow, tmp_path):
    videos = tmp_path / "videos"
    shutil.copytree(sample.parent, videos)
    manifest = datasets.load_source(videos / "manifest.csv")[0]
    corrupt = videos / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    truncated = videos / "truncated.mp4"
    data = Path(manifest.path.iloc[0]).read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    extra = [{"path": str(p), "label": "x", "domain": "studio", "group": p.stem, "split": ""} for p in (corrupt, truncated)]
    manifest = pd.concat([manifest, pd.DataFrame(extra)], ignore_index=True)
    summary = ray_extract.extract_embeddings_ray(manifest, flow, tmp_path / "emb", clip_spec=SPEC, **QUIET)
    failures = pd.read_csv(tmp_path / "emb" / "failures.csv")
    assert set(failures.path) <= {str(corrupt), str(truncated)} and str(corrupt) in set(failures.path)
    assert (failures.stage == "decode").all() and failures.reason.str.len().gt(0).all()
    assert summary.failed == len(failures)
    assert summary.embedded == len(manifest) - summary.failed
    table = table_module.load_embeddings(tmp_path / "emb")
    assert table.video_path.nunique() == summary.embedded and str(corrupt) not in set(table.video_path)


def test_an_unreachable_ray_address_is_a_clear_error(ray_address, sample, capsys):
    code = cli.main(["extract", str(sample), "--ray", "--ray-address", "127.0.0.1:9", "--out", "/nonexistent/x",
                     *SPEC_ARGS])
    message = capsys.readouterr().err
    assert code == 2
    assert "cannot reach the Ray cluster at 127.0.0.1:9" in message and "ray start --head" in message


def _connect_in_a_fresh_process(env: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    """``ray_data.connect(num_cpus=1)`` in its own interpreter (this module's Ray session is already up here)."""
    script = ("import ray\n"
              "from motionmatch.errors import ParameterError\n"
              "from motionmatch.extract.ray_data import connect\n"
              "try:\n"
              "    print('started', connect(num_cpus=1))\n"
              "except ParameterError as err:\n"
              "    print('ParameterError:', err)\n"
              "ray.shutdown()\n")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env})


def test_a_ray_that_cannot_write_its_session_folder_says_why_and_what_to_try(tmp_path):
    """A real failure: Ray's temp folder lies under a regular file, so ray.init cannot create its session."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where Ray wants a folder")
    done = _connect_in_a_fresh_process({"RAY_TMPDIR": str(blocker / "ray_tmp")}, tmp_path)
    message = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ParameterError: could not start a local Ray instance" in message
    assert "NotADirectoryError" in message and str(blocker) in message  # the cause, and where
    assert "`ray stop`" in message and "RAY_TMPDIR" in message and "--ray-actors 1" in message
    assert "retrying" not in message  # waiting longer would not help: not retried


def test_a_head_node_that_does_not_start_in_time_is_retried_with_a_longer_wait(tmp_path):
    """A real timeout: with the GCS port wait at 0 s, the first ray.init times out as on a loaded machine
    (ray-project/ray#62883); connect retries once, waiting RETRY_GCS_WAIT_S, and the head comes up."""
    done = _connect_in_a_fresh_process({ray_extract.GCS_WAIT_ENV: "0"}, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Timed out waiting for file" in done.stdout and "gcs_server_port" in done.stdout
    assert f"retrying once, waiting up to {ray_extract.RETRY_GCS_WAIT_S} s" in done.stdout
    assert "started True" in done.stdout


def test_ray_options_need_ray_and_a_missing_ray_says_how_to_install(monkeypatch, sample, capsys):
    assert cli.main(["extract", str(sample), "--ray-actors", "2", *SPEC_ARGS]) == 2
    assert "add --ray" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(MissingPackageError, match=r"pip install -e \.\[ray\]"):
        ray_extract.import_ray()


def test_too_many_cpu_actors_are_refused(ray_address, sample, flow, tmp_path):
    with pytest.raises(ParameterError, match="leave none of the cluster's 2 CPUs"):
        ray_extract.extract_embeddings_ray(datasets.load_source(sample)[0], flow, tmp_path / "e", clip_spec=SPEC,
                                           actors=2, **QUIET)


def test_actors_that_build_another_encoder_stop_the_run_with_a_clear_message(ray_address, sample, flow, tmp_path):
    other = functools.partial(build_encoder, "flow", short_side=32)  # same id, other preprocessing
    with pytest.raises(ParameterError, match="the Ray actors built encoder flow:v1"):
        ray_extract.extract_embeddings_ray(datasets.load_source(sample)[0].head(2), flow, tmp_path / "e",
                                           clip_spec=SPEC, encoder_factory=other, **QUIET)
    assert not list(table_module.parts_dir(tmp_path / "e").glob("*.parquet"))


# ----------------------------------------------------------------------------- a killed driver
def _parts(out: Path) -> dict[str, int]:
    folder = table_module.parts_dir(out)
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.parquet")} if folder.is_dir() else {}


def test_a_driver_killed_mid_run_resumes_without_recomputing_or_duplicating(ray_address, sample, tmp_path, flow):
    videos = sample.parent
    total = len(datasets.load_source(videos)[0])
    out = tmp_path / "emb"
    command = [sys.executable, "-m", "motionmatch.cli", "extract", str(videos), "--out", str(out), "--ray",
               "--ray-address", ray_address, "--batch-size", "2", *SPEC_ARGS]
    child = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=dict(os.environ, TQDM_DISABLE="1"), start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while len(_parts(out)) < 2:
            assert child.poll() is None, "the run ended before it could be killed: give it more videos"
            assert time.monotonic() < deadline, "the Ray run made no progress"
            time.sleep(0.02)
        os.killpg(child.pid, signal.SIGKILL)  # the driver (and only what it started itself)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
    before = _parts(out)
    assert 2 <= len(before) < total, f"{len(before)} of {total} videos done when killed"

    manifest = datasets.load_source(videos)[0]
    summary = ray_extract.extract_embeddings_ray(manifest, flow, out, clip_spec=SPEC, batch_size=2, **QUIET)
    assert (summary.skipped_done, summary.embedded, summary.failed) == (len(before), total - len(before), 0)
    after = _parts(out)
    assert all(after[name] == stamp for name, stamp in before.items()), "a finished video was recomputed"
    table = table_module.load_embeddings(out)
    assert table.clip_id.is_unique and len(table) == total * SPEC.clips_per_video


# ----------------------------------------------------------------------------- a real Milvus server as the sink
@pytest.mark.server
def test_ray_extraction_indexed_into_a_real_server_and_searched(ray_address, sample, milvus_server, tmp_path, capsys):
    out = tmp_path / "emb"
    assert cli.main(["extract", str(sample), "--ray", "--out", str(out), *SPEC_ARGS]) == 0
    assert "ray: 1 encoder actor(s) on CPU" in capsys.readouterr().out
    store_args = ["--milvus-uri", milvus_server, "--collection", "ray_sink"]
    assert cli.main(["index", "--embeddings", str(out), *store_args, "--recreate"]) == 0
    capsys.readouterr()
    table = table_module.load_embeddings(out)
    assert cli.main(["search", table.video_path.iloc[0], *store_args, "-k", "3", "--json"]) == 0
    printed = capsys.readouterr().out
    hits = json.loads(printed[printed.index("["):])
    assert len(hits) == 3 and {h["video_path"] for h in hits} <= set(table.video_path)
    with MotionStore(milvus_server, "ray_sink") as store:  # every stored vector finds its own clip first
        assert store.count() == len(table)
        found = store.search(np.stack(table.embedding.iloc[:5]), k=1)
    assert [h[0].clip_id for h in found] == table.clip_id.iloc[:5].tolist()
    assert [h[0].score for h in found] == pytest.approx([1.0] * 5, abs=1e-4)
