"""The one window planner (motionmatch.video.windows): its grid and tail rule by hand, on random shots, and the
same windows for an indexed video and for a query range over the same frames."""
from __future__ import annotations

import numpy as np
import pytest

from motionmatch.errors import ParameterError
from motionmatch.video import (ClipSpec, Shot, WindowSpec, open_with_timestamps, place_windows, plan_query, plan_windows,
                               write_video)

SPEC = ClipSpec(frames_per_clip=4, frame_stride=3)  # a window spans 10 frames
FPS = 10.0


def _stamps(n: int) -> tuple[np.ndarray, callable]:
    stamps = np.arange(n) / FPS
    return stamps, lambda i: (i + 1) / FPS


def test_grid_and_tail_by_hand():
    stamps, end = _stamps(40)
    # pieces [0, 25) and [25, 31) and [31, 40): a stride of 0.5 s is 5 frames
    windows = place_windows(stamps, end, [(0, 25), (25, 31), (31, 40)], SPEC, stride_s=0.5)
    assert [w.frame_indices for w in windows] == [
        (0, 3, 6, 9), (5, 8, 11, 14), (10, 13, 16, 19), (15, 18, 21, 24),  # the grid fits 4 windows in 25 frames
        (25, 28, 28, 28),  # a 6-frame piece: one window from its start, padded with its last sampled frame
        (31, 34, 37, 37)]  # a 9-frame piece is shorter than a window's span too
    assert [w.padded_frames for w in windows] == [0, 0, 0, 0, 2, 1]
    assert [w.clip_index for w in windows] == list(range(6))
    tail = place_windows(stamps, end, [(0, 27)], SPEC, stride_s=0.5)  # 27 frames: the grid ends at 24, 2 left
    assert tail[-1].frame_indices == (17, 20, 23, 26) and tail[-1].start_s == pytest.approx(1.7)
    assert tail[-1].end_s == pytest.approx(2.7)  # the tail window ends on the piece's last frame


@pytest.mark.parametrize("seed", range(10))
def test_random_pieces_every_frame_covered_none_straddled(seed):
    rng = np.random.default_rng(seed)
    bounds = np.r_[0, np.cumsum(rng.integers(3, 60, size=8))]
    stamps, end = _stamps(int(bounds[-1]))
    pieces = list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))
    spec = ClipSpec(frames_per_clip=int(rng.integers(2, 9)), frame_stride=int(rng.integers(1, 5)))
    # a stride up to one window's length: windows overlap or touch, so coverage is the grid's plus the tail's
    windows = place_windows(stamps, end, pieces, spec, stride_s=float(rng.uniform(0.1, spec.span_frames / FPS)))
    for a, b in pieces:
        mine = [w for w in windows if a <= w.frame_indices[0] < b]
        assert mine and mine[0].frame_indices[0] == a  # the grid restarts at each piece
        assert all(max(w.frame_indices) < b for w in mine)  # never over a cut
        covered = set().union(*(range(w.frame_indices[0], max(w.frame_indices) + spec.frame_stride) for w in mine))
        assert covered >= set(range(a, b)), (a, b)  # every frame is in some window's span (the tail rule)
        assert all(len(w.frame_indices) == spec.frames_per_clip for w in mine)


def test_index_and_query_windows_follow_one_rule(tmp_path):
    """The same frames cut as an indexed video (plan_windows) and as a query range (plan_query) give the same
    windows; before issue 18 the query side skipped a tail window shorter than a quarter window."""
    frames = np.random.default_rng(0).integers(0, 255, size=(67, 32, 32, 3), dtype=np.uint8)
    path = write_video(tmp_path / "v.mp4", frames, FPS)
    _, info, stamps = open_with_timestamps(path)
    indexed, _ = plan_windows(info, SPEC, WindowSpec(stride_s=1.0, shots="none"), stamps)
    queried = plan_query(path, SPEC, None, None, stride_s=1.0)
    assert [w.frame_indices for w in queried.windows] == [w.frame_indices for w in indexed]
    assert indexed[-1].frame_indices[-1] == 66  # 67 frames: the grid ends at 59, the tail window ends on 66
    shots = [Shot(0.0, 3.0, 0, 30), Shot(3.0, 6.7, 30, 67)]
    indexed, _ = plan_windows(info, SPEC, WindowSpec(stride_s=1.0, shots="none"), stamps, shots)
    queried = plan_query(path, SPEC, None, None, stride_s=1.0, cuts_s=[3.0])
    assert [w.frame_indices for w in queried.windows] == [w.frame_indices for w in indexed]


def test_a_bad_range_names_the_file_and_its_duration(tmp_path):
    path = write_video(tmp_path / "v.mp4", np.zeros((20, 32, 32, 3), np.uint8), FPS)
    with pytest.raises(ParameterError, match=r"past the end: .*v\.mp4 lasts 2\.00 s"):
        plan_query(path, SPEC, 5.0, 6.0)
    with pytest.raises(ParameterError, match="must be before"):
        plan_query(path, SPEC, 1.5, 1.0)
    with pytest.raises(ParameterError, match="--start"):
        plan_query(path, SPEC, -1.0, 1.0)
