"""The frame store (motionmatch.index.frames): every frame of the indexed footage as a packed thumbnail, written
beside the windows by index_run and read back, per video and in time order, by the fine stage.

Round trips run on the dense gallery of test_edits (3 generated videos, real decoder, real Milvus Lite): what the
store gives back is compared with the thumbnails of the frames decoded again from the files.
"""
from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest
from dense_gallery import copy_of, gallery  # noqa: F401 (fixture)

from motionmatch import cli
from motionmatch.errors import ParameterError, StoreError
from motionmatch.index import MotionStore, index_embeddings, index_run
from motionmatch.index.frames import (FRAME_ENCODER_ID, FRAME_PREPROCESSING, decode_rows, fetch_frames, frame_rows,
                                      frames_collection, has_frames, signal_from_table, videos_without_frames)
from motionmatch.table import FRAME_COLUMNS
from motionmatch.video import iter_frames
from motionmatch.video.fingerprint import SEARCH_THUMB, THUMB, pack, search_vectors, thumbnails, unpack

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def frames(gallery):
    with MotionStore(gallery["uri"], frames_collection(gallery["collection"])) as store:
        assert store.exists()
        yield store


def decoded(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(times, thumbnails) of every frame of ``path``, decoded again (the decoder the extraction uses)."""
    times, thumbs = [], []
    for chunk in iter_frames(path):
        times.append(chunk.timestamps)
        thumbs.append(thumbnails(chunk.frames))
    return np.concatenate(times), np.concatenate(thumbs)


# ----------------------------------------------------------------------------- packing
def test_thumbnails_pack_and_unpack_exactly():
    thumbs = np.random.default_rng(0).integers(0, 256, size=(37, THUMB, THUMB), dtype=np.uint8)
    blob = pack(thumbs)
    assert isinstance(blob, bytes) and len(blob) < thumbs.nbytes + 64
    np.testing.assert_array_equal(unpack(blob), thumbs)
    assert unpack(pack(thumbs[:0])).shape == (0, THUMB, THUMB)
    with pytest.raises(ValueError):  # a blob of another size is refused, not silently reshaped
        unpack(pack(np.zeros((2, THUMB, THUMB - 1), np.uint8)))


def test_thumbnails_are_grey_area_averages():
    frames = np.zeros((1, 48, 48, 3), np.uint8)
    frames[0, :24] = 255  # the top half white
    thumb = thumbnails(frames)[0]
    assert thumb.shape == (THUMB, THUMB)
    assert (thumb[: THUMB // 2] == 255).all() and (thumb[THUMB // 2:] == 0).all()


# ----------------------------------------------------------------------------- rows of a table
def test_frame_rows_are_one_block_per_window_and_decode_back_in_time_order(gallery):
    table = gallery["run"].table
    assert has_frames(table)
    rows = frame_rows(table)
    assert len(rows) == len(table) and (rows["encoder_id"] == FRAME_ENCODER_ID).all()
    first = unpack(base64.b64decode(rows["frame_thumbs"].iloc[0]))[:1]
    np.testing.assert_allclose(rows["embedding"].iloc[0], search_vectors(first)[0], atol=1e-6)
    assert len(rows["embedding"].iloc[0]) == SEARCH_THUMB * SEARCH_THUMB
    shuffled = rows.sample(frac=1.0, random_state=0)  # the store gives rows in any order
    signals = decode_rows(shuffled)
    assert sorted(signals) == sorted(table["video_path"].unique())
    for video, signal in signals.items():
        assert np.all(np.diff(signal.times) > 0), video  # time order, no frame twice
        expected = signal_from_table(table, video)
        np.testing.assert_array_equal(signal.times, expected.times)
        np.testing.assert_array_equal(signal.thumbs, expected.thumbs)


def test_a_table_without_frames_is_refused_with_what_to_do(gallery):
    table = gallery["run"].table.drop(columns=list(FRAME_COLUMNS))
    assert not has_frames(table)
    with pytest.raises(ParameterError, match="--stride-s"):
        frame_rows(table)
    with pytest.raises(ParameterError, match="dense windows"):
        signal_from_table(gallery["run"].table, "/nowhere/video.mp4")


# ----------------------------------------------------------------------------- the store
def test_the_store_gives_back_every_frame_of_each_video_in_time_order(gallery, frames):
    """index_run wrote blocks that tile each video once: fetched back, they are every frame the decoder gives."""
    videos = sorted(gallery["run"].table["video_path"].unique())
    fetched = fetch_frames(frames, {video: (0.0, 1e6) for video in videos})
    assert sorted(fetched) == videos
    for video in videos:
        times, thumbs = decoded(video)
        np.testing.assert_allclose(fetched[video].times, times, atol=1e-9)
        np.testing.assert_array_equal(fetched[video].thumbs, thumbs)


def test_a_span_gives_the_frames_that_start_inside_it(gallery, frames):
    video = sorted(gallery["run"].table["video_path"].unique())[1]
    times, thumbs = decoded(video)
    lo, hi = 7.3, 12.9
    signal = fetch_frames(frames, {video: (lo, hi)})[video]
    inside = (times >= lo - 1e-9) & (times < hi - 1e-9)
    np.testing.assert_allclose(signal.times, times[inside], atol=1e-9)
    np.testing.assert_array_equal(signal.thumbs, thumbs[inside])
    assert fetch_frames(frames, {}) == {}


def test_several_spans_of_a_video_come_in_one_fetch(gallery, frames):
    video = sorted(gallery["run"].table["video_path"].unique())[1]
    times, thumbs = decoded(video)
    spans = [(1.0, 3.5), (9.25, 12.0)]
    signal = fetch_frames(frames, {video: spans})[video]
    inside = np.zeros(len(times), bool)
    for lo, hi in spans:
        inside |= (times >= lo - 1e-9) & (times < hi - 1e-9)
    np.testing.assert_allclose(signal.times, times[inside], atol=1e-9)
    np.testing.assert_array_equal(signal.thumbs, thumbs[inside])
    np.testing.assert_array_equal(signal.between(9.25, 12.0).thumbs, fetch_frames(frames, {video: (9.25, 12.0)})[video].thumbs)


def test_merge_spans_joins_what_overlaps_or_nearly_touches():
    from motionmatch.search.fine import merge_spans

    merged = merge_spans([{"a": (10.0, 20.0), "b": (0.0, 5.0)}, {"a": (20.5, 30.0), "c": (1.0, 2.0)},
                          {"a": (40.0, 50.0), "b": (2.0, 3.0)}])
    assert merged == {"a": [(10.0, 30.0), (40.0, 50.0)], "b": [(0.0, 5.0)], "c": [(1.0, 2.0)]}
    assert merge_spans([{"a": (0.0, 1.0)}, {"a": (2.5, 3.0)}], gap_s=1.0) == {"a": [(0.0, 1.0), (2.5, 3.0)]}
    assert merge_spans([]) == {}


def test_videos_without_frames_names_what_the_store_lacks(gallery, frames):
    video = sorted(gallery["run"].table["video_path"].unique())[0]
    spans = {video: (3.0, 6.0), "/nowhere/else.mp4": (0.0, 5.0), f"{video}.missing": (0.0, 5.0)}
    assert videos_without_frames(frames, spans) == sorted(["/nowhere/else.mp4", f"{video}.missing"])
    assert videos_without_frames(frames, {video: (500.0, 600.0)}) == [video]  # past its end: no block there
    assert videos_without_frames(frames, {}) == []


def test_frames_that_cannot_be_decoded_raise_a_store_error_naming_the_collection(gallery, tmp_path, capsys):
    """A damaged frame store: fetch_frames says which collection and video, and what to do; the CLI exits 2."""
    run, uri = gallery["run"], str(tmp_path / "damaged.db")
    query, truth = copy_of(gallery, "rescale")
    with MotionStore(uri, "dense") as store:
        index_run(run, store, print_fn=lambda *_: None)
        rows = frame_rows(run.table[run.table["video_path"] == truth.video])
        rows["frame_thumbs"] = base64.b64encode(b"not zlib data").decode("ascii")
        with MotionStore(uri, frames_collection("dense")) as damaged:
            damaged.delete_videos([truth.video])
            index_embeddings(rows, damaged, FRAME_ENCODER_ID, FRAME_PREPROCESSING, text_fields=FRAME_COLUMNS)
            with pytest.raises(StoreError, match="dense__frames") as raised:
                fetch_frames(damaged, {truth.video: (0.0, 10.0)})
            assert truth.video in str(raised.value) and "--no-fine" in str(raised.value)
    argv = ["search", str(query.path), "--milvus-uri", uri, "--collection", "dense", "--segments", "--json"]
    code = cli.main(argv)
    _, err = capsys.readouterr()
    assert code == 2 and "cannot be decoded" in err and "Traceback" not in err, err
    code = cli.main(argv + ["--no-fine"])  # what the message says to do works
    out, err = capsys.readouterr()
    assert code == 0, err
    assert pd.DataFrame(json.loads(out))["kind"].eq("same_motion").all()


def test_zoomed_is_opencvs_warp_of_each_frame():
    """The stack-at-once zoom (a sparse linear map built from OpenCV's warp of unit impulses) is the warp itself."""
    from motionmatch.video import fingerprint

    thumbs = np.random.default_rng(3).integers(0, 256, (40, THUMB, THUMB)).astype(np.uint8)
    for zoom in (1.25, 0.8):
        expected = np.stack([fingerprint._warp_zoom(t, zoom) for t in thumbs])
        np.testing.assert_allclose(fingerprint.zoomed(thumbs, zoom), expected, atol=1e-3)
    assert fingerprint.zoomed(thumbs, 1) is thumbs or np.array_equal(fingerprint.zoomed(thumbs, 1), thumbs)
    assert fingerprint.zoomed(thumbs[:0], 1.25).shape == (0, THUMB, THUMB)
