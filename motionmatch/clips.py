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

import numpy as np

from .decode import VideoInfo, open_video
from .errors import ParameterError, VideoError
from .validation import check_scalar


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


def plan_clips(info: VideoInfo, spec: ClipSpec, timestamps: np.ndarray | None = None) -> list[ClipWindow]:
    """The clip windows of a video described by ``info``; no decoding.

    ``timestamps`` are the start times of all ``info.num_frames`` frames (``frame_timestamps``);
    without them times are ``index / info.fps``.
    """
    if info.num_frames < 1:
        raise VideoError(info.path, "0 frames: nothing to sample clips from")
    if timestamps is not None:
        timestamps = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        if len(timestamps) != info.num_frames:
            raise ParameterError(f"timestamps for {info.path} hold {len(timestamps)} values but the video has "
                                 f"{info.num_frames} frames; pass the timestamps of all frames or None")
    fps = info.fps if info.fps > 0 else (info.num_frames / info.duration_s if info.duration_s > 0 else 1.0)

    def start_time(index: int) -> float:
        return float(timestamps[index]) if timestamps is not None else index / fps

    def end_time(index: int) -> float:
        if index + 1 < info.num_frames:
            return start_time(index + 1)
        if info.duration_s > start_time(index):
            return float(info.duration_s)
        return start_time(index) + 1.0 / fps

    windows = []
    for clip_index, start in enumerate(_clip_starts(info.num_frames, spec)):
        real = list(range(start, min(info.num_frames, start + spec.span_frames), spec.frame_stride))
        padded = spec.frames_per_clip - len(real)
        indices = tuple(real + [real[-1]] * padded)
        windows.append(ClipWindow(clip_index=clip_index, frame_indices=indices, start_s=start_time(real[0]),
                                  end_s=end_time(real[-1]), padded_frames=padded))
    return windows


def sample_clips(path: str | os.PathLike, spec: ClipSpec, backend: str | None = None) -> list[Clip]:
    """Plan and decode the clips of one video; every needed frame is decoded once, in one call.

    Raises VideoError for unreadable files (see :mod:`motionmatch.decode`).
    """
    video = open_video(path, backend)
    info = video.info()
    timestamps = video.timestamps()
    if len(timestamps) != info.num_frames:  # container index and packets disagree: trust what is there
        count = min(len(timestamps), info.num_frames)
        info = VideoInfo(info.path, count, info.fps, info.width, info.height, info.duration_s, info.backend)
        timestamps = timestamps[:count]
    windows = plan_clips(info, spec, timestamps)
    needed = np.unique(np.concatenate([np.asarray(w.frame_indices) for w in windows]))
    frames = video.read(needed)
    position = {int(index): row for row, index in enumerate(needed)}
    return [Clip(video_path=video.path, window=window,
                 frames=frames[[position[i] for i in window.frame_indices]])
            for window in windows]


__all__ = ["ClipSpec", "ClipWindow", "Clip", "plan_clips", "sample_clips"]
