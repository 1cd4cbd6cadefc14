"""Video: decode files with their real timestamps, cut clips and windows, find shot cuts, write files.

* :mod:`~motionmatch.video.decode`: the one decoding interface (decord2, PyAV fallback), streaming reads;
* :mod:`~motionmatch.video.clips`: clips per video (:class:`ClipSpec`), decoding the planned frames;
* :mod:`~motionmatch.video.windows`: the one window planner (dense windows of an indexed video, and of a
  query range), with one tail rule;
* :mod:`~motionmatch.video.shots`: shot boundaries (TransNetV2, PySceneDetect);
* :mod:`~motionmatch.video.write`: H.264 files from frames.
"""
from .clips import Clip, ClipSpec, ClipWindow, iter_window_clips, open_with_timestamps, plan_clips, prefetched_clips, \
    sample_clips
from .decode import (OpenedVideo, VideoInfo, available_backends, fingerprint_file, frame_timestamps, iter_frames,
                     open_video, probe_video, read_frames)
from .shots import METHODS as SHOT_METHODS
from .shots import Shot, cuts_in_range, detect_shots, shots_from_cuts
from .windows import (DEFAULT_STRIDE_S, DEFAULT_WINDOW_FRAME_STRIDE, DEFAULT_WINDOW_FRAMES, NO_SHOTS, SHOT_CHOICES,
                      QueryPlan, WindowSpec, check_range, collection_clip_spec, dense_clip_spec, phase_plans,
                      place_windows, plan_query, plan_windows, recorded_clip_spec)
from .write import write_video

__all__ = ["Clip", "ClipSpec", "ClipWindow", "iter_window_clips", "open_with_timestamps", "plan_clips",
           "prefetched_clips", "sample_clips", "OpenedVideo", "VideoInfo", "available_backends", "fingerprint_file",
           "frame_timestamps", "iter_frames", "open_video", "probe_video", "read_frames", "SHOT_METHODS", "Shot",
           "cuts_in_range", "detect_shots", "shots_from_cuts", "DEFAULT_STRIDE_S", "DEFAULT_WINDOW_FRAME_STRIDE",
           "DEFAULT_WINDOW_FRAMES", "NO_SHOTS", "SHOT_CHOICES", "QueryPlan", "WindowSpec", "check_range",
           "collection_clip_spec", "dense_clip_spec", "phase_plans", "place_windows", "plan_query", "plan_windows",
           "recorded_clip_spec", "write_video"]
