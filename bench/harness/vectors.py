"""Vectors the search benchmarks share: a clustered mixture of unit vectors, exact top-k, recall@k."""
from __future__ import annotations

from typing import Iterator

import numpy as np

K = 10  # recall@K and the top-K searched
N_CLUSTERS = 1000  # mixture components of the synthetic data
LATENT_RANK = 32  # within-cluster variation lives in this many dimensions (plus small noise)
CHUNK_ROWS = 50_000  # vectors generated per chunk (bounds the temporary memory; the data does not depend on it)


class MixtureData:
    """Clustered unit vectors, generated chunk by chunk from fixed seeds (the same data for any chunking), so
    neighbours are meaningful and recall is neither trivially 0 nor 1. Queries are fresh draws, not rows."""

    def __init__(self, dim: int, seed: int = 0, n_clusters: int = N_CLUSTERS, latent_rank: int = LATENT_RANK):
        rng = np.random.default_rng([seed, 0])
        centres = rng.standard_normal((n_clusters, dim), dtype=np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        rank = min(latent_rank, dim)
        basis, _ = np.linalg.qr(rng.standard_normal((dim, rank)).astype(np.float32))
        self.basis = np.ascontiguousarray(basis.T)  # (rank, dim), orthonormal rows
        self.dim, self.seed = dim, seed
        self.latent_scale = 0.5 / np.sqrt(rank)  # within-cluster spread, relative to the unit centre
        self.noise_scale = 0.25 / (np.sqrt(dim / 12.0))  # full-rank uniform noise of norm ~0.25

    def _chunk(self, stream: int, chunk_index: int, rows: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, stream, chunk_index])
        labels = rng.integers(0, len(self.centres), rows)
        latent = rng.standard_normal((rows, self.basis.shape[0]), dtype=np.float32)
        noise = rng.random((rows, self.dim), dtype=np.float32) - np.float32(0.5)
        vectors = self.centres[labels]
        vectors += self.latent_scale * (latent @ self.basis)
        vectors += self.noise_scale * noise
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors

    def vectors(self, n: int) -> np.ndarray:
        """The first ``n`` database vectors, (n, dim) float32, L2-normalised."""
        return np.concatenate([block for _, block in self.chunks(n, rows=max(1, n))]) if n else \
            np.empty((0, self.dim), np.float32)

    def chunks(self, n: int, rows: int = CHUNK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, vectors)`` blocks of ``rows`` of the first ``n`` database vectors (the same vectors for any
        ``rows``), so 1e6 x 1024 float32 need never be held at once."""
        for start in range(0, n, rows):
            stop = min(n, start + rows)
            first = (start // CHUNK_ROWS) * CHUNK_ROWS
            parts = [self._chunk(1, i // CHUNK_ROWS, CHUNK_ROWS)[max(start, i) - i: min(stop, i + CHUNK_ROWS) - i]
                     for i in range(first, stop, CHUNK_ROWS)]
            yield start, np.concatenate(parts)

    def queries(self, n: int) -> np.ndarray:
        """``n`` query vectors from the same mixture, not in the database."""
        return self._chunk(2, 0, n)


def exact_top_k(matrix: np.ndarray, queries: np.ndarray, k: int = K) -> np.ndarray:
    """Indices of the ``k`` highest inner products per query, best first; (n_queries, k)."""
    scores = queries @ matrix.T
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1)


def exact_top_k_single(matrix: np.ndarray, query: np.ndarray, k: int = K) -> np.ndarray:
    """:func:`exact_top_k` for one query vector (the path a single-query latency measures)."""
    scores = matrix @ query
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top])]


def exact_truth(data: MixtureData, n: int, queries: np.ndarray, k: int = K) -> np.ndarray:
    """Exact top-k ids of ``queries`` among the first ``n`` vectors of ``data``, merged over chunks."""
    best_ids = np.empty((len(queries), 0), dtype=np.int64)
    best_scores = np.empty((len(queries), 0), dtype=np.float32)
    for start, block in data.chunks(n, rows=125_000):
        scores = queries @ block.T
        ids = np.broadcast_to(np.arange(start, start + len(block)), scores.shape)
        scores, ids = np.concatenate([best_scores, scores], 1), np.concatenate([best_ids, ids], 1)
        top = np.argpartition(-scores, min(k, scores.shape[1]) - 1, axis=1)[:, :k]
        best_scores, best_ids = np.take_along_axis(scores, top, 1), np.take_along_axis(ids, top, 1)
    order = np.argsort(-best_scores, axis=1)
    return np.take_along_axis(best_ids, order, 1)


def recall_at_k(found, truth: np.ndarray, k: int = K) -> float:
    """Mean over queries of |found top-k ∩ true top-k| / k."""
    hits = [len(set(np.asarray(f)[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth)]
    return float(np.mean(hits) / k)


__all__ = ["K", "MixtureData", "exact_top_k", "exact_top_k_single", "exact_truth", "recall_at_k"]
