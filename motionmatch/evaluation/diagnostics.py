"""Score diagnostics: where the cosine scores fall, what gets confused with what, and which clips are hubs.

These test the notes' claims that do not fit a ranking metric: that "most scores cluster at
0.95-0.98" (:func:`score_statistics`), which motions are mistaken for which
(:func:`confusion_top1`, :func:`confused_examples`) and whether a few clips sit in everyone's top k
(:func:`hubness`). Exclusion rules (own clip / video / group) are the evaluation engine's
(:mod:`motionmatch.evaluation.retrieval`), and so is the exact blockwise search.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ParameterError
from .retrieval import Items, check_exclude, check_table, exclusion_block, items_from_table, row_blocks
from ..metrics.ranking import check_k, fraction_in_range, top_k_order


def _pairs_sharing(*keys: np.ndarray) -> int:
    """Unordered pairs of items that agree on every key."""
    _, counts = np.unique(np.stack(keys, axis=1), axis=0, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def _excluded_pairs(items: Items, exclude: str, *extra: np.ndarray) -> int:
    if exclude == "none":
        return 0
    by_video = _pairs_sharing(items.videos, *extra)
    if exclude == "video":
        return by_video
    return _pairs_sharing(items.groups, *extra) + by_video - _pairs_sharing(items.groups, items.videos, *extra)


def score_statistics(table: pd.DataFrame, exclude: str = "group", band: tuple[float, float] = (0.95, 0.98),
                     top_k: int = 10, max_pairs: int = 200_000, seed: int = 0, bins: int = 200) -> dict[str, Any]:
    """Cosine scores of relevant (same label) vs irrelevant pairs, over every allowed pair.

    Pairs are unordered, without self, own video and (``exclude="group"``) own group.
    Counts, means, stds, the in-band fractions and the histograms are exact over all pairs;
    ``auc`` (sklearn ``roc_auc_score``) and the quantiles use a seeded sample of at most
    ``max_pairs`` pairs, half relevant and half irrelevant (AUC does not depend on the
    mix). ``overlap`` is the overlapping mass of the two normalised histograms (1 = the
    distributions coincide, 0 = fully separated). ``frac_in_<lo>_<hi>`` tests the notes'
    claim on all pairs; ``top<k>_frac_in_<lo>_<hi>`` on each query's top-k scores. The raw
    samples (``samples["relevant"]``, ``samples["irrelevant"]``) are for plotting.
    """
    from sklearn.metrics import roc_auc_score

    exclude, top_k, max_pairs, bins = check_exclude(exclude), check_k(top_k, "top_k"), \
        check_k(max_pairs, "max_pairs"), check_k(bins, "bins")
    lo, hi = band
    if lo > hi:
        raise ParameterError(f"band must be (low, high) with low <= high, got {band}")
    check_table(table)
    items = items_from_table(table)
    n = len(items)
    total_relevant = _pairs_sharing(items.labels) - _excluded_pairs(items, exclude, items.labels)
    total_pairs = n * (n - 1) // 2 - _excluded_pairs(items, exclude)
    expected = {"relevant": total_relevant, "irrelevant": total_pairs - total_relevant}
    keep_probability = {kind: min(1.0, (max_pairs / 2) / count) if count else 0.0 for kind, count in expected.items()}
    rng = np.random.default_rng(seed)
    edges = np.linspace(-1.0, 1.0, bins + 1)
    stats = {kind: {"count": 0, "sum": 0.0, "sumsq": 0.0, "in_band": 0, "hist": np.zeros(bins, np.int64), "sample": []}
             for kind in expected}
    top_scores = []
    for rows in row_blocks(n, n):
        scores = items.vectors[rows] @ items.vectors.T
        excluded = exclusion_block(items, rows, items, exclude, None)
        upper = np.arange(n)[None, :] > items.rows[rows, None]
        same_label = items.labels[rows, None] == items.labels[None, :]
        for kind, wanted in (("relevant", same_label), ("irrelevant", ~same_label)):
            values = scores[wanted & upper & ~excluded].astype(np.float64)
            bucket = stats[kind]
            bucket["count"] += values.size
            bucket["sum"] += values.sum()
            bucket["sumsq"] += (values ** 2).sum()
            bucket["in_band"] += int(((values >= lo) & (values <= hi)).sum())
            bucket["hist"] += np.bincount(np.clip(((values + 1.0) / 2.0 * bins).astype(np.int64), 0, bins - 1),
                                          minlength=bins)
            bucket["sample"].append(values[rng.random(values.size) < keep_probability[kind]])
        scores[excluded] = -np.inf
        width = min(top_k, n)
        best = -np.partition(-scores, width - 1, axis=1)[:, :width]
        top_scores.append(best[np.isfinite(best)])
    samples = {kind: np.concatenate(bucket["sample"]) for kind, bucket in stats.items()}
    for kind in samples:  # Bernoulli sampling can overshoot by a little; trim to the budget
        if samples[kind].size > max_pairs // 2:
            samples[kind] = rng.choice(samples[kind], size=max_pairs // 2, replace=False)
    top_scores = np.concatenate(top_scores).astype(np.float64)

    def mean_std(bucket: dict) -> tuple[float, float]:
        if bucket["count"] == 0:
            return float("nan"), float("nan")
        mean = bucket["sum"] / bucket["count"]
        return float(mean), float(math.sqrt(max(bucket["sumsq"] / bucket["count"] - mean ** 2, 0.0)))

    relevant_mean, relevant_std = mean_std(stats["relevant"])
    irrelevant_mean, irrelevant_std = mean_std(stats["irrelevant"])
    both = samples["relevant"].size and samples["irrelevant"].size
    auc = float(roc_auc_score(np.r_[np.ones(samples["relevant"].size), np.zeros(samples["irrelevant"].size)],
                              np.r_[samples["relevant"], samples["irrelevant"]])) if both else float("nan")
    densities = [bucket["hist"] / max(bucket["count"], 1) for bucket in stats.values()]
    overlap = float(np.minimum(*densities).sum()) if both else float("nan")
    quantile_levels = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
    all_pairs = stats["relevant"]["count"] + stats["irrelevant"]["count"]
    band_key = f"{lo:.2f}_{hi:.2f}".replace(".", "")

    def quantiles(values: np.ndarray) -> dict[str, float]:
        return {f"{q:g}": float(v) for q, v in zip(quantile_levels, np.quantile(values, quantile_levels))} \
            if values.size else {}

    return {
        "exclude": exclude, "n_items": n, "band": (float(lo), float(hi)),
        "n_relevant_pairs": stats["relevant"]["count"], "n_irrelevant_pairs": stats["irrelevant"]["count"],
        "relevant_mean": relevant_mean, "relevant_std": relevant_std,
        "irrelevant_mean": irrelevant_mean, "irrelevant_std": irrelevant_std,
        "gap": relevant_mean - irrelevant_mean, "auc": auc, "overlap": overlap,
        "auc_sample_pairs": int(samples["relevant"].size + samples["irrelevant"].size),
        "relevant_quantiles": quantiles(samples["relevant"]), "irrelevant_quantiles": quantiles(samples["irrelevant"]),
        f"frac_in_{band_key}": (stats["relevant"]["in_band"] + stats["irrelevant"]["in_band"]) / all_pairs
        if all_pairs else float("nan"),
        f"top{top_k}_frac_in_{band_key}": fraction_in_range(top_scores, lo, hi),
        f"top{top_k}_mean": float(top_scores.mean()) if top_scores.size else float("nan"),
        "histogram": {"edges": edges, "relevant": stats["relevant"]["hist"], "irrelevant": stats["irrelevant"]["hist"]},
        "samples": samples,
    }


def _nearest(table: pd.DataFrame, exclude: str, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Top-k allowed neighbours per clip: indices (-1 where none) and scores (-inf where none)."""
    items = items_from_table(table)
    n = len(items)
    width = min(k, n)
    neighbours = np.full((n, width), -1, dtype=np.int64)
    neighbour_scores = np.full((n, width), -np.inf, dtype=np.float32)
    for rows in row_blocks(n, n):
        scores = items.vectors[rows] @ items.vectors.T
        scores[exclusion_block(items, rows, items, exclude, None)] = -np.inf
        order = top_k_order(scores, width)
        best = np.take_along_axis(scores, order, axis=1)
        neighbours[rows] = np.where(np.isfinite(best), order, -1)
        neighbour_scores[rows] = best
    return neighbours, neighbour_scores


