"""The query side of a segment search: its range decoded once (motionmatch.search.query.embed_plans), and bad
ranges refused with errors that name the file and what to give instead, through the API and the CLI.

Decoding is counted by wrapping ``av.open`` (every decoder here, PySceneDetect's too, opens files through it): the
wrapper hands back the real container and counts the frames each ``decode()`` pass yields. Runs on the dense
gallery of test_edits (FlowEncoder, Milvus Lite).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dense_gallery import gallery, store  # noqa: F401 (fixtures)

from motionmatch import cli
from motionmatch.encoders import build_encoder
from motionmatch.errors import ParameterError
from motionmatch.index import MotionStore
from motionmatch.search import SegmentSearchConfig, embed_plans, search_range
from motionmatch.video import collection_clip_spec, open_video, phase_plans, plan_query, write_video
from motionmatch.video.fingerprint import thumbnails

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def flow():
    return build_encoder("flow")


class CountingEncoder:
    """The real FlowEncoder, counting encode calls (bad input must fail before any embedding)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.encoder_id, self.dim, self.frames_per_clip = inner.encoder_id, inner.dim, inner.frames_per_clip

    def preprocessing(self):
        return self.inner.preprocessing()

    def encode(self, clips, batch_size=8):
        self.calls += 1
        return self.inner.encode(clips, batch_size=batch_size)


class _Counted:
    """A real PyAV container whose ``decode()`` passes are counted."""

    def __init__(self, container, passes: list, name: str):
        self._container, self._passes, self._name = container, passes, name

    def __getattr__(self, attribute):
        return getattr(self._container, attribute)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return self._container.__exit__(*exc_info)

    def decode(self, *args, **kwargs):
        record = [self._name, 0]
        self._passes.append(record)
        for frame in self._container.decode(*args, **kwargs):
            record[1] += 1
            yield frame

    def demux(self, *args, **kwargs):
        self._passes.append([self._name, "demux"])
        return self._container.demux(*args, **kwargs)


@pytest.fixture
def decode_passes(monkeypatch):
    """``[[file, frames decoded], ...]``, one entry per decode pass over any file while the test runs."""
    import av

    passes: list = []
    real_open = av.open

    def counting_open(target, *args, **kwargs):
        name = Path(getattr(target, "name", target)).name
        passes.append([name, "open"])
        return _Counted(real_open(target, *args, **kwargs), passes, name)

    monkeypatch.setattr(av, "open", counting_open)
    return passes


def full_passes(passes: list, name: str) -> list[int]:
    """Frames of each pass over ``name`` that decoded more than a header's single frame."""
    return [frames for file, frames in passes if file == name and isinstance(frames, int) and frames > 1]


def uses(passes: list, name: str, kind: str) -> int:
    """How many times ``name`` was opened (``"open"``) or demuxed without decoding (``"demux"``)."""
    return sum(1 for file, what in passes if file == name and what == kind)


def query_plans(gallery, store, start_s=10.0, end_s=14.0):
    info = store.encoder_info()
    spec, stride = collection_clip_spec(info["clip_spec"], 16)
    video = sorted(gallery["run"].table["video_path"].unique())[0]
    plan = plan_query(video, spec, start_s, end_s, stride)
    return plan, phase_plans(plan, spec.frame_stride)


# ----------------------------------------------------------------------------- decoded once
def test_embed_plans_decodes_the_range_once_for_every_phase(gallery, store, flow, decode_passes):
    """Four phase-shifted plans of one range: one decode pass, the same vectors as four separate decodes."""
    plan, phases = query_plans(gallery, store)
    name = Path(plan.path).name
    assert len(phases) == 3
    together, signal = embed_plans([plan, *phases], flow)
    joint = full_passes(decode_passes, name)
    decode_passes.clear()
    apart = [embed_plans([p], flow, thumbnails=False)[0][0] for p in [plan, *phases]]
    assert len(joint) == 1 and len(full_passes(decode_passes, name)) == 4
    span = max(max(w.frame_indices) for p in [plan, *phases] for w in p.windows) \
        - min(min(w.frame_indices) for w in plan.windows) + 1
    assert joint[0] < 2 * span  # not a frame decoded twice (a keyframe's lead-in and one chunk past the end aside)
    for vectors, alone in zip(together, apart):
        np.testing.assert_allclose(vectors, alone, atol=1e-6)
    assert signal is not None and len(signal) == round((plan.end_s - plan.start_s) / signal.frame_s)


