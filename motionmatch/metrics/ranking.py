"""Pure ranking metrics: functions of a relevance matrix (and, for ranking, of scores), nothing else.

scikit-learn's ``metrics/_ranking.py`` is the model: these functions know nothing about tables,
videos, groups or domains. Protocols (who may retrieve whom, which gallery) live in
:mod:`motionmatch.evaluation.retrieval`, which calls :func:`rank_relevance` and :func:`ranking_metrics`;
every other place that needs P@k calls the evaluation layer, never its own loop.

Names (one spelling per metric, the column names of every table):

============  ==========================================================================
P@k           share of the top k that are relevant; a ranking shorter than k counts the
              empty places as misses.
Recall@k      share of the query's relevant gallery items that are in the top k.
HitRate@k     1 if at least one relevant item is in the top k, else 0. Its mean is what the
              self-supervised video retrieval literature calls "R@k" / top-k retrieval
              recall (Xu et al. 2019, VCOP, and the papers following its UCF101 protocol).
mAP           average precision over the full ranking, normalised by the number of relevant
              items, averaged over queries.
mAP@k         average precision over the top k, normalised by min(k, number relevant).
nDCG@k        binary gains, log2 discount, ideal DCG from min(k, n_relevant) relevant items.
============  ==========================================================================

Per-query values are NaN where a metric is undefined (no relevant item).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import ParameterError
from ..validation import check_scalar


def metric_names(ks: Sequence[int]) -> list[str]:
    """The metric columns for ranks ``ks``, in table order."""
    return ([f"P@{k}" for k in ks] + [f"Recall@{k}" for k in ks] + [f"HitRate@{k}" for k in ks]
            + [f"nDCG@{k}" for k in ks] + ["mAP"])


def check_k(k: Any, name: str = "k") -> int:
    """A rank cut-off: a positive whole number."""
    return check_scalar(k, name, int, min_value=1)


def _as_relevance(relevant: Any) -> np.ndarray:
    rel = np.asarray(relevant)
    if rel.ndim == 1:
        rel = rel[None, :]
    if rel.ndim != 2:
        raise ParameterError(f"relevant must be a 2-D (n_queries, n_ranked) boolean matrix, got shape {rel.shape}")
    return rel.astype(bool, copy=False)


def _as_counts(n_relevant: Any, rel: np.ndarray) -> np.ndarray:
    counts = np.atleast_1d(np.asarray(n_relevant))
    if counts.shape != (rel.shape[0],):
        raise ParameterError(f"n_relevant must have one total per query ({rel.shape[0]}), got shape {counts.shape}")
    if (counts < rel.sum(axis=1)).any():
        raise ParameterError("n_relevant is smaller than the relevant items in the ranking for some queries; "
                             "pass the total number of relevant gallery items per query")
    return counts.astype(np.int64)


def precision_at_k(relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-query P@k: relevant items in the top k divided by k."""
    rel, k = _as_relevance(relevant), check_k(k)
    return rel[:, :k].sum(axis=1) / k


def recall_at_k(relevant: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-query Recall@k: share of the query's relevant items found in the top k (NaN when it has none)."""
    rel, k = _as_relevance(relevant), check_k(k)
    counts = _as_counts(n_relevant, rel)
    hits = rel[:, :k].sum(axis=1)
    return np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)


