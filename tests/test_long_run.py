"""Notebook 07's package steps: the query chosen (data), the found table and the timeline curve (report), MemoEncoder."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from motionmatch.data import pick_query
from motionmatch.encoders import MemoEncoder
from motionmatch.report import found_table, video_scores
from motionmatch.errors import ParameterError
from motionmatch.search.align import Segment
from motionmatch.video import recorded_clip_spec

TRUTH = pd.DataFrame({
    "video": ["a.mp4", "a.mp4", "b.mp4", "b.mp4", "c.mp4"],
    "start_s": [0.0, 10.0, 0.0, 6.0, 0.0],
    "end_s": [10.0, 30.0, 6.0, 20.0, 20.0],
    "label": ["spin", "zoom", "zoom", "distractor", "jump"],
})


def test_pick_query_takes_a_motion_another_video_shows():
    for seed in range(10):
        query = pick_query(TRUTH, seed=seed, max_s=8.0)
        assert query["label"] == "zoom"  # spin and jump occur in one video only; distractors never
        row = TRUTH[(TRUTH.video == query["video"]) & (TRUTH.label == "zoom")].iloc[0]
        assert row.start_s <= query["start_s"] < query["end_s"] <= row.end_s
        assert query["end_s"] - query["start_s"] <= 8.0 + 1e-9


def test_pick_query_keeps_a_given_range_and_names_its_label():
    assert pick_query(TRUTH, "a.mp4", 12.0, 18.0) == {"video": "a.mp4", "start_s": 12.0, "end_s": 18.0,
                                                               "label": "zoom"}
    with pytest.raises(ParameterError, match="both"):
        pick_query(TRUTH, "a.mp4", 12.0, -1.0)
    with pytest.raises(ParameterError, match="another video"):
        pick_query(TRUTH, "c.mp4")


def test_video_scores_is_the_best_cosine_over_query_windows():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, 8)).astype(np.float32)
    table = pd.DataFrame({"video_path": ["v"] * 6, "start_s": np.arange(6)[::-1] * 0.5,
                          "end_s": np.arange(6)[::-1] * 0.5 + 2, "embedding": list(vectors)})
    query = rng.normal(size=(3, 8))
    curve = video_scores(table, "v", query)
    assert curve.start_s.tolist() == sorted(curve.start_s)
    for row in curve.itertuples():
        v = vectors[5 - int(round(row.start_s / 0.5))]  # row i starts at (5 - i) * 0.5 s
        expected = max(float(v @ q / np.linalg.norm(v) / np.linalg.norm(q)) for q in query)  # loop oracle
        assert row.score == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ParameterError, match="no windows"):
        video_scores(table, "other", query)


def test_found_table_labels_each_segment_by_its_best_overlap():
    class Result:
        segments = [Segment("/x/b.mp4", 1.0, 5.0, 2.5, 0.0, 4.0, hits=(1, 2)),
                    Segment("/x/a.mp4", 40.0, 45.0, 1.0, 0.0, 4.0, hits=(3,))]

    found = found_table(Result(), ground_truth=TRUTH)
    assert found.video.tolist() == ["b.mp4", "a.mp4"] and found["rank"].tolist() == [1, 2]
    assert found.truth_label.tolist() == ["zoom", ""]  # [1, 5] lies in b's zoom span; [40, 45] overlaps nothing
    assert found.tIoU.iloc[0] == pytest.approx(4.0 / 6.0, abs=1e-3)
    assert found.window_hits.tolist() == [2, 1]


def test_index_clip_spec_carries_the_dense_windows():
    meta = {"clip_spec": {"frames_per_clip": 16, "frame_stride": 4}, "windows": {"stride_s": 0.5}}
    assert recorded_clip_spec(meta) == {"frames_per_clip": 16, "frame_stride": 4, "windows": {"stride_s": 0.5}}
    assert recorded_clip_spec({"clip_spec": {"frames_per_clip": 8}}) == {"frames_per_clip": 8}


def test_memo_encoder_embeds_each_clip_once_and_returns_what_the_encoder_returns():
    from motionmatch.encoders import build_encoder

    flow = build_encoder("flow")
    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 255, size=(flow.frames_per_clip, 32, 32, 3), dtype=np.uint8) for _ in range(3)]
    memo = MemoEncoder(flow)
    first = memo.encode(clips)
    np.testing.assert_allclose(first, flow.encode(clips), atol=1e-6)  # the wrapped encoder's vectors
    again = memo.encode([clips[2], clips[0]])
    np.testing.assert_array_equal(again, first[[2, 0]]) and None
    assert memo.hits == 2 and len(memo.cache) == 3 and memo.encoder_id == flow.encoder_id


def long_result(segments, vectors):
    """A SearchResult holding ``segments`` and the query windows' ``vectors`` (what the report functions read)."""
    from motionmatch.search import SearchResult
    from motionmatch.video import QueryPlan

    plan = QueryPlan("/x/q.mp4", 0.0, 4.0, 30.0, 2.0, 1.0, ())
    return SearchResult(plan, np.asarray(vectors, np.float32), [], pd.DataFrame(), list(segments), "raw cosine", 0.5)