def test_embed_plans_gives_what_decoding_each_window_gives(gallery, store, flow):
    plan, phases = query_plans(gallery, store, 3.2, 7.9)
    (vectors, shifted), signal = embed_plans([plan, phases[0]], flow)
    video = open_video(plan.path, "pyav")
    for p, got in ((plan, vectors), (phases[0], shifted)):
        expected = flow.encode([video.read(np.array(w.frame_indices)) for w in p.windows])
        np.testing.assert_allclose(got, expected, atol=1e-5)
    stamps = video.timestamps()
    inside = np.flatnonzero((stamps >= plan.start_s - 1e-6) & (stamps < plan.end_s - 1e-6))
    np.testing.assert_allclose(signal.times, stamps[inside], atol=1e-9)
    np.testing.assert_array_equal(signal.thumbs, thumbnails(video.read(inside)))
    assert signal.video_path == plan.path


def test_embed_plans_refuses_plans_of_two_files(gallery, store, flow):
    plan, _ = query_plans(gallery, store)
    spec, _ = collection_clip_spec(store.encoder_info()["clip_spec"], 16)
    other = plan_query(sorted(gallery["run"].table["video_path"].unique())[1], spec, 1.0, 4.0)
    with pytest.raises(ParameterError, match="one query file"):
        embed_plans([plan, other], flow)
    assert embed_plans([], flow) == ([], None)


def test_a_search_without_cut_detection_decodes_the_query_range_once(gallery, store, decode_passes):
    query = gallery["same"].iloc[0]
    search_range(store, query.path, query.query_start_s, query.query_end_s,
                 SegmentSearchConfig(split_at_cuts=False))
    assert len(full_passes(decode_passes, Path(query.path).name)) == 1, decode_passes


def test_a_search_with_cut_detection_decodes_the_query_range_once(gallery, store, decode_passes):
    query = gallery["same"].iloc[0]
    assert (store.encoder_info()["clip_spec"].get("windows") or {}).get("shots") == "content"
    search_range(store, query.path, query.query_start_s, query.query_end_s, SegmentSearchConfig())
    name = Path(query.path).name
    assert len(full_passes(decode_passes, name)) == 1, decode_passes
    # and its header and timestamps are read once: one open for the header, one demux for the times, one decode
    assert uses(decode_passes, name, "demux") == 1 and uses(decode_passes, name, "open") == 3, decode_passes


def test_a_range_above_the_buffer_is_decoded_twice_says_so_and_finds_the_same(gallery, store, decode_passes):
    """query_buffer_mb bounds the frames held for decode-once; above it, the two-pass search gives the same answer."""
    query = gallery["same"].iloc[0]
    once = search_range(store, query.path, query.query_start_s, query.query_end_s, SegmentSearchConfig())
    decode_passes.clear()
    twice = search_range(store, query.path, query.query_start_s, query.query_end_s,
                         SegmentSearchConfig(query_buffer_mb=0.5))
    assert len(full_passes(decode_passes, Path(query.path).name)) == 2, decode_passes
    assert any("decoded twice" in note and "query_buffer_mb 0.5" in note for note in twice.notes), twice.notes
    assert not any("decoded twice" in note for note in once.notes)
    assert [(s.video_path, s.start_s, s.end_s, s.kind) for s in once.segments] == \
        [(s.video_path, s.start_s, s.end_s, s.kind) for s in twice.segments]
    assert [s.score for s in once.segments] == pytest.approx([s.score for s in twice.segments], abs=1e-6)
    with pytest.raises(ParameterError, match="query_buffer_mb"):
        SegmentSearchConfig(query_buffer_mb=-1)


