"""Hybrid search of a MotionStore: several vector fields searched at once, their rankings fused in Milvus.

:class:`HybridSearch` is mixed into :class:`~motionmatch.index.store.MotionStore`, which provides the checks and
calls it uses (``_check_k``, ``_vector_fields``, ``_query_matrix``, ``_exclusions``, ``content_filter``, ``_ready``,
``_search_params``, ``_call``). Milvus 2.4+ only: the C++ standalone 2.3.5 has no HybridSearch RPC.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ParameterError
from ..validation import check_choice, check_scalar
from .connection import require_multi_vector
from .filters import and_expressions, build_filter
from .schema import HIT_FIELDS, MAX_TOPK, Hit, hits_from_results


class HybridSearch:
    """``hybrid_search`` for a MotionStore."""

    def hybrid_search(self, vectors_by_field: Mapping[str, np.ndarray], k: int = 10, ranker: str = "rrf",
                      weights: Sequence[float] | None = None, rrf_k: int = 60, filters: Mapping[str, Any] | None = None,
                      candidate_k: int | None = None, exclude_video: str | None = None) -> list[list[Hit]]:
        """Search several vector fields at once and fuse the rankings (``rrf`` or ``weighted``).

        Each field returns ``candidate_k`` candidates (default ``max(4k, 50)``); RRF scores are
        ``sum 1/(rrf_k + rank)``, weighted scores are the weighted sum of cosines. A pose collection never returns
        clips with no person (:meth:`content_filter`).
        """
        from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker

        k = self._check_k(k)
        if not vectors_by_field:
            raise ParameterError("vectors_by_field is empty; give at least one {field: query vectors}")
        candidate_k = self._check_k(candidate_k if candidate_k is not None else min(MAX_TOPK, max(4 * k, 50)), "candidate_k")
        if candidate_k < k:
            raise ParameterError(f"candidate_k ({candidate_k}) must be at least k ({k})")
        dims = self._vector_fields()
        matrices = {field: self._query_matrix(v, field, dims) for field, v in vectors_by_field.items()}
        counts = {field: len(m) for field, m in matrices.items()}
        if len(set(counts.values())) != 1:
            raise ParameterError(f"every field needs the same number of query vectors, got {counts}")
        ranker = check_choice(str(ranker).lower(), "ranker", ("rrf", "weighted"))
        if ranker == "rrf":
            fuser = RRFRanker(check_scalar(rrf_k, "rrf_k (60 is usual)", int, min_value=1))
        else:
            weights = [1.0 / len(matrices)] * len(matrices) if weights is None else list(weights)
            if len(weights) != len(matrices):
                raise ParameterError(f"weights must be {len(matrices)} non-negative numbers, one per field "
                                     f"({', '.join(matrices)}), got {weights!r}")
            fuser = WeightedRanker(*[check_scalar(w, f"weights[{field!r}]", float, min_value=0)
                                     for field, w in zip(matrices, weights)], norm_score=False)
        expression = and_expressions(build_filter(filters), self._exclusions(exclude_video, 1)[0] if exclude_video else "",
                                     self.content_filter())
        self._ready()
        require_multi_vector(self, "hybrid search")  # Milvus 2.3 has no HybridSearch RPC
        requests = [AnnSearchRequest(data=m.tolist(), anns_field=field, param=self._search_params(field, candidate_k),
                                     limit=candidate_k, expr=expression or None) for field, m in matrices.items()]
        raw = self._call("hybrid search", "hybrid_search", self.collection, reqs=requests, ranker=fuser, limit=k,
                         output_fields=HIT_FIELDS)
        return hits_from_results(raw)
