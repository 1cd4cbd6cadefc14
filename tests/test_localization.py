"""motionmatch.metrics.localization: hand-computed cases, and scikit-learn as the oracle where the definitions coincide."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from motionmatch.errors import ParameterError
from motionmatch.metrics import (evaluate_localization, intersection_length, localization_parts, pair_micro_ap,
                                 segment_micro_ap, segment_precision_recall, temporal_iou, union_length)


def pred(query, video, start, end, score, q0=np.nan, q1=np.nan):
    return {"query_id": query, "video": video, "start_s": start, "end_s": end, "score": score,
            "query_start_s": q0, "query_end_s": q1}


def rel(query, video, start, end, q0=0.0, q1=4.0):
    return {"query_id": query, "video": video, "start_s": start, "end_s": end, "query_start_s": q0, "query_end_s": q1}


def metric(table: pd.DataFrame, name: str) -> float:
    return float(table.set_index("metric").loc[name, "value"])


def test_temporal_iou_by_hand():
    iou = temporal_iou([[0, 10], [5, 15], [20, 30]], [[0, 10], [8, 12]])
    np.testing.assert_allclose(iou, [[1.0, 2 / 12], [5 / 15, 4 / 10], [0.0, 0.0]])
    with pytest.raises(ParameterError):
        temporal_iou([[3, 1]], [[0, 1]])


def test_union_and_intersection_lengths():
    assert union_length([[0, 2], [1, 3], [5, 6]]) == pytest.approx(4.0)
    assert union_length(np.zeros((0, 2))) == 0.0
    assert intersection_length([[0, 2], [5, 6]], [[1, 5.5]]) == pytest.approx(1.5)


def test_vcsl_precision_recall_by_hand():
    gt = [[0, 10, 100, 110]]
    # half of the relevant box on each axis, all of the prediction inside it: P = 1, R = 0.5 * 0.5
    assert segment_precision_recall([[0, 5, 100, 105]], gt) == pytest.approx((1.0, 0.25))
    # a prediction twice as long on the reference axis, the same on the query axis
    p, r = segment_precision_recall([[0, 10, 100, 120]], gt)
    assert (p, r) == pytest.approx((0.5, 1.0))
    # touching on one axis but apart on the other: no 2-D overlap, nothing counts
    assert segment_precision_recall([[0, 10, 200, 210]], gt) == pytest.approx((0.0, 0.0))
    assert segment_precision_recall(np.zeros((0, 4)), gt)[1] == 0.0
    assert np.isnan(segment_precision_recall(np.zeros((0, 4)), gt)[0])
    assert segment_precision_recall([[0, 1, 0, 1]], np.zeros((0, 4)))[0] == 0.0


def test_top1_iou_recall_and_boundary_error():
    predictions = pd.DataFrame([
        pred("a", "v1", 10, 20, 0.9), pred("a", "v1", 0, 5, 0.5),      # top-1 matches exactly
        pred("b", "v2", 12, 22, 0.8),                                  # IoU 8 / 12 with [10, 20]
        pred("c", "v1", 10, 20, 0.7),                                  # wrong video
    ])
    relevant = pd.DataFrame([rel("a", "v1", 10, 20), rel("b", "v2", 10, 20), rel("c", "v3", 10, 20),
                             rel("d", "v1", 0, 3)])  # d: no prediction at all
    out = evaluate_localization(predictions, relevant, n_boot=0)
    assert metric(out, "R1@tIoU=0.5") == pytest.approx(2 / 4)
    assert metric(out, "R1@tIoU=0.7") == pytest.approx(1 / 4)
    assert metric(out, "mean_IoU") == pytest.approx((1 + 8 / 12) / 4)
    # boundary errors of the queries that hit: a -> 0, b -> (2 + 2) / 2 = 2; median 1
    assert metric(out, "boundary_error_s") == pytest.approx(1.0)


def test_segment_uap_by_hand():
    relevant = pd.DataFrame([rel("q", "v", 0, 10, 0, 10)])
    predictions = pd.DataFrame([pred("q", "v", 0, 5, 0.9, 0, 5), pred("q", "v", 5, 20, 0.8, 5, 20)])
    parts = localization_parts(predictions, relevant)
    # step 1: P = 1, R = sqrt(0.5 * 0.5) = 0.5; step 2: union [0, 20] on both axes, P = 0.5, R = 1
    assert segment_micro_ap(parts) == pytest.approx(1.0 * 0.5 + 0.5 * 0.5)
    # the other order of scores: first [5, 20] covers 5 of its 15 s (P = 1/3, R = 0.5), then P = 0.5, R = 1
    flipped = predictions.assign(score=[0.8, 0.9])
    assert segment_micro_ap(localization_parts(flipped, relevant)) == pytest.approx(5 / 15 * 0.5 + 0.5 * 0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_segment_uap_equals_sklearn_when_definitions_coincide(seed):
    """Equal-length boxes, every relevant box predicted exactly once, false positives elsewhere, ties included."""
    rng = np.random.default_rng(seed)
    rows_pred, rows_rel, labels, scores = [], [], [], []
    for q in range(12):
        query = f"q{q}"
        start = float(rng.integers(0, 50)) * 5
        rows_rel.append(rel(query, f"v{q % 3}", start, start + 4))
        score = float(rng.integers(0, 6)) / 5  # few distinct values: ties
        rows_pred.append(pred(query, f"v{q % 3}", start, start + 4, score))
        labels.append(1), scores.append(score)
        for _ in range(int(rng.integers(0, 3))):  # false positives in videos without a relevant moment
            score = float(rng.integers(0, 6)) / 5
            other = float(rng.integers(0, 50)) * 5
            rows_pred.append(pred(query, f"x{int(rng.integers(0, 4))}_{len(rows_pred)}", other, other + 4, score))
            labels.append(0), scores.append(score)
    parts = localization_parts(pd.DataFrame(rows_pred), pd.DataFrame(rows_rel))
    expected = average_precision_score(labels, scores)
    assert segment_micro_ap(parts) == pytest.approx(expected)
    assert pair_micro_ap(parts) == pytest.approx(expected)


def test_pair_uap_rescales_for_missed_pairs():
    """VSC22 rescales sklearn's AP by (predicted relevant pairs / all relevant pairs)."""
    relevant = pd.DataFrame([rel("q1", "v1", 0, 4), rel("q2", "v2", 0, 4), rel("q3", "v3", 0, 4)])
    predictions = pd.DataFrame([pred("q1", "v1", 0, 4, 0.9), pred("q2", "x", 0, 4, 0.8), pred("q2", "v2", 0, 4, 0.3)])
    parts = localization_parts(predictions, relevant)
    expected = average_precision_score([1, 0, 1], [0.9, 0.8, 0.3]) * 2 / 3
    assert pair_micro_ap(parts) == pytest.approx(expected)


