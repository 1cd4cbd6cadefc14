"""The pose channel's per-clip descriptor: pure numpy over BlazePose landmarks, no model (see :mod:`.pose`).

One clip's landmarks (T frames of 33 world landmarks in metres, 33 image landmarks in pixels; NaN where no person
was tracked) become one vector:

1. frames without a person are filled by linear interpolation in time from the frames that have one (the ends are
   held), so a short gap does not become a jump;
2. **canonical facing** (:func:`canonical_positions`): each frame is centred at the hip centre; the clip's body frame
   is x = the mean hip line (left hip -> right hip), y = the mean torso axis (hip centre -> shoulder centre), made
   orthogonal to it, z = x cross y; every frame is rotated into that one frame and divided by the clip's mean torso
   length. Any rotation of the camera about the person (about the vertical axis, a tilt, a roll) leaves the result
   unchanged; one frame per clip (not per frame) keeps the body's own turning inside the clip;
3. per-frame feature blocks (:data:`FEATURE_BLOCKS`): ``positions`` (15 body joints, canonical, minus the rest pose
   :data:`REST_POSE`, so that a person standing still at rest is the origin and cosine compares what differs),
   ``velocities`` (their frame-to-frame change), ``limbs`` (unit direction of 10 limbs, canonical, minus rest),
   ``angles`` (14 interior joint angles, radians, minus rest), ``angle_velocities``, and the view-dependent 2D
   baselines ``image`` / ``image_velocities`` (image landmarks centred at the hips, y up, divided by the torso length
   in pixels; no rest pose: which side is the person's right depends on the view);
4. **temporal pooling**: the clip is split into ``segments`` consecutive parts; each part contributes the mean and
   the standard deviation of every feature (order matters a little; a shift of a few frames hardly at all);
5. each block is L2-normalised and multiplied by its weight; the blocks are concatenated, followed by one extra
   component that is 0 for every person (the "no person" slot, :func:`no_person_vector`).

Mirrors. A horizontally mirrored video gives, after BlazePose, the mirror image of the motion: anatomical left and
right swap and the body-frame x coordinate changes sign (:func:`mirror_landmarks` builds it from landmarks;
:func:`canonical_positions` of a mirrored clip equals the left-right swapped, x-negated canonical positions of the
original, exactly). So the default descriptor is *not* mirror-invariant: waving the left hand and waving the right
hand differ. ``symmetric=True`` adds the mirrored clip's pooled blocks to the original's, which makes the
descriptor exactly mirror-invariant (and blind to left vs right).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..errors import ParameterError

NUM_LANDMARKS = 33
LEFT_HIP, RIGHT_HIP, LEFT_SHOULDER, RIGHT_SHOULDER = 23, 24, 11, 12
# nose, shoulders, elbows, wrists, hips, knees, ankles, foot tips (the face and hand points are left out: noisy)
BODY_JOINTS = (0, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28, 31, 32)
LIMBS = ((11, 13), (13, 15), (12, 14), (14, 16), (23, 25), (25, 27), (24, 26), (26, 28), (11, 23), (12, 24))
# interior angle at the middle joint of (a, joint, c): shoulders, elbows, hips, knees, ankles, shoulder and hip girdles
ANGLE_TRIPLETS = ((13, 11, 23), (14, 12, 24), (11, 13, 15), (12, 14, 16), (11, 23, 25), (12, 24, 26), (23, 25, 27),
                  (24, 26, 28), (25, 27, 31), (26, 28, 32), (13, 11, 12), (14, 12, 11), (25, 23, 24), (26, 24, 23))
LEFT_RIGHT_PAIRS = ((1, 4), (2, 5), (3, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18), (19, 20),
                    (21, 22), (23, 24), (25, 26), (27, 28), (29, 30), (31, 32))
MIRROR_PERMUTATION = np.arange(NUM_LANDMARKS)
for _left, _right in LEFT_RIGHT_PAIRS:
    MIRROR_PERMUTATION[_left], MIRROR_PERMUTATION[_right] = _right, _left

# A person standing at rest, arms down, in the canonical frame (x right, y up, z backward: the body faces -z),
# in torso lengths (hip centre to shoulder centre = 1), from average adult proportions.
_REST_BODY = {0: (0.0, 1.45, -0.2), 11: (-0.35, 1.0, 0.0), 13: (-0.38, 0.4, 0.0), 15: (-0.4, -0.15, -0.05),
              23: (-0.2, 0.0, 0.0), 25: (-0.2, -0.85, -0.02), 27: (-0.2, -1.7, 0.03), 31: (-0.22, -1.82, -0.35)}


def _rest_pose() -> np.ndarray:
    rest = np.zeros((NUM_LANDMARKS, 3))
    for joint, point in _REST_BODY.items():
        rest[joint] = point
        if joint:
            rest[MIRROR_PERMUTATION[joint]] = (-point[0], point[1], point[2])
    rest[1:11] = rest[0]  # face points at the nose
    for hand, wrist in ((17, 15), (19, 15), (21, 15), (29, 27)):
        rest[hand] = rest[wrist]
        rest[MIRROR_PERMUTATION[hand]] = rest[MIRROR_PERMUTATION[wrist]]
    return rest


REST_POSE = _rest_pose()  # (33, 3)
MIN_TORSO_M = 1e-3  # a mean torso shorter than this (1 mm; real ones are about 0.5 m) is a collapsed skeleton


# ----------------------------------------------------------------------------- geometry
def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-9)


def fill_missing(sequence: np.ndarray) -> np.ndarray | None:
    """(T, J, C) landmarks with NaN frames filled by linear interpolation in time; None when no frame is valid."""
    sequence = np.asarray(sequence, dtype=np.float64)
    valid = np.isfinite(sequence).all(axis=(1, 2))
    if not valid.any():
        return None
    if valid.all():
        return sequence.copy()
    times, known = np.arange(len(sequence)), np.flatnonzero(valid)
    flat = sequence.reshape(len(sequence), -1)
    filled = np.stack([np.interp(times, known, flat[known, column]) for column in range(flat.shape[1])], axis=1)
    return filled.reshape(sequence.shape)


def body_frame(world: np.ndarray) -> np.ndarray:
    """(3, 3) rotation whose rows are the clip's body axes: mean hip line (x), mean torso axis (y), x cross y (z)."""
    hips = world[:, RIGHT_HIP] - world[:, LEFT_HIP]
    torso = (world[:, LEFT_SHOULDER] + world[:, RIGHT_SHOULDER] - world[:, LEFT_HIP] - world[:, RIGHT_HIP]) / 2
    up = _unit(torso.mean(axis=0))
    hip_line = hips.mean(axis=0)
    right = hip_line - np.dot(hip_line, up) * up
    if np.linalg.norm(right) < 1e-9:  # hips collinear with the torso: any axis orthogonal to up will do
        right = np.cross(up, [0.0, 0.0, 1.0]) if abs(up[2]) < 0.9 else np.cross(up, [1.0, 0.0, 0.0])
    right = _unit(right)
    return np.stack([right, up, np.cross(right, up)])


