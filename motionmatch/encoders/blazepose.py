"""BlazePose (MediaPipe Pose, GHUM 3D, the "full" landmark model) per frame, offline, on numpy + OpenCV + LiteRT.

Why not ``mediapipe`` itself? Its wheel pins numpy<2 and protobuf<5, which clash with this project. Its two
``.tflite`` models are fetched once from that wheel (:mod:`~motionmatch.encoders.pose_models`) and run with
``ai-edge-litert``; the graph around them is rewritten here from MediaPipe's published design
(``pose_landmark_cpu.pbtxt``, v0.10.21; the steps are in :mod:`~motionmatch.encoders.blazepose_geometry`):

1. when no person is tracked, the detector runs on the letterboxed frame (224x224); its best detection after weighted
   NMS gives a rotated square ROI from its hip-centre and full-body keypoints (x 1.25);
2. the landmark model runs on the 256x256 crop of the ROI: 39 landmarks (33 body + 6 auxiliary) refined by the 64x64
   heatmap, 39 world landmarks in metres, and a presence score;
3. presence > ``min_presence`` keeps the person: the next frame's ROI comes from the two auxiliary landmarks (hip
   centre and body-circle point), so the detector does not run again until the track is lost ("the most persistent
   track": with several people, the one found first is followed, not the best-scoring one in every frame);
4. when the track is lost, that frame has no pose and the next frame runs the detector, as MediaPipe does.

Replicated: anchors, decoding, weighted NMS, letterbox, ROI alignment and rotation, the OpenCV crop (bilinear,
replicated border, sampled as the OpenCV 4 inside MediaPipe samples), heatmap refinement (over the 9x9 window
mediapipe 0.10.21 applies), projections, and MediaPipe's smoothing: One Euro filters on the image
landmarks (min cutoff 0.05, beta 80, scaled by the body size), on the world landmarks (0.1, 40, unscaled) and on the
auxiliary landmarks (0.01, 10: always on, it steadies the tracking ROI), low-pass visibility (alpha 0.1), all at the
30 fps that MediaPipe's Python ``Pose`` simulates. ``smooth_landmarks=False`` turns off all but the auxiliary filter,
as ``Pose(smooth_landmarks=False)`` does.
Not replicated: the segmentation mask, the lite/heavy models, GPU paths, static-image mode (call :meth:`reset`
before each image instead), and float-rounding details of MediaPipe's C++: the first frame of a video matches
mediapipe 0.10.21 to its rounding, later frames drift by a fraction of a pixel (median 0.2 px on Pose2Sim's 1088x1920
demo, ``bench/bench_pose_oracle.py``); where the pose is ambiguous (two people overlapping) that drift can grow
into a different pose, as any small change of input can for MediaPipe itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import MissingPackageError, ParameterError, WeightsUnavailableError
from ..validation import check_scalar
from . import blazepose_geometry as geometry

NUM_LANDMARKS = 33  # BlazePose body landmarks (MediaPipe's order: 0 nose ... 23/24 hips ... 31/32 foot tips)
NUM_MODEL_LANDMARKS = 39  # + 2 auxiliary (hip centre, body-circle point) + 4 unused
AUX_START = 33
SIMULATED_FPS = 30.0  # MediaPipe's Python solution stamps frames 33333 us apart; the filters depend on it
LANDMARK_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index")
LITERT_HINT = "pip install 'ai-edge-litert>=2.3,<3' (runs MediaPipe's .tflite models; mediapipe itself is not needed)"


@dataclass(frozen=True)
class Detection:
    """One person found by the detector, in pixels of the frame it ran on."""

    score: float  # sigmoid score of the best box of its NMS group
    box: tuple[float, float, float, float]  # x_min, y_min, x_max, y_max of the face-and-body box the model emits
    keypoints: np.ndarray  # (4, 2): hip centre, full-body scale point, shoulder centre, upper-body scale point

    def roi(self) -> geometry.Roi:
        """The landmark model's ROI for this person (hip centre, full-body point, x 1.25)."""
        return geometry.alignment_roi(self.keypoints[0], self.keypoints[1])


@dataclass(frozen=True)
class PoseFrame:
    """The pose of the tracked person in one frame; arrays are NaN (never zeros) when no person was found."""

    found: bool  # a person was tracked in this frame
    presence: float  # the landmark model's presence probability (0 when not found)
    image_landmarks: np.ndarray  # (33, 3) float32: x, y in pixels of the input frame, z relative depth scaled as x
    visibility: np.ndarray  # (33,) float32 probabilities
    world_landmarks: np.ndarray  # (33, 3) float32 metres, origin at the hip centre (MediaPipe's world landmarks)
    roi: tuple[float, float, float, float, float] | None  # centre x, centre y, width, height (pixels), rotation (rad)
    detected: bool  # whether the detector ran on this frame (False: tracked from the previous frame)


