"""The fine stage of a segment search (motionmatch.search.fine): frame-level copy alignment, the copy decision, and
what a search does when the frames it needs are not there.

The unit tests align real rendered frames (``render_motion_clip``, three shots joined by hard cuts, as 24 x 24
thumbnails) with copies made by the package's own edits (:func:`motionmatch.data.edits.edit_copy`), whose source
frames are known exactly. The store tests run on the dense gallery of test_edits (FlowEncoder, Milvus Lite).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from dense_gallery import copy_of, gallery  # noqa: F401 (fixture)

from motionmatch import cli
from motionmatch.data.edits import edit_copy
from motionmatch.data.synthetic import render_motion_clip
from motionmatch.index import MotionStore, index_embeddings, index_run
from motionmatch.index.frames import frames_collection
from motionmatch.metrics.localization import temporal_iou
from motionmatch.search import SegmentSearchConfig, search_range
from motionmatch.search.align import Segment
from motionmatch.search.changes import (bound_to_changes, join_moments, kernel_changes, motion_changes,
                                        presence_changes, window_cuts)
from motionmatch.search.fine import (COPY_MODEL, align_copy, copy_features, copy_probability, fit_copy_model,
                                     snapping_spans)
from motionmatch.table import FRAME_COLUMNS
from motionmatch.video import recorded_clip_spec
from motionmatch.video.fingerprint import FrameSignal, mirrored, thumbnails

pytestmark = pytest.mark.timeout(600)
FPS = 24.0
T0 = 5.0  # the reference's first frame time: bounds must come from the frames' times, not their indices
SOURCE = (100, 196)  # the copied frames of the reference: 4 s across the hard cut at frame 192


def shot(motion: str, domain: str, seed: int, n: int) -> np.ndarray:
    return thumbnails(render_motion_clip(motion, domain, np.random.default_rng(seed), num_frames=n, size=(96, 72)))


@pytest.fixture(scope="module")
def reference() -> FrameSignal:
    """Three shots of 4 s (a translation in a studio, an orbit in a field, a zoom in a studio), hard cuts between."""
    thumbs = np.concatenate([shot("translate_right", "studio", 1, 96), shot("orbit_cw", "field", 2, 96),
                             shot("zoom_in", "studio", 3, 96)])
    return FrameSignal("reference.mp4", T0 + np.arange(len(thumbs)) / FPS, thumbs)


@pytest.fixture(scope="module")
def other() -> np.ndarray:
    """3 s of footage the reference never shows."""
    return shot("rotate", "field", 9, 72)


def query_signal(thumbs: np.ndarray) -> FrameSignal:
    return FrameSignal("query.mp4", np.arange(len(thumbs)) / FPS, np.ascontiguousarray(thumbs))


def edited(reference: FrameSignal, edit: str, first: int = SOURCE[0], last: int = SOURCE[1]):
    """(query signal, reference frame range copied, query frame range showing it) for a package edit of the
    reference's frames ``first:last`` (on grey thumbnails as RGB: the edits that move frames, not pixels)."""
    frames = np.repeat(reference.thumbs[first:last, :, :, None], 3, axis=3)
    out, (s0, s1), (q0, q1) = edit_copy(frames, edit)
    return query_signal(out[..., 0]), (first + s0, first + s1), (q0, q1)


def frame_bounds(signal: FrameSignal, frames: tuple[int, int]) -> tuple[float, float]:
    """The time range of frames ``[first, end)`` of a signal."""
    return float(signal.times[frames[0]]), signal.end_time(frames[1] - 1)


# ----------------------------------------------------------------------------- align_copy
@pytest.mark.parametrize("edit, slope", [("brightness", 1.0), ("speed_1.25", 1.25), ("speed_0.8", 0.8),
                                         ("partial", 1.0)])
def test_a_copy_at_a_known_offset_and_speed_is_bounded_to_the_frame(reference, edit, slope):
    query, source, shown = edited(reference, edit)
    match = align_copy(query, reference)
    assert match is not None
    assert match.slope == pytest.approx(slope) and match.mirrored is False
    assert (match.start_s, match.end_s) == pytest.approx(frame_bounds(reference, source), abs=1e-9)
    assert (match.query_start_s, match.query_end_s) == pytest.approx(frame_bounds(query, shown), abs=1e-9)
    assert match.video_path == "reference.mp4"
    assert match.probability >= 0.5, match  # a frame-identical 2.4-4 s copy is verified


