"""PoseEncoder: the pose channel, clip embeddings from BlazePose's 3D skeleton, which barely depends on the camera.

Why. Optical flow (:mod:`.flow`) sees motion as pixels move on the image, so the same movement filmed from another
side looks different: on the Pose2Sim sample searched across cameras flow is near chance. A person's 3D skeleton,
turned to face a canonical direction, is nearly the same from any camera.

What it does. :class:`~motionmatch.encoders.blazepose.BlazePose` (MediaPipe's full pose model on LiteRT, one
thread) tracks one person through the clip, restarting from the detector at the clip's first frame; the clip's world
landmarks become one vector (:mod:`.pose_descriptor`): hip-centred, rotated into the clip's body frame (hip line and
torso axis), divided by the torso length; then four blocks: canonical joint positions (minus a rest pose), limb
directions, joint angles and joint velocities, each as mean and std over 2 consecutive halves of the clip, each block
L2-normalised (537 values with the no-person slot). ``track(clip)`` returns the per-frame PoseFrames (landmarks in
pixels and metres) for drawing skeletons.

Several people in view: the tracker follows the most persistent track, i.e. the person the detector finds first
(its best detection) is followed from frame to frame until lost; only then does the detector run again. It does not
pick "the most active" or "the biggest" person, so with two people different cameras may follow different people
(Pose2Sim's Trial_2 does: its cam03 mostly follows the man, the others the woman).

No person. A clip is "no person" when no frame has a tracked person whose detection scored at least
``min_detection_score`` (0.7: real people on Pose2Sim score >= 0.69 on 0.6% of frames and above that otherwise,
while the synthetic sprites' false detections scored <= 0.67) and whose mean body-landmark visibility is at least
``min_visibility``. Such a clip gets coverage 0.0 and :func:`~motionmatch.encoders.pose_descriptor.no_person_vector`:
the unit vector on the descriptor's last component, which every person descriptor leaves at 0, so it has cosine 0
with every clip that shows a person. ``encode_with_coverage`` returns the coverage (fraction of the clip's frames with
a tracked person) so callers can mask those clips; ``encode`` alone does not say which clips they were, and
``shows_content(vectors)`` tells them apart again from the vectors (a search leaves such query windows out). A
skeleton collapsed to a point (torso under 1 mm) is no person either.

Choosing the descriptor (measured, not assumed). ``python -m bench.bench_pose`` (2 cores, 2026-12-03) on the Pose2Sim
sample: 216 clips of 16 frames (9 per window video, 2 trials x 4 cameras x 3 windows of 0.55 s), every variant from
the same tracking run. Cross-camera: each query ranks only the other cameras' clips, relevant = same trial:window
(chance 0.167); Trial_1: the single-person trial alone (Trial_2's man replays Trial_1's, so its labels come in
look-alike pairs, and its trackers follow different people in different cameras); moment@1: the top cross-camera hit
is within 4 frames (67 ms) of the query's moment; same-camera: own camera, clips at least 8 frames away. 95% CIs
are about +-0.065 on the cross-camera P@1 (optical flow, for reference: 0.282, P@10 0.275, moment@1 0.181).

===============================================  ====  ==========  ==========  ========  ========  ===========
variant                                           dim   cross P@1   cross P@10  Trial_1   moment@1  same-camera
                                                                                cross P@1           P@1
===============================================  ====  ==========  ==========  ========  ========  ===========
world positions, canonical facing                 181   0.477       0.457       0.898     0.329     0.440
world positions + velocities                      361   0.574       0.512       0.880     0.472     0.403
world positions + velocities, mirror-symmetric    361   0.505       0.404       0.759     0.403     0.301
joint angles                                       57   0.444       0.427       0.657     0.292     0.421
joint angles + velocities                         113   0.505       0.410       0.731     0.315     0.315
limb directions, canonical                        121   0.579       0.488       0.861     0.435     0.435
**positions + limbs + angles + velocities**       537   **0.620**   **0.532**   0.870     **0.495** 0.426
2D image landmarks, normalised                    121   0.426       0.362       0.602     0.264     0.440
2D image landmarks + velocities                   241   0.593       0.464       0.833     0.468     0.356
===============================================  ====  ==========  ==========  ========  ========  ===========

Why the chosen one (bold, ``pose:v1``) won: it has the best cross-camera P@1, P@10 and moment@1 of all variants
and is within 0.03 of the best on the single-person trial and same-camera retrieval. Its lead over positions +
velocities and over limb directions is inside the CIs, so it is the best measured here, not proven best. What the
table does show: canonical 3D beats 2D image landmarks across cameras (Trial_1 0.898 vs 0.602 without velocities),
velocities are what find the exact moment (moment@1 0.329 -> 0.472 for positions), joint angles alone lose the
limbs' direction (an arm raised forward or sideways has the same elbow angle), and the mirror-symmetric variant
loses (BlazePose did not confuse left and right on these views, so left/right is information).

``encoder_id`` is ``"pose:v1"``; any change of the descriptor or its defaults must bump the version, because stored
vectors are only comparable with the same descriptor. ``preprocessing()`` records the model files' sha256.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ParameterError
from ..validation import check_scalar
from .base import check_batch_size, check_clips, l2_normalize
from .pose_descriptor import FEATURE_BLOCKS, check_blocks, describe_landmarks, descriptor_dim, no_person_vector

DESCRIPTOR_VERSION = "v1"
VISIBILITY_JOINTS = (0, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)  # body joints whose visibility is averaged


@dataclass(frozen=True)
class PoseSettings:
    """The pose channel's settings; every field is part of ``preprocessing()`` (vectors made otherwise differ)."""

    frames_per_clip: int = 16  # frames per clip the ClipSpec should sample (any T >= 1 is accepted)
    features: tuple[str, ...] = ("positions", "limbs", "angles", "velocities")  # blocks (pose_descriptor.FEATURE_BLOCKS)
    feature_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)  # one weight per block, applied after its L2 norm
    temporal_segments: int = 2  # consecutive parts of the clip pooled separately (mean and std of each)
    symmetric: bool = False  # True: add the mirrored clip's blocks, so left and right do not matter
    min_detection_score: float = 0.7  # a track starts only from a detection at least this confident
    min_presence: float = 0.5  # the landmark model's presence below which the track is lost
    min_visibility: float = 0.5  # a frame counts as "person" when its mean body-landmark visibility reaches this
    smooth_landmarks: bool = True  # MediaPipe's landmark filters (One Euro) within the clip
    num_threads: int = 1  # LiteRT threads per model

    def __post_init__(self) -> None:
        check_scalar(self.frames_per_clip, "PoseSettings.frames_per_clip", int, min_value=1)
        check_scalar(self.temporal_segments, "PoseSettings.temporal_segments", int, min_value=1, max_value=16)
        check_scalar(self.num_threads, "PoseSettings.num_threads", int, min_value=1)
        for name in ("min_detection_score", "min_presence", "min_visibility"):
            check_scalar(getattr(self, name), f"PoseSettings.{name}", float, min_value=0, max_value=1)
        if not isinstance(self.features, tuple) or not isinstance(self.feature_weights, tuple):
            raise ParameterError("PoseSettings.features and feature_weights must be tuples, e.g. "
                                 "features=('positions', 'velocities'), feature_weights=(1.0, 1.0)")
        check_blocks(self.features, self.feature_weights)

    @property
    def dim(self) -> int:
        """Length of the descriptor (the last component is the no-person slot)."""
        return descriptor_dim(self.features, self.temporal_segments)


