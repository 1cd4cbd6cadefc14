"""The pose channel where neither the model files nor the real videos are cached: synthetic landmarks and a fake wheel.

* the descriptor's invariance to a camera turned about the vertical axis (any angle), a tilted or rolled camera, a
  change of distance (scale) and a mirrored camera (``symmetric=True``; by default left and right differ), on a
  synthetic person raising an arm, built from the rest pose;
* a clip's tracked frames with nobody, with a person in some frames only, and with degenerate landmarks
  (``describe_tracked``: coverage and the no-person vector);
* the model fetch refusing a wheel whose model file does not match its recorded sha256, naming the file and what to
  do, and leaving nothing in the cache.

test_pose_encoder.py repeats the invariances on real BlazePose landmarks; test_pose_models.py fetches the real wheel.
"""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

from motionmatch.encoders.blazepose import NUM_LANDMARKS, PoseFrame
from motionmatch.encoders.pose import PoseSettings, describe_tracked
from motionmatch.encoders.pose_descriptor import REST_POSE, describe_landmarks, mirror_landmarks, no_person_vector

FRAMES = 16
LEFT_SHOULDER, LEFT_ELBOW, LEFT_WRIST = 11, 13, 15
RIGHT_KNEE, RIGHT_ANKLE = 26, 28


