"""decode.py on real H.264 files written into tmp_path, decoded by every available backend."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from motionmatch.video.decode import (
    DEFAULT_BACKEND, VideoInfo, available_backends, fingerprint_file, frame_timestamps, iter_frames, open_video,
    probe_video, read_frames,
)
from motionmatch.errors import ParameterError, VideoError
from motionmatch.video import write_video

CODEC_TOLERANCE = 4  # grey levels: H.264 at crf 18 on flat frames stays well within this


@pytest.fixture(params=available_backends())
def backend(request) -> str:
    return request.param


def grey_levels(count: int) -> np.ndarray:
    """One distinct grey level per frame, so a decoded frame's mean tells which frame it is."""
    return (16 + (np.arange(count) * 211 // max(1, count - 1))).astype(np.uint8)


def constant_frames(count: int, height: int, width: int) -> np.ndarray:
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    frames[:] = grey_levels(count)[:, None, None, None]
    return frames


@pytest.fixture
def grey_video(tmp_path) -> Path:
    """12 frames, 64x48 at 12 fps; frame i is flat grey at grey_levels(12)[i]."""
    return write_video(tmp_path / "grey.mp4", constant_frames(12, 48, 64), fps=12)


def test_available_backends_prefers_decord_and_always_has_pyav():
    backends = available_backends()
    assert backends[-1] == "pyav"
    assert DEFAULT_BACKEND in backends
    if "decord" in backends:
        assert backends[0] == "decord"


def test_probe_reports_frames_fps_size_duration(grey_video, backend):
    info = probe_video(grey_video, backend=backend)
    assert isinstance(info, VideoInfo)
    assert (info.num_frames, info.width, info.height) == (12, 64, 48)
    assert info.fps == pytest.approx(12.0, rel=1e-3)
    assert info.duration_s == pytest.approx(1.0, abs=1e-3)
    assert info.backend == backend
    assert info.path == str(grey_video)


def test_read_frames_returns_only_requested_frames_in_order(grey_video, backend):
    indices = [7, 0, 3, 3, 11]
    frames = read_frames(grey_video, indices, backend=backend)
    assert frames.shape == (5, 48, 64, 3) and frames.dtype == np.uint8
    expected = grey_levels(12)[indices].astype(float)
    np.testing.assert_allclose(frames.mean(axis=(1, 2, 3)), expected, atol=CODEC_TOLERANCE)
    assert read_frames(grey_video, [], backend=backend).shape == (0, 48, 64, 3)


def test_read_frames_rejects_out_of_range_indices(grey_video, backend):
    with pytest.raises(ParameterError, match=r"\[0, 11\]"):
        read_frames(grey_video, [0, 12], backend=backend)
    with pytest.raises(ParameterError):
        read_frames(grey_video, [-1], backend=backend)


def test_unknown_backend_is_a_parameter_error(grey_video):
    with pytest.raises(ParameterError, match="backend"):
        probe_video(grey_video, backend="opencv")


def test_odd_size_is_padded_to_even_for_yuv420p(tmp_path, backend):
    """write_video pads 97x61 to 98x62 (edge repeat) for yuv420p; the decoder reports what is stored."""
    frames = constant_frames(6, 61, 97)
    frames[:, :, -1] = 250  # the last column is bright, so its copy must be bright too
    path = write_video(tmp_path / "odd420.mp4", frames, fps=10)
    info = probe_video(path, backend=backend)
    assert (info.width, info.height) == (98, 62)
    decoded = read_frames(path, [5], backend=backend)[0].astype(int)
    assert decoded.shape == (62, 98, 3)
    assert decoded[:, -1].mean() > 200 and decoded[:, -2].mean() > 200


def test_odd_size_is_kept_exactly_with_yuv444p(tmp_path, backend):
    path = write_video(tmp_path / "odd444.mp4", constant_frames(6, 61, 97), fps=10, pix_fmt="yuv444p")
    info = probe_video(path, backend=backend)
    assert (info.width, info.height) == (97, 61)
    frames = read_frames(path, [0, 5], backend=backend)
    assert frames.shape == (2, 61, 97, 3)
    np.testing.assert_allclose(frames.mean(axis=(1, 2, 3)), grey_levels(6)[[0, 5]], atol=CODEC_TOLERANCE)


@pytest.mark.parametrize("height, width", [(96, 40), (32, 96), (48, 144)])
def test_non_square_and_decord_problem_widths(tmp_path, backend, height, width):
    """Portrait and landscape frames; widths 96 and 144 trip a decord2 row-stride bug (PyAV takes over)."""
    path = write_video(tmp_path / f"frames_{width}x{height}.mp4", constant_frames(8, height, width), fps=8)
    frames = read_frames(path, [6, 1], backend=backend)
    assert frames.shape == (2, height, width, 3)
    np.testing.assert_allclose(frames.mean(axis=(1, 2, 3)), grey_levels(8)[[6, 1]], atol=CODEC_TOLERANCE)


def test_variable_frame_rate_timestamps_are_the_real_ones(tmp_path, backend):
    gaps = np.array([0.1, 0.05, 0.2, 0.05, 0.1, 0.3, 0.05, 0.15, 0.05])
    stamps = np.concatenate([[0.0], np.cumsum(gaps)])
    path = write_video(tmp_path / "vfr.mp4", constant_frames(10, 32, 48), fps=10, timestamps_s=stamps)
    got = frame_timestamps(path, range(10), backend=backend)
    np.testing.assert_allclose(got, stamps, atol=2e-3)
    assert np.ptp(np.diff(got)) > 0.2  # truly non-uniform
    info = probe_video(path, backend=backend)
    assert info.num_frames == 10
    assert info.duration_s > stamps[-1]
    frames = read_frames(path, [9, 2], backend=backend)
    np.testing.assert_allclose(frames.mean(axis=(1, 2, 3)), grey_levels(10)[[9, 2]], atol=CODEC_TOLERANCE)


def test_iter_frames_streams_every_frame_with_its_real_timestamp(tmp_path):
    gaps = np.array([0.1, 0.05, 0.2, 0.05, 0.1, 0.3, 0.05, 0.15, 0.05])
    stamps = np.concatenate([[0.0], np.cumsum(gaps)])
    path = write_video(tmp_path / "vfr.mp4", constant_frames(10, 32, 48), fps=10, timestamps_s=stamps)
    chunks = list(iter_frames(path, chunk_frames=3))
    assert [c.start_index for c in chunks] == [0, 3, 6, 9] and [len(c.frames) for c in chunks] == [3, 3, 3, 1]
    np.testing.assert_allclose(np.concatenate([c.timestamps for c in chunks]), stamps, atol=2e-3)
    frames = np.concatenate([c.frames for c in chunks])
    np.testing.assert_array_equal(frames, read_frames(path, range(10), backend="pyav"))
    np.testing.assert_allclose(frames.mean(axis=(1, 2, 3)), grey_levels(10), atol=CODEC_TOLERANCE)
    resumed = list(iter_frames(path, chunk_frames=4, start_frame=7))  # a seek to the keyframe, then forward
    assert [c.start_index for c in resumed] == [7]
    np.testing.assert_array_equal(resumed[0].frames, frames[7:])
    assert list(iter_frames(path, start_frame=10)) == []


def test_iter_frames_on_a_truncated_file_raises_video_error_after_what_it_holds(tmp_path):
    path = _write_truncated_after_first_frames(tmp_path / "cut.mp4")
    seen = []
    with pytest.raises(VideoError, match="truncated or corrupt") as caught:
        for chunk in iter_frames(path, chunk_frames=4):
            seen.append(len(chunk.frames))
    assert sum(seen) >= 1 and caught.value.path == str(path)  # the start still streams, then the error


def test_display_rotation_is_applied(tmp_path, backend):
    frames = np.zeros((4, 32, 64, 3), dtype=np.uint8)
    frames[:, :, :8] = 255  # a bright band on the left edge
    path = write_video(tmp_path / "rotated.mp4", frames, fps=8, display_rotation=90)
    info = probe_video(path, backend=backend)
    assert (info.width, info.height) == (32, 64)
    decoded = read_frames(path, [0], backend=backend)[0]
    assert decoded.shape == (64, 32, 3)
    # 90 degrees counter-clockwise: the left edge becomes the bottom edge
    assert decoded[-8:].mean() > 200 and decoded[:-8].mean() < 40


def test_open_video_answers_several_questions_from_one_open(grey_video, backend):
    video = open_video(grey_video, backend=backend)
    assert video.info().num_frames == len(video.timestamps()) == 12
    np.testing.assert_allclose(video.timestamps(), np.arange(12) / 12, atol=1e-3)
    assert video.read([1]).shape == (1, 48, 64, 3)


# ----------------------------------------------------------------------------- broken inputs
def _write_audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for index in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, index * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _write_truncated_after_first_frames(path: Path) -> Path:
    """An MP4 with its index up front (faststart) cut in half: header intact, later frames missing."""
    noise = np.random.default_rng(0).integers(0, 256, (30, 48, 64, 3), dtype=np.uint8)
    whole = path.with_name("whole.mp4")
    with av.open(str(whole), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=20)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for image in noise:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _broken(kind: str, tmp_path: Path, grey_video: Path) -> Path:
    path = tmp_path / f"{kind}.mp4"
    if kind == "missing":
        return path
    if kind == "zero_byte":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("<html>404 Not Found</html>\n")
    elif kind == "garbage":
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    elif kind == "directory":
        path.mkdir()
    elif kind == "truncated_index":  # moov at the end: cutting the file loses the index
        data = grey_video.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "audio_only":
        _write_audio_only(path)
    return path


@pytest.mark.parametrize("kind, reason", [
    ("missing", "not found"),
    ("zero_byte", "empty"),
    ("text", "text"),
    ("garbage", "not a video"),
    ("directory", "directory"),
    ("truncated_index", "truncated"),
    ("audio_only", "audio only"),
])
def test_broken_inputs_raise_video_error_naming_the_file(tmp_path, grey_video, backend, kind, reason):
    path = _broken(kind, tmp_path, grey_video)
    for call in (lambda: probe_video(path, backend=backend), lambda: read_frames(path, [0], backend=backend),
                 lambda: frame_timestamps(path, [0], backend=backend)):
        with pytest.raises(VideoError) as caught:
            call()
        assert caught.value.path == str(path)
        assert reason in caught.value.reason
        assert str(path) in str(caught.value)


def test_truncated_data_fails_on_the_missing_frames(tmp_path, backend):
    path = _write_truncated_after_first_frames(tmp_path / "cut.mp4")
    assert read_frames(path, [0], backend=backend).shape == (1, 48, 64, 3)  # the start still decodes
    info = probe_video(path, backend=backend)
    with pytest.raises(VideoError, match="truncated or corrupt") as caught:
        read_frames(path, [info.num_frames - 1], backend=backend)
    assert caught.value.path == str(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_permission_denied(grey_video):
    grey_video.chmod(0)
    try:
        with pytest.raises(VideoError, match="permission denied"):
            probe_video(grey_video)
    finally:
        grey_video.chmod(0o644)


# ----------------------------------------------------------------------------- fingerprints and configuration
def test_fingerprint_tracks_content_not_name(tmp_path, grey_video):
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(grey_video.read_bytes())
    assert fingerprint_file(copy) == fingerprint_file(grey_video)
    other = write_video(tmp_path / "other.mp4", constant_frames(12, 48, 64)[::-1].copy(), fps=12)
    assert fingerprint_file(other) != fingerprint_file(grey_video)
    big = tmp_path / "big.bin"
    big.write_bytes(b"a" * 3000 + b"b")
    before = fingerprint_file(big, chunk=1000)
    big.write_bytes(b"a" * 3000 + b"c")  # only the last byte changes
    assert fingerprint_file(big, chunk=1000) != before
    with pytest.raises(VideoError, match="not found"):
        fingerprint_file(tmp_path / "absent.mp4")


def test_environment_variable_overrides_the_default_backend():
    env = {**os.environ, "MOTIONMATCH_DECODER": "pyav"}
    out = subprocess.run([sys.executable, "-c", "import motionmatch.video.decode as d; print(d.DEFAULT_BACKEND)"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "pyav"