class PoseEncoder:
    """Clip embeddings from the tracked person's canonical 3D skeleton (see the module docstring)."""

    def __init__(self, settings: PoseSettings = PoseSettings(), model_paths: dict | None = None, fetch: bool = True):
        from .blazepose import BlazePose

        self.settings = settings
        self.encoder_id = f"pose:{DESCRIPTOR_VERSION}"
        self.dim = settings.dim
        self.frames_per_clip = settings.frames_per_clip
        self.pose = BlazePose(model_paths=model_paths, num_threads=settings.num_threads,
                              min_detection_score=settings.min_detection_score, min_presence=settings.min_presence,
                              fetch=fetch, smooth_landmarks=settings.smooth_landmarks)

    def preprocessing(self) -> dict:
        """JSON-serialisable description: the model files with their sha256, and every descriptor setting."""
        from .pose_models import MEDIAPIPE_VERSION, POSE_MODELS

        values = asdict(self.settings)
        values["features"], values["feature_weights"] = list(self.settings.features), list(self.settings.feature_weights)
        models = {name: {"file": member.rsplit("/", 1)[-1], "bytes": size, "sha256": sha256,
                         "source": f"mediapipe=={MEDIAPIPE_VERSION} wheel: {member}"}
                  for name, (member, size, sha256) in POSE_MODELS.items()}
        return {"kind": "pose", "version": DESCRIPTOR_VERSION, "models": models, "runtime": "ai-edge-litert",
                "tracking": "one person per clip: detector on the first frame, then the most persistent track",
                "no_person": "coverage 0 and the unit vector on the last component", **values}

    # ------------------------------------------------------------------ per frame
    def track(self, clip: np.ndarray) -> list:
        """Per-frame :class:`~motionmatch.encoders.blazepose.PoseFrame` of one (T, H, W, 3) uint8 clip (for drawing).

        The tracker restarts at the clip's first frame, exactly as :meth:`encode` does.
        """
        (clip,) = check_clips([clip])
        return self.pose.track(clip)

    def describe_frames(self, frames: Sequence) -> tuple[np.ndarray, float]:
        """The L2-normalised descriptor and the coverage of one clip's tracked frames (:func:`describe_tracked`)."""
        return describe_tracked(frames, self.settings)

    # ------------------------------------------------------------------ clips
    def encode_with_coverage(self, clips: Sequence[np.ndarray], batch_size: int = 8,
                             progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(n, dim) float32 L2-normalised descriptors and (n,) float32 coverage (share of frames with a person)."""
        check_batch_size(batch_size)
        clips = check_clips(clips)
        if not clips:
            return np.zeros((0, self.dim), dtype=np.float32), np.zeros(0, dtype=np.float32)
        from tqdm.auto import tqdm

        rows, coverage = [], []
        for clip in tqdm(clips, desc=self.encoder_id, unit="clip", disable=not progress or len(clips) <= batch_size):
            vector, share = self.describe_frames(self.pose.track(clip))
            rows.append(vector)
            coverage.append(share)
        return np.stack(rows).astype(np.float32), np.asarray(coverage, dtype=np.float32)

    @staticmethod
    def shows_content(vectors: np.ndarray) -> np.ndarray:
        """(n,) bool: which of these descriptors show a person (the no-person vector is 1 on its last component,
        every person descriptor 0), so a search can leave the others out (:func:`motionmatch.search.search_vectors`)."""
        return np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)[:, -1] < 0.5

    def encode(self, clips: Sequence[np.ndarray], batch_size: int = 8, progress: bool = False) -> np.ndarray:
        """(n, dim) float32 L2-normalised descriptors; no-person clips get the no-person vector (see coverage)."""
        return self.encode_with_coverage(clips, batch_size, progress)[0]


def person_frames(frames: Sequence, min_visibility: float) -> np.ndarray:
    """(T,) bool: frames whose tracked person counts (found, mean body-landmark visibility >= ``min_visibility``)."""
    joints = list(VISIBILITY_JOINTS)
    return np.array([bool(frame.found) and float(np.mean(frame.visibility[joints])) >= min_visibility
                     for frame in frames], dtype=bool)


def describe_tracked(frames: Sequence, settings: PoseSettings) -> tuple[np.ndarray, float]:
    """One clip's (dim,) L2-normalised descriptor and coverage from its PoseFrames, with ``settings``' descriptor.

    Tracking and description are separate so that several descriptors can be compared on one tracking run.
    """
    dim = settings.dim
    person = person_frames(frames, settings.min_visibility)
    if not person.any():
        return no_person_vector(dim), 0.0
    missing = np.full((33, 3), np.nan)
    world = np.stack([frame.world_landmarks if ok else missing for frame, ok in zip(frames, person)])
    image = np.stack([frame.image_landmarks if ok else missing for frame, ok in zip(frames, person)])
    vector = describe_landmarks(world, image, settings.features, settings.feature_weights,
                                settings.temporal_segments, settings.symmetric)
    if vector is None or not np.isfinite(vector).all() or np.linalg.norm(vector) == 0:
        return no_person_vector(dim), 0.0  # degenerate landmarks: no usable pose
    return l2_normalize(vector[None])[0], float(person.mean())


__all__ = ["PoseSettings", "PoseEncoder", "describe_tracked", "person_frames", "DESCRIPTOR_VERSION",
           "FEATURE_BLOCKS"]
