"""Clip sampling: which frames of a video become the clips an encoder sees.

A clip is ``frames_per_clip`` frames taken every ``frame_stride`` frames, so it spans
``(frames_per_clip - 1) * frame_stride + 1`` frames of the video. ``clips_per_video`` clips are
placed with their start frames spread evenly from the first possible start (frame 0) to the last
(the clip ends on the video's last frame); a single clip is centred.

Short videos:

* when the video has fewer possible start frames than ``clips_per_video``, fewer clips are made,
  one per distinct start frame (windows may overlap but never repeat exactly);
* when the video is shorter than one clip, exactly one clip is made from frame 0 and padded by
  repeating its last real frame; ``padded_frames`` records how many frames are repeats.

Times come from the container's real frame timestamps (variable frame rate safe) when given,
else from ``index / fps``. ``end_s`` is the end of the clip's last real frame.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

from .decode import VideoInfo, iter_frames, open_video
from ..errors import ParameterError, VideoError
from ..validation import check_scalar


@dataclass(frozen=True)
class ClipSpec:
    """How clips are cut from a video."""

    frames_per_clip: int = 16  # frames per clip fed to the encoder
    frame_stride: int = 2  # take every n-th decoded frame
    clips_per_video: int = 4  # clips sampled per video, spread evenly over its length

    def __post_init__(self) -> None:
        for name in ("frames_per_clip", "frame_stride", "clips_per_video"):
            check_scalar(getattr(self, name), f"ClipSpec.{name}", int, min_value=1)

    @property
    def span_frames(self) -> int:
        """Video frames covered by one clip, first to last sampled frame inclusive."""
        return (self.frames_per_clip - 1) * self.frame_stride + 1


@dataclass(frozen=True)
class ClipWindow:
    """Where one clip sits in its video."""

    clip_index: int  # 0-based position of the clip within its video
    frame_indices: tuple[int, ...]  # video frame of each clip frame (padding repeats the last real one)
    start_s: float  # start time of the clip's first frame, seconds from the video's first frame
    end_s: float  # end time of the clip's last real frame
    padded_frames: int  # how many trailing frames are repeats of the last real frame


@dataclass(frozen=True)
class FrameBlock:
    """The frames a window stands for, their times and thumbnails (:mod:`motionmatch.video.fingerprint`):
    from its first frame (or, after a gap, the frame after the previous window's last) to the next window's first
    frame (or its own last, when the next starts later), so consecutive windows' blocks tile the video once."""

    first_frame: int  # index of times[0]
    times: np.ndarray  # (n,) float64 start of each frame, seconds (real timestamps)
    thumbs: np.ndarray  # (n, 16, 16) uint8 grey thumbnails


@dataclass
class Clip:
    """A clip's frames and where they came from."""

    video_path: str  # the video file
    window: ClipWindow  # the clip's position and times
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB, T = frames_per_clip
    block: FrameBlock | None = None  # with iter_window_clips(thumbnails=True): the frames this window starts


def _clip_starts(num_frames: int, spec: ClipSpec) -> list[int]:
    """Distinct start frames, spread evenly; [0] when the video is shorter than one clip."""
    last_start = num_frames - spec.span_frames
    if last_start <= 0:
        return [0]
    count = min(spec.clips_per_video, last_start + 1)
    if count == 1:
        return [last_start // 2]
    # spacing >= 1 frame, so rounding keeps the starts distinct
    return [int(np.floor(x + 0.5)) for x in np.linspace(0, last_start, count)]


def _fps(info: VideoInfo) -> float:
    return info.fps if info.fps > 0 else (info.num_frames / info.duration_s if info.duration_s > 0 else 1.0)


def _frame_times(info: VideoInfo, timestamps: np.ndarray | None):
    """(start_time(i), end_time(i)) of frame i: real timestamps when given, else ``i / fps``."""
    fps = _fps(info)

    def start_time(index: int) -> float:
        return float(timestamps[index]) if timestamps is not None else index / fps

    def end_time(index: int) -> float:
        if index + 1 < info.num_frames:
            return start_time(index + 1)
        if info.duration_s > start_time(index):
            return float(info.duration_s)
        return start_time(index) + 1.0 / fps

    return start_time, end_time


def _check_timestamps(info: VideoInfo, timestamps: np.ndarray | None) -> np.ndarray | None:
    if info.num_frames < 1:
        raise VideoError(info.path, "0 frames: nothing to sample clips from")
    if timestamps is None:
        return None
    timestamps = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    if len(timestamps) != info.num_frames:
        raise ParameterError(f"timestamps for {info.path} hold {len(timestamps)} values but the video has "
                             f"{info.num_frames} frames; pass the timestamps of all frames or None")
    return timestamps


def plan_clips(info: VideoInfo, spec: ClipSpec, timestamps: np.ndarray | None = None) -> list[ClipWindow]:
    """The clip windows of a video described by ``info``; no decoding.

    ``timestamps`` are the start times of all ``info.num_frames`` frames (``frame_timestamps``);
    without them times are ``index / info.fps``.
    """
    timestamps = _check_timestamps(info, timestamps)
    start_time, end_time = _frame_times(info, timestamps)
    windows = []
    for clip_index, start in enumerate(_clip_starts(info.num_frames, spec)):
        real = list(range(start, min(info.num_frames, start + spec.span_frames), spec.frame_stride))
        padded = spec.frames_per_clip - len(real)
        indices = tuple(real + [real[-1]] * padded)
        windows.append(ClipWindow(clip_index=clip_index, frame_indices=indices, start_s=start_time(real[0]),
                                  end_s=end_time(real[-1]), padded_frames=padded))
    return windows


def open_with_timestamps(path: str | os.PathLike, backend: str | None = None):
    """``(video, info, timestamps)`` of one open; where the container's frame count and its packets
    disagree, what is there wins."""
    video = open_video(path, backend)
    info = video.info()
    timestamps = video.timestamps()
    if len(timestamps) != info.num_frames:  # container index and packets disagree: trust what is there
        count = min(len(timestamps), info.num_frames)
        info = VideoInfo(info.path, count, info.fps, info.width, info.height, info.duration_s, info.backend)
        timestamps = timestamps[:count]
    return video, info, timestamps


def sample_clips(path: str | os.PathLike, spec: ClipSpec, backend: str | None = None) -> list[Clip]:
    """Plan and decode the clips of one video; every needed frame is decoded once, in one call.

    Raises VideoError for unreadable files (see :mod:`motionmatch.video.decode`).
    """
    video, info, timestamps = open_with_timestamps(path, backend)
    windows = plan_clips(info, spec, timestamps)
    needed = np.unique(np.concatenate([np.asarray(w.frame_indices) for w in windows]))
    frames = video.read(needed)
    position = {int(index): row for row, index in enumerate(needed)}
    return [Clip(video_path=video.path, window=window,
                 frames=frames[[position[i] for i in window.frame_indices]])
            for window in windows]


# ----------------------------------------------------------------------------- streaming windows (long videos)
def iter_window_clips(path: str | os.PathLike, windows: Sequence[ClipWindow], start_window: int = 0,
                      chunk_frames: int = 64, thumbnails: bool = False) -> Iterator[Clip]:
    """The clips of ``windows[start_window:]``, in order, decoded in one sequential pass.

    Frames stream through :func:`motionmatch.video.decode.iter_frames` (from the first frame the
    remaining windows need); only the frames of windows not yet complete are held, so memory
    is bounded by one window's span, not by the video's duration. ``thumbnails``: every decoded frame's
    thumbnail is kept until its window is handed out, with the clip's :class:`FrameBlock`, so the blocks of
    all windows tile every frame from the first window's first frame on. Raises VideoError when the video ends
    before a planned frame.
    """
    pending = list(windows[start_window:])
    if not pending:
        return
    # block k holds frames [cut_k, cut_k+1): cut_k = min(first frame of window k, last frame of window k-1 + 1)
    cuts = [int(windows[0].frame_indices[0])] + [min(int(w.frame_indices[0]), max(v.frame_indices) + 1)
                                                  for v, w in zip(windows[:-1], windows[1:])]
    cuts = cuts[start_window:] + [max(pending[-1].frame_indices) + 1]
    if thumbnails:
        from .fingerprint import thumbnails as make_thumbnails
    frame_sets = [set(w.frame_indices) for w in pending]
    buffer: dict[int, np.ndarray] = {}
    small: dict[int, tuple[float, np.ndarray]] = {}  # frame -> (time, thumbnail), with ``thumbnails``
    emit = 0  # next window to hand out
    last_index = -1
    first_frame = min(pending[0].frame_indices[0], cuts[0]) if thumbnails else pending[0].frame_indices[0]
    frames = iter_frames(path, chunk_frames=chunk_frames, start_frame=first_frame)
    try:
        for chunk in frames:
            if thumbnails:
                for offset, thumb in enumerate(make_thumbnails(chunk.frames)):
                    small[chunk.start_index + offset] = (float(chunk.timestamps[offset]), thumb)
            for offset in range(len(chunk.frames)):
                index = last_index = chunk.start_index + offset
                reach = emit  # windows that may hold this frame start at or before it
                while reach < len(pending) and pending[reach].frame_indices[0] <= index:
                    reach += 1
                if any(index in frame_sets[j] for j in range(emit, reach)):
                    buffer[index] = chunk.frames[offset]
                while emit < len(pending) and max(pending[emit].frame_indices) <= index:
                    window = pending[emit]
                    keep_from = pending[emit + 1].frame_indices[0] if emit + 1 < len(pending) else index + 1
                    block = None
                    if thumbnails:
                        own = [i for i in range(cuts[emit], cuts[emit + 1]) if i in small]
                        block = FrameBlock(own[0], np.array([small[i][0] for i in own]),
                                           np.stack([small[i][1] for i in own])) if own else None
                        for stale in [i for i in small if i < cuts[emit + 1]]:
                            del small[stale]
                    yield Clip(video_path=os.fspath(path), window=window,
                               frames=np.stack([buffer[i] for i in window.frame_indices]), block=block)
                    emit += 1
                    for stale in [i for i in buffer if i < keep_from]:
                        del buffer[stale]
                if emit == len(pending):
                    return
    finally:
        frames.close()
    missing = max(pending[emit].frame_indices)
    raise VideoError(os.fspath(path), f"truncated or corrupt: frame {missing} was planned but only {last_index + 1} "
                                      "frames could be decoded", hint="re-encode the file or remove it")


PREFETCH_BYTES = 128 * 2**20  # decoded frames waiting for the encoder, at most (about 3 windows of 16 x 720p RGB)


def _frames_bytes(item) -> int:
    frames = getattr(item, "frames", None)
    return int(getattr(frames, "nbytes", 0))


def prefetched_clips(items: Iterable, depth: int, max_bytes: int = PREFETCH_BYTES) -> Iterator:
    """``items`` read ahead by a thread: a video decodes while the encoder works.

    At most ``depth`` items and ``max_bytes`` of decoded frames wait (one item always may, however
    large), so memory stays bounded at any resolution. Decoders (PyAV, decord) and the encoders'
    heavy calls release the GIL, so on 2 cores the two overlap. An exception of the reader is
    raised here, after the items read before it; a consumer that stops early (break, error) stops
    the reader too.
    """
    import collections
    import threading

    done, stop = object(), threading.Event()
    waiting: collections.deque = collections.deque()
    ready = threading.Condition()
    queued = [0]  # bytes waiting
    depth, max_bytes = max(1, int(depth)), max(0, int(max_bytes))

    def put(item, error=None) -> bool:
        size = _frames_bytes(item)
        with ready:
            while waiting and (len(waiting) >= depth or queued[0] + size > max_bytes) and not stop.is_set():
                ready.wait(timeout=0.1)
            if stop.is_set():
                return False
            waiting.append((item, error, size))
            queued[0] += size
            ready.notify_all()
        return True

    def read() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, raised there
            put(done, err)

    reader = threading.Thread(target=read, name="motionmatch-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            with ready:
                while not waiting:
                    ready.wait(timeout=0.1)
                item, error, size = waiting.popleft()
                queued[0] -= size
                ready.notify_all()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        with ready:
            ready.notify_all()
        reader.join(timeout=5)


__all__ = ["ClipSpec", "ClipWindow", "Clip", "FrameBlock", "plan_clips", "sample_clips", "open_with_timestamps", "iter_window_clips",
           "prefetched_clips"]