def _missing(roi: geometry.Roi | None, detected: bool) -> PoseFrame:
    nan3 = np.full((NUM_LANDMARKS, 3), np.nan, dtype=np.float32)
    return PoseFrame(False, 0.0, nan3, np.full(NUM_LANDMARKS, np.nan, dtype=np.float32), nan3.copy(), roi, detected)


@dataclass
class OneEuroFilter:
    """MediaPipe's One Euro filter (``mediapipe/util/filtering``) applied elementwise to an array of values.

    The speed of change (scaled by ``value_scale``, e.g. 1 / body size) raises the cutoff, so slow jitter is smoothed
    hard while fast motion passes. The first value after a reset is returned as it is.
    """

    min_cutoff: float  # Hz, the cutoff when the values are still
    beta: float  # how fast the cutoff grows with speed
    derivative_cutoff: float = 1.0  # Hz, smoothing of the speed estimate
    frequency: float = SIMULATED_FPS  # Hz, the frame rate the filter assumes
    _raw: np.ndarray | None = field(default=None, repr=False)
    _value: np.ndarray | None = field(default=None, repr=False)
    _speed: np.ndarray | None = field(default=None, repr=False)

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray | float:
        time_constant = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + time_constant * self.frequency)

    def reset(self) -> None:
        self._raw = self._value = self._speed = None

    def __call__(self, values: np.ndarray, value_scale: float = 1.0) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if self._raw is None:
            self._raw, self._value, self._speed = values, values, np.zeros_like(values)
            return values.astype(np.float32)
        speed = (values - self._raw) * value_scale * self.frequency
        speed_alpha = self._alpha(self.derivative_cutoff)
        self._speed = speed_alpha * speed + (1 - speed_alpha) * self._speed
        alpha = self._alpha(self.min_cutoff + self.beta * np.abs(self._speed))
        self._value = alpha * values + (1 - alpha) * self._value
        self._raw = values
        return self._value.astype(np.float32)


@dataclass
class LowPassFilter:
    """Exponential smoothing ``alpha * new + (1 - alpha) * previous``; the first value after a reset passes as is."""

    alpha: float
    _value: np.ndarray | None = field(default=None, repr=False)

    def reset(self) -> None:
        self._value = None

    def __call__(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float32)
        self._value = values if self._value is None else self.alpha * values + (1 - self.alpha) * self._value
        return self._value.astype(np.float32)


def _interpreter(path: Path, num_threads: int):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as error:
        raise MissingPackageError(f"BlazePose needs the LiteRT interpreter: {LITERT_HINT}") from error
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        raise WeightsUnavailableError(f"{path}: LiteRT cannot load it ({error}); delete it and let "
                                      f"motionmatch.encoders.pose_models fetch it again") from error
    return interpreter


def _outputs_by_size(interpreter, path: Path, sizes: dict[str, int]) -> dict[str, int]:
    """The output tensor index of each wanted role, found by element count; a clear error for a wrong model file."""
    found = {int(np.prod(detail["shape"])): detail["index"] for detail in interpreter.get_output_details()}
    missing = [role for role, size in sizes.items() if size not in found]
    if missing:
        raise WeightsUnavailableError(f"{path}: not the expected BlazePose model (no output for {missing}; outputs "
                                      f"have {sorted(found)} values)")
    return {role: found[size] for role, size in sizes.items()}