def _rotation_y(degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rotation_x(degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _person(raise_left_arm: bool = True, kick: bool = False, seed: int = 0) -> np.ndarray:
    """(T, 33, 3) world landmarks in metres, BlazePose's way (y down, hips at the origin): the rest pose with the
    left arm swinging up sideways over the clip (or a right-leg kick), a little noise, facing 20 degrees off."""
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(FRAMES):
        body = REST_POSE.copy()
        if raise_left_arm:  # the arm rotates about the shoulder in the body's frontal plane, up to 90 degrees
            angle = np.radians(90.0 * t / (FRAMES - 1))
            shoulder = body[LEFT_SHOULDER]
            for joint in (LEFT_ELBOW, LEFT_WRIST, 17, 19, 21):
                d = body[joint] - shoulder
                body[joint] = shoulder + [d[0] * np.cos(angle) + d[1] * np.sin(angle),
                                          -d[0] * np.sin(angle) + d[1] * np.cos(angle), d[2]]
        if kick:  # the right lower leg swings forward (-z)
            angle = np.radians(70.0 * t / (FRAMES - 1))
            knee = body[RIGHT_KNEE]
            for joint in (RIGHT_ANKLE, 30, 32):
                d = body[joint] - knee
                body[joint] = knee + [d[0], d[1] * np.cos(angle) + d[2] * np.sin(angle),
                                      -d[1] * np.sin(angle) + d[2] * np.cos(angle)]
        body = body * 0.5 * np.array([1.0, -1.0, 1.0])  # metres (torso 0.5 m), y down
        frames.append(body @ _rotation_y(20).T + rng.normal(0, 0.003, body.shape))
    world = np.stack(frames)
    return world - ((world[:, 23] + world[:, 24]) / 2)[:, None]


def _image(world: np.ndarray) -> np.ndarray:
    """A plain orthographic projection to pixels (the default descriptor does not read it)."""
    return np.concatenate([world[..., :2] * 400 + [320, 240], world[..., 2:] * 400], axis=-1)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.parametrize("degrees", [15, 45, 90, 135, 180, 270])
def test_a_camera_turned_about_the_vertical_axis_gives_the_same_descriptor(degrees):
    world = _person()
    turned = world @ _rotation_y(degrees).T
    assert np.abs(turned - world).max() > 0.05  # the landmarks themselves change a lot
    np.testing.assert_allclose(describe_landmarks(turned, _image(turned)), describe_landmarks(world, _image(world)),
                               atol=1e-9)


def test_tilt_roll_and_distance_do_not_change_it_but_another_motion_does():
    world = _person()
    reference = describe_landmarks(world, _image(world))
    moved = 1.7 * world @ (_rotation_x(25) @ _rotation_y(-60)).T  # a higher camera further away, elsewhere
    np.testing.assert_allclose(describe_landmarks(moved, _image(moved)), reference, atol=1e-9)
    kick = _person(raise_left_arm=False, kick=True, seed=1)
    assert _cosine(describe_landmarks(kick, _image(kick)), reference) < 0.8  # a kick is not an arm raise
    still = _person(raise_left_arm=False, seed=2)
    assert _cosine(describe_landmarks(still, _image(still)), reference) < 0.8


def test_a_mirrored_camera_swaps_left_and_right_unless_symmetric():
    world = _person()
    mirrored = mirror_landmarks(world)  # what BlazePose gives for the horizontally flipped video
    plain = describe_landmarks(world, _image(world))
    plain_mirrored = describe_landmarks(mirrored, _image(mirrored))
    assert _cosine(plain, plain_mirrored) < 0.95  # the left arm rising is not the right arm rising
    # the mirrored clip is the motion done with the other arm: the descriptor of a right-arm raise
    right_arm = mirror_landmarks(world @ _rotation_y(-40).T)
    np.testing.assert_allclose(describe_landmarks(right_arm, _image(right_arm)), plain_mirrored, atol=1e-9)
    np.testing.assert_allclose(describe_landmarks(mirrored, _image(mirrored), symmetric=True),
                               describe_landmarks(world, _image(world), symmetric=True), atol=1e-9)
    for degrees in (30, 180):  # mirrored and turned at once
        both = mirror_landmarks(world @ _rotation_y(degrees).T)
        np.testing.assert_allclose(describe_landmarks(both, _image(both), symmetric=True),
                                   describe_landmarks(world, _image(world), symmetric=True), atol=1e-9)


# ----------------------------------------------------------------------------- tracked frames -> one clip vector
def _frame(world: np.ndarray | None, visibility: float = 0.9) -> PoseFrame:
    if world is None:
        nan3 = np.full((NUM_LANDMARKS, 3), np.nan, np.float32)
        return PoseFrame(False, 0.0, nan3, np.full(NUM_LANDMARKS, np.nan, np.float32), nan3.copy(), None, True)
    return PoseFrame(True, 0.95, _image(world[None])[0].astype(np.float32), np.full(NUM_LANDMARKS, visibility, np.float32),
                     world.astype(np.float32), (320.0, 240.0, 300.0, 300.0, 0.0), False)


def test_nobody_in_the_clip_gives_coverage_zero_and_the_no_person_vector():
    settings = PoseSettings()
    vector, coverage = describe_tracked([_frame(None)] * FRAMES, settings)
    assert coverage == 0.0
    np.testing.assert_array_equal(vector, no_person_vector(settings.dim))
    # a person the landmark model barely sees (mean visibility under min_visibility) counts as nobody
    world = _person()
    faint, coverage = describe_tracked([_frame(w, visibility=0.3) for w in world], settings)
    assert coverage == 0.0 and np.array_equal(faint, no_person_vector(settings.dim))
    # degenerate landmarks (every joint at one point) are no usable pose either
    collapsed, coverage = describe_tracked([_frame(np.zeros((NUM_LANDMARKS, 3)))] * FRAMES, settings)
    assert coverage == 0.0 and np.array_equal(collapsed, no_person_vector(settings.dim))


def test_a_person_in_part_of_the_clip_is_described_from_those_frames():
    settings = PoseSettings()
    world = _person()
    full, coverage = describe_tracked([_frame(w) for w in world], settings)
    assert coverage == 1.0 and full.shape == (settings.dim,) and full[-1] == 0.0
    assert np.linalg.norm(full) == pytest.approx(1.0, abs=1e-6)
    gaps = [_frame(w) if t % 4 else _frame(None) for t, w in enumerate(world)]  # lost every 4th frame
    partial, coverage = describe_tracked(gaps, settings)
    assert coverage == pytest.approx(12 / 16)
    assert partial[-1] == 0.0 and _cosine(partial, full) > 0.95  # the gaps are interpolated, not zeros
    assert float(partial @ no_person_vector(settings.dim)) == 0.0


# ----------------------------------------------------------------------------- the fetch refuses a bad file
def test_a_model_file_that_fails_its_sha256_is_refused_naming_the_file_and_what_to_do(tmp_path, monkeypatch):
    from motionmatch.encoders import pose_models
    from motionmatch.errors import WeightsUnavailableError

    monkeypatch.setenv("MOTIONMATCH_CACHE_DIR", str(tmp_path / "cache"))
    wheel = tmp_path / f"mediapipe-{pose_models.MEDIAPIPE_VERSION}-cp312-cp312-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:  # the right names, the wrong bytes (one of the right size)
        for name, (member, size, _) in pose_models.POSE_MODELS.items():
            archive.writestr(member, b"\x01" * (size if name == "pose_detection" else 1234))
    monkeypatch.setattr(pose_models, "_download_wheel", lambda folder: wheel)
    with pytest.raises(WeightsUnavailableError) as caught:
        pose_models.pose_model_paths(print_fn=lambda message: None)
    message = str(caught.value)
    assert "mediapipe/modules/pose_detection/pose_detection.tflite" in message
    assert "does not match the recorded size/sha256" in message and f"not mediapipe {pose_models.MEDIAPIPE_VERSION}" in message
    assert "pip download --no-deps mediapipe==" in message and str(pose_models.pose_models_dir()) in message
    assert not [p for p in pose_models.pose_models_dir().iterdir() if p.name != ".lock"]  # no partial files kept
    status = pose_models.model_status()
    assert {problem for _, problem in status.values()} == {"missing"}


def test_a_wheel_without_the_model_files_is_refused_with_the_manual_steps(tmp_path, monkeypatch):
    from motionmatch.encoders import pose_models
    from motionmatch.errors import WeightsUnavailableError

    monkeypatch.setenv("MOTIONMATCH_CACHE_DIR", str(tmp_path / "cache"))
    wheel = tmp_path / f"mediapipe-{pose_models.MEDIAPIPE_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mediapipe/__init__.py", "")
    monkeypatch.setattr(pose_models, "_download_wheel", lambda folder: wheel)
    with pytest.raises(WeightsUnavailableError, match=r"has no readable mediapipe/modules/pose_detection") as caught:
        pose_models.pose_model_paths(print_fn=lambda message: None)
    assert "unzip -j" in str(caught.value)
