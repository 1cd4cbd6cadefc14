"""long_synthetic.py: timelines tile the video, ground truth matches the decoded file, cuts are cuts."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from motionmatch.video.decode import frame_timestamps, probe_video, read_frames
from motionmatch.errors import ParameterError
from motionmatch.metrics.localization import RELEVANT_COLUMNS
from motionmatch.data.long_synthetic import CUT_COLUMNS, DISTRACTOR_LABEL, GROUND_TRUTH_COLUMNS, QUERY_COLUMNS, generate_long_videos, plan_long_video, range_starts
from motionmatch.data import write_copy_queries
from motionmatch.data.synthetic import DOMAINS, MOTION_CLASSES

TINY = {"fps": 12.0, "size": (64, 48), "progress": False}  # a 30 s video renders and encodes in well under a second


@pytest.mark.parametrize("seed", range(6))
def test_plan_tiles_the_timeline_with_allowed_lengths(seed):
    fps, duration = 12.0, 95.0
    plan = plan_long_video(np.random.default_rng(seed), duration, fps, 2.0, 20.0, cut_probability=0.4,
                           distractor_probability=0.2)
    assert plan[0].start_frame == 0 and plan[-1].end_frame == round(duration * fps)
    assert all(a.end_frame == b.start_frame for a, b in zip(plan, plan[1:]))
    lengths = np.array([s.end_frame - s.start_frame for s in plan])
    assert lengths.min() >= 2 * fps and lengths.max() <= 20 * fps
    assert plan[0].transition == "start" and all(s.transition in ("cut", "continuous") for s in plan[1:])
    for before, after in zip(plan, plan[1:]):
        if after.transition == "continuous":
            assert after.label != before.label and after.shot == before.shot and after.domain == before.domain
        else:
            assert after.shot == before.shot + 1
    assert {s.label for s in plan} <= set(MOTION_CLASSES) | {DISTRACTOR_LABEL}


def test_plan_options_are_honoured():
    rng = np.random.default_rng(0)
    all_cuts = plan_long_video(rng, 200.0, 10.0, cut_probability=1.0, distractor_probability=0.0)
    assert all(s.transition == "cut" for s in all_cuts[1:]) and DISTRACTOR_LABEL not in {s.label for s in all_cuts}
    one_shot = plan_long_video(rng, 200.0, 10.0, cut_probability=0.0, domains=("studio",))
    assert {s.shot for s in one_shot} == {0} and {s.domain for s in one_shot} == {"studio"}
    with pytest.raises(ParameterError, match="twice"):
        plan_long_video(rng, 30.0, 10.0, min_segment_s=4.0, max_segment_s=6.0)
    with pytest.raises(ParameterError, match="shorter than one segment"):
        plan_long_video(rng, 1.0, 10.0)


@pytest.fixture(scope="module")
def studio_videos(tmp_path_factory):
    out = tmp_path_factory.mktemp("long_studio")
    truth = generate_long_videos(out, n_videos=2, duration_s=40.0, seed=5, min_segment_s=2.0, max_segment_s=6.0,
                                 domains=("studio",), **TINY)
    return out, pd.read_csv(truth), pd.read_csv(out / "cuts.csv")


def test_ground_truth_tiles_each_decoded_video(studio_videos):
    out, truth, cuts = studio_videos
    assert list(truth.columns) == list(GROUND_TRUTH_COLUMNS) and list(cuts.columns) == list(CUT_COLUMNS)
    assert sorted(truth["video"].unique()) == ["long_000.mp4", "long_001.mp4"]
    for video, rows in truth.groupby("video"):
        info = probe_video(out / video)
        assert info.num_frames == 480 and info.duration_s == pytest.approx(40.0)
        assert rows["start_s"].iloc[0] == 0 and rows["end_s"].iloc[-1] == pytest.approx(40.0)
        np.testing.assert_allclose(rows["start_s"].to_numpy()[1:], rows["end_s"].to_numpy()[:-1])
        assert ((rows["end_s"] - rows["start_s"]).between(2.0 - 1e-9, 6.0 + 1e-9)).all()
    assert set(truth["domain"]) == {"studio"}
    expected_cuts = truth.loc[truth["transition"] == "cut", ["video", "start_s"]].to_numpy()
    np.testing.assert_allclose(cuts["time_s"].to_numpy(), expected_cuts[:, 1].astype(float))
    assert (cuts["video"].to_numpy() == expected_cuts[:, 0]).all() and len(cuts) >= 2


def test_cut_times_are_the_files_real_timestamps(studio_videos):
    out, truth, cuts = studio_videos
    for video, rows in cuts.groupby("video"):
        frames = np.round(rows["time_s"].to_numpy() * TINY["fps"]).astype(int)
        np.testing.assert_allclose(frame_timestamps(out / video, frames), rows["time_s"].to_numpy(), atol=1e-6)


def test_cuts_change_the_picture_and_continuous_transitions_do_not(studio_videos):
    out, truth, _ = studio_videos
    changes = {"cut": [], "continuous": [], "inside": []}
    for video, rows in truth.groupby("video"):
        starts = np.round(rows["start_s"].to_numpy()[1:] * TINY["fps"]).astype(int)
        frames = read_frames(out / video, np.r_[starts - 1, starts, starts + 1]).astype(float)
        n = len(starts)
        for k, transition in enumerate(rows["transition"].iloc[1:]):
            # the median pixel is background: it changes at a cut and nowhere else (the sprite may jump)
            changes[transition].append(np.median(np.abs(frames[n + k] - frames[k])))
            changes["inside"].append(np.median(np.abs(frames[2 * n + k] - frames[n + k])))
    assert changes["cut"] and changes["continuous"]
    assert min(changes["cut"]) > 15
    assert max(changes["continuous"]) < 3 and max(changes["inside"]) < 3


def test_labelled_motion_is_visible_in_its_segment(tmp_path):
    """A translate_right segment moves the sprite right between the first and the middle of a cycle."""
    rng_seed, found = 0, None
    while found is None:  # find a seed whose plan starts with a long enough translate_right
        plan = plan_long_video(np.random.default_rng([rng_seed, 0, 0]), 12.0, 12.0, 2.0, 6.0, domains=("studio",))
        if plan[0].label == "translate_right" and plan[0].end_frame >= 24:
            found = rng_seed
        rng_seed += 1
    generate_long_videos(tmp_path, n_videos=1, duration_s=12.0, seed=found, min_segment_s=2.0, max_segment_s=6.0,
                         domains=("studio",), **TINY)
    frames = read_frames(tmp_path / "long_000.mp4", [0, 11]).astype(int)
    background = np.median(frames.reshape(2, -1, 3), axis=1)[:, None, None, :]
    masks = np.abs(frames - background).sum(axis=-1) > 60
    xs = [np.nonzero(mask)[1].mean() for mask in masks]
    assert xs[1] - xs[0] > 3


def test_generation_is_deterministic_and_streams(tmp_path):
    tracemalloc.start()
    first = generate_long_videos(tmp_path / "a", n_videos=1, duration_s=40.0, seed=2, **TINY)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    video_bytes = 480 * 48 * 64 * 3
    assert peak < video_bytes / 4, f"peak {peak} bytes: frames are held, not streamed"
    again = generate_long_videos(tmp_path / "b", n_videos=1, duration_s=40.0, seed=2, **TINY)
    other = generate_long_videos(tmp_path / "c", n_videos=1, duration_s=40.0, seed=3, **TINY)
    pd.testing.assert_frame_equal(pd.read_csv(first), pd.read_csv(again))
    assert not pd.read_csv(first).equals(pd.read_csv(other))
    picks = [0, 100, 479]
    np.testing.assert_array_equal(read_frames(tmp_path / "a" / "long_000.mp4", picks),
                                  read_frames(tmp_path / "b" / "long_000.mp4", picks))
    assert set(pd.read_csv(first)["domain"]) <= set(DOMAINS)


@pytest.mark.parametrize("bad", [{"n_videos": True}, {"n_videos": 0}, {"size": (64,)}, {"fps": 0},
                                 {"domains": ("space",)}, {"cut_probability": 1.5}, {"duration_s": -1.0}])
def test_parameters_are_checked(tmp_path, bad):
    options = {"n_videos": 1, "duration_s": 4.0, **TINY, **bad}
    with pytest.raises(ParameterError):
        generate_long_videos(tmp_path, **options)
    assert not list(tmp_path.glob("*.mp4"))


def test_copy_queries_are_re_encoded_ranges_of_labelled_segments(studio_videos):
    out, truth, _ = studio_videos
    relevant_path = write_copy_queries(out, n_queries=3, query_s=2.0, seed=1)
    queries, relevant = pd.read_csv(out / "queries.csv"), pd.read_csv(relevant_path)
    assert list(queries.columns) == list(QUERY_COLUMNS) and list(relevant.columns) == list(RELEVANT_COLUMNS)
    assert len(queries) == len(relevant) == 3 and (queries["kind"] == "copy").all()
    for query, moment in zip(queries.itertuples(), relevant.itertuples()):
        segment = truth[(truth["video"] == moment.video) & (truth["start_s"] <= moment.start_s + 1e-9)
                        & (truth["end_s"] >= moment.end_s - 1e-9)]
        assert len(segment) == 1 and segment["label"].iloc[0] == query.label != DISTRACTOR_LABEL
        assert moment.end_s - moment.start_s == pytest.approx(2.0, abs=1e-4)
        assert moment.query_end_s == pytest.approx(2.0)
        info = probe_video(out / query.path)
        assert info.num_frames == 24
        copy = read_frames(out / query.path, [0, 23]).astype(float)
        first = int(round(moment.start_s * TINY["fps"]))
        source = read_frames(out / moment.video, [first, first + 23]).astype(float)
        assert np.abs(copy - source).mean() < 3  # the same pixels, re-encoded
        assert (out / query.path).read_bytes() != b""
    with pytest.raises(ParameterError, match="shorter query_s"):
        write_copy_queries(out, n_queries=1, query_s=30.0)


def test_a_segment_exactly_a_query_long_has_a_start_when_its_timestamps_were_rounded_up():
    """Seed 4's 16 s segment [36.7917, 52.7917) in bench_localize: its frame times, rounded to a 1/12288 s time
    base, start above i / 24, so the strict test found no start and the query writer crashed."""
    fps, n = 24.0, 384
    exact = np.arange(1440) / fps
    rounded = np.ceil(exact * 12288) / 12288
    start, end = 883 / fps, (883 + n) / fps
    assert list(range_starts(exact, fps, start, end, n)) == [883]
    assert list(range_starts(rounded, fps, start, end, n)) == [883]
    assert len(range_starts(rounded, fps, start, end - 1 / fps, n)) == 0  # one frame short: no start at all
    wide = range_starts(rounded, fps, start, end + 10 / fps, n)  # room to spare: the strict test, as before
    assert list(wide) == list(np.flatnonzero((rounded >= start - 1e-9) & (rounded + n / fps <= end + 10 / fps + 1e-9)))