def confusion_top1(table: pd.DataFrame, exclude: str = "group") -> pd.DataFrame:
    """Label x label counts: row = query label, column = label of its nearest allowed neighbour."""
    exclude = check_exclude(exclude)
    check_table(table)
    neighbours, _ = _nearest(table, exclude)
    labels = table["label"].astype(str).to_numpy()
    found = neighbours[:, 0] >= 0
    names = sorted(set(labels))
    matrix = pd.crosstab(pd.Categorical(labels[found], categories=names),
                         pd.Categorical(labels[neighbours[found, 0]], categories=names), dropna=False)
    matrix.index.name, matrix.columns.name = "query label", "top-1 neighbour label"
    return matrix.astype(int)


def confused_examples(table: pd.DataFrame, n: int = 5, exclude: str = "group") -> pd.DataFrame:
    """One query/neighbour clip pair (the highest-scoring) for each of the n most frequent confusions.

    Columns: ``query_label, neighbour_label, cell_count, score`` and ``query_*`` /
    ``neighbour_*`` for ``clip_id, video_path, start_s, end_s`` (for thumbnails).
    """
    n, exclude = check_k(n, "n"), check_exclude(exclude)
    check_table(table)
    neighbours, scores = _nearest(table, exclude)
    frame = table.reset_index(drop=True)
    labels = frame["label"].astype(str).to_numpy()
    query = np.flatnonzero(neighbours[:, 0] >= 0)
    neighbour = neighbours[query, 0]
    pairs = pd.DataFrame({"query": query, "neighbour": neighbour, "score": scores[query, 0].astype(float),
                          "query_label": labels[query], "neighbour_label": labels[neighbour]})
    pairs = pairs[pairs["query_label"] != pairs["neighbour_label"]]
    if pairs.empty:
        return pd.DataFrame(columns=["query_label", "neighbour_label", "cell_count", "score"])
    pairs["cell_count"] = pairs.groupby(["query_label", "neighbour_label"])["score"].transform("size")
    best = (pairs.sort_values(["cell_count", "score", "query_label", "neighbour_label"], ascending=[False, False, True, True])
            .drop_duplicates(["query_label", "neighbour_label"]).head(n))
    detail = [c for c in ("clip_id", "video_path", "start_s", "end_s") if c in frame.columns]
    out = best[["query_label", "neighbour_label", "cell_count", "score"]].reset_index(drop=True)
    for side in ("query", "neighbour"):
        picked = frame.loc[best[side].to_numpy(), detail].reset_index(drop=True)
        out = pd.concat([out, picked.add_prefix(f"{side}_")], axis=1)
    return out