# ----------------------------------------------------------------------------- bad ranges
@pytest.mark.parametrize("start, end, message", [
    (3.001, 3.02, "shorter than one frame step"),
    (5.0, 5.01, "shorter than one frame step"),
    (40.0, None, "is past the end"),
    (2.0, 45.0, "is past the end"),
])
def test_a_bad_range_is_refused_before_any_embedding(gallery, store, flow, start, end, message):
    query = gallery["same"].iloc[0]
    encoder = CountingEncoder(flow)
    with pytest.raises(ParameterError, match=message) as raised:
        search_range(store, query.path, start, end, SegmentSearchConfig(), encoder=encoder)
    assert query.path in str(raised.value) and "--" in str(raised.value)  # the file, and what to give instead
    assert encoder.calls == 0


def test_the_shortest_range_is_one_frame_and_is_widened_to_a_window(gallery, store):
    query = gallery["same"].iloc[0]
    fps = open_video(query.path).info().fps
    result = search_range(store, query.path, 5.0, 5.0 + 1.0 / fps, SegmentSearchConfig())
    assert result.query.end_s - result.query.start_s >= result.query.window_s - 1e-6
    assert any(note.startswith("padded: the range") for note in result.notes)


def test_a_one_frame_query_is_searched_and_says_no_copy_can_be_verified(gallery, store, tmp_path):
    source = open_video(sorted(gallery["run"].table["video_path"].unique())[0])
    one = write_video(tmp_path / "one_frame.mp4", source.read(np.array([120])), fps=24.0)
    result = search_range(store, one, config=SegmentSearchConfig())
    assert any("holds 1 frame" in note and "no copy can be verified" in note for note in result.notes), result.notes
    assert all(s.kind == "same_motion" for s in result.segments)


def test_the_cli_names_the_file_and_the_fix_for_a_range_shorter_than_a_frame(gallery, tmp_path):
    from motionmatch.index import index_run

    query, uri = gallery["same"].iloc[0], str(tmp_path / "own.db")  # a Milvus Lite file serves one process
    with MotionStore(uri, gallery["collection"]) as own:
        index_run(gallery["run"], own, print_fn=lambda *_: None)
    done = subprocess.run([sys.executable, "-m", "motionmatch.cli", "search", query.path, "--milvus-uri",
                           uri, "--collection", gallery["collection"], "--start", "3.001", "--end", "3.02",
                           "--segments", "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "shorter than one frame step" in done.stderr and query.path in done.stderr and "--end" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.parametrize("extra", [["--start", "31"], ["--start", "10", "--end", "31"]])
def test_the_cli_refuses_a_range_past_the_end(gallery, capsys, extra):
    query = gallery["same"].iloc[0]
    code = cli.main(["search", query.path, "--milvus-uri", gallery["uri"], "--collection", gallery["collection"],
                     *extra, "--segments", "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and "is past the end" in err and query.path in err and "lasts 30.00 s" in err, err
    assert out == "" and "Traceback" not in err


def test_the_cli_answers_a_good_range_with_kinds(gallery, capsys):
    query = gallery["same"].iloc[0]
    code = cli.main(["search", query.path, "--milvus-uri", gallery["uri"], "--collection", gallery["collection"],
                     "--start", f"{query.query_start_s:.3f}", "--end", f"{query.query_end_s:.3f}", "--segments",
                     "--json", "--exclude-video"])
    out, err = capsys.readouterr()
    assert code == 0, err
    records = json.loads(out)
    assert records and all(r["kind"] == "same_motion" and r["video_path"] != query.path for r in records)
