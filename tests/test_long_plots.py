"""long_plots.py: the figures carry what they claim (bands per segment and span, time axes, the cosine
self-similarity matrix, one bar per segment) and reject malformed input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics.pairwise import cosine_similarity

from motionmatch.errors import ParameterError
from motionmatch.report.timelines import segments_overview, self_similarity, similarity_timeline, span_table
from motionmatch.search.align import Segment, segments_frame

WINDOWS = np.array([[t, t + 2.0] for t in np.arange(0.0, 20.0, 1.0)])  # 20 windows, 2 s long, 1 s stride
SCORES = np.linspace(0.2, 0.9, len(WINDOWS))
SEGMENTS = [Segment("videos/a.mp4", 4.0, 9.0, 0.812), Segment("videos/a.mp4", 14.0, 18.0, 0.655)]
TRUTH = pd.DataFrame({"video": "a.mp4", "start_s": [3.0, 10.0, 15.0], "end_s": [8.0, 12.0, 19.0],
                      "label": ["rotate", "zoom_in", "rotate"]})


def traces(fig, name):
    return [t for t in fig.data if t.name == name]


def test_timeline_shades_each_segment_and_span():
    fig = similarity_timeline(WINDOWS, SCORES, segments=SEGMENTS, ground_truth=TRUTH, threshold=0.6)
    found, truth = traces(fig, "found segment"), traces(fig, "ground truth")
    assert len(found) == 2 and len(truth) == 3
    assert [(min(t.x), max(t.x)) for t in found] == [(4.0, 9.0), (14.0, 18.0)]
    assert [(min(t.x), max(t.x)) for t in truth] == [(3.0, 8.0), (10.0, 12.0), (15.0, 19.0)]
    assert "score 0.812" in found[0].text and "00:04.0–00:09.0" in found[0].text
    assert "zoom_in" in truth[1].text
    assert all(t.fill == "toself" and t.hoveron == "fills" for t in found + truth)
    assert truth[0].fillpattern.shape == "/" and not found[0].fillpattern.shape  # shaded differently
    assert sum(t.showlegend for t in found) == 1 and sum(t.showlegend for t in truth) == 1
    (line,) = traces(fig, "window similarity")
    np.testing.assert_allclose(line.x, WINDOWS.mean(axis=1))
    np.testing.assert_allclose(line.y, SCORES)
    assert fig.layout.xaxis.range == (0.0, 21.0)  # the last window ends at 21 s
    low, high = fig.layout.yaxis.range
    assert low < SCORES.min() and high > SCORES.max()
    assert min(found[0].y) == low and max(found[0].y) == high  # bands span the whole plot height
    (threshold,) = fig.layout.shapes
    assert threshold.y0 == threshold.y1 == 0.6


def test_timeline_takes_segment_tables_and_a_duration():
    from_objects = similarity_timeline(WINDOWS, SCORES, segments=SEGMENTS)
    from_table = similarity_timeline(WINDOWS, SCORES, segments=segments_frame(SEGMENTS, "q0"), duration_s=60.0)
    assert [t.x for t in traces(from_objects, "found segment")] == [t.x for t in traces(from_table, "found segment")]
    assert from_table.layout.xaxis.range == (0.0, 60.0)
    assert not traces(from_objects, "ground truth") and not from_objects.layout.shapes
    pairs = similarity_timeline(WINDOWS, SCORES, segments=[(1.0, 2.5)])
    assert traces(pairs, "found segment")[0].text == "found 00:01.0–00:02.5"


@pytest.mark.parametrize("kwargs, message", [
    ({"scores": SCORES[:-1]}, "one finite value per window"),
    ({"window_times": WINDOWS[:, ::-1]}, "end_s > start_s"),
    ({"segments": [Segment("a.mp4", 5.0, 5.0, 0.7)]}, "start_s < end_s"),
    ({"segments": ["a.mp4"]}, "cannot read a time range"),
    ({"ground_truth": pd.DataFrame({"start_s": [1.0]})}, "end_s"),
])
def test_timeline_rejects_malformed_input(kwargs, message):
    arguments = {"window_times": WINDOWS, "scores": SCORES, **kwargs}
    with pytest.raises(ParameterError, match=message):
        similarity_timeline(**arguments)


def test_self_similarity_is_the_cosine_matrix_with_time_axes():
    vectors = np.random.default_rng(0).standard_normal((12, 5)) * 3.0  # not unit length
    times = WINDOWS[:12]
    fig = self_similarity(vectors, times)
    (heatmap,) = fig.data
    np.testing.assert_allclose(np.asarray(heatmap.z), cosine_similarity(vectors), atol=1e-6)
    np.testing.assert_allclose(heatmap.x, times.mean(axis=1))
    np.testing.assert_allclose(heatmap.y, times.mean(axis=1))
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.yaxis.scaleanchor == "x"


def test_repeated_motion_shows_as_an_off_diagonal():
    rng = np.random.default_rng(1)
    period = 4
    motif = rng.standard_normal((period, 16))
    vectors = motif[np.arange(24) % period] + 0.2 * rng.standard_normal((24, 16))
    z = np.asarray(self_similarity(vectors, np.c_[np.arange(24.0), np.arange(24.0) + 1]).data[0].z)
    repeat = np.diagonal(z, offset=period).mean()
    elsewhere = np.mean([np.diagonal(z, offset=k).mean() for k in range(1, 24) if k % period])
    assert repeat > 0.9 and repeat - elsewhere > 0.5


def test_long_videos_are_pooled_into_block_means():
    vectors = np.random.default_rng(2).standard_normal((10, 6))
    fig = self_similarity(vectors, WINDOWS[:10], max_windows=4)  # blocks of 3: [0-2], [3-5], [6-8], [9]
    full = cosine_similarity(vectors)
    blocks = [range(0, 3), range(3, 6), range(6, 9), range(9, 10)]
    expected = np.array([[full[np.ix_(a, b)].mean() for b in blocks] for a in blocks])
    np.testing.assert_allclose(np.asarray(fig.data[0].z), expected, atol=1e-6)
    centres = WINDOWS[:10].mean(axis=1)
    np.testing.assert_allclose(fig.data[0].x, [centres[list(b)].mean() for b in blocks])


def test_self_similarity_rejects_mismatched_times():
    with pytest.raises(ParameterError, match=r"\(12, 2\)"):
        self_similarity(np.ones((12, 4)), WINDOWS[:10])


def test_segments_overview_has_a_bar_per_segment():
    segments = SEGMENTS + [Segment("videos/b.mp4", 30.0, 41.5, 0.9, hits=())]
    fig = segments_overview(segments, durations={"videos/a.mp4": 60.0, "videos/b.mp4": 90.0})
    (background,) = traces(fig, "video length")
    (bars,) = traces(fig, "found segment")
    assert list(background.y) == ["a.mp4", "b.mp4"] and list(background.x) == [60.0, 90.0]
    assert list(bars.y) == ["a.mp4", "a.mp4", "b.mp4"]
    np.testing.assert_allclose(np.asarray(bars.base, dtype=float), [4.0, 14.0, 30.0])
    np.testing.assert_allclose(bars.x, [5.0, 4.0, 11.5])
    np.testing.assert_allclose(bars.marker.color, [0.812, 0.655, 0.9])
    assert "score 0.900" in bars.hovertext[2]
    with pytest.raises(ParameterError, match="at least one segment"):
        segments_overview([])


def test_span_table_reads_every_shape():
    table = span_table([SEGMENTS[0], {"start_s": 1, "end_s": 2, "label": "rotate"}, (3, 4)])
    assert list(table["start_s"]) == [4.0, 1.0, 3.0] and list(table["video"][:1]) == ["videos/a.mp4"]
    assert table["score"].iloc[0] == pytest.approx(0.812) and np.isnan(table["score"].iloc[2])
    assert list(table["label"]) == ["", "rotate", ""]
    assert span_table(None).empty and span_table(()).empty
