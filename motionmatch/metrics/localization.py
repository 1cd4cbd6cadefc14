"""Temporal localisation metrics: pure functions of predicted and relevant time ranges.

A **prediction** is a row ``query_id, video, start_s, end_s, score, query_start_s, query_end_s``
(a segment found in ``video`` for one query; the query range may be NaN for a one-window query,
which then stands for the query's whole range, taken from its relevant rows, or for a query
without relevant moments ``[0, end_s - start_s]``). A **relevant** row ``query_id, video, start_s,
end_s, query_start_s, query_end_s`` is one ground-truth moment a query should find. Times are
seconds. Nothing here knows about videos, encoders or stores (scikit-learn's ``metrics`` is the
model); a protocol that decides which moments are relevant to which query sits on top.

Metrics (names are the ``metric`` column of :func:`evaluate_localization`):

``R1@tIoU=t``    share of queries whose top-scored prediction overlaps a relevant moment of the
                 same video with temporal IoU >= t (no prediction counts as a miss).
``mean_IoU``     mean over queries of that top-1 IoU (0 when it misses every relevant moment).
``VCSL_P/R/F1``  VCSL (He et al., CVPR 2022; ``vcsl/metric.py``, its "Overall" micro average): per (query,
                 video) pair, precision on each axis is the length of the union of each prediction's
                 overlaps with the relevant boxes it touches in 2-D, over the summed prediction lengths;
                 precision is the product of the query-axis and reference-axis values, recall likewise
                 over relevant boxes. A pair with predictions and no relevant box has precision 0
                 (recall undefined), a pair with relevant boxes and no prediction has recall 0
                 (precision undefined). P and R are the means over every pair where they are defined
                 (micro), F1 = 2PR / (P + R): the figure TransVCL's 0.665 on VCSL is.
``query_macro_P/R/F1``  the same pairs averaged within each query first, then over queries (VCSL's
                 "query macro"), for a set where queries have very different numbers of pairs.
``segment_uAP``  VSC22 matching track (Pizzi et al. 2023): all predictions of all queries ranked
                 by score (ties as one step); at each step precision and recall per axis come from
                 the union of the predictions so far and of the relevant boxes they overlap,
                 P = sqrt(P_q P_r), R = sqrt(R_q R_r), AP = sum P dR. When every relevant box is
                 predicted exactly once and all boxes have one length, it equals scikit-learn's
                 ``average_precision_score`` (a test checks this).
``pair_uAP``     VSC22 descriptor track: (query, video) pairs scored by their best prediction,
                 AP over pairs with recall over all relevant pairs.
``boundary_error_s``  median over queries of the mean |start error| and |end error| of the top-1
                 prediction against the relevant moment it overlaps most (queries whose top-1 hits
                 nothing are left out); ``start_error_s`` and ``end_error_s`` the medians of each end.

Why a top-1 answer is wrong, in three parts (so an encoder's confusion and an aligner's imprecision are
never mixed up): ``video_R@1`` / ``video_R@5`` share of queries whose top-1 (any of the top-5) predictions
lie in a video that holds a relevant moment; ``tIoU_given_video`` mean top-1 IoU over the queries whose top-1
video is right; and the boundary errors above. ``tIoU_given_video`` itself splits in two, so that choosing the
wrong moment inside the right video (an encoder that confuses two motions of one video) is told from drawing
loose bounds around the right one (the aligner): ``moment_given_video`` the share of the queries with the right
top-1 video whose top-1 overlaps a relevant moment there, and ``tIoU_given_moment`` the mean top-1 IoU over the
queries whose top-1 overlaps a relevant moment: ``tIoU_given_video = moment_given_video x tIoU_given_moment``
(on every bootstrap draw too).

Confidence intervals are percentile bootstraps over queries (queries drawn with replacement,
every metric recomputed on the same draws).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import ParameterError
from .bootstrap import DEFAULT_CONFIDENCE, DEFAULT_N_BOOT, bootstrap_weights, check_bootstrap, percentile_interval
from ..table import require_columns
from ..validation import check_scalar

PREDICTION_COLUMNS = ("query_id", "video", "start_s", "end_s", "score", "query_start_s", "query_end_s")
RELEVANT_COLUMNS = ("query_id", "video", "start_s", "end_s", "query_start_s", "query_end_s")


# ----------------------------------------------------------------------------- intervals
def temporal_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) temporal IoU of intervals ``a`` (n, 2) and ``b`` (m, 2), rows ``[start, end]``."""
    a, b = np.asarray(a, dtype=float).reshape(-1, 2), np.asarray(b, dtype=float).reshape(-1, 2)
    if np.any(a[:, 1] < a[:, 0]) or np.any(b[:, 1] < b[:, 0]):
        raise ParameterError("temporal_iou needs intervals with end >= start")
    inter = np.clip(np.minimum(a[:, None, 1], b[None, :, 1]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def union_length(intervals: np.ndarray) -> float:
    """Total length covered by the union of (n, 2) intervals."""
    intervals = np.asarray(intervals, dtype=float).reshape(-1, 2)
    if len(intervals) == 0:
        return 0.0
    intervals = intervals[np.argsort(intervals[:, 0], kind="stable")]
    total, start, end = 0.0, intervals[0, 0], intervals[0, 1]
    for lo, hi in intervals[1:]:
        if lo > end:
            total, start, end = total + end - start, lo, hi
        else:
            end = max(end, hi)
    return float(total + end - start)


def intersection_length(a: np.ndarray, b: np.ndarray) -> float:
    """Length of (union of ``a``) intersected with (union of ``b``): |A| + |B| - |A u B|."""
    a, b = np.asarray(a, dtype=float).reshape(-1, 2), np.asarray(b, dtype=float).reshape(-1, 2)
    return union_length(a) + union_length(b) - union_length(np.concatenate([a, b]))


def _box_overlap(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(n, m) bool: 2-D boxes ``[q_start, q_end, r_start, r_end]`` overlap with positive area."""
    q = np.minimum(pred[:, None, 1], gt[None, :, 1]) - np.maximum(pred[:, None, 0], gt[None, :, 0])
    r = np.minimum(pred[:, None, 3], gt[None, :, 3]) - np.maximum(pred[:, None, 2], gt[None, :, 2])
    return (q > 0) & (r > 0)


def _clipped(boxes: np.ndarray, other: np.ndarray, axis: int) -> np.ndarray:
    """Intervals of ``boxes`` on ``axis`` (0 query, 1 reference) clipped to ``other``'s interval there."""
    lo = np.maximum(boxes[:, 2 * axis], other[2 * axis])
    return np.stack([lo, np.maximum(lo, np.minimum(boxes[:, 2 * axis + 1], other[2 * axis + 1]))], axis=1)


def segment_precision_recall(pred_boxes: np.ndarray, gt_boxes: np.ndarray) -> tuple[float, float]:
    """VCSL precision and recall of one (query, video) pair; boxes are (n, 4) ``[q0, q1, r0, r1]``.

    NaN marks the undefined side (precision without predictions, recall without relevant boxes).
    """
    pred = np.asarray(pred_boxes, dtype=float).reshape(-1, 4)
    gt = np.asarray(gt_boxes, dtype=float).reshape(-1, 4)
    if len(pred) == 0 and len(gt) == 0:
        return float("nan"), float("nan")
    if len(gt) == 0:
        return 0.0, float("nan")
    if len(pred) == 0:
        return float("nan"), 0.0
    overlap = _box_overlap(pred, gt)

    def covered(boxes: np.ndarray, others: np.ndarray, touching: np.ndarray) -> float:
        value = 1.0
        for axis in (0, 1):
            hit = sum(union_length(_clipped(others[touching[i]], boxes[i], axis)) for i in range(len(boxes)))
            value *= hit / np.sum(boxes[:, 2 * axis + 1] - boxes[:, 2 * axis])
        return float(value)

    return covered(pred, gt, overlap), covered(gt, pred, overlap.T)


# ----------------------------------------------------------------------------- tables
def _check_frames(predictions: pd.DataFrame, relevant: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    require_columns(predictions, PREDICTION_COLUMNS, "predictions")
    require_columns(relevant, RELEVANT_COLUMNS, "relevant moments")
    for name, frame in (("predictions", predictions), ("relevant moments", relevant)):
        if np.any(frame["end_s"].to_numpy(float) <= frame["start_s"].to_numpy(float)):
            raise ParameterError(f"{name}: every row needs end_s > start_s; fix the rows that do not")
    if relevant[["query_start_s", "query_end_s"]].isna().any().any():
        raise ParameterError("relevant moments: query_start_s and query_end_s must be set (the query's range)")
    predictions = predictions.astype({c: float for c in ("start_s", "end_s", "score", "query_start_s", "query_end_s")})
    extent = relevant.groupby("query_id").agg(q0=("query_start_s", "min"), q1=("query_end_s", "max"))
    for column, source in (("query_start_s", "q0"), ("query_end_s", "q1")):
        predictions[column] = predictions[column].fillna(predictions["query_id"].map(extent[source]).astype(float))
    # a query without relevant moments has no known range: its one-window prediction claims [0, its own length]
    unknown = predictions["query_start_s"].isna() | predictions["query_end_s"].isna()
    predictions.loc[unknown, "query_start_s"] = 0.0
    predictions.loc[unknown, "query_end_s"] = (predictions["end_s"] - predictions["start_s"])[unknown]
    return predictions, relevant


def _boxes(frame: pd.DataFrame) -> np.ndarray:
    return frame[["query_start_s", "query_end_s", "start_s", "end_s"]].to_numpy(float)


@dataclass
class LocalizationParts:
    """Per-query and per-prediction quantities every metric (and its bootstrap) is built from."""

    queries: np.ndarray  # the query ids, in order
    top1_iou: np.ndarray  # (n_queries,) IoU of the top-1 prediction with its best relevant moment
    boundary_error_s: np.ndarray  # (n_queries,) NaN where the top-1 overlaps nothing
    start_error_s: np.ndarray  # (n_queries,) |start error| of the top-1, NaN where it overlaps nothing
    end_error_s: np.ndarray  # (n_queries,) |end error|
    video_hit: np.ndarray  # (n_queries, 2) top-1 / any of the top-5 in a video with a relevant moment (NaN: none)
    vcsl_query: np.ndarray  # (n_vcsl_pairs,) query index of every (query, video) pair with predictions or truth
    vcsl_pr: np.ndarray  # (n_vcsl_pairs, 2) VCSL precision and recall of the pair (NaN: undefined)
    precision: np.ndarray  # (n_queries,) VCSL precision averaged over the query's pairs (NaN: undefined)
    recall: np.ndarray  # (n_queries,) VCSL recall averaged over the query's pairs
    pred_query: np.ndarray  # (n_predictions,) index into ``queries``
    pred_score: np.ndarray  # (n_predictions,)
    deltas: np.ndarray  # (n_predictions, 4) VSC22 increments: intersection q, r; prediction length q, r
    gt_lengths: np.ndarray  # (n_queries, 2) union length of relevant boxes, query and reference axis
    pair_query: np.ndarray  # (n_pairs,) query index of each predicted (query, video) pair
    pair_score: np.ndarray  # (n_pairs,) best prediction score of the pair
    pair_correct: np.ndarray  # (n_pairs,) bool: the pair holds a relevant moment
    relevant_pairs: np.ndarray  # (n_queries,) how many videos hold relevant moments for the query


def _vsc_deltas(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """VSC22 increments of one pair's predictions (``pred`` sorted by descending score)."""
    deltas = np.zeros((len(pred), 4))
    before = np.zeros(4)
    for index in range(1, len(pred) + 1):
        so_far = pred[:index]
        considered = gt[_box_overlap(so_far, gt).any(axis=0)] if len(gt) else gt
        now = np.array([intersection_length(so_far[:, 0:2], considered[:, 0:2]),
                        intersection_length(so_far[:, 2:4], considered[:, 2:4]),
                        union_length(so_far[:, 0:2]), union_length(so_far[:, 2:4])])
        deltas[index - 1], before = now - before, now
    return deltas


def localization_parts(predictions: pd.DataFrame, relevant: pd.DataFrame) -> LocalizationParts:
    """Compute everything the metrics need once, for the queries of ``relevant`` and ``predictions``."""
    predictions, relevant = _check_frames(predictions, relevant)
    queries = np.asarray(pd.unique(pd.concat([relevant["query_id"], predictions["query_id"]])))
    predictions = predictions.sort_values("score", ascending=False, kind="stable")
    n = len(queries)
    top1, boundary = np.full(n, np.nan), np.full(n, np.nan)
    start_error, end_error, video_hit = np.full(n, np.nan), np.full(n, np.nan), np.full((n, 2), np.nan)
    vcsl_query, vcsl_pr = [], []
    precision, recall, gt_lengths = np.full(n, np.nan), np.full(n, np.nan), np.zeros((n, 2))
    relevant_pairs = np.zeros(n, dtype=int)
    pred_query, pred_score, deltas = [], [], []
    pair_query, pair_score, pair_correct = [], [], []
    by_query = dict(tuple(predictions.groupby("query_id", sort=False)))
    by_moments = dict(tuple(relevant.groupby("query_id", sort=False)))
    for q, query in enumerate(queries):
        mine = by_query.get(query, predictions.iloc[:0])
        moments = by_moments.get(query, relevant.iloc[:0])
        gt_lengths[q] = [sum(union_length(_boxes(g)[:, 0:2]) for _, g in moments.groupby("video")),
                         sum(union_length(_boxes(g)[:, 2:4]) for _, g in moments.groupby("video"))]
        relevant_pairs[q] = moments["video"].nunique()
        if len(moments):
            top1[q] = 0.0  # a miss unless the top-1 prediction overlaps a relevant moment
            right = set(moments["video"])
            video_hit[q] = [float(len(mine) > 0 and mine["video"].iloc[0] in right),
                            float(bool(right & set(mine["video"].iloc[:5])))]
        if len(mine) and len(moments):
            best = mine.iloc[0]
            same = moments[moments["video"] == best["video"]]
            if len(same):
                ious = temporal_iou([[best["start_s"], best["end_s"]]], same[["start_s", "end_s"]].to_numpy(float))[0]
                top1[q] = ious.max()
                if top1[q] > 0:
                    hit = same.iloc[int(np.argmax(ious))]
                    start_error[q] = abs(best["start_s"] - hit["start_s"])
                    end_error[q] = abs(best["end_s"] - hit["end_s"])
                    boundary[q] = 0.5 * (start_error[q] + end_error[q])
        pair_values = []
        for video in pd.unique(pd.concat([mine["video"], moments["video"]])):
            pred_rows, gt_rows = mine[mine["video"] == video], moments[moments["video"] == video]
            pair_values.append(segment_precision_recall(_boxes(pred_rows), _boxes(gt_rows)))
            if len(pred_rows):
                pred_query.extend([q] * len(pred_rows))
                pred_score.extend(pred_rows["score"].to_numpy(float))
                deltas.append(_vsc_deltas(_boxes(pred_rows), _boxes(gt_rows)))
                pair_query.append(q)
                pair_score.append(float(pred_rows["score"].max()))
                pair_correct.append(len(gt_rows) > 0)
        values = np.asarray(pair_values, dtype=float).reshape(-1, 2)
        vcsl_query.extend([q] * len(values))
        vcsl_pr.extend(values.tolist())
        with np.errstate(all="ignore"):
            precision[q] = np.nan if np.all(np.isnan(values[:, 0])) else np.nanmean(values[:, 0])
            recall[q] = np.nan if np.all(np.isnan(values[:, 1])) else np.nanmean(values[:, 1])
    return LocalizationParts(
        queries=queries, top1_iou=top1, boundary_error_s=boundary, start_error_s=start_error, end_error_s=end_error,
        video_hit=video_hit, vcsl_query=np.asarray(vcsl_query, dtype=int),
        vcsl_pr=np.asarray(vcsl_pr, dtype=float).reshape(-1, 2), precision=precision, recall=recall,
        pred_query=np.asarray(pred_query, dtype=int), pred_score=np.asarray(pred_score, dtype=float),
        deltas=np.concatenate(deltas) if deltas else np.zeros((0, 4)), gt_lengths=gt_lengths,
        pair_query=np.asarray(pair_query, dtype=int), pair_score=np.asarray(pair_score, dtype=float),
        pair_correct=np.asarray(pair_correct, dtype=bool), relevant_pairs=relevant_pairs)


# ----------------------------------------------------------------------------- metrics from parts
def _ranked_ap(scores: np.ndarray, hits: np.ndarray, totals: np.ndarray, gt_total: np.ndarray,
               combine: Callable[[np.ndarray], np.ndarray]) -> float:
    """AP = sum P dR over score thresholds (ties form one step); ``hits`` / ``totals`` are per-item increments."""
    if np.any(gt_total <= 0):
        return float("nan")
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    scores, hits, totals = scores[order], np.cumsum(hits[order], axis=0), np.cumsum(totals[order], axis=0)
    last = np.r_[np.flatnonzero(np.diff(scores) != 0), len(scores) - 1]  # end of each tie group
    hits, totals = hits[last], totals[last]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = combine(np.where(totals > 0, hits / np.where(totals > 0, totals, 1), 0.0))
    recall = combine(hits / gt_total)
    gain = np.diff(np.r_[0.0, recall])
    return float(np.sum(np.where(gain != 0, precision * gain, 0.0)))


def _geometric(values: np.ndarray) -> np.ndarray:
    return np.sqrt(values[:, 0] * values[:, 1]) if values.ndim == 2 else values


def segment_micro_ap(parts: LocalizationParts, weights: np.ndarray | None = None) -> float:
    """VSC22 segment µAP; ``weights`` (n_queries,) counts how often each query is drawn (bootstrap)."""
    w = np.ones(len(parts.queries)) if weights is None else np.asarray(weights, dtype=float)
    per_pred = w[parts.pred_query][:, None]
    return _ranked_ap(parts.pred_score, parts.deltas[:, 0:2] * per_pred, parts.deltas[:, 2:4] * per_pred,
                      (parts.gt_lengths * w[:, None]).sum(axis=0), _geometric)


def pair_micro_ap(parts: LocalizationParts, weights: np.ndarray | None = None) -> float:
    """VSC22 pairwise µAP over (query, video) pairs scored by their best prediction."""
    w = np.ones(len(parts.queries)) if weights is None else np.asarray(weights, dtype=float)
    per_pair = w[parts.pair_query]
    return _ranked_ap(parts.pair_score, parts.pair_correct * per_pair, per_pair,
                      np.array([np.sum(parts.relevant_pairs * w)]), lambda v: v)


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    keep = ~np.isnan(values) & (weights > 0)
    return float(np.sum(values[keep] * weights[keep]) / np.sum(weights[keep])) if keep.any() else float("nan")


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    keep = ~np.isnan(values) & (weights > 0)
    return float(np.median(np.repeat(values[keep], weights[keep].astype(int)))) if keep.any() else float("nan")


def _metrics(parts: LocalizationParts, weights: np.ndarray, thresholds: Sequence[float]) -> dict[str, float]:
    iou = parts.top1_iou
    out = {f"R1@tIoU={t:g}": _weighted_mean(np.where(np.isnan(iou), np.nan, iou >= t), weights) for t in thresholds}
    out["mean_IoU"] = _weighted_mean(parts.top1_iou, weights)
    pair_weights = weights[parts.vcsl_query]
    for prefix, (precision, recall) in (
            ("VCSL", (_weighted_mean(parts.vcsl_pr[:, 0], pair_weights), _weighted_mean(parts.vcsl_pr[:, 1], pair_weights))),
            ("query_macro", (_weighted_mean(parts.precision, weights), _weighted_mean(parts.recall, weights)))):
        out.update({f"{prefix}_P": precision, f"{prefix}_R": recall, f"{prefix}_F1": _f1(precision, recall)})
    out["segment_uAP"] = segment_micro_ap(parts, weights)
    out["pair_uAP"] = pair_micro_ap(parts, weights)
    out["video_R@1"] = _weighted_mean(parts.video_hit[:, 0], weights)
    out["video_R@5"] = _weighted_mean(parts.video_hit[:, 1], weights)
    right_video = np.where(parts.video_hit[:, 0] == 1, parts.top1_iou, np.nan)
    out["tIoU_given_video"] = _weighted_mean(right_video, weights)
    out["moment_given_video"] = _weighted_mean(np.where(np.isnan(right_video), np.nan, right_video > 0), weights)
    out["tIoU_given_moment"] = _weighted_mean(np.where(parts.top1_iou > 0, parts.top1_iou, np.nan), weights)
    out["boundary_error_s"] = _weighted_median(parts.boundary_error_s, weights)
    out["start_error_s"] = _weighted_median(parts.start_error_s, weights)
    out["end_error_s"] = _weighted_median(parts.end_error_s, weights)
    return out


def _f1(precision: float, recall: float) -> float:
    if np.isnan(precision) or np.isnan(recall):
        return float("nan")
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def evaluate_localization(predictions: pd.DataFrame, relevant: pd.DataFrame,
                          thresholds: Sequence[float] = (0.5, 0.7), n_boot: int = DEFAULT_N_BOOT,
                          confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> pd.DataFrame:
    """Every localisation metric with a percentile-bootstrap CI over queries.

    Queries are those of ``relevant`` and of ``predictions``: a query without relevant moments
    (a negative query, as in VSC22) adds false positives to precision and µAP and is left out of
    R1, mean IoU, recall and boundary error. Returns one row per metric: ``metric, value, ci_low,
    ci_high, n_queries`` (``n_boot=0``: no CI, NaN bounds).
    """
    thresholds = [check_scalar(t, "tIoU threshold", float, min_value=0, max_value=1, include_min=False)
                  for t in thresholds]
    n_boot, confidence = check_bootstrap(n_boot, confidence, allow_zero=True)
    parts = localization_parts(predictions, relevant)
    n = len(parts.queries)
    if len(relevant) == 0:
        raise ParameterError("relevant moments is empty: give at least one query with a relevant moment")
    point = _metrics(parts, np.ones(n), thresholds)
    draws = bootstrap_weights(n, n_boot, seed) if n_boot else []
    replicates = [_metrics(parts, w, thresholds) for w in draws]
    rows = []
    for name, value in point.items():
        lo, hi = percentile_interval(np.array([r[name] for r in replicates]), confidence) if replicates \
            else (float("nan"), float("nan"))
        rows.append({"metric": name, "value": value, "ci_low": lo, "ci_high": hi, "n_queries": n})
    return pd.DataFrame(rows)


__all__ = ["PREDICTION_COLUMNS", "RELEVANT_COLUMNS", "temporal_iou", "union_length", "intersection_length",
           "segment_precision_recall", "LocalizationParts", "localization_parts", "segment_micro_ap",
           "pair_micro_ap", "evaluate_localization"]
