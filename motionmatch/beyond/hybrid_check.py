"""Does real Milvus hybrid search reproduce the numpy fusion? The check behind notebook 06's hybrid section."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..refine.calibrate import ScoreCalibration
from ..evaluation.retrieval import exclusion_mask
from ..errors import ParameterError
from .gating import gated_hybrid_search
from .hybrid_index import (arrays_equal, field_encoder_id, fields_artifacts, hybrid_field_names, index_hybrid,
                           load_transforms)
from .methods import RRF_K, FitCache, FittedMethod, FittedVectors, MethodSpec, VectorSpec, head_config
from ..refine.heads import TrainedHead
from .splits import PROTOCOLS, coverage_column, protocol_pairs
from ..table import clip_coverage, table_encoder_id
from ..validation import check_scalar

SCORE_TOLERANCE = 1e-5  # Milvus computes in float32: fused scores agree with numpy's to about 1e-6


@dataclass
class HybridCheckResult:
    """Milvus hybrid search against the numpy fusion, on the test groups."""

    table: pd.DataFrame  # one row per (ranker, protocol): P@k numpy, P@k Milvus, top-k agreement, ms/query
    round_trip: dict[str, Any]  # what was stored with the collection and whether it came back identical
    weights: tuple[float, ...]
    fields: dict[str, int]
    collection: str
    uri: str
    n_queries_checked: int = 0  # test clips used as queries (all, or the seeded sample of max_queries)
    n_test_clips: int = 0  # the gallery: every test clip is indexed
    gated: str = ""  # the vector field gated by coverage ('' when none: motionmatch.beyond.gating)
    notes: list = field(default_factory=list)  # what the check could not compare, and why


def milvus_hybrid_check(fit_table: pd.DataFrame, test_table: pd.DataFrame, store_uri: str,
                        spec: MethodSpec | None = None, fitted: Sequence[FittedVectors] | None = None,
                        collection: str = "motionmatch_beyond_hybrid", k: int = 10, exclude: str = "group",
                        rrf_k: int = RRF_K, preprocessing: Mapping[str, Any] | None = None,
                        max_epochs: int = 50, seed: int = 0, max_queries: int | None = None) -> HybridCheckResult:
    """Index the test table with several vector fields in Milvus and run RRF and weighted hybrid search.

    ``spec`` names the fields and weights (default: raw + a triplet head, weights 0.5/0.5);
    ``fitted`` reuses representations already fitted on ``fit_table`` (e.g. from a
    :class:`ComparisonResult`), otherwise they are fitted here. The calibration and the head are
    stored with the collection and *reloaded from it* to embed the queries. For every protocol pair
    the queries ask Milvus for k + (most items any query must skip) hits with a ``domain`` filter,
    then drop their own clip / video / group client-side and keep k.

    The fields get exact (FLAT) indexes here, so that differences come from the fusion alone.
    Weighted fusion is a sum of per-item cosines, so with every gallery item among each field's
    candidates it matches the numpy fusion exactly (up to float rounding and ties). RRF scores tie
    often (ranks (1, 3) and (3, 1) fuse to the same value) and Milvus orders ties its own way, so
    the table also compares the top-k *scores* ("same top-k scores (ties either way)"). RRF ranks
    differ by design in same-domain: Milvus ranks each field with the query's own group still
    present (it is dropped afterwards), the numpy fusion ranks as if it were absent.

    ``max_queries``: check a seeded sample (``seed``) of that many test clips as queries instead of
    all of them; the gallery is always every test clip. Each Milvus query fetches every gallery item
    per field, so the cost grows with queries x gallery: the notebook samples, the tests check all.

    A channel gated by coverage (the pose channel; :mod:`motionmatch.beyond.gating`) is searched with
    :func:`~motionmatch.beyond.gating.gated_hybrid_search`, weighted only: RRF's per-pair gate has no Milvus
    equivalent, so its rows are left out and ``notes`` says so.
    """
    from ..index.store import MAX_TOPK, MotionStore

    if max_queries is not None:
        check_scalar(max_queries, "max_queries", int, min_value=1)
    if max_queries is None or max_queries >= len(test_table):
        sampled = np.ones(len(test_table), dtype=bool)
    else:
        sampled = np.zeros(len(test_table), dtype=bool)
        sampled[np.random.default_rng(seed).choice(len(test_table), max_queries, replace=False)] = True

    if spec is None:
        spec = MethodSpec((VectorSpec("raw"), VectorSpec("head", head=head_config("triplet", max_epochs, seed))),
                          fusion="weighted", weights=(0.5, 0.5))
    if len(spec.fields) < 2 or spec.reranker is not None:
        raise ParameterError(f"milvus_hybrid_check needs a fusion of >= 2 fields without re-ranking, got {spec.label}")
    weights = tuple(spec.weights) if spec.weights is not None else tuple([1.0 / len(spec.fields)] * len(spec.fields))
    if fitted is None:
        cache = FitCache(fit_table)
        fitted = [cache.get(s) for s in spec.fields]
    fitted = list(fitted)
    if [f.spec for f in fitted] != list(spec.fields):
        raise ParameterError("fitted representations do not match spec.fields; pass the ones fitted for this spec")
    names = hybrid_field_names(spec.fields)
    encoder_id = table_encoder_id(test_table)
    preprocessing = dict(preprocessing or {"base_encoder": encoder_id, "hybrid_fields": [s.label for s in spec.fields]})

    with MotionStore(store_uri, collection) as store:
        # exact (FLAT) indexes, so that the comparison measures the fusion, not the ANN index's recall
        stored = index_hybrid(test_table, store, fitted, preprocessing, recreate=True, index_type="FLAT")
    # reopen: the query side knows only the URI and the collection
    with MotionStore(store_uri, collection) as store:
        calibration, head = load_transforms(store, expected_encoder_id=encoder_id)
        info = store.encoder_info()
        original_calibration, original_head = fields_artifacts(fitted)
        reloaded = [FittedVectors(f.spec, calibration if isinstance(f.artifact, ScoreCalibration)
                                  else head if isinstance(f.artifact, TrainedHead) else None) for f in fitted]
        query_vectors_original = {n: f.transform(test_table) for n, f in zip(names, fitted)}
        query_vectors = {n: f.transform(test_table) for n, f in zip(names, reloaded)}
        round_trip = {
            "arrays_stored": stored["arrays"],
            "collection_encoder_id": info["encoder_id"],
            "calibration_arrays_equal": None if original_calibration is None else
            arrays_equal(original_calibration.to_arrays(), calibration.to_arrays()),
            "head_arrays_equal": None if original_head is None else
            arrays_equal(original_head.to_arrays(), head.to_arrays()),
            "encoder_id_matches": info["encoder_id"] == field_encoder_id(reloaded[0], test_table),
            "max_query_vector_difference": float(max(np.abs(query_vectors[n] - query_vectors_original[n]).max()
                                                     for n in names)),
        }
        numpy_methods = {"rrf": replace(spec, fusion="rrf", weights=None, rrf_k=rrf_k),
                         "weighted": replace(spec, fusion="weighted", weights=weights)}
        gated, notes = stored["gated"], []
        if gated:
            numpy_methods.pop("rrf")
            notes.append(f"field '{gated}' is gated by coverage: RRF has no per-pair gate on Milvus, so only the "
                         "weighted fusion is compared (two requests per query: clips with and without a person)")
            gated_column = coverage_column(fitted[names.index(gated)].spec.column)
            query_coverage = clip_coverage(test_table, gated_column)
        rows = []
        for ranker, method in numpy_methods.items():
            fitted_method = FittedMethod(method, reloaded)
            for protocol in PROTOCOLS:
                numpy_p, milvus_p, same_top, same_scores, overlap, milvus_ms, n_q = [], [], [], [], [], 0.0, 0
                for pair in (p for p in protocol_pairs(test_table) if p.protocol == protocol):
                    pair = replace(pair, query_rows=pair.query_rows[sampled[pair.query_rows]])
                    if len(pair.query_rows) == 0:
                        continue
                    queries, gallery = test_table.iloc[pair.query_rows], test_table.iloc[pair.gallery_rows]
                    mask = exclusion_mask(queries, gallery, exclude)
                    scores, _ = fitted_method.score(queries, gallery, exclude)
                    gallery_ids = gallery["clip_id"].astype(str).to_numpy()
                    limit = min(MAX_TOPK, k + int(mask.sum(axis=1).max()))
                    started = time.perf_counter()
                    candidates = min(MAX_TOPK, max(limit, len(gallery)))
                    if gated:
                        hits = gated_hybrid_search(store, {n: query_vectors[n][pair.query_rows] for n in names},
                                                   query_coverage[pair.query_rows], k=limit, weights=weights,
                                                   gated=gated, filters={"domain": pair.gallery_domain},
                                                   candidate_k=candidates)
                    else:
                        hits = store.hybrid_search({n: query_vectors[n][pair.query_rows] for n in names}, k=limit,
                                                   ranker=ranker, weights=list(weights) if ranker == "weighted"
                                                   else None, rrf_k=rrf_k, filters={"domain": pair.gallery_domain},
                                                   candidate_k=candidates)
                    milvus_ms += (time.perf_counter() - started) * 1e3
                    position = {clip: i for i, clip in enumerate(gallery_ids)}
                    labels = gallery["label"].astype(str).to_numpy()
                    for qi, query_hits in enumerate(hits):
                        kept = [h for h in query_hits if not mask[qi, position[h.clip_id]]][:k]
                        allowed = [position[h.clip_id] for h in kept]
                        numpy_top = [j for j in np.argsort(-scores[qi], kind="stable")[:k] if np.isfinite(scores[qi, j])]
                        query_label = str(queries["label"].iloc[qi])
                        if not ((labels == query_label) & ~mask[qi]).any():
                            continue  # nothing relevant to find: left out, as in the evaluation
                        milvus_p.append(sum(labels[j] == query_label for j in allowed) / k)
                        numpy_p.append(sum(labels[j] == query_label for j in numpy_top) / k)
                        same_top.append(allowed == numpy_top)
                        same_scores.append(len(kept) == len(numpy_top) and np.allclose(
                            [h.score for h in kept], scores[qi, numpy_top], rtol=0, atol=SCORE_TOLERANCE))
                        overlap.append(len(set(allowed) & set(numpy_top)) / k)
                    n_q += len(queries)
                rows.append({"ranker": ranker, "protocol": protocol, f"numpy P@{k}": _mean(numpy_p),
                             f"Milvus P@{k}": _mean(milvus_p), "identical top-k lists": _mean(same_top),
                             "same top-k scores (ties either way)": _mean(same_scores),
                             "top-k overlap": _mean(overlap), "Milvus ms/query": milvus_ms / max(n_q, 1),
                             "queries": len(numpy_p)})
    return HybridCheckResult(table=pd.DataFrame(rows).set_index(["ranker", "protocol"]), round_trip=round_trip,
                             weights=weights, fields=stored["fields"], collection=collection, uri=str(store_uri),
                             n_queries_checked=int(sampled.sum()), n_test_clips=len(test_table), gated=gated,
                             notes=notes)



def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")