def windows_table(rng, videos=("/x/a.mp4", "/x/b.mp4", "/x/c.mp4"), n=10, dim=8):
    rows = [{"video_path": v, "start_s": float(i), "end_s": i + 2.0, "embedding": rng.normal(size=dim).astype(np.float32)}
            for v in videos for i in range(n)]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # not in time order


def test_timelines_for_draws_the_top_videos_in_the_order_of_their_best_segment():
    from motionmatch.report import timelines_for, video_durations

    rng = np.random.default_rng(1)
    table = windows_table(rng)
    query = rng.normal(size=(2, 8))
    segments = [Segment("/x/b.mp4", 1.0, 5.0, 2.5, 0.0, 4.0), Segment("/x/a.mp4", 4.0, 8.0, 2.0, 0.0, 4.0),
                Segment("/x/b.mp4", 6.0, 9.0, 1.5, 0.0, 4.0), Segment("/x/c.mp4", 0.0, 3.0, 1.0, 0.0, 4.0)]
    truth = pd.DataFrame({"video": ["a.mp4", "a.mp4", "b.mp4", "c.mp4"], "start_s": [0.0, 4.0, 2.0, 0.0],
                          "end_s": [4.0, 12.0, 11.0, 11.0], "label": ["spin", "zoom", "zoom", "zoom"]})
    assert video_durations(truth) == {"a.mp4": 12.0, "b.mp4": 11.0, "c.mp4": 11.0}
    figures = timelines_for(long_result(segments, query), table, truth, label="zoom", top_videos=2)
    assert [f.layout.title.text.split(":")[0] for f in figures] == ["b.mp4", "a.mp4"]  # c is the third video
    b, a = figures
    assert len([t for t in b.data if t.name == "found segment"]) == 2  # both of b's segments
    assert len([t for t in a.data if t.name == "ground truth"]) == 1  # a's zoom span, not its spin
    assert tuple(b.layout.xaxis.range) == (0.0, 11.0)
    line = next(t for t in b.data if t.name == "window similarity")
    np.testing.assert_allclose(line.y, video_scores(table, "/x/b.mp4", query)["score"], atol=1e-6)
    untruthed = timelines_for(long_result(segments, query), table, top_videos=5)
    assert len(untruthed) == 3 and not any(t.name == "ground truth" for f in untruthed for t in f.data)
    with pytest.raises(ParameterError, match="top_videos"):
        timelines_for(long_result(segments, query), table, top_videos=0)


def test_video_self_similarity_is_the_cosine_of_one_videos_windows_in_time_order():
    from motionmatch.report import video_self_similarity

    table = windows_table(np.random.default_rng(2))
    figure = video_self_similarity(table, "/x/a.mp4")
    own = table[table.video_path == "/x/a.mp4"].sort_values("start_s")
    vectors = np.stack(own.embedding)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(figure.data[0].z), vectors @ vectors.T, atol=1e-5)
    assert "a.mp4" in figure.layout.title.text
    with pytest.raises(ParameterError, match="no windows"):
        video_self_similarity(table, "/x/other.mp4")
