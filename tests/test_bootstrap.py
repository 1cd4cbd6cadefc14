"""The one bootstrap (motionmatch.metrics.bootstrap), against scipy.stats.bootstrap as the oracle."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from motionmatch.errors import ParameterError
from motionmatch.metrics import bootstrap_ci, bootstrap_means, bootstrap_weights, percentile_interval


def test_bootstrap_ci_matches_scipy():
    values = np.random.default_rng(14).random(300)
    lo, hi = bootstrap_ci(values, n_boot=4000, seed=0)
    reference = stats.bootstrap((values,), np.mean, n_resamples=4000, method="percentile", confidence_level=0.95,
                                rng=np.random.default_rng(0)).confidence_interval
    # two Monte Carlo estimates of the same percentiles: equal up to resampling noise (~1e-3 here)
    assert lo == pytest.approx(reference.low, abs=4e-3) and hi == pytest.approx(reference.high, abs=4e-3)
    assert hi - lo == pytest.approx(reference.high - reference.low, rel=0.1)


def test_weights_for_a_metric_that_is_not_a_mean_match_scipy():
    """A median through the resampling counts (what localisation's µAP and boundary error use)."""
    values = np.random.default_rng(5).exponential(size=81)
    weights = bootstrap_weights(len(values), 3000, seed=1)
    medians = np.array([np.median(np.repeat(values, w.astype(int))) for w in weights])
    ours = percentile_interval(medians, 0.95)
    reference = stats.bootstrap((values,), np.median, n_resamples=3000, confidence_level=0.95,
                                method="percentile", rng=np.random.default_rng(2)).confidence_interval
    assert ours == pytest.approx((reference.low, reference.high), abs=0.06)
    assert ours[0] < np.median(values) < ours[1]


def test_one_set_of_draws_serves_every_metric():
    values = np.random.default_rng(3).random((60, 3))
    means = bootstrap_means(values, 200, seed=4)
    counts = bootstrap_weights(60, 200, seed=4)
    np.testing.assert_allclose(means, counts @ values / 60)  # the same draws, by either route
    assert bootstrap_weights(60, 200, seed=4).sum(axis=1).tolist() == [60.0] * 200


def test_bootstrap_ci_contains_mean_and_narrows():
    rng = np.random.default_rng(4)
    small, large = rng.random(50), rng.random(800)
    lo_small, hi_small = bootstrap_ci(small, n_boot=500)
    lo_large, hi_large = bootstrap_ci(large, n_boot=500)
    assert lo_small < small.mean() < hi_small and lo_large < large.mean() < hi_large
    assert (hi_large - lo_large) < 0.5 * (hi_small - lo_small)
    assert bootstrap_ci(small, seed=1) == bootstrap_ci(small, seed=1)
    assert bootstrap_ci(np.full(10, 0.3)) == pytest.approx((0.3, 0.3))
    assert all(math.isnan(v) for v in bootstrap_ci([]))


def test_bad_settings_are_parameter_errors():
    with pytest.raises(ParameterError, match="n_boot"):
        bootstrap_ci([1.0, 2.0], n_boot=0)
    with pytest.raises(ParameterError, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence=1.5)