def hit_rate_at_k(relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-query HitRate@k (the literature's "R@k"): 1.0 when any of the top k is relevant."""
    rel, k = _as_relevance(relevant), check_k(k)
    return rel[:, :k].any(axis=1).astype(float)


def average_precision(relevant: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Per-query AP over the full ranking, normalised by n_relevant (relevant items not ranked add 0)."""
    rel = _as_relevance(relevant)
    counts = _as_counts(n_relevant, rel)
    ranks = np.arange(1, rel.shape[1] + 1)
    precision_at_hits = np.cumsum(rel, axis=1) / ranks * rel
    return np.where(counts > 0, precision_at_hits.sum(axis=1) / np.maximum(counts, 1), np.nan)


def average_precision_at_k(relevant: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-query AP@k: AP of the top k, normalised by min(k, n_relevant) (NaN when nothing is relevant)."""
    rel, k = _as_relevance(relevant), check_k(k)
    counts = _as_counts(n_relevant, rel)
    return average_precision(rel[:, :k], np.minimum(counts, k))


def ndcg_at_k(relevant: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-query nDCG@k with binary gains and a log2 discount (NaN when the query has no relevant item)."""
    rel, k = _as_relevance(relevant), check_k(k)
    counts = _as_counts(n_relevant, rel)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    top = rel[:, :k]
    dcg = top @ discounts[: top.shape[1]]
    ideal_cumulative = np.concatenate([[0.0], np.cumsum(discounts)])
    ideal = ideal_cumulative[np.minimum(counts, k)]
    return np.where(counts > 0, dcg / np.where(ideal > 0, ideal, 1.0), np.nan)


def fraction_in_range(scores: np.ndarray, lo: float = 0.95, hi: float = 0.98) -> float:
    """Share of scores in the closed interval [lo, hi] (NaN for no scores)."""
    scores = np.asarray(scores, dtype=float).ravel()
    if lo > hi:
        raise ParameterError(f"fraction_in_range: lo ({lo}) is above hi ({hi})")
    return float(((scores >= lo) & (scores <= hi)).mean()) if scores.size else float("nan")


def top_k_order(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` highest scores per row, best first; ties keep column order (the one top-k)."""
    scores = np.asarray(scores)
    if k >= scores.shape[1]:
        return np.argsort(-scores, axis=1, kind="stable")
    candidates = np.sort(np.argpartition(-scores, k - 1, axis=1)[:, :k], axis=1)
    within = np.argsort(-np.take_along_axis(scores, candidates, axis=1), axis=1, kind="stable")
    return np.take_along_axis(candidates, within, axis=1)


def rank_relevance(scores: np.ndarray, relevant: np.ndarray, excluded: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row by descending score (ties keep gallery order) and return what the metrics read.

    ``relevant[i, j]``: gallery item j is relevant to query i; ``excluded[i, j]``: it may not be
    retrieved (it never counts, neither as a hit nor in the total). Returns ``(ranked, n_relevant)``:
    the relevance of the allowed items in ranked order (excluded places are False) and the number
    of relevant allowed items per query.
    """
    scores = np.asarray(scores, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool)
    if relevant.shape != scores.shape:
        raise ParameterError(f"relevant has shape {relevant.shape}, scores {scores.shape}; they must match")
    allowed = np.isfinite(scores) if excluded is None else ~np.asarray(excluded, dtype=bool) & np.isfinite(scores)
    if allowed.shape != scores.shape:
        raise ParameterError(f"excluded has shape {allowed.shape}, scores {scores.shape}; they must match")
    order = np.argsort(-np.where(allowed, scores, -np.inf), axis=1, kind="stable")
    ranked = np.take_along_axis(relevant & allowed, order, axis=1)
    return ranked, ranked.sum(axis=1)


def ranking_metrics(ranked: np.ndarray, n_relevant: np.ndarray, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Every metric of :func:`metric_names` per query, from :func:`rank_relevance`'s output."""
    out: dict[str, np.ndarray] = {}
    for k in ks:
        out[f"P@{k}"] = precision_at_k(ranked, k)
    for k in ks:
        out[f"Recall@{k}"] = recall_at_k(ranked, n_relevant, k)
    for k in ks:
        out[f"HitRate@{k}"] = hit_rate_at_k(ranked, k)
    for k in ks:
        out[f"nDCG@{k}"] = ndcg_at_k(ranked, n_relevant, k)
    out["mAP"] = average_precision(ranked, n_relevant)
    return out