def torso_length(world: np.ndarray) -> float:
    """The clip's mean hip-centre to shoulder-centre distance (metres for world landmarks)."""
    world = np.asarray(world, dtype=np.float64)
    hip_centre = (world[:, LEFT_HIP] + world[:, RIGHT_HIP]) / 2
    shoulder_centre = (world[:, LEFT_SHOULDER] + world[:, RIGHT_SHOULDER]) / 2
    return float(np.linalg.norm(shoulder_centre - hip_centre, axis=-1).mean())


def canonical_positions(world: np.ndarray) -> np.ndarray:
    """(T, 33, 3) world landmarks centred at each frame's hip centre, in the clip's body frame, in torso lengths."""
    world = np.asarray(world, dtype=np.float64)
    centred = world - ((world[:, LEFT_HIP] + world[:, RIGHT_HIP]) / 2)[:, None]
    return centred @ body_frame(world).T / max(torso_length(world), 1e-6)


def joint_angles(points: np.ndarray) -> np.ndarray:
    """(T, 14) interior angles in radians at the joints of :data:`ANGLE_TRIPLETS` (rotation and scale free)."""
    a, joint, c = (np.asarray([triplet[i] for triplet in ANGLE_TRIPLETS]) for i in range(3))
    points = np.asarray(points, dtype=np.float64)
    cosine = np.sum(_unit(points[:, a] - points[:, joint]) * _unit(points[:, c] - points[:, joint]), axis=-1)
    return np.arccos(np.clip(cosine, -1.0, 1.0))


