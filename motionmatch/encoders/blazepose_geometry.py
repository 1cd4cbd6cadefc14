"""BlazePose's geometry as pure numpy functions: SSD anchors, decoding, weighted NMS, ROIs, crops and projections.

Each function follows one step of MediaPipe's published pose graphs (``mediapipe/modules/pose_detection`` and
``mediapipe/modules/pose_landmark``, v0.10.21), written here from their options and calculator behaviour:

* :func:`ssd_anchors`: ``SsdAnchorsCalculator`` (5 layers, strides 8, 16, 32, 32, 32, 224x224 input, aspect ratio
  1.0 plus the interpolated one, offset 0.5, ``fixed_anchor_size``: every anchor is 1x1, so the scales 0.1484375 to
  0.75 drop out and only the centres matter);
* :func:`decode_detections`: ``TensorsToDetectionsCalculator`` (12 values a box: x, y, w, h and 4 keypoints, scaled
  by 224 and offset by the anchor; score = sigmoid of the raw score clipped to +-100; kept when >= the threshold);
* :func:`weighted_nms`: ``NonMaxSuppressionCalculator`` (WEIGHTED, IoU > 0.3 merges boxes and keypoints by score);
* :func:`alignment_roi`: ``AlignmentPointsRectsCalculator`` + ``RectTransformationCalculator`` (centre on point 0,
  side = 2 |p1 - p0|, rotation so that p0 -> p1 points up, side x 1.25, square);
* :func:`crop_matrix` / :func:`crop`: ``ImageToTensorCalculator`` on OpenCV (the rotated ROI's corners mapped onto
  the tensor's corners, bilinear as OpenCV 4 interpolates, replicated or zero border);
* :func:`roi_to_image` / :func:`rotate_world`: ``LandmarkProjectionCalculator`` / ``WorldLandmarkProjectionCalculator``;
* :func:`refine_with_heatmap`: ``RefineLandmarksFromHeatmapCalculator`` (min confidence 0.5; a 9x9 window: the graph
  asks for 7, but mediapipe 0.10.21's outputs match a 9x9 window exactly and a 7x7 one only to ~0.05 tensor pixels,
  so its runtime uses the calculator's default).

Coordinates are pixels of the input frame unless said otherwise. A ROI is ``(centre x, centre y, width, height,
rotation in radians)``; rotation is clockwise on screen (y points down), as in MediaPipe and OpenCV.
"""
from __future__ import annotations

import math

import numpy as np

DETECTOR_SIZE = 224  # the detector's square input
LANDMARK_SIZE = 256  # the full landmark model's square input
DETECTOR_STRIDES = (8, 16, 32, 32, 32)
ANCHORS_PER_LAYER = 2  # aspect ratio 1.0 and the interpolated-scale anchor
NUM_KEYPOINTS = 4  # detector keypoints: hip centre, full-body scale point, shoulder centre, upper-body scale point
ROI_SCALE = 1.25  # ROIs are enlarged by this factor around the alignment points
NMS_IOU_THRESHOLD = 0.3
SCORE_CLIP = 100.0
HEATMAP_KERNEL = 9  # the graph's options say 7; mediapipe 0.10.21 applies the calculator's default, 9 (measured)
HEATMAP_MIN_CONFIDENCE = 0.5

Roi = tuple[float, float, float, float, float]  # centre x, centre y, width, height (pixels), rotation (radians)


def sigmoid(values: np.ndarray) -> np.ndarray:
    """The logistic function, float32 in and out (inputs clipped so exp cannot overflow)."""
    return (1.0 / (1.0 + np.exp(-np.clip(values, -80.0, 80.0)))).astype(np.float32)


def ssd_anchors(input_size: int = DETECTOR_SIZE, strides: tuple[int, ...] = DETECTOR_STRIDES,
                anchors_per_layer: int = ANCHORS_PER_LAYER, offset: float = 0.5) -> np.ndarray:
    """(n, 2) anchor centres (x, y) in [0, 1] of the detector's input, in the order the model emits its boxes.

    Consecutive layers with the same stride share one grid; each grid cell holds ``anchors_per_layer`` anchors per
    layer in that group. All anchors are 1x1 (``fixed_anchor_size``), so only the centres are returned.
    """
    centres = []
    layer = 0
    while layer < len(strides):
        group_end = layer
        while group_end < len(strides) and strides[group_end] == strides[layer]:
            group_end += 1
        cells = math.ceil(input_size / strides[layer])
        per_cell = anchors_per_layer * (group_end - layer)
        grid = (np.arange(cells, dtype=np.float32) + offset) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")  # row by row, x fastest
        cell_centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cell_centres, per_cell, axis=0))
        layer = group_end
    return np.concatenate(centres).astype(np.float32)


