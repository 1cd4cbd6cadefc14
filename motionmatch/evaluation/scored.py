"""Protocols on any score matrix over one table: per domain pair (query camera x gallery camera), and the worst
queries with their top hit.

:func:`~motionmatch.evaluation.retrieval.same_vs_cross_domain` scores a table's own embeddings; these take a score
matrix instead (a fused or re-ranked method's, e.g. flow + pose), so every method of a comparison is cut the same
way. Every metric comes from :func:`~motionmatch.evaluation.retrieval.query_metrics`, the one engine; a score of
``-inf`` means "may not be retrieved" (it neither counts as a hit nor as something to find).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..table import require_columns
from ..validation import check_choice, check_scalar
from .retrieval import exclusion_mask, query_metrics, summarise_metrics

DOMAIN_RULES = ("all", "other", "same")


def _check_scores(scores: np.ndarray, table: pd.DataFrame) -> np.ndarray:
    require_columns(table, ("clip_id", "video_path", "label", "domain", "group"), "the scored table")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(table), len(table)):
        raise ParameterError(f"scores must be (n, n) = {(len(table), len(table))} over the table's rows, got "
                             f"{scores.shape}")
    return scores


def score_domain_pairs(scores: np.ndarray, table: pd.DataFrame, exclude: str = "video", ks: Sequence[int] = (1, 10),
                       n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Metrics for each ordered (query domain, gallery domain) pair of ``scores`` (rows and columns = ``table``).

    Columns like :func:`~motionmatch.evaluation.retrieval.same_vs_cross_domain`'s: ``query_domain,
    gallery_domain, kind, n_queries, n_queries_without_relevant`` and ``M, M_lo, M_hi`` for P@k and mAP;
    :func:`~motionmatch.evaluation.retrieval.domain_matrix` pivots one metric.
    """
    scores = _check_scores(scores, table)
    ks = tuple(int(k) for k in ks)
    wanted = [f"P@{k}" for k in ks] + ["mAP"]
    domains = table["domain"].astype(str).to_numpy()
    rows = []
    for query_domain in sorted(set(domains)):
        queries = np.flatnonzero(domains == query_domain)
        for gallery_domain in sorted(set(domains)):
            gallery = np.flatnonzero(domains == gallery_domain)
            part = query_metrics(scores[np.ix_(queries, gallery)], table.iloc[queries], table.iloc[gallery], exclude,
                                 ks, pair_scores=False)
            summary = summarise_metrics([part], wanted, n_boot=n_boot, seed=seed, with_auc=False)
            rows.append({"query_domain": query_domain, "gallery_domain": gallery_domain,
                         "kind": "same" if query_domain == gallery_domain else "cross", **summary})
    return pd.DataFrame(rows)


def score_protocol(scores: np.ndarray, table: pd.DataFrame, domains: str = "other", exclude: str = "video",
                   ks: Sequence[int] = (1, 10), n_boot: int = 1000, seed: int = 0) -> dict:
    """Pooled metrics of ``scores`` when each query ranks the clips of ``domains`` (``other``: every other domain,
    the cross-camera protocol; ``same``; ``all``), with 95% bootstrap CIs: ``{"P@1", "P@1_lo", ..., "n_queries"}``."""
    scores = _check_scores(scores, table)
    check_choice(domains, "domains", DOMAIN_RULES)
    domain = table["domain"].astype(str).to_numpy()
    if domains == "other":
        scores = np.where(domain[:, None] != domain[None, :], scores, -np.inf)
    elif domains == "same":
        scores = np.where(domain[:, None] == domain[None, :], scores, -np.inf)
    ks = tuple(int(k) for k in ks)
    part = query_metrics(scores, table, table, exclude, ks, pair_scores=False)
    return summarise_metrics([part], [f"P@{k}" for k in ks] + ["mAP"], n_boot=n_boot, seed=seed, with_auc=False)


def worst_queries(scores: np.ndarray, table: pd.DataFrame, n: int = 5, k: int = 10, domains: str = "other",
                  exclude: str = "video") -> pd.DataFrame:
    """The ``n`` queries ``scores`` serves worst (lowest P@k, then the widest margin of the wrong top hit over the
    best relevant clip), each with its top hit: where the method fails, to look at.

    Columns: query (video, clip index, label, domain), ``P@k``, the top hit's video, clip index, label, domain and
    score, the best relevant clip's score and rank. ``domains`` as in :func:`score_protocol`.
    """
    scores = _check_scores(scores, table)
    check_scalar(n, "n", int, min_value=1)
    check_scalar(k, "k", int, min_value=1)
    check_choice(domains, "domains", DOMAIN_RULES)
    domain = table["domain"].astype(str).to_numpy()
    allowed = ~exclusion_mask(table, table, exclude) & np.isfinite(scores)
    if domains == "other":
        allowed &= domain[:, None] != domain[None, :]
    elif domains == "same":
        allowed &= domain[:, None] == domain[None, :]
    labels = table["label"].astype(str).to_numpy()
    relevant = (labels[:, None] == labels[None, :]) & allowed
    masked = np.where(allowed, scores, -np.inf)
    order = np.argsort(-masked, axis=1, kind="stable")
    rows = []
    for i in np.flatnonzero(relevant.any(axis=1)):
        ranked = order[i][allowed[i][order[i]]]
        top = ranked[0]
        best_relevant = next(rank for rank, j in enumerate(ranked) if relevant[i, j])
        rows.append({"query_video": table["video_path"].iloc[i], "query_clip": int(table["clip_index"].iloc[i])
                     if "clip_index" in table else i, "query_label": labels[i], "query_domain": domain[i],
                     f"P@{k}": float(relevant[i, ranked[:k]].sum() / k),
                     "top_hit_video": table["video_path"].iloc[top],
                     "top_hit_clip": int(table["clip_index"].iloc[top]) if "clip_index" in table else int(top),
                     "top_hit_label": labels[top], "top_hit_domain": domain[top], "top_hit_score": float(scores[i, top]),
                     "best_relevant_score": float(scores[i, ranked[best_relevant]]),
                     "best_relevant_rank": best_relevant + 1, "_margin": float(scores[i, top] - scores[i, ranked[best_relevant]])})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.sort_values([f"P@{k}", "_margin"], ascending=[True, False], kind="stable").head(n)
    return frame.drop(columns="_margin").reset_index(drop=True)


__all__ = ["DOMAIN_RULES", "score_domain_pairs", "score_protocol", "worst_queries"]
