"""Fusion that never gets worse where a channel saw nothing: per-pair gates from the clips' coverage.

A channel that can see nothing in a clip (the pose channel, where no person is in view: coverage 0, and a fixed
"no person" vector) must not take part in the score of a pair with such a clip. So for each (query, gallery) pair
a channel is *present* only when both clips have coverage above 0 in that channel's coverage column
(:func:`~motionmatch.beyond.splits.coverage_column`), and fusion renormalises over the channels present:

    fused = (sum over present channels of w_i * s_i) * (sum of all w) / (sum of present w)

so a pair where the pose channel is absent scores exactly as the other channels alone (flow + pose falls back to
flow); a pair where no channel is present is never retrieved (``-inf``). RRF is gated the same way (each present
channel's ``1 / (k + rank)``, ranks among the clips that channel may rank). Channels without a coverage column,
and coverage 1.0 (every encoder but pose), are always present: nothing changes for them.

Milvus cannot weight a pair by both clips' coverage, so :func:`gated_hybrid_search` runs the same rule as two
requests: the gated channel's clips with a person (every channel fused), and the clips without one (the other
channels alone, renormalised); the two lists are merged by score. A hybrid collection stores the gated channel's
coverage in its ``coverage`` scalar field and names the channel in its preprocessing
(:data:`GATED_FIELD_KEY`, written by :func:`~motionmatch.beyond.hybrid_index.index_hybrid`).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..table import clip_coverage
from .splits import coverage_column

GATED_FIELD_KEY = "coverage_gated_field"  # preprocessing key of a hybrid collection: the vector field it gates
MIN_COVERAGE = 1e-6  # a clip's coverage is a share of its frames, so any person gives at least 1/frames >> this


def field_gate(column: str, query_table: pd.DataFrame, gallery_table: pd.DataFrame) -> np.ndarray | None:
    """(n_q, n_g) bool: pairs where the channel of vector ``column`` is present (both clips have coverage > 0);
    None when it is present everywhere (no coverage column, or no clip with coverage 0)."""
    name = coverage_column(column)
    if name not in query_table.columns or name not in gallery_table.columns:
        return None
    query, gallery = clip_coverage(query_table, name) > 0, clip_coverage(gallery_table, name) > 0
    if query.all() and gallery.all():
        return None
    return query[:, None] & gallery[None, :]


def field_gates(columns: Sequence[str], query_table: pd.DataFrame, gallery_table: pd.DataFrame) -> list:
    """:func:`field_gate` of every channel, in order."""
    return [field_gate(column, query_table, gallery_table) for column in columns]


def gated_weighted(per_field: Sequence[np.ndarray], weights: Sequence[float], gates: Sequence,
                   mask: np.ndarray) -> np.ndarray:
    """Weighted sum of the channels' scores, renormalised over the channels present in each pair; ``-inf`` where
    ``mask`` excludes the pair or no channel is present. Without gates this is the plain weighted sum."""
    total = float(sum(weights))
    numerator = np.zeros(per_field[0].shape, dtype=np.float64)
    present_weight = np.zeros(per_field[0].shape, dtype=np.float64)
    n_present = np.zeros(per_field[0].shape, dtype=np.int64)
    presents = [np.ones(scores.shape, dtype=bool) if gate is None else gate for scores, gate in zip(per_field, gates)]
    for weight, scores, present in zip(weights, per_field, presents):
        numerator += weight * np.where(mask | ~present, 0.0, scores)
        present_weight += weight * present
        n_present += present
    # renormalise only where a channel is absent, so ungated pairs keep the plain sum bit for bit
    scale = np.where(present_weight == total, 1.0, total / np.maximum(present_weight, 1e-300))
    fused = numerator * scale
    for scores, present in zip(per_field, presents):  # one channel left: exactly its score (times the weights' sum)
        fused = np.where(present & (n_present == 1), scores * total, fused)
    return np.where(mask | (present_weight <= 0), -np.inf, fused)


def gated_rrf(per_field: Sequence[np.ndarray], rrf_k: int, gates: Sequence, mask: np.ndarray) -> np.ndarray:
    """Reciprocal rank fusion over the channels present in each pair (ranks 1-based among each channel's allowed
    clips), renormalised to the number of channels; ``-inf`` where ``mask`` excludes the pair or none is present."""
    fused = np.zeros(per_field[0].shape, dtype=np.float64)
    count = np.zeros(per_field[0].shape, dtype=np.float64)
    rows = np.arange(len(fused))[:, None]
    for scores, gate in zip(per_field, gates):
        present = np.ones(scores.shape, dtype=bool) if gate is None else gate
        order = np.argsort(-np.where(present, scores, -np.inf), axis=1, kind="stable")
        ranks = np.empty_like(order)
        ranks[rows, order] = np.arange(1, order.shape[1] + 1)
        fused += np.where(present, 1.0 / (rrf_k + ranks), 0.0)
        count += present
    n_fields = len(per_field)
    fused = np.where(count == n_fields, fused, fused * n_fields / np.maximum(count, 1))
    return np.where(mask | (count <= 0), -np.inf, fused)


def gated_field(table: pd.DataFrame, field_columns: Mapping[str, str]) -> str:
    """The vector field a hybrid collection gates: the extra channel whose coverage column reports less than full
    coverage somewhere ('' when none does). ``field_columns``: Milvus field -> table column. The main embedding (and
    a head on it) is never gated: clips where *it* saw nothing are left out of the table before indexing
    (:func:`motionmatch.evaluation.rankable`). More than one gated channel is refused."""
    gated = [field for field, column in field_columns.items() if column != "embedding"
             and coverage_column(column) in table.columns and (clip_coverage(table, coverage_column(column)) < 1).any()]
    if len(gated) > 1:
        raise ParameterError(f"fields {gated} all report coverage below 1; a hybrid collection stores one coverage "
                             "field, so it gates one channel: index the others in a collection of their own")
    return gated[0] if gated else ""


def gated_hybrid_search(store, vectors_by_field: Mapping[str, np.ndarray], query_coverage: np.ndarray, k: int,
                        weights: Sequence[float], gated: str, filters: Mapping | None = None,
                        candidate_k: int | None = None) -> list:
    """Weighted hybrid search with the ``gated`` field present only for pairs where both clips have coverage > 0.

    ``query_coverage``: (n,) the queries' coverage in the gated channel. Queries with a person: every field fused
    over the gallery clips with a person, merged with the other fields alone (weights renormalised) over the clips
    without; queries without a person: the other fields alone over every clip. Returns one list of hits per query,
    best first, like :meth:`~motionmatch.index.MotionStore.hybrid_search`.
    """
    names = list(vectors_by_field)
    weights = [float(w) for w in weights]
    if gated not in names:
        raise ParameterError(f"gated field {gated!r} is not among the searched fields {names}")
    if len(names) < 2:
        raise ParameterError("gated hybrid search needs the gated field and at least one other")
    others = [name for name in names if name != gated]
    total = sum(weights)
    other_weights = [w for name, w in zip(names, weights) if name != gated]
    rescaled = [w * total / sum(other_weights) for w in other_weights]
    query_coverage = np.asarray(query_coverage, dtype=np.float64).reshape(-1)
    n_queries = len(next(iter(vectors_by_field.values())))
    if len(query_coverage) != n_queries:
        raise ParameterError(f"query_coverage has {len(query_coverage)} values for {n_queries} queries")
    base = dict(filters or {})
    if "coverage" in base:
        raise ParameterError("the coverage filter is set by the gated search itself; drop it from filters")

    def others_search(rows: np.ndarray, coverage_range) -> list:
        where = {**base, **({"coverage": coverage_range} if coverage_range else {})}
        if len(others) == 1:  # one channel left: its cosine times the renormalised weight (= its cosine)
            hits = store.search(np.asarray(vectors_by_field[others[0]])[rows], k=k, filters=where or None,
                                anns_field=others[0])
            for per_query in hits:
                for hit in per_query:
                    hit.score *= rescaled[0]
            return hits
        return store.hybrid_search({name: np.asarray(vectors_by_field[name])[rows] for name in others}, k=k,
                                   ranker="weighted", weights=rescaled, filters=where or None, candidate_k=candidate_k)

    results: list = [[] for _ in range(n_queries)]
    with_person = np.flatnonzero(query_coverage > 0)
    without = np.flatnonzero(query_coverage <= 0)
    if len(without):
        for i, hits in zip(without, others_search(without, None)):
            results[i] = hits
    if len(with_person):
        fused = store.hybrid_search({name: np.asarray(vectors_by_field[name])[with_person] for name in names}, k=k,
                                    ranker="weighted", weights=weights, candidate_k=candidate_k,
                                    filters={**base, "coverage": (MIN_COVERAGE, None)})
        alone = others_search(with_person, (None, 0.0))
        for i, a, b in zip(with_person, fused, alone):
            results[i] = sorted([*a, *b], key=lambda hit: -hit.score)[:k]
    return results


__all__ = ["GATED_FIELD_KEY", "MIN_COVERAGE", "field_gate", "field_gates", "gated_weighted", "gated_rrf",
           "gated_field", "gated_hybrid_search"]
