"""The store under hostile conditions: injected labels, mixed encoders, a second process on a Lite
file, parallel writers on one server, a server killed mid-insert, a writer killed mid-insert.

Real parts only: videos written with PyAV, the flow encoder, the CLI in subprocesses, Milvus Lite
files and a real ``milvus-lite server`` on loopback (see ``conftest.start_milvus_server``).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import kill_during_upsert, make_random_table, start_milvus_server, stop_milvus_server
from hostile import CLI_TIMEOUT_S, cli, cli_ok, record_tally

from motionmatch.index.sync import index_embeddings
from motionmatch.extract import local as pipeline
from motionmatch import table as table_module
from motionmatch.video.clips import ClipSpec, sample_clips
from motionmatch.config import PROJECT_ROOT
from motionmatch.encoders import build_encoder
from motionmatch.errors import EncoderMismatchError, StoreError
from motionmatch.index.store import MotionStore
from motionmatch.data.synthetic import MOTION_CLASSES, render_motion_clip
from motionmatch.video import write_video

SPEC_ARGS = ["--encoder", "flow", "--frames-per-clip", "8", "--frame-stride", "2", "--clips-per-video", "2"]
pytestmark = pytest.mark.timeout(300)  # nothing may hang: a stuck test fails after 5 minutes
EVIL_LABELS = ['say "hi"', "back\\slash\\", '" or 1==1 or label == "', "line\nbreak", "it's ' or ''=='",
               "tab\tand ) or (1==1", "walk"]






def _video(path: Path, seed: int, label_index: int = 0) -> Path:
    frames = render_motion_clip(MOTION_CLASSES[label_index % len(MOTION_CLASSES)], "studio",
                                np.random.default_rng(seed), num_frames=24, size=(64, 48))
    return write_video(path, frames, fps=12)


# ----------------------------------------------------------------------------- labels from hostile folder names
@pytest.fixture(scope="module")
def evil_index(tmp_path_factory) -> dict:
    """Videos in folders named like filter injections, extracted and indexed by the CLI."""
    work = tmp_path_factory.mktemp("evil")
    videos = work / "videos"
    for label_index, label in enumerate(EVIL_LABELS):
        for copy in range(2):
            _video(videos / label / f"clip {copy}.mp4", seed=10 * label_index + copy, label_index=label_index)
    out, uri = work / "emb", str(work / "mm.db")
    cli_ok("extract", str(videos), "--out", str(out), *SPEC_ARGS)
    cli_ok("index", "--embeddings", str(out), "--milvus-uri", uri, "--collection", "evil")
    return {"table": table_module.load_embeddings(out), "uri": uri, "videos": videos, "out": out}


def labels_match_exactly_their_rows(uri: str, collection: str, table: pd.DataFrame) -> None:
    """Every hostile label filters to exactly its own rows (alone, and with another label) on ``uri``."""
    query = table.embedding.iloc[0]
    with MotionStore(uri, collection) as store:
        assert store.count() == len(table)
        for label in EVIL_LABELS:
            expected = set(table[table.label == label].clip_id)
            hits = store.search(query, k=len(table), filters={"label": label})[0]
            assert {h.clip_id for h in hits} == expected, repr(label)
            assert {h.label for h in hits} == {label}
            both = store.search(query, k=len(table), filters={"label": [label, "walk"]})[0]
            assert {h.clip_id for h in both} == expected | set(table[table.label == "walk"].clip_id)


def test_labels_that_look_like_filter_injections_match_exactly_their_rows(evil_index):
    table = evil_index["table"]
    assert set(table.label) == set(EVIL_LABELS)  # the folder names became the labels, byte for byte
    labels_match_exactly_their_rows(evil_index["uri"], "evil", table)
    record_tally("guards", "labels from folder names: " + ", ".join(repr(label) for label in EVIL_LABELS),
                 "indexed as real labels; filters={'label': evil} returns exactly that label's rows",
                 f"{len(table)} rows; {len(table) // len(EVIL_LABELS)} per label returned, never more")


def test_cli_search_filter_with_an_injection_returns_only_that_label(evil_index):
    table = evil_index["table"]
    label = '" or 1==1 or label == "'
    query = table[table.label == label].video_path.iloc[0]
    done = cli("search", query, "--milvus-uri", evil_index["uri"], "--collection", "evil", "-k", str(len(table)),
               "--filter", f"label={label}", "--include-video", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    hits = json.loads(done.stdout)
    assert {h["clip_id"] for h in hits} == set(table[table.label == label].clip_id)
    record_tally("guards", f"CLI `search --filter label={label}`", "only that label's clips",
                 f"{len(hits)} hits of {len(table)} rows")


def test_query_embedded_another_way_is_refused_naming_both(evil_index):
    table = evil_index["table"]
    flow, tiny = build_encoder("flow"), build_encoder("vjepa2-tiny")
    clip = sample_clips(table.video_path.iloc[0], ClipSpec(frames_per_clip=4, frame_stride=2, clips_per_video=1))[0]
    tiny_vector = tiny.encode([clip.frames])
    held_side = flow.preprocessing()["short_side"]
    changed = dict(flow.preprocessing(), short_side=held_side + 48)
    with MotionStore(evil_index["uri"], "evil") as store:
        with pytest.raises(EncoderMismatchError) as other_encoder:
            store.search(tiny_vector, k=3, encoder_id=tiny.encoder_id, preprocessing=tiny.preprocessing())
        with pytest.raises(EncoderMismatchError) as other_preprocessing:
            store.search(table.embedding.iloc[0], k=3, encoder_id=flow.encoder_id, preprocessing=changed)
        with pytest.raises(EncoderMismatchError) as undeclared:
            store.search(tiny_vector, k=3)  # no ids given: the dimension still gives it away
    text = str(other_encoder.value)
    assert f"'{tiny.encoder_id}'" in text and f"'{flow.encoder_id}'" in text
    assert f"short_side: asked {held_side + 48}, held {held_side}" in str(other_preprocessing.value)
    assert f"{tiny.dim}-d" in str(undeclared.value) and f"{flow.dim}-d" in str(undeclared.value)
    assert f"'{flow.encoder_id}'" in str(undeclared.value)
    record_tally("guards", f"query embedded by {tiny.encoder_id} against a {flow.encoder_id} collection",
                 "EncoderMismatchError naming both encoders", "no search ran")
    record_tally("guards", f"query with the right encoder but other preprocessing (short_side {held_side + 48})",
                 f"EncoderMismatchError: short_side: asked {held_side + 48}, held {held_side}", "no search ran")


# ----------------------------------------------------------------------------- concurrency
def test_second_process_on_a_lite_file_is_pointed_to_server_mode(evil_index):
    with MotionStore(evil_index["uri"], "evil") as holder:  # this process holds the file
        assert holder.count() > 0
        done = cli("index", "--embeddings", str(evil_index["out"]), "--milvus-uri", evil_index["uri"],
                   "--collection", "evil", timeout=60)
    assert done.returncode == 2
    assert f"another process has {evil_index['uri']} open" in done.stderr
    assert "milvus-lite server --data-dir" in done.stderr and "--milvus-uri http://127.0.0.1:19530" in done.stderr
    assert "Traceback" not in done.stderr
    with MotionStore(evil_index["uri"], "evil") as store:  # nothing was damaged
        assert store.count() == len(evil_index["table"])
    record_tally("concurrency", "second process (`motionmatch index`) on a Lite file another process holds",
                 "exit 2: 'another process has ... open' + how to run `milvus-lite server`",
                 f"{len(evil_index['table'])} rows intact afterwards")


def _run_together(commands: dict[str, list[str]]) -> dict[str, str]:
    """Start every command at once, wait for all; return each one's stdout (asserting exit 0)."""
    env = dict(os.environ, TQDM_DISABLE="1")
    running = {name: subprocess.Popen([sys.executable, "-m", "motionmatch.cli", *args], cwd=PROJECT_ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for name, args in commands.items()}
    outputs = {name: process.communicate(timeout=CLI_TIMEOUT_S) for name, process in running.items()}
    for name, process in running.items():
        assert process.returncode == 0, f"{name}:\n{outputs[name][0][-2000:]}\n{outputs[name][1][-3000:]}"
    return {name: out for name, (out, _) in outputs.items()}


@pytest.mark.server
@pytest.mark.slow
def test_parallel_extract_and_index_runs_into_one_server_collection(tmp_path, milvus_server):
    videos = [_video(tmp_path / "videos" / MOTION_CLASSES[i % 5] / f"v{i}.mp4", seed=100 + i, label_index=i)
              for i in range(8)]
    manifests = {}
    for name, chosen in (("a", videos[:6]), ("b", videos[2:])):  # 4 videos in common
        manifests[name] = tmp_path / f"manifest_{name}.csv"
        pd.DataFrame({"path": [str(p) for p in chosen], "label": [p.parent.name for p in chosen],
                      "domain": "studio", "group": [p.stem for p in chosen]}).to_csv(manifests[name], index=False)
    # both runs extract at the same time, then both index at the same time (so the two syncs overlap)
    _run_together({name: ["extract", str(manifest), "--out", str(tmp_path / f"emb_{name}"), *SPEC_ARGS]
                   for name, manifest in manifests.items()})
    indexed = _run_together({name: ["index", "--embeddings", str(tmp_path / f"emb_{name}"), "--milvus-uri",
                                    milvus_server, "--collection", "parallel_runs"] for name in manifests})
    summaries = [next(line for line in out.splitlines() if " rows; " in line).split(": ", 1)[1]
                 for out in indexed.values()]
    tables = [table_module.load_embeddings(tmp_path / f"emb_{name}") for name in manifests]
    unique = pd.concat(tables).drop_duplicates("clip_id")
    assert len(unique) == 8 * 2
    with MotionStore(milvus_server, "parallel_runs") as store:
        stored = store.fetch_table(["clip_id", "video_path", "embedding"])
        assert store.count() == len(unique) == len(stored)
    assert stored.clip_id.is_unique and set(stored.clip_id) == set(unique.clip_id)
    merged = stored.merge(unique[["clip_id", "embedding"]], on="clip_id", suffixes=("", "_table"))
    np.testing.assert_allclose(np.stack(merged.embedding), np.stack(merged.embedding_table), atol=1e-6)
    record_tally("concurrency", "two `extract` then two `index` runs at the same time into one server collection "
                 "(6 + 6 videos, 4 shared)", "all exit 0; no corruption (vectors equal the tables); "
                 f"index summaries: {summaries[0]} / {summaries[1]}",
                 f"{len(stored)} rows = {len(unique)} unique clips, no duplicates")


@pytest.mark.server
@pytest.mark.parametrize("server", ["milvus_server", "milvus_cpp_server"], ids=["lite_server", "cpp_server"])
def test_writers_creating_the_same_collection_at_once_all_succeed(server, request):
    """Regression: the slower of two concurrent creators used to fail ('already exists' / 'File exists')."""
    milvus_server = getattr(found := request.getfixturevalue(server), "uri", found)  # the C++ one is an object
    table = make_random_table(24, 16, seed=3)
    writers, rounds = 3, 3
    for round_index in range(rounds):
        collection = f"created_at_once_{round_index}"
        barrier, errors, summaries = threading.Barrier(writers), [], []

        def index() -> None:
            with MotionStore(milvus_server, collection) as store:
                barrier.wait()  # every writer sees the collection missing, then all create it
                try:
                    summaries.append(index_embeddings(table, store, "test:random", {"seed": 3}))
                except Exception as error:  # noqa: BLE001 - collected and shown below
                    errors.append(error)

        threads = [threading.Thread(target=index) for _ in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        assert len(summaries) == writers
        with MotionStore(milvus_server, collection) as store:
            assert store.count() == len(table)
            assert store.encoder_info()["encoder_id"] == "test:random"
    record_tally("concurrency", f"{writers} writers index into one new {server} collection at the same instant "
                 f"(barrier), {rounds} rounds", f"{len(summaries)}/{writers} writers succeeded in every round",
                 f"{len(table)} rows each round, no duplicates")


# ----------------------------------------------------------------------------- server faults
@pytest.mark.server
@pytest.mark.slow
def test_server_killed_mid_upsert_then_restarted_and_the_upsert_rerun(tmp_path):
    batch, rows = 250, 12_000
    table = make_random_table(rows, 64, seed=5)
    process, uri = start_milvus_server(tmp_path / "data")
    port = int(uri.rsplit(":", 1)[1])

    def kill() -> None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    try:
        killed = kill_during_upsert(uri, "faults", table, batch, kill, encoder_id="test:random", min_batches=8,
                                    join_s=60)
        error, seen = killed["error"], killed["seen"]
        assert isinstance(error, StoreError), f"expected StoreError, got {killed}"
        assert uri in str(error) and "is the Milvus server still running" in str(error)
        assert killed["seconds_to_error"] < 15

        process, uri = start_milvus_server(tmp_path / "data", port=port)
        with MotionStore(uri, "faults") as again:
            survived = again.count()
            assert survived >= seen and survived % batch == 0 and survived < rows
            assert again.upsert(table, batch_size=batch, progress=False) == rows  # the same idempotent upsert
            assert again.count() == rows
            stored = again.fetch_table(["clip_id"])
        assert stored.clip_id.is_unique and set(stored.clip_id) == set(table.clip_id)
    finally:
        stop_milvus_server(process)
    record_tally("faults injected and survived",
                 f"SIGKILL of `milvus-lite server` during a {rows}-row upsert (batches of {batch})",
                 f"client: StoreError in {killed['seconds_to_error']:.1f} s ('is the Milvus server still running?')",
                 f"after restart {survived} rows (whole batches, >= {seen} seen before the kill); "
                 f"rerun upsert -> {rows} rows, clip_id unique")


# ----------------------------------------------------------------------------- durability of Milvus Lite
_WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from conftest import make_random_table
    from motionmatch.index.store import MotionStore

    store = MotionStore({uri!r}, "durable")
    store.ensure_collection("test:random", 64, {{"seed": 0}})
    for batch in range(100_000):
        table = make_random_table({batch_rows}, 64, seed=batch).assign(group=f"batch{{batch:06d}}")
        table["clip_id"] = [f"b{{batch:06d}}_{{row:05d}}" for row in range(len(table))]
        store.upsert(table, batch_size={batch_rows}, progress=False)  # one Milvus upsert call per batch
        print(batch, flush=True)
""")


@pytest.mark.slow
def test_lite_writer_killed_mid_insert_loop_leaves_only_whole_batches(tmp_path):
    batch_rows, uri = 1000, str(tmp_path / "durable.db")
    survived = []
    for round_index, after in enumerate((3, 6)):  # two kills, the second on top of the first one's data
        writer = subprocess.Popen([sys.executable, "-c", _WRITER.format(tests=str(Path(__file__).parent), uri=uri,
                                                                         batch_rows=batch_rows)],
                                  cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
        acknowledged, stamps = -1, []
        try:
            deadline = time.monotonic() + 60
            for line in writer.stdout:
                acknowledged = int(line)
                stamps.append(time.monotonic())
                if acknowledged >= after or time.monotonic() > deadline:
                    break
            # kill half-way through the next batch: inside the upsert call, not between two
            time.sleep(0.5 * float(np.mean(np.diff(stamps))) if len(stamps) > 1 else 0.05)
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=30)
        finally:
            if writer.poll() is None:
                writer.kill()
        assert writer.returncode == -signal.SIGKILL
        with MotionStore(uri, "durable") as store:
            count = store.count()
            groups = store.fetch_table(["group", "clip_id"]).group.value_counts().sort_index()
        assert count % batch_rows == 0, f"{count} rows: a batch was cut"
        assert (groups == batch_rows).all(), groups[groups != batch_rows]
        assert list(groups.index) == [f"batch{i:06d}" for i in range(len(groups))]
        assert len(groups) >= acknowledged + 1, "an acknowledged batch was lost"
        survived.append((acknowledged + 1, count))
        record_tally("faults injected and survived",
                     f"SIGKILL of a Milvus Lite writer mid-insert (round {round_index + 1}, batches of {batch_rows})",
                     f"{acknowledged + 1} batches acknowledged before the kill; file reopens cleanly",
                     f"{count} rows = {count // batch_rows} whole batches, none partial, none lost")
