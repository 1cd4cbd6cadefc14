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

Several people in view (``pose:v2``, the default): up to ``max_people`` (2) people are found on the clip's first
frame and tracked, one tracker each, and their descriptors are pooled into one vector weighted by coverage
(:mod:`.pose_people`). The first is the person the detector finds first (its best detection), followed until lost
and then detected again, exactly the one track of ``pose:v1`` (``max_people=1``). With one track, different cameras
of Pose2Sim's Trial_2 followed different people (cam03 the man, the others the woman), and a clip of the man alone
(Trial_1) matched a clip of him beside the woman.

No person. A clip is "no person" when no frame has a tracked person whose detection scored at least
``min_detection_score`` (0.7: real people on Pose2Sim score >= 0.69 on 0.6% of frames and above that otherwise,
while the synthetic sprites' false detections scored <= 0.67) and whose mean body-landmark visibility is at least
``min_visibility``. Such a clip gets coverage 0.0 and :func:`~motionmatch.encoders.pose_descriptor.no_person_vector`:
the unit vector on the descriptor's last component, which every person descriptor leaves at 0, so it has cosine 0
with every clip that shows a person. ``encode_with_coverage`` returns the coverage (fraction of the clip's frames with
a tracked person) so callers can mask those clips; ``encode`` alone does not say which clips they were, and
``shows_content(vectors)`` tells them apart again from the vectors (a search leaves such query windows out). A
skeleton collapsed to a point (torso under 1 mm) is no person either.

Choosing the descriptor (measured, not assumed). ``python -m bench.bench_pose`` (2 cores, 2026-12-05, every variant
pooled over the same people as ``pose:v2``) on the Pose2Sim sample: 216 clips of 16 frames (9 per window video, 2
trials x 4 cameras x 3 windows of 0.55 s). Cross-camera: each query ranks only the other cameras' clips, relevant =
same trial:window (chance 0.167); Trial_1: the single-person trial alone (Trial_2's man replays Trial_1's, with a
woman added); moment@1: the top cross-camera hit is within 4 frames (67 ms) of the query's moment; same-camera:
own camera, clips at least 8 frames away. 95% CIs are about +-0.06 on the cross-camera P@1 (optical flow, for
reference: 0.282, P@10 0.275, moment@1 0.181).

===============================================  ====  ==========  ==========  ========  ========  ===========
variant                                           dim   cross P@1   cross P@10  Trial_1   moment@1  same-camera
                                                                                cross P@1           P@1
===============================================  ====  ==========  ==========  ========  ========  ===========
world positions, canonical facing                 181   0.551       0.493       0.898     0.412     0.593
world positions + velocities                      361   0.699       0.565       0.880     0.519     0.375
world positions + velocities, mirror-symmetric    361   0.556       0.492       0.750     0.394     0.273
joint angles                                       57   0.620       0.542       0.657     0.403     0.616
joint angles + velocities                         113   0.593       0.521       0.750     0.347     0.315
limb directions, canonical                        121   0.630       0.547       0.861     0.486     0.588
**positions + limbs + angles + velocities**       537   0.731       **0.588**   0.870     **0.574** 0.519
2D image landmarks, normalised                    121   0.519       0.467       0.611     0.255     0.731
2D image landmarks + velocities                   241   **0.741**   0.565       0.833     0.537     0.440
===============================================  ====  ==========  ==========  ========  ========  ===========

Why the chosen one (bold) stays: it has the best cross-camera P@10 and moment@1, and is 0.01 behind the best
cross-camera P@1 (2D landmarks + velocities, inside the CIs) and 0.03 behind the best on the single-person trial.
It was also the winner with one person per clip (2026-12-03: cross P@1 0.620, P@10 0.532, moment@1 0.495). So it
is the best measured here, not proven best. What the table does show: canonical 3D beats 2D image landmarks across
cameras on the single-person trial (0.898 vs 0.611 without velocities), velocities are what find the exact moment,
joint angles alone lose the limbs' direction (an arm raised forward or sideways has the same elbow angle), and the
mirror-symmetric variant loses (BlazePose did not confuse left and right on these views, so left/right is
information). The 2D landmarks' high same-camera P@1 (0.731) is the camera's own view, which they keep and the
canonical 3D drops.

``encoder_id`` is ``"pose:v2"`` (``"pose:v1"`` with ``max_people=1``); any change of the descriptor or its defaults
must bump the version, because stored vectors are only comparable with the same descriptor. ``preprocessing()``
records the model files' sha256.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ParameterError
from ..validation import check_scalar
from .base import check_batch_size, check_clips, l2_normalize
from .pose_descriptor import FEATURE_BLOCKS, check_blocks, describe_landmarks, descriptor_dim, no_person_vector

DESCRIPTOR_VERSION = "v2"  # the default: several people per clip (.pose_people); "v1" is max_people=1
VERSION_SETTINGS = {"v1": {"max_people": 1}, "v2": {}}  # what encoder_from_id rebuilds for each version
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
    max_people: int = 2  # people tracked per clip (1: pose:v1, the most persistent track only); see .pose_people
    extra_person_score: float = 0.5  # a further person starts from a detection at least this confident
    person_search_frames: tuple[float, ...] = (0.0, 0.5)  # where further people are looked for (fractions of the clip)

    def __post_init__(self) -> None:
        check_scalar(self.frames_per_clip, "PoseSettings.frames_per_clip", int, min_value=1)
        check_scalar(self.temporal_segments, "PoseSettings.temporal_segments", int, min_value=1, max_value=16)
        check_scalar(self.num_threads, "PoseSettings.num_threads", int, min_value=1)
        check_scalar(self.max_people, "PoseSettings.max_people", int, min_value=1, max_value=8)
        for name in ("min_detection_score", "min_presence", "min_visibility", "extra_person_score"):
            check_scalar(getattr(self, name), f"PoseSettings.{name}", float, min_value=0, max_value=1)
        if not isinstance(self.features, tuple) or not isinstance(self.feature_weights, tuple):
            raise ParameterError("PoseSettings.features and feature_weights must be tuples, e.g. "
                                 "features=('positions', 'velocities'), feature_weights=(1.0, 1.0)")
        check_blocks(self.features, self.feature_weights)
        frames = self.person_search_frames
        if (not isinstance(frames, tuple) or not frames
                or not all(isinstance(f, (int, float)) and 0 <= f <= 1 for f in frames)):
            raise ParameterError(f"PoseSettings.person_search_frames must be a non-empty tuple of fractions of the "
                                 f"clip in [0, 1], e.g. (0.0, 0.5); got {frames!r}")

    @property
    def version(self) -> str:
        """``"v1"`` for one person per clip, ``"v2"`` for several (their vectors are not comparable)."""
        return "v1" if self.max_people == 1 else "v2"

    @property
    def dim(self) -> int:
        """Length of the descriptor (the last component is the no-person slot)."""
        return descriptor_dim(self.features, self.temporal_segments)


class PoseEncoder:
    """Clip embeddings from the tracked person's canonical 3D skeleton (see the module docstring)."""

    def __init__(self, settings: PoseSettings = PoseSettings(), model_paths: dict | None = None, fetch: bool = True):
        from .blazepose import BlazePose

        self.settings = settings
        self.encoder_id = f"pose:{settings.version}"
        self.dim = settings.dim
        self.frames_per_clip = settings.frames_per_clip
        self.trackers = [BlazePose(model_paths=model_paths, num_threads=settings.num_threads,
                                   min_detection_score=settings.min_detection_score,
                                   min_presence=settings.min_presence, fetch=fetch,
                                   smooth_landmarks=settings.smooth_landmarks) for _ in range(settings.max_people)]
        self.pose = self.trackers[0]  # the first person's tracker (the only one of pose:v1)

    def preprocessing(self) -> dict:
        """JSON-serialisable description: the model files with their sha256, and every descriptor setting."""
        from .pose_models import MEDIAPIPE_VERSION, POSE_MODELS

        values = asdict(self.settings)
        values["features"], values["feature_weights"] = list(self.settings.features), list(self.settings.feature_weights)
        values["person_search_frames"] = list(self.settings.person_search_frames)
        models = {name: {"file": member.rsplit("/", 1)[-1], "bytes": size, "sha256": sha256,
                         "source": f"mediapipe=={MEDIAPIPE_VERSION} wheel: {member}"}
                  for name, (member, size, sha256) in POSE_MODELS.items()}
        tracking = ("one person per clip: detector on the first frame, then the most persistent track"
                    if self.settings.max_people == 1 else
                    f"up to {self.settings.max_people} people per clip, one track each, descriptors pooled by coverage")
        return {"kind": "pose", "version": self.settings.version, "models": models, "runtime": "ai-edge-litert",
                "tracking": tracking,
                "no_person": "coverage 0 and the unit vector on the last component", **values}

    # ------------------------------------------------------------------ per frame
    def track(self, clip: np.ndarray) -> list:
        """Per-frame :class:`~motionmatch.encoders.blazepose.PoseFrame` of one (T, H, W, 3) uint8 clip (for drawing).

        The tracker restarts at the clip's first frame, exactly as :meth:`encode` does.
        """
        (clip,) = check_clips([clip])
        return self.pose.track(clip)

    def track_people(self, clip: np.ndarray) -> list[list]:
        """One list of per-frame PoseFrames per person of one clip (:func:`.pose_people.track_people`); the first is
        :meth:`track`'s."""
        from .pose_people import track_people

        (clip,) = check_clips([clip])
        last = len(clip) - 1
        seeds = [int(fraction * last + 0.5) for fraction in self.settings.person_search_frames]
        return track_people(self.trackers, clip, self.settings.extra_person_score, seeds)

    def describe_people(self, people: Sequence[Sequence]) -> tuple[np.ndarray, float]:
        """The clip's descriptor and coverage from its people's PoseFrames (:func:`.pose_people.pool_people`)."""
        from .pose_people import pool_people

        return pool_people([self.describe_frames(frames) for frames in people], lambda: no_person_vector(self.dim))

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
            vector, share = self.describe_people(self.track_people(clip))
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