def decode_detections(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, min_score: float,
                      input_size: int = DETECTOR_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detector's raw tensors -> (scores (m,), boxes (m, 4) x_min, y_min, x_max, y_max, keypoints (m, 4, 2)).

    Coordinates are fractions of the detector's input. Boxes scoring below ``min_score``, or with a negative or NaN
    size, are dropped.
    """
    raw_boxes = np.asarray(raw_boxes, dtype=np.float32).reshape(len(anchors), -1)
    scores = sigmoid(np.clip(np.asarray(raw_scores, dtype=np.float32).reshape(-1), -SCORE_CLIP, SCORE_CLIP))
    centre = raw_boxes[:, 0:2] / input_size + anchors
    size = raw_boxes[:, 2:4] / input_size
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    keypoints = raw_boxes[:, 4:4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) / input_size + anchors[:, None, :]
    keep = (scores >= min_score) & np.all(size >= 0, axis=1) & np.isfinite(keypoints).all(axis=(1, 2))  # NaN: out
    return scores[keep], boxes[keep], keypoints[keep]


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (4,) box with each of (n, 4) boxes (x_min, y_min, x_max, y_max); 0 if empty."""
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    intersection = width * height
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) \
        - intersection
    return np.where(union > 0, intersection / np.where(union > 0, union, 1), 0.0)