def test_a_mirrored_copy_is_found_mirrored_with_the_same_bounds(reference):
    plain, source, _ = edited(reference, "brightness")
    flipped = query_signal(mirrored(plain.thumbs))
    match = align_copy(flipped, reference)
    assert match is not None and match.mirrored is True
    assert (match.start_s, match.end_s) == pytest.approx(frame_bounds(reference, source), abs=1e-9)
    assert align_copy(plain, reference).mirrored is False


def test_a_partial_copy_is_bounded_where_the_match_ends(reference, other):
    """The query holds 3 s of the reference between 1.5 s of other footage on each side (the reference is a
    sub-range of the query): both ranges end where the copied frames do."""
    copied = reference.thumbs[100:172]
    query = query_signal(np.concatenate([other[:36], copied, other[36:]]))
    match = align_copy(query, reference)
    assert match is not None
    assert (match.start_s, match.end_s) == pytest.approx(frame_bounds(reference, (100, 172)), abs=1e-9)
    assert (match.query_start_s, match.query_end_s) == pytest.approx((36 / FPS, 108 / FPS), abs=1e-9)
    assert match.run_s == pytest.approx(72 / FPS)


def test_a_copy_padded_with_look_alike_footage_ends_where_the_copied_frames_do():
    """The padding shares the reference's look (same background and sprite: same group, another motion), so its
    frames resemble the reference's neighbours in appearance; their change does not match, and the copy ends at
    the copied frames (seed 3 of bench_localize had a padded copy grown over its padding this way)."""
    from motionmatch.data.synthetic import draw_group_style

    style = draw_group_style("field", np.random.default_rng(0))
    look = {"size": (96, 72), "style": style}
    source = thumbnails(render_motion_clip("translate_right", "field", np.random.default_rng(5), 168, **look))
    filler = thumbnails(render_motion_clip("orbit_cw", "field", np.random.default_rng(6), 72, **look))
    reference = FrameSignal("reference.mp4", T0 + np.arange(len(source)) / FPS, source)
    query = query_signal(np.concatenate([filler[:36], source[48:120], filler[36:]]))
    match = align_copy(query, reference)
    assert match is not None
    assert (match.start_s, match.end_s) == pytest.approx(frame_bounds(reference, (48, 120)), abs=1e-9)
    assert (match.query_start_s, match.query_end_s) == pytest.approx((36 / FPS, 108 / FPS), abs=1e-9)


def test_footage_the_reference_never_shows_is_not_a_copy(reference, other):
    unrelated = align_copy(query_signal(other), reference)
    copy = align_copy(edited(reference, "brightness")[0], reference)
    assert unrelated is None or unrelated.probability < 0.5
    assert copy.probability > (0.0 if unrelated is None else unrelated.probability)


def test_too_few_frames_align_to_nothing(reference):
    assert align_copy(query_signal(reference.thumbs[:1]), reference) is None
    assert align_copy(query_signal(reference.thumbs[:48]), FrameSignal("r", reference.times[:1], reference.thumbs[:1])) is None


