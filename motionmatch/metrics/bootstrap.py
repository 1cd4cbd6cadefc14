"""The one bootstrap: percentile confidence intervals over queries, for every metric of the package.

Resampling draws ``n`` of ``n`` queries with replacement, ``n_boot`` times; one draw is a row of counts (how
often each query is drawn), so a mean of per-query values is ``counts @ values / n`` and a metric that is not a
mean (µAP, a median) takes the counts as weights. Retrieval (:mod:`motionmatch.evaluation.retrieval`) and
localisation (:mod:`motionmatch.metrics.localization`) both draw here, with one seed rule, so their intervals are
comparable and one test covers the resampler (``tests/test_bootstrap.py``, against ``scipy.stats.bootstrap``).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ..validation import check_scalar

DEFAULT_N_BOOT = 1000  # resamples
DEFAULT_CONFIDENCE = 0.95
CHUNK_ELEMENTS = 4_000_000  # counts held at once (resamples x queries): memory stays bounded


def check_bootstrap(n_boot: int, confidence: float, allow_zero: bool = False) -> tuple[int, float]:
    """``n_boot`` (>= 1, or >= 0 with ``allow_zero``: no interval) and ``confidence`` in (0, 1), checked."""
    n_boot = check_scalar(n_boot, "n_boot", int, min_value=0 if allow_zero else 1)
    confidence = check_scalar(confidence, "confidence", float, min_value=0, max_value=1, include_min=False,
                              include_max=False)
    return n_boot, confidence


def resample_counts(n_items: int, n_boot: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Blocks of ``(size, n_items)`` counts, ``n_boot`` rows in all: how often each item is drawn per resample."""
    rng = np.random.default_rng(seed)
    batch = max(1, min(n_boot, CHUNK_ELEMENTS // max(n_items, 1)))
    for start in range(0, n_boot, batch):
        size = min(batch, n_boot - start)
        picks = rng.integers(0, n_items, size=(size, n_items)) + (np.arange(size) * n_items)[:, None]
        yield np.bincount(picks.ravel(), minlength=size * n_items).reshape(size, n_items).astype(float)


def bootstrap_weights(n_items: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """All ``(n_boot, n_items)`` counts at once (for metrics that are not means and take them as weights)."""
    blocks = list(resample_counts(n_items, n_boot, seed))
    return np.concatenate(blocks) if blocks else np.zeros((0, n_items))


def bootstrap_means(values: np.ndarray, n_boot: int, seed: int = 0) -> np.ndarray:
    """``(n_boot, n_metrics)`` means of resampled rows of ``values`` ``(n, n_metrics)``; one set of draws for all."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    return np.concatenate([counts @ values / n for counts in resample_counts(n, n_boot, seed)])


def percentile_interval(replicates: np.ndarray, confidence: float = DEFAULT_CONFIDENCE,
                        axis: int | None = None) -> tuple:
    """Percentile interval of bootstrap replicates (NaN replicates dropped when ``axis`` is None)."""
    replicates = np.asarray(replicates, dtype=float)
    bounds = [(1 - confidence) / 2, 1 - (1 - confidence) / 2]
    if axis is not None:
        lows, highs = np.quantile(replicates, bounds, axis=axis)
        return lows, highs
    replicates = replicates[~np.isnan(replicates)]
    if replicates.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(replicates, bounds)
    return float(low), float(high)


def bootstrap_ci(values: np.ndarray, n_boot: int = DEFAULT_N_BOOT, seed: int = 0,
                 confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (NaNs dropped)."""
    n_boot, confidence = check_bootstrap(n_boot, confidence)
    values = np.asarray(values, dtype=float).ravel()
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    return percentile_interval(bootstrap_means(values[:, None], n_boot, seed)[:, 0], confidence)


__all__ = ["DEFAULT_N_BOOT", "DEFAULT_CONFIDENCE", "check_bootstrap", "resample_counts", "bootstrap_weights",
           "bootstrap_means", "percentile_interval", "bootstrap_ci"]
