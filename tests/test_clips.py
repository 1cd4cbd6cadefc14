"""clips.py: planning on hand-made VideoInfo, sampling from real files by every backend."""
from __future__ import annotations

import numpy as np
import pytest

from motionmatch.video import decode
from motionmatch.video.clips import Clip, ClipSpec, ClipWindow, plan_clips, sample_clips
from motionmatch.video.decode import VideoInfo, available_backends, frame_timestamps
from motionmatch.errors import ParameterError, VideoError
from motionmatch.video import write_video

CODEC_TOLERANCE = 4


@pytest.fixture(params=available_backends())
def backend(request) -> str:
    return request.param


def info_of(num_frames: int, fps: float = 10.0) -> VideoInfo:
    return VideoInfo("/videos/v.mp4", num_frames, fps, 64, 48, num_frames / fps, "pyav")


def level_video(path, count: int, height: int = 32, width: int = 48, fps: float = 10, **options):
    """Frame i is flat grey at level 2 + 5 * i (so at most 50 frames), identifiable after decoding."""
    levels = (2 + 5 * np.arange(count)).astype(np.uint8)
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    frames[:] = levels[:, None, None, None]
    return write_video(path, frames, fps=fps, **options), levels


# ----------------------------------------------------------------------------- ClipSpec
@pytest.mark.parametrize("field", ["frames_per_clip", "frame_stride", "clips_per_video"])
@pytest.mark.parametrize("value", [0, -3, 2.5])
def test_clip_spec_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ParameterError, match=field):
        ClipSpec(**{field: value})


def test_clip_spec_defaults_and_span():
    spec = ClipSpec()
    assert (spec.frames_per_clip, spec.frame_stride, spec.clips_per_video) == (16, 2, 4)
    assert spec.span_frames == 31


# ----------------------------------------------------------------------------- plan_clips
def test_plan_spreads_clips_evenly_from_first_to_last_frame():
    windows = plan_clips(info_of(100), ClipSpec(8, 2, 4))
    assert [w.clip_index for w in windows] == [0, 1, 2, 3]
    assert [w.frame_indices[0] for w in windows] == [0, 28, 57, 85]
    assert windows[-1].frame_indices[-1] == 99
    for window in windows:
        assert np.all(np.diff(window.frame_indices) == 2) and len(window.frame_indices) == 8
        assert window.padded_frames == 0
        assert window.start_s == pytest.approx(window.frame_indices[0] / 10)
        assert window.end_s == pytest.approx((window.frame_indices[-1] + 1) / 10)
    assert windows[-1].end_s == pytest.approx(10.0)


def test_single_clip_is_centred():
    (window,) = plan_clips(info_of(41), ClipSpec(4, 3, 1))  # span 10, starts 0..31
    assert window.frame_indices == (15, 18, 21, 24)


def test_too_short_for_all_clips_gives_fewer_distinct_clips():
    windows = plan_clips(info_of(17), ClipSpec(8, 2, 6))  # span 15: only starts 0, 1, 2 exist
    assert [w.frame_indices[0] for w in windows] == [0, 1, 2]
    assert len({w.frame_indices for w in windows}) == len(windows)


def test_exactly_one_clip_long_needs_no_padding():
    windows = plan_clips(info_of(15), ClipSpec(8, 2, 4))
    assert len(windows) == 1
    assert windows[0].frame_indices == tuple(range(0, 15, 2)) and windows[0].padded_frames == 0


def test_shorter_than_one_clip_is_padded_with_the_last_real_frame():
    windows = plan_clips(info_of(5), ClipSpec(8, 2, 4))
    assert len(windows) == 1
    (window,) = windows
    assert window.frame_indices == (0, 2, 4, 4, 4, 4, 4, 4)
    assert window.padded_frames == 5
    assert window.start_s == 0.0 and window.end_s == pytest.approx(0.5)


def test_plan_uses_real_timestamps_when_given():
    stamps = np.array([0.0, 0.1, 0.15, 0.4, 0.45, 0.9, 1.0, 1.3])
    info = VideoInfo("/videos/vfr.mp4", 8, 6.0, 64, 48, 1.4, "pyav")
    windows = plan_clips(info, ClipSpec(2, 2, 2), timestamps=stamps)  # span 3: starts 0 and 5
    assert [w.frame_indices for w in windows] == [(0, 2), (5, 7)]
    assert (windows[0].start_s, windows[0].end_s) == (0.0, 0.4)
    assert (windows[1].start_s, windows[1].end_s) == (0.9, 1.4)  # last frame ends at the duration
    with pytest.raises(ParameterError, match="timestamps"):
        plan_clips(info, ClipSpec(2, 2, 2), timestamps=stamps[:5])


def test_plan_is_a_list_of_frozen_windows():
    (window,) = plan_clips(info_of(20), ClipSpec(4, 1, 1))
    assert isinstance(window, ClipWindow)
    with pytest.raises(AttributeError):
        window.start_s = 3.0


# ----------------------------------------------------------------------------- sample_clips on real files
def test_sample_clips_decodes_the_planned_frames(tmp_path, backend):
    path, levels = level_video(tmp_path / "levels.mp4", 40)
    spec = ClipSpec(frames_per_clip=4, frame_stride=3, clips_per_video=3)
    clips = sample_clips(path, spec, backend=backend)
    assert [c.window.frame_indices for c in clips] == [(0, 3, 6, 9), (15, 18, 21, 24), (30, 33, 36, 39)]
    for clip in clips:
        assert isinstance(clip, Clip) and clip.video_path == str(path)
        assert clip.frames.shape == (4, 32, 48, 3) and clip.frames.dtype == np.uint8
        np.testing.assert_allclose(clip.frames.mean(axis=(1, 2, 3)), levels[list(clip.window.frame_indices)],
                                   atol=CODEC_TOLERANCE)
    assert clips[-1].window.end_s == pytest.approx(4.0, abs=1e-3)