def image_positions(image: np.ndarray) -> np.ndarray:
    """(T, 33, 2) image landmarks centred at each frame's hip centre, y up, in the clip's mean torso length (pixels)."""
    points = np.asarray(image, dtype=np.float64)[:, :, :2] * np.array([1.0, -1.0])
    hip_centre = (points[:, LEFT_HIP] + points[:, RIGHT_HIP]) / 2
    torso = np.linalg.norm((points[:, LEFT_SHOULDER] + points[:, RIGHT_SHOULDER]) / 2 - hip_centre, axis=-1).mean()
    return (points - hip_centre[:, None]) / max(float(torso), 1e-6)


def mirror_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """What a horizontally mirrored camera gives: x negated and anatomical left and right swapped (..., 33, C)."""
    mirrored = np.array(landmarks, dtype=np.float64)[..., MIRROR_PERMUTATION, :]
    mirrored[..., 0] *= -1
    return mirrored


# ----------------------------------------------------------------------------- feature blocks
def _velocity(values: np.ndarray) -> np.ndarray:
    return np.diff(values, axis=0) if len(values) > 1 else np.zeros_like(values)


def _block_positions(world: np.ndarray, image: np.ndarray) -> np.ndarray:
    return (canonical_positions(world) - REST_POSE)[:, BODY_JOINTS].reshape(len(world), -1)


def _block_velocities(world: np.ndarray, image: np.ndarray) -> np.ndarray:
    return _velocity(canonical_positions(world)[:, BODY_JOINTS].reshape(len(world), -1))


def _limb_directions(points: np.ndarray) -> np.ndarray:
    return _unit(points[:, [end for _, end in LIMBS]] - points[:, [start for start, _ in LIMBS]])


def _block_limbs(world: np.ndarray, image: np.ndarray) -> np.ndarray:
    rest = _limb_directions(REST_POSE[None])
    return (_limb_directions(canonical_positions(world)) - rest).reshape(len(world), -1)


def _block_angles(world: np.ndarray, image: np.ndarray) -> np.ndarray:
    return joint_angles(world) - joint_angles(REST_POSE[None])


def _block_angle_velocities(world: np.ndarray, image: np.ndarray) -> np.ndarray:
    return _velocity(joint_angles(world))


def _block_image(world: np.ndarray, image: np.ndarray) -> np.ndarray:
    return image_positions(image)[:, BODY_JOINTS].reshape(len(image), -1)


def _block_image_velocities(world: np.ndarray, image: np.ndarray) -> np.ndarray:
    return _velocity(image_positions(image)[:, BODY_JOINTS].reshape(len(image), -1))


# name -> (per-frame features from (world, image) landmarks, features per frame)
FEATURE_BLOCKS: dict[str, tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], int]] = {
    "positions": (_block_positions, 3 * len(BODY_JOINTS)),
    "velocities": (_block_velocities, 3 * len(BODY_JOINTS)),
    "limbs": (_block_limbs, 3 * len(LIMBS)),
    "angles": (_block_angles, len(ANGLE_TRIPLETS)),
    "angle_velocities": (_block_angle_velocities, len(ANGLE_TRIPLETS)),
    "image": (_block_image, 2 * len(BODY_JOINTS)),
    "image_velocities": (_block_image_velocities, 2 * len(BODY_JOINTS)),
}