def test_evaluate_localization_intervals_bracket_the_value():
    rng = np.random.default_rng(0)
    rows_pred, rows_rel = [], []
    for q in range(30):
        start = float(rng.uniform(0, 100))
        rows_rel.append(rel(f"q{q}", "v", start, start + 5))
        shift = float(rng.normal(0, 2))
        rows_pred.append(pred(f"q{q}", "v", start + shift, start + 5 + shift, float(rng.random())))
    out = evaluate_localization(pd.DataFrame(rows_pred), pd.DataFrame(rows_rel), n_boot=300, seed=3)
    assert set(out["metric"]) >= {"R1@tIoU=0.5", "R1@tIoU=0.7", "mean_IoU", "VCSL_P", "VCSL_R", "VCSL_F1",
                                  "query_macro_F1", "segment_uAP", "pair_uAP", "boundary_error_s", "video_R@1",
                                  "video_R@5", "tIoU_given_video", "moment_given_video", "tIoU_given_moment",
                                  "start_error_s", "end_error_s"}
    finite = out.dropna()
    assert (finite["ci_low"] <= finite["value"] + 1e-12).all() and (finite["value"] <= finite["ci_high"] + 1e-12).all()
    assert out.set_index("metric").loc["mean_IoU", "ci_high"] > out.set_index("metric").loc["mean_IoU", "ci_low"]
    again = evaluate_localization(pd.DataFrame(rows_pred), pd.DataFrame(rows_rel), n_boot=300, seed=3)
    pd.testing.assert_frame_equal(out, again)


def test_bad_inputs_are_named():
    with pytest.raises(ParameterError, match="end_s > start_s"):
        evaluate_localization(pd.DataFrame([pred("q", "v", 5, 5, 1.0)]), pd.DataFrame([rel("q", "v", 0, 1)]))
    with pytest.raises(ParameterError, match="lacks column"):
        evaluate_localization(pd.DataFrame({"query_id": ["q"]}), pd.DataFrame([rel("q", "v", 0, 1)]))
    with pytest.raises(ParameterError, match="confidence"):
        evaluate_localization(pd.DataFrame([pred("q", "v", 0, 1, 1.0)]), pd.DataFrame([rel("q", "v", 0, 1)]),
                              confidence=1.0)