# ----------------------------------------------------------------------------- the copy model
def test_copy_probability_rises_with_every_feature():
    """More similar (appearance, change, foreground), more exact frames, a longer run: more likely a copy."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        base = copy_features(*rng.uniform(0, 1, 4), float(rng.uniform(0.5, 8.0)))
        p = copy_probability(base)
        assert 0.0 < p < 1.0
        for i in range(len(base)):
            higher = list(base)
            higher[i] += 0.1
            assert copy_probability(higher) > p, (i, base)


def test_copy_probability_is_the_logistic_of_the_fitted_model():
    features = copy_features(0.9, 0.8, 0.5, 0.7, 4.0)
    assert features[-1] == pytest.approx(math.log(4.0))
    z = float(np.dot(COPY_MODEL["weights"], features)) + COPY_MODEL["bias"]
    assert copy_probability(features) == pytest.approx(1 / (1 + math.exp(-z)))
    assert copy_probability(copy_features(1, 1, 1, 1, 4.0)) > 0.95  # a perfect 4 s match
    assert copy_probability(copy_features(0.3, 0.1, 0.1, 0.0, 4.0)) < 0.05  # nothing alike


def test_fit_copy_model_separates_labelled_alignments():
    rng = np.random.default_rng(1)
    copies = np.c_[rng.uniform(0.8, 1, (40, 4)), np.log(rng.uniform(2, 8, 40))]
    others = np.c_[rng.uniform(0, 0.6, (40, 4)), np.log(rng.uniform(0.5, 8, 40))]
    model = fit_copy_model(np.r_[copies, others], np.r_[np.ones(40), np.zeros(40)], note="test")
    assert model["fitted_on"] == "test" and len(model["weights"]) == 5
    assert all(copy_probability(f, model) > 0.5 for f in copies)
    assert all(copy_probability(f, model) < 0.5 for f in others)


# ----------------------------------------------------------------------------- the stage on a store
def test_an_index_without_frames_falls_back_to_the_coarse_stage_with_a_note(gallery, tmp_path, capsys):
    """Windows indexed without their frame store: the search answers from the windows alone, says so, and calls
    nothing a copy."""
    run, uri = gallery["run"], str(tmp_path / "windows_only.db")
    table = run.table.drop(columns=list(FRAME_COLUMNS))
    meta = run.meta
    with MotionStore(uri, "windows") as store:
        index_embeddings(table, store, encoder_id=meta["encoder_id"], preprocessing=meta["preprocessing"],
                         clip_spec=recorded_clip_spec(meta))
        assert store.frame_store() is None
        query, truth = copy_of(gallery, "rescale")
        result = search_range(store, query.path, config=SegmentSearchConfig())
    assert result.segments and all(s.kind == "same_motion" for s in result.segments)
    assert any("no fine stage" in note and "no frame store" in note for note in result.notes), result.notes
    code = cli.main(["search", str(query.path), "--milvus-uri", uri, "--collection", "windows", "--segments", "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err, err
    assert "note: no fine stage" in err and {r["kind"] for r in json.loads(out)} == {"same_motion"}


def test_a_video_missing_from_the_frame_store_keeps_its_coarse_segments_with_a_note(gallery, tmp_path):
    """The frame store lost one video's rows: its segments stay as the windows gave them and a note names it;
    copies of the other videos are still verified."""
    uri = str(tmp_path / "partial_frames.db")
    lost_query, lost_truth = copy_of(gallery, "rescale")
    kept_query, kept_truth = next((q, t) for q, t in (copy_of(gallery, e) for e in ("brightness", "crop", "flip"))
                                  if t.video != lost_truth.video)
    with MotionStore(uri, "dense") as store:
        index_run(gallery["run"], store, print_fn=lambda *_: None)
        with MotionStore(uri, frames_collection("dense")) as frames:
            assert frames.delete_videos([lost_truth.video]) > 0
        lost = search_range(store, lost_query.path, config=SegmentSearchConfig())
        kept = search_range(store, kept_query.path, config=SegmentSearchConfig())
    in_lost = [s for s in lost.segments if s.video_path == lost_truth.video]
    assert in_lost and all(s.kind == "same_motion" for s in in_lost)  # no frames, no copy check
    assert any("holds no frames of" in n and Path(lost_truth.video).name in n for n in lost.notes), lost.notes
    top = kept.segments[0]
    assert top.kind == "copy" and top.video_path == kept_truth.video
    assert temporal_iou([[top.start_s, top.end_s]], [[kept_truth.start_s, kept_truth.end_s]])[0, 0] >= 0.7
    lost_there = [s for s in kept.segments if s.video_path == lost_truth.video and s.kind != "copy"]
    named = any("holds no frames of" in n and Path(lost_truth.video).name in n for n in kept.notes)
    assert named == bool(lost_there)  # the note names a video only where a segment lacked its frames


def test_same_motion_ends_move_out_by_at_most_snap_s_and_in_only_to_a_change(gallery):
    """With snap_s=0 same-motion segments keep the coarse stage's boundaries; with it on, each end moves out by at
    most ``snap_s`` (or in, to a change inside the segment), the segment never inverts, and something moves. With
    ``join_moments`` (the default) the bounded segments of one moment become one: each is inside exactly one
    joined segment of its video, which runs from the first start to the last end of those inside it."""
    config = SegmentSearchConfig()
    moved = 0
    with MotionStore(gallery["uri"], gallery["collection"]) as store:
        for query in gallery["same"].itertuples():
            args = (store, query.path, query.query_start_s, query.query_end_s)
            coarse = search_range(*args, config.replace(fine=False)).segments
            unsnapped = search_range(*args, config.replace(snap_s=0.0)).segments
            snapped = search_range(*args, config.replace(join_moments=False)).segments
            joined = search_range(*args, config).segments
            spans = [(s.video_path, s.start_s, s.end_s) for s in coarse]
            assert [(s.video_path, s.start_s, s.end_s) for s in unsnapped] == spans
            assert [s.video_path for s in snapped] == [s[0] for s in spans]
            for (_, start, end), s in zip(spans, snapped):
                assert start - config.snap_s - 1e-9 <= s.start_s < end and start < s.end_s <= end + config.snap_s + 1e-9
                assert s.start_s < s.end_s
                moved += (s.start_s, s.end_s) != (start, end)
            inside = {id(j): [s for s in snapped if s.video_path == j.video_path and j.start_s - 1e-9 <= s.start_s
                              and s.end_s <= j.end_s + 1e-9] for j in joined}
            assert all(sum(s in members for members in inside.values()) == 1 for s in snapped)
            for j in joined:
                members = inside[id(j)]
                assert members and j.start_s == min(s.start_s for s in members) and j.end_s == max(s.end_s for s in members)
    assert moved, "no boundary moved: bounding by changes did nothing on these queries"


def test_window_cuts_are_the_starts_no_window_straddles():
    """Windows of 2.5 s every 0.5 s over two shots (cut at 10.0 s, the first shot's last window ends there)."""
    first = [(t, min(t + 2.5, 10.0)) for t in np.arange(0.0, 7.51, 0.5)]
    second = [(t, t + 2.5) for t in np.arange(10.0, 20.0, 0.5)]
    times = np.array(first + second)
    np.testing.assert_allclose(window_cuts(times), [10.0])
    np.testing.assert_allclose(window_cuts(np.array(second)), [])  # one shot: no cut
    assert len(window_cuts(times[:1])) == 0


def test_motion_changes_hold_the_cuts_the_start_and_a_change_of_motion_inside_a_shot():
    """Windows of 2.5 s every 0.5 s; a cut at 10 s; inside the second shot the motion changes at 16 s without a
    cut. A window's vector mixes the two motions by the share of its span on each side (as a window over a
    change sees both), plus noise."""
    rng = np.random.default_rng(0)
    first = [(t, min(t + 2.5, 10.0)) for t in np.arange(0.0, 7.51, 0.5)]
    second = [(t, t + 2.5) for t in np.arange(10.0, 27.5, 0.5)]
    times = np.array(first + second)
    a, b, c = np.eye(6)[:3]
    after = np.clip((times[:, 1] - 16.0) / (times[:, 1] - times[:, 0]), 0.0, 1.0)[:, None]
    vectors = np.where(times[:, :1] < 10.0, c, (1 - after) * a + after * b) + 0.05 * rng.normal(size=(len(times), 6))
    changes = motion_changes(times, vectors)
    assert changes[0] == 0.0 and np.any(np.abs(changes - 10.0) < 1e-6)  # the start and the cut
    inside = changes[(changes > 10.0) & (changes < 27.5)]
    assert len(inside) == 1 and abs(inside[0] - 16.0) <= 0.5, changes  # the change of motion, and nothing else
    steady = np.where(times[:, :1] < 10.0, c, a) + 0.05 * rng.normal(size=(len(times), 6))
    np.testing.assert_allclose(motion_changes(times, steady), [0.0, 10.0])  # no change of motion: none found
    assert len(kernel_changes(times[:5], vectors[:5])) == 0  # too few windows to split


@pytest.mark.parametrize("end_s", [2.5, 3.0, 4.0])
def test_changes_near_the_edge_of_an_ends_reach_are_read_with_windows_past_it(end_s):
    """Windows of 2.5 s every 0.5 s; the motion changes at 10 s. A segment ending 6-7.5 s before the change (snap_s
    8 s) snaps to it only when the windows read to find changes go past the reach (CHANGE_CONTEXT_S): without them
    the kernel detector sees too few windows after the change and misses it, or places it early."""
    rng = np.random.default_rng(0)
    times = np.array([(t, t + 2.5) for t in np.arange(0.0, 30.0, 0.5)])
    a, b = np.eye(6)[:2]
    after = np.clip((times[:, 1] - 10.0) / 2.5, 0.0, 1.0)[:, None]
    vectors = (1 - after) * a + after * b + 0.05 * rng.normal(size=(len(times), 6))
    segment = Segment("v.mp4", 0.5, end_s, 1.0, 0.0, 2.0)

    def snapped_end(**context) -> float:
        lo, hi = snapping_spans([segment], 8.0, **context)["v.mp4"]
        read = times[:, 0] < hi  # the windows that start inside the span, as refine's one query reads them
        changes = motion_changes(times[read], vectors[read], until_s=hi)
        return bound_to_changes(segment.start_s, segment.end_s, changes, 8.0)[1]

    assert abs(snapped_end() - 10.0) <= 0.25
    assert abs(snapped_end(context_s=0.0) - 10.0) > 0.5


def test_presence_changes_place_where_someone_comes_into_view_and_leaves():
    """Pose windows of 0.52 s every 0.25 s over 1 s of nobody, a person from 1.0 to 2.67 s, then nobody: the
    coverage of each window is the share of its frames with the person. Too few windows for the kernel detector,
    so only the presence changes bound the person's moment."""
    starts = np.arange(0.0, 3.2, 0.25)
    times = np.c_[starts, starts + 0.52]
    arrive, leave = 1.0, 2.67
    coverage = np.clip((np.minimum(times[:, 1], leave) - np.maximum(times[:, 0], arrive)) / 0.52, 0.0, 1.0)
    found = presence_changes(times, coverage)
    np.testing.assert_allclose(found, [arrive, leave], atol=1e-9)
    vectors = np.where(coverage[:, None] > 0, np.eye(4)[0], np.eye(4)[1])
    assert len(kernel_changes(times, vectors)) == 0  # 13 windows: the kernel detector finds nothing here
    np.testing.assert_allclose(motion_changes(times, vectors, coverage), [0.0, arrive, leave], atol=1e-9)
    np.testing.assert_allclose(motion_changes(times, vectors), [0.0])  # without coverage: nothing but the start
    assert len(presence_changes(times, np.ones(len(times)))) == 0  # someone in every window: no change


@pytest.mark.parametrize("segment, changes, reach, expected", [
    ((4.0, 8.0), [0.0, 2.0, 11.0], 8.0, (2.0, 11.0)),      # both ends out to the nearest change
    ((4.0, 8.0), [0.0, 2.0, 11.0], 1.0, (4.0, 8.0)),       # nothing within reach: unchanged
    ((4.0, 8.0), [0.0, 4.5, 9.0], 8.0, (4.5, 9.0)),        # a change just inside an end is that end's
    ((4.0, 12.0), [0.0, 6.0, 15.0], 8.0, (6.0, 15.0)),     # a change inside: the longer part, then out
    ((4.0, 12.0), [0.0, 10.0, 20.0], 1.0, (4.0, 10.0)),    # cut inside, the longer part kept as it is
    ((4.0, 5.0), [4.6], 8.0, (4.0, 5.0)),                  # never inverted
])
def test_bound_to_changes(segment, changes, reach, expected):
    assert bound_to_changes(*segment, np.array(changes), reach) == pytest.approx(expected)



def test_segments_between_the_same_two_changes_are_one_moment_and_a_change_keeps_them_apart():
    """Two answers in one moment of motion (a gap the aligner left in it) are one answer; across a change, or in
    another video, or a copy, they stay apart."""
    changes = np.array([0.0, 17.35, 30.9])
    a = Segment("v.mp4", 0.0, 7.5, 0.44, 1.0, 3.0, ("h1",))
    b = Segment("v.mp4", 13.5, 17.35, 0.41, 0.5, 4.0, ("h2",))
    after = Segment("v.mp4", 17.35, 25.0, 0.9, 0.0, 4.0)
    other = Segment("w.mp4", 2.0, 5.0, 0.3, 0.0, 4.0)
    copy = Segment("v.mp4", 8.0, 9.0, 0.2, 0.0, 1.0, (), "copy", 0.9)
    joined = join_moments([a, b, after, other, copy], changes)
    assert len(joined) == 4
    first = joined[0]
    assert (first.start_s, first.end_s, first.score) == (0.0, 17.35, 0.44)  # the whole moment, the best score
    assert (first.query_start_s, first.query_end_s) == (0.5, 4.0) and set(first.hits) == {"h1", "h2"}
    assert after in joined and other in joined and copy in joined
    overlapping = join_moments([Segment("v.mp4", 20.0, 30.9, 0.5, np.nan, np.nan),
                                Segment("v.mp4", 17.35, 24.0, 0.6, np.nan, np.nan)], changes)
    assert [(s.start_s, s.end_s, s.score) for s in overlapping] == [(17.35, 30.9, 0.6)]
    assert np.isnan(overlapping[0].query_start_s)  # the whole query stays the whole query
    far = join_moments([a, b], changes, max_gap_s=5.0)  # 6 s of footage between them: a change may have been missed
    assert [(s.start_s, s.end_s) for s in far] == [(0.0, 7.5), (13.5, 17.35)]
    assert [(s.start_s, s.end_s) for s in join_moments([a, b], changes, max_gap_s=6.0)] == [(0.0, 17.35)]

def test_a_caption_over_the_motion_keeps_the_change_signal_of_a_copy():
    """A square moving along the bottom of a grey frame, under the caption bar a caption copy adds: along the true
    alignment the change similarity stays high, because pixels the query never changes (the bar) are left out
    of the reference's change too (without that, the motion under the bar counts against the copy)."""
    n, height, width = 48, 72, 96
    frames = np.full((n, height, width, 3), 90, np.uint8)
    for i in range(n):
        x = 4 + i  # 1 px a frame, inside the bottom 18 % (the caption's bar) most of the time
        frames[i, height - 12:height - 2, x:x + 10] = 230
        frames[i, 10:20, 80 - i:90 - i] = 30  # and something above the bar, so the frames are not blank
    reference = FrameSignal("reference.mp4", np.arange(n) / FPS, thumbnails(frames))
    captioned, _, _ = edit_copy(frames, "caption")
    match = align_copy(query_signal(thumbnails(captioned)), reference)
    assert match is not None and match.slope == pytest.approx(1.0) and not match.mirrored
    assert match.change >= 0.9, match
    assert match.start_s <= 1 / FPS + 1e-9 and match.end_s == pytest.approx(n / FPS)  # frame 0 has no change


def test_a_caption_copy_is_searched_on_the_pixels_it_changes(reference):
    """The frame store is searched with a caption copy's keyframes on their live pixels too (live_mask): the cosine
    is the correlation over those pixels (numpy, written out) and finds the source where the whole frame, bar
    included, does not."""
    import cv2

    from motionmatch.search.fine import live_mask
    from motionmatch.video.fingerprint import SEARCH_THUMB, search_vectors

    query, (first, last), _ = edited(reference, "caption")
    mask = live_mask(query.thumbs)
    assert 0 < mask.mean() < 1 and mask[-2:].sum() == 0  # the bar's rows never change
    keys = np.arange(0, len(query), 12)
    stored = search_vectors(reference.thumbs[first:last][keys])
    plain, masked = search_vectors(query.thumbs[keys]), search_vectors(query.thumbs[keys], mask)
    keep = cv2.resize(mask, (SEARCH_THUMB, SEARCH_THUMB), interpolation=cv2.INTER_AREA).reshape(-1) > 0.99
    small = np.stack([cv2.resize(t.astype(np.float32), (SEARCH_THUMB, SEARCH_THUMB), interpolation=cv2.INTER_AREA)
                      for t in query.thumbs[keys]]).reshape(len(keys), -1)
    expected = np.where(keep, small - small[:, keep].mean(axis=1, keepdims=True), 0.0)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(masked, expected, atol=1e-5)
    assert np.all(np.abs(masked[:, ~keep]) == 0)
    own_plain, own_masked = np.einsum("ij,ij->i", plain, stored), np.einsum("ij,ij->i", masked, stored)
    assert own_masked.mean() > own_plain.mean() + 0.1, (own_plain, own_masked)
    np.testing.assert_allclose(search_vectors(query.thumbs[keys], np.ones_like(mask)), plain, atol=1e-6)
