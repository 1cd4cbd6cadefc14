"""BlazePose: the geometry checked by hand, then the whole pipeline on real frames of Pose2Sim's demo videos.

The geometry tests need nothing but numpy and OpenCV. The pipeline tests use the real MediaPipe models (fetched once,
see test_pose_models.py) and real footage: the ``pose2sim`` wheel's demo videos (``motionmatch.data.pose2sim``
fetches the wheel once into the cache; skipped, with the reason, when that fails). The poses must be plausible, the
tracking must behave, and a few landmarks must match numbers recorded once from mediapipe 0.10.21 itself (the full
comparison is ``bench/bench_pose_oracle.py``; mediapipe is never needed here).
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from bench import bench_pose_oracle
from motionmatch.data.pose2sim import SampleUnavailableError
from motionmatch.encoders import blazepose_geometry as geometry
from motionmatch.encoders.blazepose import (LANDMARK_NAMES, NUM_LANDMARKS, BlazePose, Detection, OneEuroFilter,
                                            PoseFrame)
from motionmatch.encoders.pose_models import pose_model_paths
from motionmatch.errors import ParameterError, WeightsUnavailableError

INDEX = {name: i for i, name in enumerate(LANDMARK_NAMES)}


# ----------------------------------------------------------------------------- geometry, by hand
def test_anchors_follow_the_ssd_layout():
    anchors = geometry.ssd_anchors()
    assert anchors.shape == (2254, 2)  # 28x28x2 + 14x14x2 + 7x7x6
    np.testing.assert_allclose(anchors[0], [0.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(anchors[1], anchors[0])  # two anchors per cell at stride 8
    np.testing.assert_allclose(anchors[2], [1.5 / 28, 0.5 / 28])  # x runs fastest
    np.testing.assert_allclose(anchors[56], [0.5 / 28, 1.5 / 28])  # the second row
    np.testing.assert_allclose(anchors[1568], [0.5 / 14, 0.5 / 14])  # the first stride-16 anchor
    np.testing.assert_allclose(anchors[1960], [0.5 / 7, 0.5 / 7])  # the first stride-32 anchor (3 layers merged)
    np.testing.assert_allclose(anchors[-6:], np.full((6, 2), 6.5 / 7))  # 6 anchors in the last cell


def test_decoding_a_hand_built_tensor():
    anchors = geometry.ssd_anchors()
    raw = np.zeros((2254, 12), np.float32)
    scores = np.full(2254, -10.0, np.float32)  # sigmoid(-10) < 0.5: dropped
    raw[100] = [22.4, -11.2, 44.8, 67.2, 0, 0, 11.2, 22.4, -22.4, 0, 2.24, 2.24]
    scores[100] = 2.0
    raw[200, 2] = -5.0  # a negative width is dropped even with a high score
    scores[200] = 5.0
    scores[300] = 1000.0  # clipped at 100 before the sigmoid
    found, boxes, keypoints = geometry.decode_detections(raw, scores, anchors, min_score=0.5)
    assert len(found) == 2
    np.testing.assert_allclose(found, [1 / (1 + math.exp(-2.0)), 1.0], rtol=1e-6)
    cx, cy = anchors[100] + [0.1, -0.05]
    np.testing.assert_allclose(boxes[0], [cx - 0.1, cy - 0.15, cx + 0.1, cy + 0.15], atol=1e-6)
    expected = anchors[100] + np.array([[0, 0], [0.05, 0.1], [-0.1, 0], [0.01, 0.01]])
    np.testing.assert_allclose(keypoints[0], expected, atol=1e-6)
    np.testing.assert_allclose(boxes[1], np.tile(anchors[300], 2), atol=1e-6)  # zero size at its anchor


def test_weighted_nms_merges_overlapping_boxes_by_score():
    boxes = np.array([[0, 0, 1, 1], [0.1, 0, 1.1, 1], [2, 2, 3, 3], [0.6, 0, 1.6, 1]], np.float32)
    scores = np.array([0.9, 0.6, 0.7, 0.55], np.float32)
    keypoints = np.array([[[0, 0]], [[1, 1]], [[5, 5]], [[9, 9]]], np.float32)
    merged = geometry.weighted_nms(scores, boxes, keypoints)
    # A and B overlap by IoU 0.9 / 1.1 > 0.3: merged with weights 0.9 and 0.6 (score: A's). D overlaps A by only
    # 0.4 / 1.6 < 0.3; that it overlaps B by 0.5 / 1.5 does not count (only the group's best box does): D stays.
    assert [round(score, 6) for score, _, _ in merged] == [0.9, 0.7, 0.55]
    np.testing.assert_allclose(merged[0][1], [0.06 / 1.5, 0, (0.9 + 0.66) / 1.5, 1], atol=1e-6)
    np.testing.assert_allclose(merged[0][2], [[0.4, 0.4]], atol=1e-6)
    np.testing.assert_allclose(merged[1][1], boxes[2])
    np.testing.assert_allclose(merged[2][1], boxes[3])


@pytest.mark.parametrize("scale_point, rotation", [((500, 400), 0.0), ((900, 800), math.pi / 2),
                                                   ((100, 800), -math.pi / 2), ((800, 500), math.pi / 4),
                                                   ((500, 1200), -math.pi)])
def test_roi_rotation_from_hand_placed_keypoints(scale_point, rotation):
    # hip centre at (500, 800); the scale point above it (upright), to its right or left (lying), or below (head down)
    cx, cy, width, height, angle = geometry.alignment_roi(np.array([500.0, 800.0]), np.array(scale_point, float))
    assert (cx, cy) == (500.0, 800.0)
    distance = math.hypot(scale_point[0] - 500, scale_point[1] - 800)
    assert width == height == pytest.approx(2 * distance * 1.25)
    assert angle == pytest.approx(rotation)


def test_roi_to_image_puts_roi_fractions_where_expected():
    points = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 0.1], [1.0, 0.5, -0.2]], np.float32)
    upright = geometry.roi_to_image(points, (100.0, 200.0, 50.0, 50.0, 0.0))
    np.testing.assert_allclose(upright, [[100, 200, 0], [75, 175, 5], [125, 200, -10]], atol=1e-5)
    turned = geometry.roi_to_image(points, (100.0, 200.0, 50.0, 50.0, math.pi / 2))  # clockwise on screen
    np.testing.assert_allclose(turned, [[100, 200, 0], [125, 175, 5], [100, 225, -10]], atol=1e-5)
    world = geometry.rotate_world(np.array([[1.0, 0.0, 0.3]]), math.pi / 2)
    np.testing.assert_allclose(world, [[0.0, 1.0, 0.3]], atol=1e-6)


def test_the_crop_and_roi_to_image_are_inverse():
    roi = (300.0, 250.0, 180.0, 180.0, math.radians(30))
    to_crop = geometry.crop_matrix(roi, 256)
    corners = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5], [0.2, 0.7]], np.float32)
    in_frame = geometry.roi_to_image(corners, roi)
    back = cv2.perspectiveTransform(in_frame[None].astype(np.float64), to_crop)[0]
    np.testing.assert_allclose(back, corners * 256, atol=1e-3)
    frame = np.zeros((500, 600, 3), np.uint8)  # a bright dot, found again through the rotated crop
    cv2.circle(frame, (340, 200), 3, (255, 255, 255), -1)
    pixels = geometry.crop(frame, roi, 256, zero_border=False)
    weights = pixels[..., 0].astype(np.float64)
    rows, cols = np.indices(weights.shape)
    centroid = np.array([[(cols * weights).sum(), (rows * weights).sum()]]) / weights.sum() / 256  # pixel u <-> u/256
    found = geometry.roi_to_image(centroid.astype(np.float32), roi)[0]
    assert np.hypot(*(found - [340, 200])) < 0.25


def test_the_crop_is_a_bilinear_warp_with_the_chosen_border():
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), (7, 7), 2)
    roi = (350.0, 150.0, 260.0, 260.0, 0.3)  # reaches past the right edge
    reference = cv2.warpPerspective(frame, geometry.crop_matrix(roi, 224), (224, 224), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
    replicated = geometry.crop(frame, roi, 224, zero_border=False)
    assert np.abs(replicated.astype(int) - reference).max() <= 2
    assert np.abs(replicated.astype(int) - reference).mean() < 0.1
    zero = geometry.crop(frame, roi, 224, zero_border=True)
    assert (zero[100, -1] == 0).all() and (replicated[100, -1] > 0).any()  # past the edge: zeros vs edge pixels


def test_heatmap_refinement_moves_confident_points_only():
    heatmap = np.full((64, 64, 3), -20.0, np.float32)
    heatmap[10, 20, 0] = heatmap[10, 22, 0] = 20.0  # two confident cells: the mean lies between them
    heatmap[40, 40, 1] = -0.5  # the best cell of point 1 is below 0.5 confidence
    points = np.array([[21.3 / 64, 10.2 / 64], [40.5 / 64, 40.5 / 64], [1.2, 0.5]], np.float32)
    refined = geometry.refine_with_heatmap(points, heatmap, kernel=9)
    np.testing.assert_allclose(refined[0], [21 / 64, 10 / 64], atol=1e-6)
    np.testing.assert_allclose(refined[1:], points[1:])  # not confident; outside the heatmap


def test_one_euro_filter_by_hand():
    smoother = OneEuroFilter(min_cutoff=1.0, beta=0.0, frequency=30.0)
    assert smoother(np.array([0.0]))[0] == 0.0  # the first value passes as it is
    alpha = 1 / (1 + 30 / (2 * math.pi))
    assert smoother(np.array([1.0]))[0] == pytest.approx(alpha, rel=1e-6)
    smoother.reset()
    assert smoother(np.array([5.0]))[0] == 5.0


# ----------------------------------------------------------------------------- the pipeline on real frames
@pytest.fixture(scope="module")
def pose():
    try:
        paths = pose_model_paths(print_fn=lambda message: None)
    except WeightsUnavailableError as error:  # offline: test_pose_models.py reports the fetch itself
        pytest.skip(f"BlazePose models unavailable: {str(error)[:300]}")
    return BlazePose(paths, num_threads=1)


def _demo_frames(demo: str, camera: int, count: int) -> np.ndarray:
    from motionmatch.video import read_frames

    try:
        videos = bench_pose_oracle.demo_videos(demo, print_fn=lambda message: None)
    except SampleUnavailableError as error:
        pytest.skip(f"Pose2Sim demo videos unavailable: {error}")
    return read_frames(videos[camera], list(range(count)))


@pytest.fixture(scope="module")
def single_person():
    return _demo_frames("SinglePerson", 0, 6)


@pytest.fixture(scope="module")
def two_people():
    return _demo_frames("MultiPerson", 3, 8)  # cam04: two people in view from the first frame


def test_one_person_is_found_and_tracked(pose, single_person):
    frames = pose.track(single_person)
    assert all(frame.found for frame in frames)
    assert [frame.detected for frame in frames] == [True] + [False] * (len(frames) - 1)  # tracked, not re-detected
    height, width = single_person.shape[1:3]
    for frame in frames:
        assert frame.presence > 0.5 and frame.roi is not None
        assert frame.image_landmarks.shape == (NUM_LANDMARKS, 3) and frame.image_landmarks.dtype == np.float32
        xy = frame.image_landmarks[:, :2]
        assert (xy >= 0).all() and (xy[:, 0] < width).all() and (xy[:, 1] < height).all()
        assert ((frame.visibility >= 0) & (frame.visibility <= 1)).all()


def test_the_pose_is_anatomically_plausible(pose, single_person):
    for frame in pose.track(single_person):
        image, world = frame.image_landmarks, frame.world_landmarks
        for points in (image, world):  # y points down in both
            assert points[INDEX["left_hip"], 1] > points[INDEX["left_shoulder"], 1]
            assert points[INDEX["right_hip"], 1] > points[INDEX["right_shoulder"], 1]
            assert points[INDEX["left_ankle"], 1] > points[INDEX["left_knee"], 1] > points[INDEX["left_hip"], 1]
            assert points[INDEX["nose"], 1] < points[INDEX["left_shoulder"], 1]
            sides = [np.sign(points[INDEX[f"left_{part}"], 0] - points[INDEX[f"right_{part}"], 0])
                     for part in ("shoulder", "hip", "eye_outer", "ear")]
            assert len(set(sides)) == 1, f"left and right disagree across the body: {sides}"
        hip_centre = (world[INDEX["left_hip"]] + world[INDEX["right_hip"]]) / 2
        assert np.linalg.norm(hip_centre) < 0.05  # metres: world landmarks are centred at the hips
        ankles = (world[INDEX["left_ankle"]] + world[INDEX["right_ankle"]]) / 2
        assert 1.2 < np.linalg.norm(world[INDEX["nose"]] - ankles) < 2.2


# MediaPipe 0.10.21's own Pose(static_image_mode=False, model_complexity=1) on the first frames of Demo_SinglePerson
# cam01 (recorded once with bench/bench_pose_oracle.py's oracle; mediapipe is not needed to run this test).
ORACLE_NAMES = ("nose", "left_shoulder", "right_shoulder", "left_wrist", "left_hip", "right_hip", "left_ankle",
                "right_foot_index")
ORACLE_IMAGE = {  # frame -> x, y pixels of ORACLE_NAMES
    0: [[509.31, 444.11], [515.84, 512.64], [370.39, 492.00], [545.73, 728.16], [458.78, 739.27], [376.72, 730.02],
        [417.32, 1084.83], [336.30, 1070.25]],
    5: [[533.24, 448.95], [534.12, 520.45], [390.56, 488.16], [555.87, 734.23], [461.02, 746.36], [378.24, 732.63],
        [415.03, 1088.56], [333.62, 1070.25]],
}
ORACLE_WORLD_0 = [[0.2003, -0.5177, -0.3533], [0.2003, -0.4440, -0.0938], [-0.0835, -0.4501, -0.2883],
                  [0.2563, -0.0176, -0.0787], [0.0986, 0.0117, 0.0500], [-0.0989, -0.0125, -0.0485],
                  [0.0007, 0.7596, 0.0915], [-0.1684, 0.7692, 0.2162]]


def test_landmarks_match_mediapipes_own_output(pose, single_person):
    frames = pose.track(single_person)
    index = [INDEX[name] for name in ORACLE_NAMES]
    # frame 0 (the detector's ROI) matches to rounding; frame 5 (tracked and smoothed) to a tenth of a pixel
    for frame, tolerance_px in ((0, 0.02), (5, 0.3)):
        error = np.linalg.norm(frames[frame].image_landmarks[index, :2] - ORACLE_IMAGE[frame], axis=1)
        assert error.max() < tolerance_px, f"frame {frame}: errors {np.round(error, 3)} px"
    np.testing.assert_allclose(frames[0].world_landmarks[index], ORACLE_WORLD_0, atol=2e-4)


def test_nothing_is_found_in_blank_or_noise_frames(pose):
    rng = np.random.default_rng(0)
    for picture in (np.zeros((360, 640, 3), np.uint8), rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)):
        assert pose.detect(picture) == []
        for frame in pose.track([picture, picture]):
            assert not frame.found and frame.detected and frame.presence == 0.0 and frame.roi is None
            for values in (frame.image_landmarks, frame.visibility, frame.world_landmarks):
                assert np.isnan(values).all()  # NaN, never zeros


def test_two_people_one_track(pose, two_people):
    detections = pose.detect(two_people[0])
    assert len(detections) >= 2 and all(isinstance(found, Detection) for found in detections)
    assert detections[0].score >= detections[1].score
    first_person = detections[0].keypoints[0]
    frames = pose.track(two_people)
    assert all(frame.found for frame in frames) and sum(frame.detected for frame in frames) == 1
    hips = np.array([(f.image_landmarks[INDEX["left_hip"], :2] + f.image_landmarks[INDEX["right_hip"], :2]) / 2
                     for f in frames])
    assert np.linalg.norm(hips[0] - first_person) < 0.05 * two_people.shape[1]  # the best detection's person
    steps = np.linalg.norm(np.diff(hips, axis=0), axis=1)
    assert steps.max() < 0.02 * two_people.shape[1], f"the track jumped: {steps}"


def test_a_given_detection_starts_the_track_and_a_lost_one_can_stay_lost(pose, two_people):
    detections = pose.detect(two_people[0], min_score=0.5)
    assert len(detections) >= 2 and len(pose.detect(two_people[0], min_score=0.99)) <= len(detections)
    second = detections[1]
    frames = pose.track(two_people, detection=second, redetect=False)
    assert [frame.detected for frame in frames] == [True] + [False] * (len(two_people) - 1)
    hips = np.array([(f.image_landmarks[INDEX["left_hip"], :2] + f.image_landmarks[INDEX["right_hip"], :2]) / 2
                     for f in frames])
    assert np.linalg.norm(hips[0] - second.keypoints[0]) < 0.05 * two_people.shape[1]  # that person, not the best
    assert np.linalg.norm(hips[0] - detections[0].keypoints[0]) > 0.1 * two_people.shape[1]
    blank = np.zeros_like(two_people[0])
    lost = pose.track([two_people[0], blank, two_people[0]], detection=second, redetect=False)
    assert lost[0].found and not lost[1].found and not lost[2].found  # never re-detected, so never jumps
    assert not lost[2].detected
    again = pose.track([two_people[0], blank, two_people[0]])
    assert again[2].found and again[2].detected  # the default re-detects


def test_tracking_is_repeatable_and_smoothing_only_acts_after_the_first_frame(pose, single_person):
    first, again = pose.track(single_person), pose.track(single_person)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.image_landmarks, b.image_landmarks)
    raw = BlazePose(pose_model_paths(fetch=False), smooth_landmarks=False).track(single_person)
    np.testing.assert_array_equal(raw[0].image_landmarks, first[0].image_landmarks)
    assert max(np.abs(r.image_landmarks - s.image_landmarks).max() for r, s in zip(raw[1:], first[1:])) > 0.01


def test_results_are_frozen_and_typed(pose, single_person):
    frame = pose(single_person[0])
    assert isinstance(frame, PoseFrame)
    with pytest.raises(AttributeError):
        frame.found = False  # type: ignore[misc]
    assert isinstance(frame.presence, float) and len(frame.roi) == 5


def test_bad_inputs_are_refused_with_a_reason(pose):
    with pytest.raises(ParameterError, match="uint8 RGB"):
        pose(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ParameterError, match="uint8 RGB"):
        pose(np.zeros((64, 64), np.uint8))
    with pytest.raises(ParameterError, match="num_threads"):
        BlazePose(pose_model_paths(fetch=False), num_threads=0)
    with pytest.raises(ParameterError, match="min_presence"):
        BlazePose(pose_model_paths(fetch=False), min_presence=1.5)
    with pytest.raises(ParameterError, match="model_paths needs"):
        BlazePose({"pose_detection": "x"})
    with pytest.raises(WeightsUnavailableError, match="not found"):
        BlazePose({"pose_detection": "/nonexistent/a.tflite", "pose_landmark_full": "/nonexistent/b.tflite"})


def test_the_oracle_benchmark_skips_cleanly_without_its_interpreter(tmp_path):
    out = tmp_path / "pose_oracle.json"
    result = bench_pose_oracle.main(["--oracle-python", str(tmp_path / "missing-python"), "--out", str(out)])
    assert "no oracle interpreter" in result["skipped"] and out.exists()
