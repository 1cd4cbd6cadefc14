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
from .errors import ParameterError, VideoError
from .shots import DEFAULT_METHOD as SHOT_DEFAULT
from .shots import METHODS as SHOT_METHODS
from .shots import Shot, ShotWindow, split_windows_at_shots
from .validation import check_choice, check_scalar


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


@dataclass
class Clip:
    """A clip's frames and where they came from."""

    video_path: str  # the video file
    window: ClipWindow  # the clip's position and times
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB, T = frames_per_clip


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

    Raises VideoError for unreadable files (see :mod:`motionmatch.decode`).
    """
    video, info, timestamps = open_with_timestamps(path, backend)
    windows = plan_clips(info, spec, timestamps)
    needed = np.unique(np.concatenate([np.asarray(w.frame_indices) for w in windows]))
    frames = video.read(needed)
    position = {int(index): row for row, index in enumerate(needed)}
    return [Clip(video_path=video.path, window=window,
                 frames=frames[[position[i] for i in window.frame_indices]])
            for window in windows]


# ----------------------------------------------------------------------------- dense windows (long videos)
# Defaults of dense windows, chosen by measurement (bench/bench_windows.py, numbers in WindowSpec's docstring):
DEFAULT_STRIDE_S = 0.5  # seconds between window starts
DEFAULT_WINDOW_FRAMES = 16  # frames per window (V-JEPA 2's own evaluations use 16 frames x step 4)
DEFAULT_WINDOW_FRAME_STRIDE = 4  # every 4th frame: a window spans 61 frames, 2.5 s at 24 fps, 2.0 s at 30 fps
NO_SHOTS = "none"
SHOT_CHOICES = (*SHOT_METHODS, NO_SHOTS)
PADDED_NOTE = "padded"


@dataclass(frozen=True)
class WindowSpec:
    """Dense windows over a whole video (issue 11), the alternative to ``ClipSpec.clips_per_video``.

    A window is one clip of the :class:`ClipSpec` (``frames_per_clip`` frames every
    ``frame_stride`` frames); a window starts every ``stride_s`` seconds of the file's real
    timestamps, from the start of each shot, so no window straddles a hard cut (see
    :func:`motionmatch.shots.split_windows_at_shots`). Recorded in ``extract_meta.json`` under
    ``"windows"`` so queries can be cut the same way.

    **Defaults, measured** (``python bench/bench_windows.py``: 8 generated videos x 120 s at
    160x120, 24 fps, seed 0, windows inside the true shots, FlowEncoder; each labelled segment is
    localised by the longest run of windows whose 1-NN label (from other videos) is its own,
    scored by temporal IoU; cost on 2 shared CPU cores, decode + encode):

    =============  ========  ========  =========  ========================  ==================  ===============
    frames x step  window s  stride s  mean tIoU  best - this (95% CI)      windows/video-hour  s / video-hour
    =============  ========  ========  =========  ========================  ==================  ===============
    16 x 2         1.29      0.5       0.484      +0.016 .. +0.129          7005                329
    16 x 2         1.29      1         0.490      +0.015 .. +0.118          3630                170
    16 x 2         1.29      2         0.472      +0.013 .. +0.154          1942                91
    16 x 4         2.54      0.5       0.554      (best)                    6566                546
    16 x 4         2.54      1         0.519      +0.006 .. +0.074          3409                283
    16 x 4         2.54      2         0.465      +0.036 .. +0.153          1834                152
    =============  ========  ========  =========  ========================  ==================  ===============

    The rule (``bench_windows.recommend``): the largest stride whose mean tIoU is not significantly
    below the best (paired bootstrap over the 72 labelled segments). Only 16 x 4 at 0.5 s passes, so it is the
    default: a window of about 2 s (V-JEPA 2's own evaluations use 16 frames x step 4) every 0.5 s,
    about 7200 windows per video-hour. Window-level 1-NN accuracy is 0.53-0.59 in every row (no
    setting stands out); localisation is what the stride and the window length change. ``--stride-s 1`` halves the cost for 0.035 less tIoU (copy
    detection works at about 1 fps). Caveats: synthetic motion repeats in 2 s cycles, which favours
    a window of at least 2 s; the encoder is FlowEncoder, not V-JEPA 2.
    """

    stride_s: float = DEFAULT_STRIDE_S  # seconds between window starts
    shots: str = SHOT_DEFAULT  # shot detection method (motionmatch.shots.METHODS) or "none" (the video is one shot)
    windows_per_chunk: int = 32  # windows per parquet part: a killed run resumes at the last finished part

    def __post_init__(self) -> None:
        check_scalar(self.stride_s, "WindowSpec.stride_s", float, min_value=0.0, include_min=False)
        check_choice(self.shots, "WindowSpec.shots", SHOT_CHOICES)
        check_scalar(self.windows_per_chunk, "WindowSpec.windows_per_chunk", int, min_value=1)


def plan_windows(info: VideoInfo, spec: ClipSpec, window_spec: WindowSpec, timestamps: np.ndarray | None = None,
                 shots: Sequence[Shot] | None = None) -> tuple[list[ClipWindow], list[str]]:
    """Dense windows of a video, in time order, and notes on the unusual ones; no decoding.

    ``shots`` (from :func:`motionmatch.shots.detect_shots`; None = the whole video is one shot)
    bound the windows. A shot (or a video) shorter than one window gets one window from its first
    frame, padded by repeating its last real frame as :func:`plan_clips` pads a short video; the
    notes say so. ``clip_index`` is the window's ordinal.
    """
    timestamps = _check_timestamps(info, timestamps)
    n = info.num_frames
    stamps = timestamps if timestamps is not None else np.arange(n) / _fps(info)
    start_time, end_time = _frame_times(info, timestamps)
    if not shots:
        shots = [Shot(0.0, max(float(info.duration_s), end_time(n - 1)), 0, n)]
    span = spec.span_frames
    window_s = span / _fps(info)
    placed = split_windows_at_shots(shots, window_s, window_spec.stride_s)
    if not placed:  # every shot empty: fall back to one window from frame 0
        placed = [ShotWindow(0.0, window_s, 0, "clipped to a short shot")]
    firsts: list[int] = []
    for window in placed:
        shot = shots[window.shot_index]
        if window.note == "aligned to the shot end":
            first = shot.end_frame - span
        else:
            first = int(np.searchsorted(stamps, window.start_s - 1e-9))
        first = max(shot.start_frame, min(first, shot.end_frame - span))  # inside the shot, padding only if it is short
        if not firsts or first > firsts[-1]:
            firsts.append(first)
    windows, short = [], 0
    shot_ends = [shot.end_frame for shot in shots]
    for clip_index, first in enumerate(firsts):
        end = min(n, shot_ends[min(len(shot_ends) - 1, int(np.searchsorted(shot_ends, first, side="right")))])
        real = list(range(first, min(end, first + span), spec.frame_stride))
        padded = spec.frames_per_clip - len(real)
        short += padded > 0
        windows.append(ClipWindow(clip_index=clip_index, frame_indices=tuple(real + [real[-1]] * padded),
                                  start_s=start_time(real[0]), end_s=end_time(real[-1]), padded_frames=padded))
    notes = []
    if n < span:
        notes.append(f"{PADDED_NOTE}: no full window: the video has {n} frames ({end_time(n - 1):.2f} s) and a window "
                     f"needs {span} ({window_s:.2f} s); one window was made from frame 0 and padded with "
                     f"{windows[0].padded_frames} repeats of the last frame, as clips-per-video mode pads a short video")
    elif short:
        notes.append(f"{PADDED_NOTE}: {short} window(s) padded: their shot is shorter than one window "
                     f"({span} frames, {window_s:.2f} s); padded_frames says how many frames repeat")
    return windows, notes


def iter_window_clips(path: str | os.PathLike, windows: Sequence[ClipWindow], start_window: int = 0,
                      chunk_frames: int = 64) -> Iterator[Clip]:
    """The clips of ``windows[start_window:]``, in order, decoded in one sequential pass.

    Frames stream through :func:`motionmatch.decode.iter_frames` (from the first frame the
    remaining windows need); only the frames of windows not yet complete are held, so memory
    is bounded by one window's span, not by the video's duration. Raises VideoError when the
    video ends before a planned frame.
    """
    pending = list(windows[start_window:])
    if not pending:
        return
    frame_sets = [set(w.frame_indices) for w in pending]
    buffer: dict[int, np.ndarray] = {}
    emit = 0  # next window to hand out
    last_index = -1
    frames = iter_frames(path, chunk_frames=chunk_frames, start_frame=pending[0].frame_indices[0])
    try:
        for chunk in frames:
            for offset in range(len(chunk.frames)):
                index = last_index = chunk.start_index + offset
                reach = emit  # windows that may hold this frame start at or before it
                while reach < len(pending) and pending[reach].frame_indices[0] <= index:
                    reach += 1
                if any(index in frame_sets[j] for j in range(emit, reach)):
                    buffer[index] = chunk.frames[offset]
                while emit < len(pending) and max(pending[emit].frame_indices) <= index:
                    window = pending[emit]
                    yield Clip(video_path=os.fspath(path), window=window,
                               frames=np.stack([buffer[i] for i in window.frame_indices]))
                    emit += 1
                    keep_from = pending[emit].frame_indices[0] if emit < len(pending) else index + 1
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


__all__ = ["ClipSpec", "ClipWindow", "Clip", "plan_clips", "sample_clips", "open_with_timestamps", "DEFAULT_STRIDE_S",
           "DEFAULT_WINDOW_FRAMES", "DEFAULT_WINDOW_FRAME_STRIDE", "NO_SHOTS", "SHOT_CHOICES", "WindowSpec", "plan_windows", "iter_window_clips",
           "prefetched_clips"]