def weighted_nms(scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray,
                 iou_threshold: float = NMS_IOU_THRESHOLD) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Weighted non-max suppression: [(score, box (4,), keypoints (k, 2))], best first.

    The best remaining box gathers every remaining box overlapping it by IoU > ``iou_threshold`` (itself included);
    the merged box corners and keypoints are the score-weighted means of the group, the score is the best one's.
    """
    order = np.argsort(-scores, kind="stable")
    merged = []
    while order.size:
        best = order[0]
        overlapping = box_iou(boxes[best], boxes[order]) > iou_threshold
        group = order[overlapping] if overlapping.any() else order[:1]
        weights = scores[group][:, None]
        box = (boxes[group] * weights).sum(axis=0) / weights.sum()
        points = (keypoints[group] * weights[:, :, None]).sum(axis=0) / weights.sum()
        merged.append((float(scores[best]), box.astype(np.float32), points.astype(np.float32)))
        order = order[~overlapping] if overlapping.any() else order[1:]
    return merged


def normalize_radians(angle: float) -> float:
    """``angle`` wrapped into [-pi, pi)."""
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def alignment_roi(centre: np.ndarray, scale_point: np.ndarray, scale: float = ROI_SCALE,
                  target_angle: float = math.pi / 2) -> Roi:
    """The square rotated ROI around two alignment points (pixels): centred on ``centre``, side 2 |scale_point -
    centre| x ``scale``, rotated so that the vector centre -> scale_point points at ``target_angle`` (90 degrees:
    straight up), i.e. an upright body gets rotation 0."""
    dx, dy = float(scale_point[0] - centre[0]), float(scale_point[1] - centre[1])
    side = 2.0 * math.hypot(dx, dy) * scale
    rotation = normalize_radians(target_angle - math.atan2(-dy, dx))
    return float(centre[0]), float(centre[1]), side, side, rotation


def letterbox_roi(width: int, height: int) -> Roi:
    """The whole frame padded to a square around its centre (the detector's input, letterboxed)."""
    side = float(max(width, height))
    return width / 2.0, height / 2.0, side, side, 0.0


def crop_matrix(roi: Roi, size: int) -> np.ndarray:
    """The 3x3 matrix taking frame pixels to the ``size`` x ``size`` crop, built as MediaPipe builds it: the ROI's
    corners (``cv2.boxPoints``: bottom-left, top-left, top-right, bottom-right) onto the crop's corners."""
    import cv2

    cx, cy, width, height, rotation = roi
    corners = cv2.boxPoints(((cx, cy), (width, height), math.degrees(rotation)))
    targets = np.array([[0, size], [0, 0], [size, 0], [size, size]], dtype=np.float32)
    return cv2.getPerspectiveTransform(corners.astype(np.float32), targets)


def crop(frame: np.ndarray, roi: Roi, size: int, zero_border: bool) -> np.ndarray:
    """The ``size`` x ``size`` uint8 crop of the rotated ROI (bilinear; border zero or replicated).

    Why not ``cv2.warpPerspective``? MediaPipe 0.10.21 samples like OpenCV 4: each crop pixel's source position is
    rounded to 1/32 pixel and interpolated with fixed-point weights. OpenCV 5 rounds differently (4 % of the values
    differ by 1 or 2), enough to move landmarks by about half a pixel. This computes OpenCV 4's positions and hands
    them to ``cv2.remap``, whose fixed-point bilinear step is OpenCV 4's: the detector's input then matches MediaPipe's
    exactly, the landmark model's on all but ~0.02 % of the values.
    """
    import cv2

    to_frame = cv2.invert(crop_matrix(roi, size))[1]
    grid = np.arange(size, dtype=np.float64)

    def source(row: int) -> np.ndarray:  # one row of to_frame applied to every crop pixel (x across, y down)
        values = np.multiply.outer(to_frame[row, 1] * grid + to_frame[row, 2], np.ones(size))
        values += to_frame[row, 0] * grid
        return values

    scale = source(2)  # the projective depth (1 for these affine ROIs, kept for OpenCV's exact rounding)
    np.divide(32.0, scale, out=scale, where=scale != 0)  # 32 sub-pixel steps per pixel; 0 where the depth is 0
    positions = []
    for row in (0, 1):
        values = source(row)
        values *= scale
        np.clip(values, -2.0 ** 31, 2.0 ** 31 - 64, out=values)
        positions.append(np.rint(values).astype(np.int32))
    x, y = positions
    whole = np.empty((size, size, 2), dtype=np.int16)
    whole[..., 0] = np.clip(x >> 5, -32768, 32767)
    whole[..., 1] = np.clip(y >> 5, -32768, 32767)
    fraction = ((y & 31) << 5 | (x & 31)).astype(np.uint16)
    border = cv2.BORDER_CONSTANT if zero_border else cv2.BORDER_REPLICATE
    return cv2.remap(frame, whole, fraction, cv2.INTER_LINEAR, borderMode=border, borderValue=(0, 0, 0))


def roi_to_image(points: np.ndarray, roi: Roi) -> np.ndarray:
    """(n, 2 or 3) points as fractions of the ROI (x, y in [0, 1]; z in ROI widths) -> frame pixels (z scaled as x)."""
    cx, cy, width, height, rotation = roi
    cos, sin = math.cos(rotation), math.sin(rotation)
    u = points[:, 0] - 0.5
    v = points[:, 1] - 0.5
    out = np.empty_like(points, dtype=np.float32)
    out[:, 0] = cx + (cos * u * width - sin * v * height)
    out[:, 1] = cy + (sin * u * width + cos * v * height)
    if points.shape[1] > 2:
        out[:, 2] = points[:, 2] * width
    return out


def rotate_world(points: np.ndarray, rotation: float) -> np.ndarray:
    """(n, 3) world landmarks predicted in the ROI's frame, rotated about z by the ROI's rotation (metres kept)."""
    cos, sin = math.cos(rotation), math.sin(rotation)
    out = points.astype(np.float32, copy=True)
    out[:, 0] = cos * points[:, 0] - sin * points[:, 1]
    out[:, 1] = sin * points[:, 0] + cos * points[:, 1]
    return out


def refine_with_heatmap(points: np.ndarray, heatmap: np.ndarray, kernel: int = HEATMAP_KERNEL,
                        min_confidence: float = HEATMAP_MIN_CONFIDENCE) -> np.ndarray:
    """(n, 2) points in ROI fractions moved to the confidence-weighted mean of the sigmoid heatmap around them.

    ``heatmap`` is (h, w, n) raw logits. A point outside the heatmap, or whose window's best confidence is below
    ``min_confidence``, is kept as it is. As in MediaPipe, a cell's position is its index over the heatmap size.
    """
    rows, cols, _ = heatmap.shape
    refined = points.astype(np.float32, copy=True)
    half = (kernel - 1) // 2
    for index, (x, y) in enumerate(points[:, :2]):
        col, row = int(x * cols), int(y * rows)  # truncation toward zero, as a C++ cast
        if not (0 <= col < cols and 0 <= row < rows):
            continue
        row_range = np.arange(max(0, row - half), min(rows, row + half + 1))
        col_range = np.arange(max(0, col - half), min(cols, col + half + 1))
        window = sigmoid(heatmap[row_range[0]:row_range[-1] + 1, col_range[0]:col_range[-1] + 1, index])
        total = float(window.sum())
        if window.max() >= min_confidence and total > 0:
            refined[index, 0] = float((window.sum(axis=0) * col_range).sum()) / cols / total
            refined[index, 1] = float((window.sum(axis=1) * row_range).sum()) / rows / total
    return refined
