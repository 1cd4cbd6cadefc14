"""search/align.py: merging one-window hits, and the three aligners on planted similarity matrices.

The planted matrices come from ``bench.bench_aligners`` (the benchmark that compares the aligners; its own
smoke test is in test_bench_smoke.py)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from motionmatch.errors import ParameterError
from motionmatch.metrics.localization import temporal_iou
from bench.bench_aligners import planted_case, window_times
from motionmatch.search.align import (
    ALIGNERS, DEFAULT_ALIGNER, WindowHit, _local_alignment, align, merge_window_hits, segments_frame,
)


def hit(start, end, score, video="v"):
    return WindowHit(video, float(start), float(end), float(score))


# ----------------------------------------------------------------------------- one-window queries
def test_merge_thresholds_merges_and_keeps_hits():
    hits = [hit(0, 1, 0.9), hit(1, 2, 0.8), hit(2, 3, 0.2), hit(3, 4, 0.7),  # one missing window: merged
            hit(6, 7, 0.95),                                                  # two missing: a new segment
            hit(0, 1, 0.99, video="w")]                                       # other video: never merged
    segments = merge_window_hits(hits, threshold=0.5, stride_s=1.0)
    spans = sorted((s.video_path, s.start_s, s.end_s, s.score, len(s.hits)) for s in segments)
    assert spans == [("v", 0.0, 4.0, 0.9, 3), ("v", 6.0, 7.0, 0.95, 1), ("w", 0.0, 1.0, 0.99, 1)]
    assert [s.score for s in segments] == sorted((s.score for s in segments), reverse=True)
    assert all(h.score >= 0.5 for s in segments for h in s.hits)
    assert hits[0] in next(s for s in segments if s.start_s == 0 and s.video_path == "v").hits
    strict = merge_window_hits(hits, threshold=0.5, stride_s=1.0, max_gap_s=0.0)
    assert sorted((s.start_s, s.end_s) for s in strict if s.video_path == "v") == [(0, 2), (3, 4), (6, 7)]


def test_merge_refuses_gaps_wider_than_a_stride():
    with pytest.raises(ParameterError, match="one stride"):
        merge_window_hits([hit(0, 1, 1.0)], threshold=0.5, stride_s=1.0, max_gap_s=1.5)
    with pytest.raises(ParameterError, match="threshold"):
        merge_window_hits([hit(0, 1, 1.0)], threshold=True, stride_s=1.0)


@pytest.mark.parametrize("seed", range(4))
def test_merge_equals_connected_components(seed):
    """Oracle: hits are nodes, joined when their ranges, widened by the allowed gap, overlap."""
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.choice(np.arange(0, 120, 1.0), size=40, replace=False))
    length = rng.choice([1.0, 2.0, 3.0])
    hits = [hit(s, s + length, 1.0) for s in starts]
    gap = float(rng.choice([0.0, 0.5, 1.0]))
    segments = merge_window_hits(hits, threshold=0.5, stride_s=1.0, max_gap_s=gap)
    a, b = np.triu_indices(len(hits), 1)
    joined = (starts[b] - (starts[a] + length) <= gap) & (starts[a] - (starts[b] + length) <= gap)
    graph = coo_matrix((np.ones(joined.sum()), (a[joined], b[joined])), shape=(len(hits), len(hits)))
    n_components, labels = connected_components(graph, directed=False)
    assert len(segments) == n_components
    expected = sorted((starts[labels == c].min(), starts[labels == c].max() + length) for c in range(n_components))
    assert sorted((s.start_s, s.end_s) for s in segments) == expected


# ----------------------------------------------------------------------------- aligners
def test_local_alignment_matches_a_plain_loop():
    rng = np.random.default_rng(0)
    score, gap = rng.normal(0, 1, size=(6, 9)), 0.3
    expected = np.zeros((7, 10))
    for i in range(1, 7):
        for j in range(1, 10):
            s = score[i - 1, j - 1]
            expected[i, j] = max(0.0, expected[i - 1, j - 1] + s, expected[i - 1, j] + s - gap,
                                 expected[i, j - 1] + s - gap)
    np.testing.assert_allclose(_local_alignment(score, gap), expected)


def box_iou(segment, box) -> float:
    q = temporal_iou([[segment.query_start_s, segment.query_end_s]], [box[:2]])[0, 0]
    r = temporal_iou([[segment.start_s, segment.end_s]], [box[2:]])[0, 0]
    return float(min(q, r))


@pytest.mark.parametrize("method", sorted(ALIGNERS))
@pytest.mark.parametrize("seed", [0, 1])
def test_planted_diagonal_is_found_at_its_offset(method, seed):
    sim, query, ref, boxes = planted_case("diagonal", np.random.default_rng(seed))
    segments = align(sim, query, ref, "ref", method=method, threshold=0.6)
    assert segments and box_iou(segments[0], boxes[0]) > 0.9
    assert all(hit.score >= 0.6 for hit in segments[0].hits) and len(segments[0].hits) >= 8
    assert all(segments[0].start_s <= h.start_s and h.end_s <= segments[0].end_s for h in segments[0].hits)


@pytest.mark.parametrize("method", sorted(ALIGNERS))
def test_two_planted_copies_are_two_segments(method):
    sim, query, ref, boxes = planted_case("two_copies", np.random.default_rng(3))
    segments = align(sim, query, ref, "ref", method=method, threshold=0.6)
    assert len(boxes) == 2 and len(segments) >= 2
    for box in boxes:
        assert max(box_iou(s, box) for s in segments[:2]) > 0.9


@pytest.mark.parametrize("method", sorted(ALIGNERS))
def test_no_match_gives_nothing(method):
    sim, query, ref, boxes = planted_case("no_match", np.random.default_rng(4))
    assert boxes == [] and align(sim, query, ref, "ref", method=method, threshold=0.6) == []


@pytest.mark.parametrize("method", sorted(ALIGNERS))
def test_segments_never_bridge_a_gap_wider_than_a_stride(method):
    query, ref = window_times(12), window_times(40)
    sim = np.full((12, 40), 0.1)
    rows = np.r_[0:5, 8:12]  # query windows 5-7 missing: a gap of 2 s > one 1 s stride on both axes
    sim[rows, rows + 10] = 0.9
    segments = align(sim, query, ref, "ref", method=method, threshold=0.5)
    assert sorted((s.start_s, s.end_s) for s in segments) == [(10.0, 16.0), (18.0, 23.0)]


def test_temporal_network_follows_a_change_of_speed():
    ious = {method: [] for method in ALIGNERS}
    for seed in range(5):
        sim, query, ref, boxes = planted_case("speed", np.random.default_rng(seed))
        for method in ALIGNERS:
            ious[method].append(box_iou(align(sim, query, ref, "ref", method=method, threshold=0.6)[0], boxes[0]))
    assert np.mean(ious["temporal_network"]) > 0.9
    assert np.mean(ious["temporal_network"]) > np.mean(ious["hough"]) + 0.2


def test_bad_matrices_and_methods_are_named():
    query, ref = window_times(3), window_times(5)
    with pytest.raises(ParameterError, match="n_query_windows"):
        align(np.zeros((3, 4)), query, ref)
    with pytest.raises(ParameterError, match="method"):
        align(np.zeros((3, 5)), query, ref, method="magic")
    with pytest.raises(ParameterError, match="finite"):
        align(np.full((3, 5), np.nan), query, ref)


def test_segments_frame_is_a_predictions_table():
    sim, query, ref, _ = planted_case("diagonal", np.random.default_rng(0))
    frame = segments_frame(align(sim, query, ref, "ref", threshold=0.6), "q1")
    assert list(frame.columns)[:5] == ["query_id", "video", "start_s", "end_s", "score"] and len(frame) >= 1
    assert DEFAULT_ALIGNER in ALIGNERS


# ----------------------------------------------------------------------------- growing aligned segments
def _segment(start, end, score, video="v"):
    from motionmatch.search.align import Segment

    return Segment(video, float(start), float(end), float(score), 0.0, 2.0, ())


def test_extend_grows_over_a_continuing_motion_and_stops_at_a_drop():
    """A same-motion run (profile within the margin of the aligned part) is followed; a copy's peak, well above
    its neighbours, stays as aligned; growth stops where the profile drops or the score falls under the threshold."""
    from motionmatch.search.align import extend_segments

    ref = window_times(20, window_s=2.0, stride_s=1.0)  # windows [j, j + 2]
    profile = np.full(20, 0.5)
    profile[5:15] = 0.90  # a motion that goes on for 10 windows
    profile[8:10] = 0.92  # the aligned part, a little above the rest
    grown = extend_segments([_segment(8, 11, 1.5)], profile, ref, threshold=0.0, margin=0.03, query_range=(0.0, 4.0))
    assert [(s.start_s, s.end_s) for s in grown] == [(5.0, 16.0)]
    assert grown[0].score == pytest.approx(profile[5:15].mean())  # scored over its windows
    assert (grown[0].query_start_s, grown[0].query_end_s) == (0.0, 4.0)  # the whole query range
    copy = profile.copy()
    copy[8:10] = 0.99  # a copy: its diagonal sits 0.09 above the motion around it
    kept = extend_segments([_segment(8, 11, 3.0)], copy, ref, threshold=0.0, margin=0.03)
    assert [(s.start_s, s.end_s, s.score) for s in kept] == [(8.0, 11.0, 3.0)]
    scores = np.where(np.arange(20) < 7, -1.0, 1.0)  # windows 5 and 6 score under the threshold
    capped = extend_segments([_segment(8, 11, 1.5)], profile, ref, threshold=0.0, margin=0.03, scores=scores)
    assert [(s.start_s, s.end_s) for s in capped] == [(7.0, 16.0)]


def test_extend_never_bridges_a_gap_and_merges_overlaps():
    from motionmatch.search.align import extend_segments

    ref = np.array([[0, 2], [1, 3], [2, 4], [3, 5], [8, 10], [9, 11]], dtype=float)  # 3 s gap after window 3
    profile = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.9])
    grown = extend_segments([_segment(1, 3, 1.0), _segment(2, 4, 0.8), _segment(9, 11, 0.7)], profile, ref,
                            threshold=0.0, margin=0.05)
    assert sorted((s.start_s, s.end_s) for s in grown) == [(0.0, 5.0), (8.0, 11.0)]  # two overlaps merged, gap kept
    assert max(s.score for s in grown) == pytest.approx(0.9)
    with pytest.raises(ParameterError, match="one value per reference window"):
        extend_segments([_segment(1, 3, 1.0)], profile[:3], ref, threshold=0.0, margin=0.05)
    with pytest.raises(ParameterError, match="margin"):
        extend_segments([_segment(1, 3, 1.0)], profile, ref, threshold=0.0, margin=-1.0)
