"""The pose channel (motionmatch.encoders.pose / pose_descriptor) on real people: invariance to where the camera
stands, what a mirrored camera does, clips without a person, two people in view, and the encoder contract.

Real frames come from the Pose2Sim demo videos inside the ``pose2sim`` wheel and the BlazePose models from the
``mediapipe`` wheel, each fetched once through the cache; without them the tests skip and say why.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from motionmatch.encoders.pose import DESCRIPTOR_VERSION, PoseEncoder, PoseSettings
from motionmatch.encoders.pose_descriptor import (canonical_positions, describe_landmarks, joint_angles,
                                                  mirror_landmarks, no_person_vector, ANGLE_TRIPLETS,
                                                  MIRROR_PERMUTATION)
from motionmatch.errors import ParameterError, WeightsUnavailableError

FRAMES = 16
MOMENTS = (0, 30, 50, 70)  # clip start frames (60 fps): 0.5 s and more apart


@pytest.fixture(scope="session")
def encoder() -> PoseEncoder:
    try:
        return PoseEncoder()
    except WeightsUnavailableError as error:
        pytest.skip(f"BlazePose models unavailable: {error}")


@pytest.fixture(scope="session")
def real_clips(tmp_path_factory) -> dict[str, np.ndarray]:
    """16-frame clips of the Pose2Sim demo: one man (Trial_1, cam01 and cam03, 4 moments) and two people (Trial_2)."""
    from motionmatch.data.pose2sim import SampleUnavailableError, fetch_pose2sim_wheel
    from motionmatch.video import read_frames

    try:
        wheel = fetch_pose2sim_wheel(print_fn=lambda _: None)
    except SampleUnavailableError as error:
        pytest.skip(f"the pose2sim wheel cannot be fetched here: {error}")
    folder = tmp_path_factory.mktemp("pose2sim_videos")
    clips = {}
    with zipfile.ZipFile(wheel) as archive:
        for name, member, starts in (("cam01", "Trial_1/videos/cam01.mp4", MOMENTS),
                                     ("cam03", "Trial_1/videos/cam03.mp4", MOMENTS),
                                     ("two_people", "Trial_2/videos/cam01.mp4", (30,))):
            path = archive.extract(f"Pose2Sim/Demo_Batch/{member}", folder)
            for start in starts:
                clips[f"{name}@{start}"] = read_frames(path, list(range(start, start + FRAMES)))
    clips["one_man"], clips["one_man_later"], clips["two_people"] = clips["cam01@30"], clips["cam01@70"], clips["two_people@30"]
    return clips


@pytest.fixture(scope="session")
def real_landmarks(encoder, real_clips) -> tuple[np.ndarray, np.ndarray]:
    frames = encoder.track(real_clips["one_man"])
    assert all(frame.found for frame in frames)
    return np.stack([f.world_landmarks for f in frames]), np.stack([f.image_landmarks for f in frames])


def _rotation(axis: str, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return {"x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]), "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


# ----------------------------------------------------------------------------- the descriptor's invariances
@pytest.mark.parametrize("rotation", [("y", 30), ("y", 90), ("y", 180), ("x", 25), ("z", 90)],
                         ids=["vertical-30", "vertical-90", "behind", "tilt-25", "roll-90"])
def test_a_camera_moved_around_the_person_gives_the_same_descriptor(real_landmarks, rotation):
    world, image = real_landmarks
    turned = world @ _rotation(*rotation).T  # the same skeleton seen from a rotated camera
    assert not np.allclose(turned, world, atol=1e-3)
    np.testing.assert_allclose(canonical_positions(turned), canonical_positions(world), atol=1e-5)
    np.testing.assert_allclose(describe_landmarks(turned, image), describe_landmarks(world, image), atol=1e-5)


def test_a_mirrored_camera_gives_the_mirrored_motion_unless_symmetric(real_landmarks):
    world, image = real_landmarks
    mirrored = mirror_landmarks(world)
    # documented: canonical positions of the mirrored clip = left/right swapped, x negated
    np.testing.assert_allclose(canonical_positions(mirrored), mirror_landmarks(canonical_positions(world)), atol=1e-9)
    angle_swap = [ANGLE_TRIPLETS.index(tuple(int(MIRROR_PERMUTATION[j]) for j in t)) for t in ANGLE_TRIPLETS]
    np.testing.assert_allclose(joint_angles(mirrored), joint_angles(world)[:, angle_swap], atol=1e-9)
    plain, plain_mirrored = describe_landmarks(world, image), describe_landmarks(mirrored, mirror_landmarks(image))
    cosine = float(plain @ plain_mirrored / np.linalg.norm(plain) / np.linalg.norm(plain_mirrored))
    assert cosine < 0.99, "left and right should differ in the default descriptor"
    np.testing.assert_allclose(describe_landmarks(mirrored, mirror_landmarks(image), symmetric=True),
                               describe_landmarks(world, image, symmetric=True), atol=1e-5)


def test_an_image_rotated_in_its_plane_still_finds_the_same_moment(encoder, real_clips):
    upright, later = encoder.encode([real_clips["one_man"], real_clips["one_man_later"]])
    rolled = encoder.encode([np.ascontiguousarray(np.rot90(real_clips["one_man"], k=1, axes=(1, 2)))])[0]
    # BlazePose's ROI follows the body's rotation and its world landmarks are turned back, so a rolled camera
    # changes the descriptor far less than 40 frames (0.67 s) of the movement do
    assert float(rolled @ upright) > 0.9
    assert float(rolled @ upright) > float(rolled @ later) + 0.2


def test_each_moment_seen_by_one_camera_is_found_in_another(encoder, real_clips):
    # cam01 films the man from the front-left, cam03 from behind: the skeleton must bridge the two views
    queries = encoder.encode([real_clips[f"cam01@{start}"] for start in MOMENTS])
    gallery = encoder.encode([real_clips[f"cam03@{start}"] for start in MOMENTS])
    scores = queries @ gallery.T
    assert scores.argmax(axis=1).tolist() == list(range(len(MOMENTS))), np.round(scores, 2)
    assert scores.argmax(axis=0).tolist() == list(range(len(MOMENTS))), np.round(scores, 2)


# ----------------------------------------------------------------------------- no person, two people
def test_clips_without_a_person_get_coverage_zero_and_the_no_person_vector(encoder, real_clips):
    rng = np.random.default_rng(0)
    blank = np.zeros((FRAMES, 120, 160, 3), np.uint8)
    grey = np.full((FRAMES, 240, 320, 3), 128, np.uint8)
    noise = rng.integers(0, 256, (FRAMES, 240, 320, 3), dtype=np.uint8)
    single = np.zeros((1, 64, 64, 3), np.uint8)
    vectors, coverage = encoder.encode_with_coverage([blank, grey, noise, real_clips["one_man"]])
    assert coverage.tolist()[:3] == [0.0, 0.0, 0.0] and coverage[3] == 1.0
    for vector in vectors[:3]:
        np.testing.assert_array_equal(vector, no_person_vector(encoder.dim))
    assert float(vectors[0] @ vectors[3]) == 0.0  # matches no clip that shows a person
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert encoder.encode_with_coverage([single])[1].tolist() == [0.0]


def test_two_people_in_view_keep_one_track(encoder, real_clips):
    frames = encoder.track(real_clips["two_people"])
    assert all(frame.found for frame in frames)
    assert [frame.detected for frame in frames] == [True] + [False] * (FRAMES - 1)  # one detection, then tracked
    hips = np.stack([(f.image_landmarks[23, :2] + f.image_landmarks[24, :2]) / 2 for f in frames])
    height = real_clips["two_people"].shape[1]
    assert np.max(np.linalg.norm(np.diff(hips, axis=0), axis=1)) < 0.05 * height  # never jumps to the other person


# ----------------------------------------------------------------------------- the encoder contract
def test_encoder_contract_and_id_round_trip(encoder, real_clips):
    from motionmatch.encoders import build_encoder, encoder_from_id

    clips = [real_clips["one_man"], real_clips["one_man"][:5], real_clips["two_people"]]
    vectors = encoder.encode(clips, batch_size=2)
    assert vectors.shape == (3, encoder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert encoder.encoder_id == f"pose:{DESCRIPTOR_VERSION}" == "pose:v1" and encoder.frames_per_clip == FRAMES
    rebuilt = encoder_from_id(encoder.encoder_id)
    assert isinstance(rebuilt, PoseEncoder) and rebuilt.preprocessing() == encoder.preprocessing()
    np.testing.assert_allclose(rebuilt.encode(clips[:1]), vectors[:1], atol=1e-6)
    description = json.loads(json.dumps(encoder.preprocessing()))
    assert len(description["models"]["pose_landmark_full"]["sha256"]) == 64
    assert description["features"] == ["positions", "limbs", "angles", "velocities"]
    assert build_encoder("pose", temporal_segments=3).dim != encoder.dim
    assert encoder.encode([]).shape == (0, encoder.dim)
    assert len(encoder.track(clips[1])) == 5


def test_bad_inputs_and_settings_are_refused_with_a_reason(encoder):
    with pytest.raises(ParameterError, match="batch_size"):
        encoder.encode([np.zeros((2, 8, 8, 3), np.uint8)], batch_size=0)
    with pytest.raises(ParameterError, match="uint8"):
        encoder.encode([np.zeros((2, 8, 8, 3), np.float32)])
    with pytest.raises(ParameterError, match="features"):
        PoseSettings(features=("positions", "dance"), feature_weights=(1.0, 1.0))
    with pytest.raises(ParameterError, match="tuples"):
        PoseSettings(features=["positions"], feature_weights=[1.0])
    with pytest.raises(ParameterError, match="one positive weight"):
        PoseSettings(features=("positions",), feature_weights=(1.0, 2.0))
    from motionmatch.encoders import encoder_from_id

    with pytest.raises(ParameterError, match="re-extract"):
        encoder_from_id("pose:v0")
