"""Boundary metrics: predicted cut (or change-point) times against true ones, matched one-to-one within a tolerance."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ParameterError
from ..validation import check_scalar


def boundary_f1(predicted_cuts: Sequence[float], true_cuts: Sequence[float], tolerance_s: float = 0.5) -> dict:
    """Precision, recall and F1 of predicted cut times against true ones, matched one-to-one within ``tolerance_s``.

    The matching is a maximum one: on sorted times, pairing the earliest unmatched prediction with
    the earliest unmatched truth it reaches is optimal for points on a line. With no prediction
    precision is 1 (nothing wrong was said); with no true cut recall is 1. Also returns the counts
    (``matched``, ``n_predicted``, ``n_true``) so results can be pooled over videos.
    """
    tolerance_s = check_scalar(tolerance_s, "tolerance_s", float, min_value=0.0)
    predicted = np.sort(np.asarray(predicted_cuts, dtype=np.float64).reshape(-1))
    truth = np.sort(np.asarray(true_cuts, dtype=np.float64).reshape(-1))
    if not (np.isfinite(predicted).all() and np.isfinite(truth).all()):
        raise ParameterError("cut times must be finite numbers (seconds)")
    matched = i = j = 0
    while i < len(predicted) and j < len(truth):
        if abs(predicted[i] - truth[j]) <= tolerance_s + 1e-9:
            matched, i, j = matched + 1, i + 1, j + 1
        elif predicted[i] < truth[j]:
            i += 1
        else:
            j += 1
    return f1_from_counts(matched, len(predicted), len(truth))


def f1_from_counts(matched: int, n_predicted: int, n_true: int) -> dict:
    """The boundary_f1 dict from match counts (pool several videos by summing their counts)."""
    precision = matched / n_predicted if n_predicted else 1.0
    recall = matched / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "matched": int(matched),
            "n_predicted": int(n_predicted), "n_true": int(n_true)}


__all__ = ["boundary_f1", "f1_from_counts"]