def test_sample_clips_pads_a_short_video(tmp_path, backend):
    path, levels = level_video(tmp_path / "short.mp4", 5)
    (clip,) = sample_clips(path, ClipSpec(frames_per_clip=6, frame_stride=2, clips_per_video=4), backend=backend)
    assert clip.window.frame_indices == (0, 2, 4, 4, 4, 4) and clip.window.padded_frames == 3
    assert clip.frames.shape == (6, 32, 48, 3)
    means = clip.frames.mean(axis=(1, 2, 3))
    np.testing.assert_allclose(means, levels[[0, 2, 4, 4, 4, 4]], atol=CODEC_TOLERANCE)
    assert clip.window.end_s == pytest.approx(0.5, abs=1e-3)


def test_sample_clips_on_variable_frame_rate_uses_real_times(tmp_path, backend):
    stamps = np.array([0.0, 0.05, 0.3, 0.35, 0.4, 0.9, 0.95, 1.0, 1.5, 1.55])
    path, _ = level_video(tmp_path / "vfr.mp4", 10, timestamps_s=stamps)
    clips = sample_clips(path, ClipSpec(frames_per_clip=2, frame_stride=2, clips_per_video=3), backend=backend)
    real = frame_timestamps(path, range(10), backend=backend)
    assert np.ptp(np.diff(real)) > 0.3
    assert [c.window.frame_indices for c in clips] == [(0, 2), (4, 6), (7, 9)]
    for clip in clips:
        first, last = clip.window.frame_indices[0], clip.window.frame_indices[-1]
        assert clip.window.start_s == pytest.approx(real[first], abs=1e-6)
        if last + 1 < 10:
            assert clip.window.end_s == pytest.approx(real[last + 1], abs=1e-6)
    assert clips[0].window.start_s == pytest.approx(0.0, abs=2e-3)
    assert clips[1].window.start_s == pytest.approx(0.4, abs=2e-3)  # index / average fps would say 0.64
    assert clips[1].window.end_s == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("height, width, pix_fmt", [(61, 97, "yuv444p"), (90, 36, "yuv420p")])
def test_sample_clips_on_odd_and_non_square_sizes(tmp_path, backend, height, width, pix_fmt):
    path, levels = level_video(tmp_path / "sized.mp4", 12, height=height, width=width, pix_fmt=pix_fmt)
    clips = sample_clips(path, ClipSpec(frames_per_clip=3, frame_stride=2, clips_per_video=2), backend=backend)
    assert len(clips) == 2
    for clip in clips:
        assert clip.frames.shape == (3, height, width, 3)


def test_sample_clips_decodes_once_per_video(tmp_path, backend, monkeypatch):
    path, _ = level_video(tmp_path / "once.mp4", 30)
    calls = []
    real_read = decode.OpenedVideo.read

    def counting_read(self, indices):
        calls.append(list(indices))
        return real_read(self, indices)

    monkeypatch.setattr(decode.OpenedVideo, "read", counting_read)
    clips = sample_clips(path, ClipSpec(frames_per_clip=4, frame_stride=1, clips_per_video=8), backend=backend)
    assert len(calls) == 1
    assert sorted(set(calls[0])) == calls[0]  # the union, each frame once
    assert set(calls[0]) == {i for c in clips for i in c.window.frame_indices}


def test_sample_clips_on_a_broken_file_raises_video_error(tmp_path, backend):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(VideoError) as caught:
        sample_clips(path, ClipSpec(), backend=backend)
    assert caught.value.path == str(path)


def test_prefetched_clips_keeps_order_raises_where_the_reader_failed_and_stops_with_the_consumer():
    import threading

    from motionmatch.video.clips import prefetched_clips

    assert list(prefetched_clips(iter(range(50)), depth=3)) == list(range(50))

    def failing():
        yield from range(5)
        raise VideoError("bad.mp4", "cannot decode frame 5", "re-encode it")

    got = []
    with pytest.raises(VideoError, match="frame 5"):
        for item in prefetched_clips(failing(), depth=2):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]  # everything before the failure arrives first

    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    for item in prefetched_clips(endless(), depth=2):
        if item == 3:
            break
    before = threading.active_count()
    assert not any(t.name == "motionmatch-prefetch" for t in threading.enumerate())  # the reader stopped...
    assert len(produced) <= 3 + 1 + 2 + 1  # ...after reading at most depth (+ the one it held) past the consumer
    assert before == threading.active_count()


def test_prefetched_clips_bounds_the_decoded_bytes_waiting():
    """Read-ahead holds at most max_bytes of frames (one item at least), whatever the depth."""
    import threading
    import time

    from motionmatch.video.clips import prefetched_clips

    class Item:
        def __init__(self, i):
            self.i, self.frames = i, np.zeros(1000, dtype=np.uint8)

    read = []

    def source():
        for i in range(20):
            read.append(i)
            yield Item(i)

    stream = prefetched_clips(source(), depth=100, max_bytes=2500)
    first = next(stream)
    time.sleep(0.3)  # the reader fills what the bound lets it
    assert first.i == 0 and len(read) <= 1 + 2 + 1  # the one taken, 2 waiting (2000 <= 2500 bytes), 1 blocked in put
    assert [item.i for item in stream] == list(range(1, 20))
    huge = prefetched_clips(iter([Item(0), Item(1)]), depth=4, max_bytes=10)  # larger than the bound: one at a time
    assert [item.i for item in huge] == [0, 1]
    assert not any(t.name == "motionmatch-prefetch" for t in threading.enumerate() if t.is_alive())