def check_blocks(features: Sequence[str], weights: Sequence[float]) -> None:
    """ParameterError unless ``features`` are known, distinct, non-empty block names with one positive weight each."""
    unknown = [name for name in features if name not in FEATURE_BLOCKS]
    if not features or unknown or len(set(features)) != len(features):
        raise ParameterError(f"features must be distinct names from {sorted(FEATURE_BLOCKS)}; got {list(features)}")
    if len(weights) != len(features) or any(not np.isfinite(w) or w <= 0 for w in weights):
        raise ParameterError(f"feature_weights needs one positive weight per feature {list(features)}; "
                             f"got {list(weights)}")


def descriptor_dim(features: Sequence[str], segments: int) -> int:
    """Length of the descriptor: per block, per segment, mean and std of its features; plus the no-person slot."""
    return sum(2 * segments * FEATURE_BLOCKS[name][1] for name in features) + 1


def _pool(values: np.ndarray, segments: int) -> np.ndarray:
    """Mean and std of every feature in each of ``segments`` consecutive parts (short clips are stretched)."""
    if len(values) < segments:
        values = values[np.round(np.linspace(0, len(values) - 1, segments)).astype(int)]
    parts = np.array_split(values, segments)
    return np.concatenate([np.concatenate([part.mean(axis=0), part.std(axis=0)]) for part in parts])


def pooled_blocks(world: np.ndarray, image: np.ndarray, features: Sequence[str], segments: int) -> list[np.ndarray]:
    """Each block's pooled vector (before normalisation) for one clip of filled (T, 33, 3) landmarks."""
    return [_pool(FEATURE_BLOCKS[name][0](world, image), segments) for name in features]


def describe_landmarks(world: np.ndarray, image: np.ndarray,
                       features: Sequence[str] = ("positions", "limbs", "angles", "velocities"),
                       weights: Sequence[float] | None = None, segments: int = 2,
                       symmetric: bool = False) -> np.ndarray | None:
    """The descriptor (not yet L2-normalised) of one clip's landmarks; None when no frame holds a person, or the
    skeleton is degenerate (a mean torso shorter than :data:`MIN_TORSO_M`: no body to put in a canonical frame).

    ``world`` (T, 33, 3) metres and ``image`` (T, 33, 3) pixels, NaN rows for frames without a person.
    """
    weights = tuple(weights) if weights is not None else (1.0,) * len(features)
    check_blocks(features, weights)
    world, image = fill_missing(world), fill_missing(image)
    if world is None or image is None or torso_length(world) < MIN_TORSO_M:
        return None
    blocks = pooled_blocks(world, image, features, segments)
    if symmetric:
        mirrored = pooled_blocks(mirror_landmarks(world), mirror_landmarks(image), features, segments)
        blocks = [block + other for block, other in zip(blocks, mirrored)]
    parts = [weight * block / max(np.linalg.norm(block), 1e-12) for block, weight in zip(blocks, weights)]
    return np.concatenate(parts + [np.zeros(1)]).astype(np.float32)


def no_person_vector(dim: int) -> np.ndarray:
    """The fixed vector of a clip without a person: the unit vector on the last ("no person") component.

    Every person descriptor is 0 there, so its cosine with any clip that has a person is exactly 0 (it ranks below
    every positive match and matches nothing); two no-person clips have cosine 1. Callers mask such clips by their
    coverage (0.0) rather than trusting the vector.
    """
    vector = np.zeros(dim, dtype=np.float32)
    vector[-1] = 1.0
    return vector


__all__ = ["BODY_JOINTS", "LIMBS", "ANGLE_TRIPLETS", "MIRROR_PERMUTATION", "REST_POSE", "FEATURE_BLOCKS",
           "MIN_TORSO_M", "fill_missing", "body_frame", "torso_length", "canonical_positions", "joint_angles",
           "image_positions", "mirror_landmarks",
           "check_blocks", "descriptor_dim", "pooled_blocks", "describe_landmarks", "no_person_vector"]
