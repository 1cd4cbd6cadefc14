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


def test_two_people_in_view_get_a_track_each_and_one_pooled_vector(encoder, real_clips):
    from motionmatch.encoders.pose import describe_tracked
    from motionmatch.encoders.pose_people import pool_people

    clip = real_clips["two_people"]
    people = encoder.track_people(clip)
    assert len(people) == 2
    first = encoder.track(clip)
    for a, b in zip(people[0], first):  # the first person is pose:v1's track, exactly
        np.testing.assert_array_equal(a.image_landmarks, b.image_landmarks)
    height = clip.shape[1]
    hips = [np.stack([(f.image_landmarks[23, :2] + f.image_landmarks[24, :2]) / 2 for f in person]) for person in people]
    assert np.linalg.norm(hips[0] - hips[1], axis=1).min() > 0.1 * height  # two people, never the same one
    for track in hips:
        assert np.max(np.linalg.norm(np.diff(track, axis=0), axis=1)) < 0.05 * height  # no jump between them
    described = [describe_tracked(person, encoder.settings) for person in people]
    expected = sum(share * vector.astype(np.float64) for vector, share in described)
    vector, coverage = encoder.encode_with_coverage([clip])
    np.testing.assert_allclose(vector[0], expected / np.linalg.norm(expected), atol=1e-6)
    assert coverage[0] == max(share for _, share in described)
    single = PoseEncoder(PoseSettings(max_people=1))
    np.testing.assert_allclose(single.encode([clip])[0], described[0][0], atol=1e-6)  # pose:v1: the first person
    assert float(vector[0] @ described[0][0]) < 0.99  # the second person changes the vector
    assert pool_people([], lambda: np.ones(3))[1] == 0.0


def test_a_person_hidden_on_the_first_frame_is_found_on_the_middle_one(encoder, real_clips):
    from motionmatch.encoders.pose_people import _masked

    clip = real_clips["two_people"].copy()
    second = encoder.track_people(clip)[1]
    hidden = clip.copy()
    for index in range(4):  # the second person blacked out on the first frames only
        hidden[index] = _masked(clip[index], [second[index]])
    first_only = PoseEncoder(PoseSettings(person_search_frames=(0.0,)))
    assert len(first_only.track_people(hidden)) == 1
    people = encoder.track_people(hidden)  # default: the first frame, then the middle one (frame 8 of 16)
    assert len(people) == 2 and len(people[1]) == len(hidden)
    assert people[1][8].detected and people[1][8].found and not people[1][0].found
    hips = np.stack([(f.image_landmarks[23, :2] + f.image_landmarks[24, :2]) / 2 for f in people[1][8:]])
    expected = np.stack([(f.image_landmarks[23, :2] + f.image_landmarks[24, :2]) / 2 for f in second[8:]])
    assert np.linalg.norm(hips - expected, axis=1).max() < 0.05 * clip.shape[1]  # the person that was hidden


def test_pooling_people_by_hand():
    from motionmatch.encoders.pose_people import pool_people

    nobody = lambda: np.array([0.0, 0.0, 1.0])  # noqa: E731
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    vector, coverage = pool_people([(a, 1.0), (b, 0.5)], nobody)
    np.testing.assert_allclose(vector, np.array([1.0, 0.5, 0.0]) / np.hypot(1.0, 0.5), rtol=1e-6)
    assert coverage == 1.0
    np.testing.assert_array_equal(pool_people([(a, 0.25)], nobody)[0], a.astype(np.float32))  # one person: as is
    vector, coverage = pool_people([(a, 0.0), (b, 0.0)], nobody)
    np.testing.assert_array_equal(vector, nobody())
    assert coverage == 0.0
    assert pool_people([(a, 1.0), (-a, 1.0)], nobody)[1] == 0.0  # cancelled out: no usable pose, never a zero vector


# ----------------------------------------------------------------------------- the encoder contract
def test_encoder_contract_and_id_round_trip(encoder, real_clips):
    from motionmatch.encoders import build_encoder, encoder_from_id

    clips = [real_clips["one_man"], real_clips["one_man"][:5], real_clips["two_people"]]
    vectors = encoder.encode(clips, batch_size=2)
    assert vectors.shape == (3, encoder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert encoder.encoder_id == f"pose:{DESCRIPTOR_VERSION}" == "pose:v2" and encoder.frames_per_clip == FRAMES
    rebuilt = encoder_from_id(encoder.encoder_id)
    assert isinstance(rebuilt, PoseEncoder) and rebuilt.preprocessing() == encoder.preprocessing()
    one = encoder_from_id("pose:v1")  # one person per clip, as indexes made before pose:v2 were
    assert one.encoder_id == "pose:v1" and one.settings.max_people == 1 and len(one.trackers) == 1
    with pytest.raises(ParameterError, match="pose:v1, pose:v2"):
        encoder_from_id("pose:v9")
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
    with pytest.raises(ParameterError, match="max_people"):
        PoseSettings(max_people=0)
    with pytest.raises(ParameterError, match="extra_person_score"):
        PoseSettings(extra_person_score=1.5)
    with pytest.raises(ParameterError, match="person_search_frames"):
        PoseSettings(person_search_frames=(0.0, 2.0))
    from motionmatch.encoders import encoder_from_id

    with pytest.raises(ParameterError, match="re-extract"):
        encoder_from_id("pose:v0")