def hubness(table: pd.DataFrame, k: int = 10, exclude: str = "group", n_hubs: int = 10) -> dict[str, Any]:
    """k-occurrence N_k (how often each clip is in others' top k) and its skewness.

    A strongly right-skewed N_k means a few "hub" clips sit in everyone's top k regardless
    of the query, which inflates some classes and hides others. Returns ``k``, ``n_k``
    (Series by clip_id), ``skewness`` (scipy), ``antihub_fraction`` (N_k = 0), ``max_n_k``
    and ``hubs`` (the n_hubs clips with the highest N_k: clip_id, video_path, label, N_k).
    """
    from scipy.stats import skew

    k, n_hubs, exclude = check_k(k), check_k(n_hubs, "n_hubs"), check_exclude(exclude)
    check_table(table)
    neighbours, _ = _nearest(table, exclude, k)
    occurrences = np.bincount(neighbours[neighbours >= 0], minlength=len(table))
    frame = table.reset_index(drop=True)
    n_k = pd.Series(occurrences, index=frame["clip_id"].astype(str).to_numpy(), name="N_k")
    skewness = float(skew(occurrences)) if occurrences.std() > 0 else 0.0
    hubs = (frame[["clip_id", "video_path", "label"]].assign(N_k=occurrences)
            .sort_values(["N_k", "clip_id"], ascending=[False, True]).head(n_hubs).reset_index(drop=True))
    return {"k": k, "exclude": exclude, "n_k": n_k, "skewness": skewness,
            "antihub_fraction": float((occurrences == 0).mean()), "max_n_k": int(occurrences.max()), "hubs": hubs}