def test_negative_queries_cost_precision_but_not_recall():
    """A query without relevant moments (VSC22's negatives) adds false positives and nothing else."""
    relevant = pd.DataFrame([rel("q", "v", 0, 4)])
    alone = pd.DataFrame([pred("q", "v", 0, 4, 0.5)])
    with_negative = pd.concat([alone, pd.DataFrame([pred("neg", "v", 10, 14, 0.9)])], ignore_index=True)
    clean = evaluate_localization(alone, relevant, n_boot=0)
    noisy = evaluate_localization(with_negative, relevant, n_boot=0)
    assert metric(clean, "segment_uAP") == pytest.approx(1.0)
    assert metric(noisy, "segment_uAP") == pytest.approx(0.5)  # P = 4 / 8 when recall reaches 1
    assert metric(noisy, "query_macro_P") == pytest.approx(0.5) and metric(noisy, "query_macro_R") == pytest.approx(1.0)
    assert metric(noisy, "VCSL_P") == pytest.approx(0.5) and metric(noisy, "VCSL_R") == pytest.approx(1.0)
    assert metric(noisy, "R1@tIoU=0.5") == pytest.approx(1.0)


def test_vcsl_f1_is_micro_over_pairs_and_the_query_average_is_kept_apart():
    """A hand-computed VCSL case (vcsl/metric.py: precision_recall per pair, evaluate_micro over pairs).

    q1 / video A: truth [q 0-10, r 0-10], prediction [q 0-10, r 5-15]: P = 1 x 5/10, R = 1 x 5/10.
    q1 / video B: a prediction and no truth: P = 0, R undefined.
    q2 / video A: exact: P = R = 1.   q2 / video C: truth and no prediction: R = 0, P undefined.
    Micro: P = mean(0.5, 0, 1) = 0.5, R = mean(0.5, 1, 0) = 0.5, F1 = 0.5. Per query first: P = mean(0.25, 1)
    = 0.625, R = mean(0.5, 0.5) = 0.5, F1 = 0.5556 (what this package reported as segment_F1 until issue 19).
    """
    relevant = pd.DataFrame([rel("q1", "A", 0, 10, 0, 10), rel("q2", "A", 0, 10, 0, 10), rel("q2", "C", 20, 25, 0, 5)])
    predictions = pd.DataFrame([pred("q1", "A", 5, 15, 0.9, 0, 10), pred("q1", "B", 0, 4, 0.5, 0, 4),
                                pred("q2", "A", 0, 10, 0.8, 0, 10)])
    out = evaluate_localization(predictions, relevant, n_boot=0)
    assert metric(out, "VCSL_P") == pytest.approx(0.5) and metric(out, "VCSL_R") == pytest.approx(0.5)
    assert metric(out, "VCSL_F1") == pytest.approx(0.5)
    assert metric(out, "query_macro_P") == pytest.approx(0.625) and metric(out, "query_macro_R") == pytest.approx(0.5)
    assert metric(out, "query_macro_F1") == pytest.approx(2 * 0.625 * 0.5 / 1.125)


def test_why_a_top1_is_wrong_is_split_into_video_range_and_boundaries():
    relevant = pd.DataFrame([rel("q1", "A", 10, 20), rel("q2", "A", 10, 20), rel("q3", "A", 10, 20)])
    predictions = pd.DataFrame([
        pred("q1", "A", 11, 22, 0.9),  # right video, start 1 s late, end 2 s late: IoU 9 / 12
        pred("q2", "B", 0, 5, 0.9), pred("q2", "A", 10, 20, 0.2),  # wrong video first, the right one second
        pred("q3", "B", 0, 5, 0.9)])  # the right video nowhere
    out = evaluate_localization(predictions, relevant, n_boot=0)
    assert metric(out, "video_R@1") == pytest.approx(1 / 3) and metric(out, "video_R@5") == pytest.approx(2 / 3)
    assert metric(out, "tIoU_given_video") == pytest.approx(9 / 12)  # q1 only: its top-1 video is right
    assert metric(out, "mean_IoU") == pytest.approx(9 / 12 / 3)
    assert metric(out, "start_error_s") == pytest.approx(1.0) and metric(out, "end_error_s") == pytest.approx(2.0)


def test_the_range_given_the_video_splits_into_the_moment_chosen_and_its_bounds():
    relevant = pd.DataFrame([rel("q1", "A", 10, 20), rel("q2", "A", 10, 20), rel("q3", "A", 10, 20),
                             rel("q4", "A", 10, 20), rel("q4", "A", 40, 50)])
    predictions = pd.DataFrame([
        pred("q1", "A", 12, 20, 0.9),  # the right moment, 2 s short: IoU 0.8
        pred("q2", "A", 30, 35, 0.9),  # the right video, the wrong moment in it: IoU 0
        pred("q3", "B", 10, 20, 0.9),  # the wrong video: left out of both
        pred("q4", "A", 40, 45, 0.9)])  # the second of two relevant moments, half of it: IoU 0.5
    out = evaluate_localization(predictions, relevant, n_boot=0)
    assert metric(out, "moment_given_video") == pytest.approx(2 / 3)  # q1 and q4 of q1, q2, q4
    assert metric(out, "tIoU_given_moment") == pytest.approx((0.8 + 0.5) / 2)
    assert metric(out, "tIoU_given_video") == pytest.approx(
        metric(out, "moment_given_video") * metric(out, "tIoU_given_moment"))
