"""Re-ranking on hand-checked cases, and k-reciprocal against a loop transcription of the authors' code."""
from __future__ import annotations

import numpy as np
import pytest

from motionmatch.errors import EncoderMismatchError, ParameterError
from motionmatch.refine.rerank import (Reranker, alpha_query_expansion, database_side_augmentation, k_reciprocal_rerank,
                                _k_reciprocal_pool_distances)
from motionmatch.table import l2_normalize


def unit(degrees: float) -> np.ndarray:
    radians = np.deg2rad(degrees)
    return np.array([np.cos(radians), np.sin(radians)], dtype=np.float32)


def test_alpha_query_expansion_by_hand():
    query = np.array([[1.0, 0.0]], dtype=np.float32)
    gallery = np.array([[0.8, 0.6], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)  # cosines 0.8, 0.6, 0
    expanded = alpha_query_expansion(query, gallery, k=2, alpha=3.0)
    # q + 0.8^3 * g1 + 0.6^3 * g2 = [1 + 0.4096 + 0.1296, 0.3072 + 0.1728] = [1.5392, 0.48]
    expected = np.array([1.5392, 0.48]) / np.hypot(1.5392, 0.48)
    np.testing.assert_allclose(expanded[0], expected, atol=1e-6)
    # alpha = 0 weighs the k neighbours equally: q + g1 + g2
    flat = alpha_query_expansion(query, gallery, k=2, alpha=0.0)
    np.testing.assert_allclose(flat[0], np.array([2.4, 1.4]) / np.hypot(2.4, 1.4), atol=1e-6)
    # excluding g1 makes g2 and g3 the neighbours: q + 0.216 * g2 + 0 * g3
    masked = alpha_query_expansion(query, gallery, k=2, alpha=3.0, exclude_mask=np.array([[True, False, False]]))
    np.testing.assert_allclose(masked[0], np.array([1.1296, 0.1728]) / np.hypot(1.1296, 0.1728), atol=1e-6)


def test_database_side_augmentation_on_three_points():
    gallery = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    augmented = database_side_augmentation(gallery, k=2, alpha=1.0)
    # x1: itself + 0.6 * x2 = [1.36, 0.48, 0]; x2: itself + 0.6 * x1 = [1.2, 0.8, 0];
    # x3: orthogonal to both, its neighbour weighs 0^1 = 0, so it stays.
    np.testing.assert_allclose(augmented[0], np.array([1.36, 0.48, 0]) / np.hypot(1.36, 0.48), atol=1e-6)
    np.testing.assert_allclose(augmented[1], np.array([1.2, 0.8, 0]) / np.hypot(1.2, 0.8), atol=1e-6)
    np.testing.assert_allclose(augmented[2], gallery[2], atol=1e-6)
    np.testing.assert_allclose(database_side_augmentation(gallery, k=1), gallery, atol=1e-6)  # k=1: itself only


def test_k_reciprocal_lifts_a_reciprocal_match_above_a_hub():
    query = unit(0)[None]
    # 0: distractor at 10 deg whose own nearest neighbours are a tight cluster (14-17 deg);
    # 1: true match at -12 deg, whose nearest neighbour is the query.
    gallery = np.stack([unit(angle) for angle in (10, -12, 14, 15, 16, 17)])
    cosine_order = np.argsort(-(gallery @ query[0]))
    assert cosine_order[:2].tolist() == [0, 1]  # cosine puts the distractor first
    # k1=2: query's neighbours {10, -12}; -12's {0, 10} holds the query (reciprocal); 10's {14, 15} does not.
    order, distances = k_reciprocal_rerank(query, gallery, k1=2, k2=1, lambda_value=0.3)
    assert order[0, :2].tolist() == [1, 0]
    assert np.all(np.diff(distances[0]) >= 0)
    # lambda = 1 is the original distance alone: cosine order back
    order_original, _ = k_reciprocal_rerank(query, gallery, k1=2, k2=1, lambda_value=1.0)
    assert order_original[0].tolist() == cosine_order.tolist()


def reference_re_ranking(features: np.ndarray, k1: int, k2: int, lambda_value: float) -> np.ndarray:
    """Loop transcription of the authors' re_ranking (one query = row 0, gallery = the rest)."""
    original = np.clip(2.0 - 2.0 * features @ features.T, 0, None)
    original = (original / original.max(axis=0)).T
    n = len(features)
    rank = np.argsort(original, kind="stable")
    V = np.zeros_like(original)
    for i in range(n):
        forward = rank[i, :k1 + 1]
        reciprocal = forward[np.where(rank[forward, :k1 + 1] == i)[0]]
        expansion = reciprocal
        for candidate in reciprocal:
            half = int(np.around(k1 / 2))
            candidate_forward = rank[candidate, :half + 1]
            candidate_set = candidate_forward[np.where(rank[candidate_forward, :half + 1] == candidate)[0]]
            if len(np.intersect1d(candidate_set, reciprocal)) > 2 / 3 * len(candidate_set):
                expansion = np.append(expansion, candidate_set)
        expansion = np.unique(expansion)
        weight = np.exp(-original[i, expansion])
        V[i, expansion] = weight / weight.sum()
    if k2 != 1:
        V = np.stack([V[rank[i, :k2]].mean(axis=0) for i in range(n)])
    shared = np.minimum(V[0], V).sum(axis=1)
    jaccard = 1 - shared / (2 - shared)
    return ((1 - lambda_value) * jaccard + lambda_value * original[0])[1:]


@pytest.mark.parametrize("n,k1,k2", [(30, 8, 3), (25, 5, 1), (40, 12, 6)])
def test_k_reciprocal_matches_the_reference_loops(n, k1, k2):
    rng = np.random.default_rng(n)
    pools = l2_normalize(rng.normal(size=(2 * n, 6)) + np.repeat(rng.normal(size=(2, 6)), n, axis=0)).reshape(2, n, 6)
    pools = pools.astype(np.float64)
    vectorised = _k_reciprocal_pool_distances(pools, k1, k2, 0.3)
    for pool, distances in zip(pools, vectorised):
        np.testing.assert_allclose(distances, reference_re_ranking(pool, k1, k2, 0.3), atol=1e-9)


def test_reranker_plain_search_matches_cosine_and_reports_timings():
    rng = np.random.default_rng(0)
    gallery = l2_normalize(rng.normal(size=(50, 8)))
    queries = l2_normalize(rng.normal(size=(4, 8)))
    order, scores, timings = Reranker().rerank(queries, gallery, top_k=10)
    np.testing.assert_array_equal(order, np.argsort(-(queries @ gallery.T), axis=1)[:, :10])
    np.testing.assert_allclose(scores, np.sort(queries @ gallery.T, axis=1)[:, ::-1][:, :10], atol=1e-6)
    assert set(timings) == {"dba_ms", "alpha_qe_ms", "search_ms", "k_reciprocal_ms", "total_ms"}
    assert timings["dba_ms"] == timings["alpha_qe_ms"] == timings["k_reciprocal_ms"] == 0.0


def test_reranker_all_stages_timed_and_respect_exclusions():
    rng = np.random.default_rng(1)
    gallery = l2_normalize(rng.normal(size=(60, 8)))
    queries = gallery[:5] + 0.01  # near-duplicates of gallery items 0..4
    exclude = np.zeros((5, 60), dtype=bool)
    exclude[np.arange(5), np.arange(5)] = True  # never return the near-duplicate
    reranker = Reranker(database_augmentation=True, query_expansion=True, k_reciprocal=True, k1=6, k2=3)
    order, scores, timings = reranker.rerank(queries, gallery, top_k=20, exclude_mask=exclude)
    assert order.shape == scores.shape == (5, 20)
    assert not np.take_along_axis(exclude, order, axis=1).any()
    assert np.all(np.diff(scores, axis=1) <= 1e-7)
    assert all(timings[key] > 0 for key in ("dba_ms", "alpha_qe_ms", "search_ms", "k_reciprocal_ms", "total_ms"))
    assert timings["total_ms"] >= timings["k_reciprocal_ms"]


def test_mismatched_inputs_are_refused():
    with pytest.raises(EncoderMismatchError, match="4-d but the gallery is 3-d"):
        Reranker().rerank(np.ones((2, 4)), np.ones((5, 3)))
    with pytest.raises(ParameterError, match="lambda_value"):
        k_reciprocal_rerank(np.ones((1, 3)), np.ones((4, 3)), lambda_value=2.0)
    with pytest.raises(ParameterError, match="exclude_mask"):
        Reranker().rerank(np.ones((2, 3)), np.ones((5, 3)), exclude_mask=np.zeros((2, 4), dtype=bool))
