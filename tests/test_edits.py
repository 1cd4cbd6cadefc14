"""Edited copies (motionmatch.data.edits) and the copy decision of the fine stage, on real parts.

The gallery (:mod:`dense_gallery`, built once per session and shared with test_fine, test_frames and
test_query): 3 generated long videos (30 s, 128x96, 24 fps, segments of 4-10 s between cuts), extracted as
dense windows (FlowEncoder, 16 frames every 4th, one every 1 s, never across a content cut: what
``motionmatch extract --stride-s 1`` makes) and indexed by :func:`motionmatch.index.index_run` into a Milvus Lite
file, with its frame store. One edited copy of 4 s per edit (:data:`motionmatch.data.edits.EDITS`) and 3
same-motion queries. Each edited copy must come back as ``kind="copy"`` in its source video at tIoU >= 0.7, and
no same-motion query may be called a copy.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from motionmatch.data.edits import EDITS, PAD_S, PARTIAL, PIXEL_EDITS, edit_copy, write_edited_copies
from motionmatch.errors import ParameterError
from motionmatch.metrics.localization import temporal_iou
from motionmatch.search import SegmentSearchConfig, search_range
from motionmatch.video import open_video

from dense_gallery import QUERY_S, copy_of, gallery, store  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(600)
COPY_TIOU = 0.7  # the bar for a copy's range


# ----------------------------------------------------------------------------- edit_copy
def frames_of(n: int = 20, size=(40, 30), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, size[1], size[0], 3), dtype=np.uint8)


def test_pixel_edits_keep_every_frame_and_change_the_pixels_as_named():
    frames = frames_of()
    for edit in PIXEL_EDITS:
        out, source, query = edit_copy(frames, edit)
        assert source == (0, len(frames)) and query == (0, len(frames)), edit
        assert len(out) == len(frames) and out.dtype == np.uint8, edit
    np.testing.assert_array_equal(edit_copy(frames, "flip")[0], frames[:, :, ::-1])
    assert edit_copy(frames, "crop")[0].shape[1:3] == (24, 32)  # the central 80 %, even sizes
    np.testing.assert_array_equal(edit_copy(frames, "crop")[0], frames[:, 3:27, 4:36])
    assert edit_copy(frames, "rescale")[0].shape[1:3] == (22, 30)  # 3/4 of 30 x 40, rounded to even
    bright = edit_copy(frames, "brightness")[0].astype(int)
    expected = np.clip(frames.astype(np.float32) * 1.3 + 25, 0, 255).astype(int)
    np.testing.assert_array_equal(bright, expected)
    frames = frames_of(4, size=(160, 120))
    caption = edit_copy(frames, "caption")[0]
    bar = int(round(120 * 0.18))
    assert caption[:, -bar:].max() > 150 and (caption[:, -bar:] == 0).mean() > 0.5  # light text on a black bar
    np.testing.assert_array_equal(caption[:, :-bar], frames[:, :-bar])  # the rest untouched


@pytest.mark.parametrize("factor", [0.8, 1.25])
def test_speed_edits_repeat_or_drop_source_frames_in_order(factor):
    frames = frames_of(40)
    out, source, query = edit_copy(frames, f"speed_{factor}")
    assert len(out) == round(40 / factor) and source == (0, 40) and query == (0, len(out))
    picked = [int(np.flatnonzero((frames == f).all(axis=(1, 2, 3)))[0]) for f in out]
    assert picked == [min(int(np.floor(k * factor + 1e-9)), 39) for k in range(len(out))]
    assert picked[0] == 0 and picked[-1] >= 39 - int(np.ceil(factor))  # the whole source range is shown


def test_partial_and_padded_copies_say_which_frames_are_the_source():
    frames, filler = frames_of(20), frames_of(200, seed=1)
    out, source, query = edit_copy(frames, "partial")
    keep = round(20 * PARTIAL)
    assert source == ((20 - keep) // 2, (20 - keep) // 2 + keep) and query == (0, keep)
    np.testing.assert_array_equal(out, frames[source[0]:source[1]])
    out, source, query = edit_copy(frames, "padded", filler=filler, fps=24.0)
    pad = int(round(PAD_S * 24))
    assert source == (0, 20) and query == (pad, pad + 20) and len(out) == 20 + 2 * pad
    np.testing.assert_array_equal(out[pad:pad + 20], frames)
    np.testing.assert_array_equal(out[:pad], filler[:pad])
    with pytest.raises(ParameterError, match="padded copy needs"):
        edit_copy(frames, "padded", filler=filler[:10], fps=24.0)
    with pytest.raises(ParameterError, match="edit"):
        edit_copy(frames, "mirror")


def test_write_edited_copies_needs_a_long_sample(tmp_path):
    with pytest.raises(ParameterError, match="ground_truth.csv does not exist"):
        write_edited_copies(tmp_path)


# ----------------------------------------------------------------------------- the written copies
def test_every_edit_is_written_with_its_source_range(gallery):
    copies, truth = gallery["copies"], gallery["copy_truth"]
    assert sorted(copies["edit"]) == sorted(EDITS) and (copies["kind"] == "copy").all()
    assert list(truth["query_id"]) == list(copies["query_id"])
    labelled = gallery["ground_truth"]
    for query, relevant in zip(copies.itertuples(), truth.itertuples()):
        assert Path(query.path).is_file()
        # the source range lies inside one labelled segment of its video
        inside = labelled[(labelled["video"] == Path(relevant.video).name) & (labelled["start_s"] <= relevant.start_s + 1e-6)
                          & (labelled["end_s"] >= relevant.end_s - 1e-6) & (labelled["label"] == query.label)]
        assert len(inside) == 1, query.query_id
        length = relevant.end_s - relevant.start_s
        assert length == pytest.approx(QUERY_S * (PARTIAL if query.edit == "partial" else 1), abs=0.05)
        expected_query_s = {"speed_0.8": QUERY_S / 0.8, "speed_1.25": QUERY_S / 1.25}.get(query.edit, length)
        assert relevant.query_end_s - relevant.query_start_s == pytest.approx(expected_query_s, abs=0.05)
        assert relevant.query_start_s == pytest.approx(PAD_S if query.edit == "padded" else 0.0)


@pytest.mark.parametrize("edit", EDITS)
def test_the_ground_truth_is_exact_to_the_frame(gallery, edit):
    """The written query's frame at ``query_start_s`` (and its last frame of the copy) shows the source frame at
    ``start_s`` (``end_s`` - one frame), edited: closer to it than to the source frames 1 and 2 frames away."""
    query, truth = copy_of(gallery, edit)
    source, copy = open_video(truth.video), open_video(query.path)
    fps = copy.info().fps
    stamps = source.timestamps()
    first = int(np.searchsorted(stamps, truth.start_s - 1e-6))
    last = int(np.searchsorted(stamps, truth.end_s - 1e-6)) - 1
    q_first, q_last = int(round(truth.query_start_s * fps)), int(round(truth.query_end_s * fps)) - 1
    pixel = PIXEL_EDITS.get(edit, lambda f: f)
    for q_index, r_index in ((q_first, first), (q_last, last)):
        shown = copy.read(np.array([q_index]))[0].astype(np.float32)
        candidates = np.arange(r_index - 2, r_index + 3).clip(0, len(stamps) - 1)
        edited = pixel(source.read(candidates)).astype(np.float32)
        errors = np.abs(edited - shown[None]).mean(axis=(1, 2, 3))
        assert int(np.argmin(errors)) == 2, (edit, q_index, r_index, errors.round(2))


# ----------------------------------------------------------------------------- found as copies
def top_in_source(result, truth) -> tuple:
    top = result.segments[0]
    iou = temporal_iou([[top.start_s, top.end_s]], [[truth.start_s, truth.end_s]])[0, 0] \
        if top.video_path == truth.video else 0.0
    return top, float(iou)


@pytest.mark.parametrize("edit", EDITS)
def test_every_edited_copy_is_found_as_a_copy_in_its_source(gallery, store, edit):
    """The whole edited file as the query: the top segment is a verified copy, in the source video, over the source
    range at tIoU >= 0.7, with the query range it came from."""
    query, truth = copy_of(gallery, edit)
    result = search_range(store, query.path, config=SegmentSearchConfig())
    assert result.segments, f"{edit}: nothing found ({result.notes})"
    top, iou = top_in_source(result, truth)
    described = (edit, top.kind, Path(top.video_path).name, round(top.start_s, 2), round(top.end_s, 2),
                 (round(truth.start_s, 2), round(truth.end_s, 2)), round(iou, 3))
    assert top.kind == "copy" and top.video_path == truth.video, described
    assert iou >= COPY_TIOU, described
    assert top.copy_probability >= SegmentSearchConfig().copy_threshold
    q_iou = temporal_iou([[top.query_start_s, top.query_end_s]], [[truth.query_start_s, truth.query_end_s]])[0, 0]
    assert q_iou >= COPY_TIOU, (described, top.query_start_s, top.query_end_s)


def test_same_motion_queries_are_never_called_copies(gallery, store):
    """A range of one video searched against the others: the same motion in other shots, never the same footage."""
    found = 0
    for query in gallery["same"].itertuples():
        result = search_range(store, query.path, query.query_start_s, query.query_end_s, SegmentSearchConfig())
        assert result.excluded, "the query's own file is indexed: it must be left out"
        copies = [(Path(s.video_path).name, s.start_s, s.end_s, s.copy_probability) for s in result.segments
                  if s.kind == "copy"]
        assert copies == [], (query.query_id, copies)
        assert all(np.isnan(s.copy_probability) or s.copy_probability < SegmentSearchConfig().copy_threshold
                   for s in result.segments)
        found += len(result.segments)
    assert found, "the same-motion queries found nothing at all: the test would pass vacuously"


def test_the_copy_threshold_decides_the_kind(gallery, store):
    """The same copy, with the threshold just above its probability, is reported as the same motion."""
    query, truth = copy_of(gallery, "rescale")
    verified = search_range(store, query.path, config=SegmentSearchConfig())
    top, _ = top_in_source(verified, truth)
    assert top.kind == "copy"
    strict = SegmentSearchConfig(copy_threshold=min(1.0, top.copy_probability + 1e-6))
    assert all(s.kind == "same_motion" for s in search_range(store, query.path, config=strict).segments)


def test_without_the_fine_stage_nothing_is_called_a_copy(gallery, store):
    query, _ = copy_of(gallery, "flip")
    coarse = search_range(store, query.path, config=SegmentSearchConfig(fine=False))
    assert coarse.segments and {s.kind for s in coarse.segments} == {"same_motion"}
    assert all(np.isnan(s.copy_probability) for s in coarse.segments)


def test_cli_segments_json_reports_the_copy_decision(gallery, store, capsys):
    import json

    from motionmatch import cli

    query, truth = copy_of(gallery, "brightness")
    code = cli.main(["search", str(query.path), "--milvus-uri", gallery["uri"], "--collection", gallery["collection"],
                     "--segments", "--json", "-k", "5"])
    out, err = capsys.readouterr()
    assert code == 0, err
    records = json.loads(out)
    assert records[0]["kind"] == "copy" and records[0]["video_path"] == truth.video
    assert 0.5 <= records[0]["copy_probability"] <= 1.0
    assert {r["kind"] for r in records} <= {"copy", "same_motion"}
    assert all(r["copy_probability"] is None for r in records if r["kind"] == "same_motion")