class BlazePose:
    """MediaPipe Pose (BlazePose GHUM 3D, full model) on one person per frame, tracked across calls.

    ``pose(frame)`` takes one (H, W, 3) uint8 RGB frame and returns a :class:`PoseFrame`; consecutive calls track the
    same person. ``pose.track(frames)`` does a whole video; ``pose.detect(frame)`` runs the detector alone and returns
    every detection; ``pose.track(frames, detection=d, redetect=False)`` follows one given person
    (:func:`~motionmatch.encoders.pose_people.track_people` follows several).

    ``model_paths`` maps ``pose_detection`` and ``pose_landmark_full`` to the .tflite files (default: the cached ones,
    fetched when ``fetch``); ``num_threads`` is LiteRT's thread count; ``min_detection_score`` is MediaPipe's
    ``min_detection_confidence``; ``min_presence`` its ``min_tracking_confidence`` (a pose counts, and its track is
    kept, while the presence score exceeds it); ``smooth_landmarks`` as MediaPipe's option of that name.
    """

    def __init__(self, model_paths: dict | None = None, num_threads: int = 1, min_detection_score: float = 0.5,
                 min_presence: float = 0.5, fetch: bool = True, smooth_landmarks: bool = True):
        self.num_threads = check_scalar(num_threads, "num_threads", int, min_value=1)
        self.min_detection_score = check_scalar(min_detection_score, "min_detection_score", float, min_value=0,
                                                max_value=1)
        self.min_presence = check_scalar(min_presence, "min_presence", float, min_value=0, max_value=1)
        self.smooth_landmarks = bool(smooth_landmarks)
        if model_paths is None:
            from .pose_models import pose_model_paths

            model_paths = pose_model_paths(fetch=fetch)
        paths = self._check_model_paths(model_paths)
        self._detector = _interpreter(paths["pose_detection"], self.num_threads)
        self._landmarker = _interpreter(paths["pose_landmark_full"], self.num_threads)
        self._detector_input = self._detector.get_input_details()[0]["index"]
        self._landmarker_input = self._landmarker.get_input_details()[0]["index"]
        self._anchors = geometry.ssd_anchors()
        self._detector_outputs = _outputs_by_size(self._detector, paths["pose_detection"],
                                                  {"boxes": len(self._anchors) * 12, "scores": len(self._anchors)})
        side = geometry.LANDMARK_SIZE
        self._landmarker_outputs = _outputs_by_size(
            self._landmarker, paths["pose_landmark_full"],
            {"landmarks": NUM_MODEL_LANDMARKS * 5, "presence": 1, "heatmap": (side // 4) ** 2 * NUM_MODEL_LANDMARKS,
             "world": NUM_MODEL_LANDMARKS * 3})
        self._landmark_filter = OneEuroFilter(min_cutoff=0.05, beta=80.0)
        self._world_filter = OneEuroFilter(min_cutoff=0.1, beta=40.0)
        self._aux_filter = OneEuroFilter(min_cutoff=0.01, beta=10.0)
        self._visibility_filter = LowPassFilter(alpha=0.1)
        self._roi: geometry.Roi | None = None
        self._frame_shape: tuple[int, int] | None = None

    @staticmethod
    def _check_model_paths(model_paths: dict) -> dict[str, Path]:
        from .pose_models import POSE_MODELS, manual_steps

        if not isinstance(model_paths, dict) or set(POSE_MODELS) - set(model_paths):
            keys = sorted(model_paths) if isinstance(model_paths, dict) else type(model_paths).__name__
            raise ParameterError(f"model_paths needs the keys {sorted(POSE_MODELS)}; got {keys}")
        paths = {}
        for name in POSE_MODELS:
            paths[name] = Path(model_paths[name]).expanduser()
            if not paths[name].is_file():
                raise WeightsUnavailableError(f"{paths[name]}: BlazePose model file {name!r} not found. "
                                              + manual_steps())
        return paths

    def reset(self) -> None:
        """Forget the tracked person and the filters' history (call before a new video or an unrelated image)."""
        self._lose_track()
        self._frame_shape = None

    def track(self, frames: Iterable[np.ndarray], detection: Detection | None = None,
              redetect: bool = True) -> list[PoseFrame]:
        """Reset, then the pose of every frame in order.

        ``detection`` starts the track from that person on the first frame instead of the detector's best one;
        ``redetect=False`` ends the track when it is lost instead of running the detector again (a second person's
        track must not jump to the first person: :mod:`.pose_people`)."""
        self.reset()
        poses = []
        for index, frame in enumerate(frames):
            poses.append(self(frame, detection=detection if index == 0 else None, redetect=redetect))
        return poses

    def detect(self, frame: np.ndarray, min_score: float | None = None) -> list[Detection]:
        """The detector alone on the whole (letterboxed) frame: every person after weighted NMS, best first
        (scores at least ``min_score``, default ``min_detection_score``)."""
        frame = _check_frame(frame)
        height, width = frame.shape[:2]
        letterbox = geometry.letterbox_roi(width, height)
        pixels = geometry.crop(frame, letterbox, geometry.DETECTOR_SIZE, zero_border=True)
        tensor = pixels.astype(np.float32) * np.float32(2 / 255) - np.float32(1)
        self._detector.set_tensor(self._detector_input, tensor[None])
        self._detector.invoke()
        raw_boxes = self._detector.get_tensor(self._detector_outputs["boxes"])
        raw_scores = self._detector.get_tensor(self._detector_outputs["scores"])
        threshold = self.min_detection_score if min_score is None else float(min_score)
        scores, boxes, keypoints = geometry.decode_detections(raw_boxes, raw_scores, self._anchors, threshold)
        detections = []
        for score, box, points in geometry.weighted_nms(scores, boxes, keypoints):
            corners = geometry.roi_to_image(box.reshape(2, 2), letterbox).ravel()
            detections.append(Detection(score, tuple(float(value) for value in corners),
                                        geometry.roi_to_image(points, letterbox)))
        return detections

    def __call__(self, frame: np.ndarray, detection: Detection | None = None, redetect: bool = True) -> PoseFrame:
        """The pose in ``frame`` ((H, W, 3) uint8 RGB), tracking the person of the previous call.

        ``detection``: start a new track from this person instead; ``redetect=False``: a lost track stays lost
        (the detector is not run)."""
        frame = _check_frame(frame)
        if self._frame_shape != frame.shape[:2] or detection is not None:
            self.reset()
            self._frame_shape = frame.shape[:2]
        detected = self._roi is None
        if detection is not None:
            roi = detection.roi()
        elif detected:
            if not redetect:
                return _missing(None, False)
            detections = self.detect(frame)
            if not detections:
                return _missing(None, True)
            roi = detections[0].roi()
        else:
            roi = self._roi
        presence, landmarks, visibility, world = self._landmarks(frame, roi)
        if not (presence > self.min_presence and np.isfinite(landmarks).all() and np.isfinite(world).all()):
            self._lose_track()
            return _missing(roi, detected)
        aux = landmarks[AUX_START:AUX_START + 2, :2]
        body_size = 2.0 * float(np.hypot(*(aux[1] - aux[0])))  # MediaPipe's object scale for the filters
        body, world = landmarks[:NUM_LANDMARKS], world[:NUM_LANDMARKS]
        if body_size > 1e-6:  # MediaPipe leaves landmarks unfiltered below this scale
            if self.smooth_landmarks:
                body = self._landmark_filter(body, 1.0 / body_size)
                visibility = self._visibility_filter(visibility)
                world = self._world_filter(world)
            aux = self._aux_filter(aux, 1.0 / body_size)
            self._roi = geometry.alignment_roi(aux[0], aux[1])
        else:  # a degenerate ROI cannot be cropped: detect again on the next frame
            self._lose_track()
        return PoseFrame(True, presence, body.astype(np.float32), visibility.astype(np.float32),
                         world.astype(np.float32), roi, detected)

    def _lose_track(self) -> None:
        """No person any more: the next frame runs the detector; the filters start afresh (as MediaPipe's reset)."""
        self._roi = None
        for smoother in (self._landmark_filter, self._world_filter, self._aux_filter, self._visibility_filter):
            smoother.reset()

    def _landmarks(self, frame: np.ndarray, roi: geometry.Roi) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """The landmark model on the ROI: presence, (39, 3) landmarks in pixels, (33,) visibility, (39, 3) metres."""
        side = geometry.LANDMARK_SIZE
        pixels = geometry.crop(frame, roi, side, zero_border=False)
        self._landmarker.set_tensor(self._landmarker_input, (pixels.astype(np.float32) / np.float32(255))[None])
        self._landmarker.invoke()
        outputs = {role: self._landmarker.get_tensor(index) for role, index in self._landmarker_outputs.items()}
        presence = float(outputs["presence"].reshape(-1)[0])
        raw = outputs["landmarks"].reshape(NUM_MODEL_LANDMARKS, 5)
        in_roi = raw[:, :3] / np.float32(side)  # x, y as fractions of the ROI; z in ROI widths
        heatmap = outputs["heatmap"].reshape(side // 4, side // 4, NUM_MODEL_LANDMARKS)
        in_roi[:, :2] = geometry.refine_with_heatmap(in_roi[:, :2], heatmap)
        landmarks = geometry.roi_to_image(in_roi, roi)
        visibility = geometry.sigmoid(raw[:NUM_LANDMARKS, 3])
        world = geometry.rotate_world(outputs["world"].reshape(NUM_MODEL_LANDMARKS, 3), roi[4])
        return presence, landmarks, visibility, world


def _check_frame(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        shape = getattr(frame, "shape", None)
        dtype = getattr(frame, "dtype", type(frame).__name__)
        raise ParameterError(f"BlazePose takes one (H, W, 3) uint8 RGB frame; got shape {shape}, dtype {dtype} "
                             f"(decode with motionmatch.video, or convert: frame.astype(np.uint8))")
    if frame.shape[0] < 2 or frame.shape[1] < 2:
        raise ParameterError(f"frame is too small for BlazePose: {frame.shape[1]}x{frame.shape[0]} pixels")
    return np.ascontiguousarray(frame)
