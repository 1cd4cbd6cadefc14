"""Retrieval evaluation a reviewer can trust: exact cosine search in numpy, clear protocols and
bootstrap confidence intervals — the one evaluation engine.

The original notes report same-domain P@10 0.65, cross-domain P@10 0.25, and "most scores
cluster at 0.95-0.98". The first two claims are measured here: :func:`evaluate_retrieval` /
:func:`same_vs_cross_domain` (P@10 per domain pair, with CIs) and :func:`exclusion_comparison`
(how much near-duplicate leakage inflates the numbers). The score claims (bunching, separability,
confusion, hubness) are in :mod:`motionmatch.evaluation.diagnostics`, which uses this module's blocked exact
search (``Items``, ``exclusion_block``, ``row_blocks``).

Search is exact (a dense matrix product over L2-normalised vectors, computed in blocks of
queries), so Milvus is not needed and nothing here is approximate.

Metrics: the pure functions of :mod:`motionmatch.metrics.ranking` (P@k, Recall@k, HitRate@k, nDCG@k,
mAP; see there for their definitions). This module adds the protocols on top of them: who may
retrieve whom, which gallery, and the bootstrap over queries. :func:`evaluate_scores` is the one
engine for any score matrix (a calibrated, fused or re-ranked method's): the comparison of
:mod:`motionmatch.beyond.compare`, the head's early stopping and the notebooks all call it.

Queries whose gallery holds no relevant item (after exclusion) are left out of every mean:
their AP, recall and nDCG are undefined, and counting them as zeros would mix "the model
failed" with "there was nothing to find". Each result reports how many were left out
(``n_queries_without_relevant``).

Exclusion (what a query may not retrieve)

* ``"none"``  only the query clip itself. Not a valid protocol: other clips of the same video
  are trivial matches. It is there to show how inflated such numbers are.
* ``"video"`` every clip of the query's own video (``video_path``).
* ``"group"`` the own video and every video of the query's group (same source video, actor
  or scene, e.g. UCF101's ``gNN`` groups). This is the honest default.

Group ids are compared as strings across the whole table (domains included); a blank group
means "the video is its own group".
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..metrics.bootstrap import (DEFAULT_CONFIDENCE, bootstrap_ci, bootstrap_means, check_bootstrap,
                                 percentile_interval)
from ..metrics.ranking import check_k, metric_names, rank_relevance, ranking_metrics
from ..table import effective_groups, embedding_matrix, jsonable, require_columns
from ..validation import check_choice

DEFAULT_KS = (1, 5, 10, 20)
EXCLUDE_CHOICES = ("group", "video", "none")
PROTOCOLS = ("leave-one-out", "same-domain", "cross-domain", "train-test")
LEVELS = ("clip", "video")
TABLE_COLUMNS_NEEDED = ("clip_id", "video_path", "label", "domain", "group", "embedding")
CHUNK_ELEMENTS = 4_000_000  # query x gallery scores held at once (16 MB of float32 per block)


# ----------------------------------------------------------------------------- validation
def _check_ks(ks: Any) -> tuple[int, ...]:
    if isinstance(ks, (int, np.integer)):
        ks = (ks,)
    ks = tuple(ks)
    if not ks:
        raise ParameterError("ks is empty; pass positive ranks such as ks=(1, 5, 10)")
    return tuple(sorted({check_k(k, "every k in ks") for k in ks}))


def check_exclude(exclude: str) -> str:
    return check_choice(exclude, "exclude", EXCLUDE_CHOICES)


def check_table(table: pd.DataFrame, extra: Sequence[str] = ()) -> None:
    require_columns(table, (*TABLE_COLUMNS_NEEDED, *extra))
    if len(table) == 0:
        raise ParameterError("embeddings table is empty — run `motionmatch extract` on a folder with videos first")


def _as_unit_vectors(vectors: Any, name: str) -> np.ndarray:
    """float32 (n, d) rows scaled to unit length (cosine = dot product)."""
    try:
        array = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise ParameterError(f"{name}: vectors must all have the same length ({err})") from None
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ParameterError(f"{name} must be a non-empty 2-D array (n, dim), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ParameterError(f"{name} holds NaN or infinite values — re-extract the affected clips")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ParameterError(f"{name} holds {(norms == 0).sum()} all-zero vector(s); cosine is undefined for them")
    return array / norms


# ----------------------------------------------------------------------------- exact search
def row_blocks(n_rows: int, n_cols: int) -> Iterator[slice]:
    step = max(1, CHUNK_ELEMENTS // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


@dataclass
class Items:
    """Vectors and integer-coded keys of the queries or the gallery (codes shared by both sides)."""
    vectors: np.ndarray
    rows: np.ndarray  # position in the source table (self-exclusion)
    labels: np.ndarray
    videos: np.ndarray
    groups: np.ndarray
    domains: np.ndarray

    def take(self, index: np.ndarray) -> "Items":
        return Items(*(getattr(self, name)[index] for name in ("vectors", "rows", "labels", "videos", "groups", "domains")))

    def __len__(self) -> int:
        return len(self.rows)


def items_from_table(table: pd.DataFrame) -> Items:
    video = table["video_path"].astype(str).to_numpy()
    return Items(vectors=_as_unit_vectors(embedding_matrix(table), "embedding column"), rows=np.arange(len(table)),
                  labels=pd.factorize(table["label"].astype(str))[0], videos=pd.factorize(video)[0],
                  groups=pd.factorize(effective_groups(table))[0], domains=pd.factorize(table["domain"].astype(str))[0])


def exclusion_block(queries: Items, block: slice, gallery: Items, exclude: str, domain_rule: str | None) -> np.ndarray:
    """Boolean (block, n_gallery) mask of items the queries in ``block`` may not retrieve."""
    mask = queries.rows[block, None] == gallery.rows[None, :]
    if exclude in ("video", "group"):
        mask |= queries.videos[block, None] == gallery.videos[None, :]
    if exclude == "group":
        mask |= queries.groups[block, None] == gallery.groups[None, :]
    if domain_rule == "same":
        mask |= queries.domains[block, None] != gallery.domains[None, :]
    elif domain_rule == "other":
        mask |= queries.domains[block, None] == gallery.domains[None, :]
    return mask


def _rank_and_score(queries: Items, gallery: Items, exclude: str, ks: Sequence[int],
                    domain_rule: str | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every metric for every query, from full exact rankings computed block by block."""
    metrics = {name: np.full(len(queries), np.nan) for name in metric_names(ks)}
    n_relevant = np.zeros(len(queries), dtype=np.int64)
    if len(gallery) == 0:
        return metrics, n_relevant
    for rows in row_blocks(len(queries), len(gallery)):
        scores = queries.vectors[rows] @ gallery.vectors.T
        excluded = exclusion_block(queries, rows, gallery, exclude, domain_rule)
        ranked, n_relevant[rows] = rank_relevance(scores, gallery.labels[None, :] == queries.labels[rows, None], excluded)
        for name, values in ranking_metrics(ranked, n_relevant[rows], ks).items():
            metrics[name][rows] = values
    return metrics, n_relevant


# ----------------------------------------------------------------------------- summaries
def _summary_row(frame: pd.DataFrame, metrics: Sequence[str], n_boot: int, seed: int, confidence: float) -> dict[str, float]:
    row: dict[str, float] = {"n_queries": len(frame)}
    if len(frame) == 0:
        for name in metrics:
            row.update({name: np.nan, f"{name}_lo": np.nan, f"{name}_hi": np.nan})
        return row
    values = frame[list(metrics)].to_numpy(dtype=float)
    lows, highs = percentile_interval(bootstrap_means(values, n_boot, seed), confidence, axis=0)
    for i, name in enumerate(metrics):
        row.update({name: float(values[:, i].mean()), f"{name}_lo": float(lows[i]), f"{name}_hi": float(highs[i])})
    return row


# ----------------------------------------------------------------------------- results
@dataclass
class RetrievalResult:
    """Per-query metrics and their summary (mean with a percentile-bootstrap CI per metric).

    ``summary`` has one row (index ``"all"``) with ``n_queries`` and, per metric, columns
    ``M``, ``M_lo``, ``M_hi`` (the form :func:`motionmatch.report.plots.metric_bars` reads).
    """
    protocol: str
    per_query: pd.DataFrame
    summary: pd.DataFrame
    metrics: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    n_queries_without_relevant: int = 0

    def metric(self, name: str) -> float:
        """The mean of one metric, e.g. ``result.metric("P@10")``."""
        if name not in self.metrics:
            raise ParameterError(f"no metric {name!r}; available: {self.metrics}")
        return float(self.summary.loc["all", name])


def _result(protocol: str, queries: pd.DataFrame, metrics: dict[str, np.ndarray], n_relevant: np.ndarray,
            params: dict[str, Any], n_boot: int, seed: int, confidence: float) -> RetrievalResult:
    per_query = queries.reset_index(drop=True).assign(n_relevant=n_relevant, **metrics)
    has_relevant = n_relevant > 0
    per_query = per_query[has_relevant].reset_index(drop=True)
    names = list(metrics)
    summary = pd.DataFrame([_summary_row(per_query, names, n_boot, seed, confidence)], index=pd.Index(["all"], name="scope"))
    return RetrievalResult(protocol, per_query, summary, names, dict(params, n_boot=n_boot, seed=seed, confidence=confidence),
                           int((~has_relevant).sum()))


def _query_frame(table: pd.DataFrame, id_column: str = "clip_id") -> pd.DataFrame:
    return pd.DataFrame({"query_id": table[id_column].astype(str).to_numpy(),
                         "video_path": table["video_path"].astype(str).to_numpy(),
                         "label": table["label"].astype(str).to_numpy(),
                         "domain": table["domain"].astype(str).to_numpy(),
                         "group": table["group"].fillna("").astype(str).to_numpy()})


def per_class(result: RetrievalResult, n_boot: int = 1000, seed: int = 0, confidence: float = DEFAULT_CONFIDENCE) -> pd.DataFrame:
    """The summary broken down by query label (one row per class, with CIs over its queries)."""
    check_bootstrap(n_boot, confidence)
    rows = {label: _summary_row(frame, result.metrics, n_boot, seed, confidence)
            for label, frame in result.per_query.groupby("label", sort=True)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("label")


# ----------------------------------------------------------------------------- any score matrix
def exclusion_mask(query_table: pd.DataFrame, gallery_table: pd.DataFrame, exclude: str = "group") -> np.ndarray:
    """(n_q, n_g) bool: gallery items a query may not retrieve (its own clip always; its video; its group)."""
    exclude = check_exclude(exclude)
    require_columns(query_table, ("clip_id", "video_path", "group"), "the query table")
    require_columns(gallery_table, ("clip_id", "video_path", "group"), "the gallery table")

    def same(query_values: np.ndarray, gallery_values: np.ndarray) -> np.ndarray:
        joint = pd.factorize(np.concatenate([query_values, gallery_values]))[0]
        return joint[:len(query_values), None] == joint[None, len(query_values):]

    mask = same(query_table["clip_id"].astype(str).to_numpy(), gallery_table["clip_id"].astype(str).to_numpy())
    if exclude in ("video", "group"):
        mask |= same(query_table["video_path"].astype(str).to_numpy(), gallery_table["video_path"].astype(str).to_numpy())
    if exclude == "group":
        mask |= same(effective_groups(query_table), effective_groups(gallery_table))
    return mask


@dataclass
class QueryMetrics:
    """Per-query metrics of one (query set, gallery) scoring, plus the allowed pair scores."""

    values: dict[str, np.ndarray]  # metric name -> per query, queries with a relevant allowed item only
    relevant_scores: np.ndarray  # every allowed (query, item) pair with the same label
    irrelevant_scores: np.ndarray  # every allowed pair with different labels
    n_without_relevant: int  # queries left out: nothing relevant to find


def query_metrics(scores: np.ndarray, query_table: pd.DataFrame, gallery_table: pd.DataFrame,
                  exclude: str = "group", ks: Sequence[int] = (10,), pair_scores: bool = True) -> QueryMetrics:
    """Rank the gallery by ``scores`` (higher first) with the exclusions applied; every metric per query."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(query_table), len(gallery_table)):
        raise ParameterError(f"scores must be (n_queries, n_gallery) = {(len(query_table), len(gallery_table))}, "
                             f"got {scores.shape}")
    ks = _check_ks(ks)
    excluded = exclusion_mask(query_table, gallery_table, exclude)
    same_label = (query_table["label"].astype(str).to_numpy()[:, None]
                  == gallery_table["label"].astype(str).to_numpy()[None, :])
    ranked, n_relevant = rank_relevance(scores, same_label, excluded)
    has = n_relevant > 0
    values = ranking_metrics(ranked[has], n_relevant[has], ks)
    allowed = ~excluded & np.isfinite(scores)
    empty = np.zeros(0)
    return QueryMetrics(values=values, n_without_relevant=int((~has).sum()),
                        relevant_scores=scores[allowed & same_label] if pair_scores else empty,
                        irrelevant_scores=scores[allowed & ~same_label] if pair_scores else empty)


def pair_auc(relevant: np.ndarray, irrelevant: np.ndarray, seed: int = 0, max_pairs: int = 200_000) -> float:
    """ROC AUC of relevant against irrelevant pair scores (sklearn); above max_pairs per kind, a seeded sample."""
    from sklearn.metrics import roc_auc_score

    if relevant.size == 0 or irrelevant.size == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    if relevant.size > max_pairs:
        relevant = rng.choice(relevant, max_pairs, replace=False)
    if irrelevant.size > max_pairs:
        irrelevant = rng.choice(irrelevant, max_pairs, replace=False)
    return float(roc_auc_score(np.r_[np.ones(relevant.size), np.zeros(irrelevant.size)], np.r_[relevant, irrelevant]))


def summarise_metrics(parts: Sequence[QueryMetrics], metrics: Sequence[str] = ("P@10", "mAP"), n_boot: int = 1000,
                      seed: int = 0, with_auc: bool = True) -> dict[str, Any]:
    """Pool the per-query metrics of several scorings: means, 95% bootstrap CIs (n_boot=0: none) and ROC AUC."""
    out: dict[str, Any] = {"n_queries": int(sum(len(next(iter(p.values.values()))) for p in parts)) if parts else 0,
                           "n_queries_without_relevant": int(sum(part.n_without_relevant for part in parts))}
    for name in metrics:
        values = np.concatenate([part.values[name] for part in parts]) if parts else np.zeros(0)
        out[name] = float(values.mean()) if values.size else float("nan")
        low, high = bootstrap_ci(values, n_boot=n_boot, seed=seed) if n_boot and values.size else (float("nan"),) * 2
        out[f"{name}_lo"], out[f"{name}_hi"] = low, high
    if with_auc:
        relevant = np.concatenate([part.relevant_scores for part in parts]) if parts else np.zeros(0)
        irrelevant = np.concatenate([part.irrelevant_scores for part in parts]) if parts else np.zeros(0)
        out["auc"] = pair_auc(relevant, irrelevant, seed)
    return out


def evaluate_scores(scores: np.ndarray, query_table: pd.DataFrame, gallery_table: pd.DataFrame,
                    exclude: str = "group", k: int = 10, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """P@k and mAP of any score matrix, with 95% bootstrap CIs and the ROC AUC of relevant vs irrelevant pairs.

    The query's own clip, video and (``exclude="group"``) group never count, whatever their score.
    Queries with nothing relevant to find are left out of the means (``n_queries_without_relevant``).
    Keys: ``P@k, P@k_lo, P@k_hi, mAP, mAP_lo, mAP_hi, auc, n_queries, n_queries_without_relevant``.
    """
    k = check_k(k)
    return summarise_metrics([query_metrics(scores, query_table, gallery_table, exclude, (k,))],
                             (f"P@{k}", "mAP"), n_boot, seed)


# ----------------------------------------------------------------------------- protocols
def _protocol(table: pd.DataFrame, protocol: str, exclude: str, ks: Sequence[int], domain_rule: str | None,
              n_boot: int, seed: int, confidence: float) -> RetrievalResult:
    items = items_from_table(table)
    metrics, n_relevant = _rank_and_score(items, items, exclude, ks, domain_rule)
    return _result(protocol, _query_frame(table), metrics, n_relevant, {"exclude": exclude, "ks": list(ks)},
                   n_boot, seed, confidence)


def leave_one_out(table: pd.DataFrame, exclude: str = "group", ks: Sequence[int] = DEFAULT_KS,
                  n_boot: int = 1000, seed: int = 0, confidence: float = DEFAULT_CONFIDENCE) -> RetrievalResult:
    """Every clip queries all the others (relevant = same label), minus what ``exclude`` removes.

    Compare ``exclude="group"`` with ``"video"`` (see :func:`exclusion_comparison`) to see how
    much near-duplicates from the same source inflate the scores.
    """
    exclude, ks = check_exclude(exclude), _check_ks(ks)
    check_bootstrap(n_boot, confidence)
    check_table(table)
    return _protocol(table, "leave-one-out", exclude, ks, None, n_boot, seed, confidence)


def exclusion_comparison(table: pd.DataFrame, ks: Sequence[int] = DEFAULT_KS, n_boot: int = 1000,
                         seed: int = 0, confidence: float = DEFAULT_CONFIDENCE) -> pd.DataFrame:
    """Leave-one-out summaries for exclude = none, video, group side by side (index ``exclude``).

    The drop from ``video`` to ``group`` is the near-duplicate leakage, as a number.
    """
    rows = [leave_one_out(table, exclude, ks, n_boot, seed, confidence).summary.assign(exclude=exclude)
            for exclude in ("none", "video", "group")]
    return pd.concat(rows).set_index("exclude")


def same_vs_cross_domain(table: pd.DataFrame, exclude: str = "group", ks: Sequence[int] = DEFAULT_KS,
                         n_boot: int = 1000, seed: int = 0, confidence: float = DEFAULT_CONFIDENCE) -> pd.DataFrame:
    """Metrics for each ordered (query domain, gallery domain) pair, as a long DataFrame.

    Same-domain (A == B) is leave-one-out inside the domain; cross-domain (A != B) ranks all
    of domain B for each query of A. Columns: ``query_domain, gallery_domain, kind``
    ("same"/"cross"), ``n_queries, n_queries_without_relevant`` and ``M, M_lo, M_hi`` per
    metric. :func:`domain_matrix` pivots one metric into a matrix.
    """
    exclude, ks = check_exclude(exclude), _check_ks(ks)
    check_bootstrap(n_boot, confidence)
    check_table(table)
    items = items_from_table(table)
    query_frame = _query_frame(table)
    domain_names = pd.factorize(table["domain"].astype(str))[1]
    rows = []
    for query_code, query_domain in enumerate(domain_names):
        query_index = np.flatnonzero(items.domains == query_code)
        for gallery_code, gallery_domain in enumerate(domain_names):
            gallery_index = np.flatnonzero(items.domains == gallery_code)
            metrics, n_relevant = _rank_and_score(items.take(query_index), items.take(gallery_index), exclude, ks)
            result = _result("domains", query_frame.iloc[query_index], metrics, n_relevant, {}, n_boot, seed, confidence)
            rows.append({"query_domain": query_domain, "gallery_domain": gallery_domain,
                         "kind": "same" if query_code == gallery_code else "cross",
                         "n_queries_without_relevant": result.n_queries_without_relevant,
                         **result.summary.iloc[0].to_dict()})
    frame = pd.DataFrame(rows)
    frame["n_queries"] = frame["n_queries"].astype(int)
    return frame


def domain_matrix(long: pd.DataFrame, metric: str = "P@10") -> pd.DataFrame:
    """Pivot :func:`same_vs_cross_domain` output: rows query domain, columns gallery domain."""
    if metric not in long.columns:
        raise ParameterError(f"no metric {metric!r} in the table; available: "
                             f"{[c for c in long.columns if not c.endswith(('_lo', '_hi'))]}")
    matrix = long.pivot(index="query_domain", columns="gallery_domain", values=metric)
    matrix.index.name, matrix.columns.name = "query domain", "gallery domain"
    return matrix


def _video_level(table: pd.DataFrame) -> pd.DataFrame:
    """One row per video: clip vectors mean-pooled and renormalised."""
    vectors = _as_unit_vectors(embedding_matrix(table), "embedding column")
    codes, videos = pd.factorize(table["video_path"].astype(str))
    labels_per_video = table.groupby(codes)["label"].nunique()
    if (labels_per_video > 1).any():
        bad = videos[labels_per_video[labels_per_video > 1].index[0]]
        raise ParameterError(f"video {bad} has clips with different labels; fix the manifest or use level='clip'")
    pooled = np.zeros((len(videos), vectors.shape[1]), dtype=np.float64)
    np.add.at(pooled, codes, vectors)
    first = table.assign(_video=codes).drop_duplicates("_video").set_index("_video").sort_index()
    return pd.DataFrame({"clip_id": videos, "video_path": videos, "label": first["label"].to_numpy(),
                         "domain": first["domain"].to_numpy(), "group": first["group"].to_numpy(),
                         "split": first["split"].to_numpy(),
                         "embedding": list(_as_unit_vectors(pooled, "pooled video vectors"))})


def train_test_retrieval(table: pd.DataFrame, query_split: str = "test", gallery_split: str = "train",
                         ks: Sequence[int] = DEFAULT_KS, level: str = "clip", exclude: str = "video",
                         n_boot: int = 1000, seed: int = 0, confidence: float = DEFAULT_CONFIDENCE) -> RetrievalResult:
    """The self-supervised video retrieval protocol (e.g. UCF101 split 1): test items query the train gallery.

    ``HitRate@k`` is the literature's "R@k", top-k retrieval recall (a query counts when any of its top k has its
    label; Xu et al. 2019, VCOP). ``level="video"`` mean-pools each video's clip vectors and
    renormalises, so videos query videos. Official splits keep groups apart; ``exclude``
    still removes the own video (and group) should the two sides overlap.
    """
    exclude, ks = check_exclude(exclude), _check_ks(ks)
    check_bootstrap(n_boot, confidence)
    if level not in LEVELS:
        raise ParameterError(f"level must be one of {LEVELS}, got {level!r}")
    check_table(table, extra=("split",))
    splits = table["split"].fillna("").astype(str)
    for name, wanted in (("query_split", query_split), ("gallery_split", gallery_split)):
        if not (splits == wanted).any():
            raise ParameterError(f"{name}={wanted!r} matches no clip; the table's splits are "
                                 f"{sorted(splits.unique())} — load the dataset with its official split files")
    table = table[splits.isin([query_split, gallery_split])].reset_index(drop=True)
    if level == "video":
        table = _video_level(table)
    items = items_from_table(table)
    split_values = table["split"].fillna("").astype(str).to_numpy()
    query_index = np.flatnonzero(split_values == query_split)
    gallery_index = np.flatnonzero(split_values == gallery_split)
    metrics, n_relevant = _rank_and_score(items.take(query_index), items.take(gallery_index), exclude, ks)
    params = {"query_split": query_split, "gallery_split": gallery_split, "level": level, "exclude": exclude,
              "ks": list(ks), "n_gallery": len(gallery_index)}
    return _result("train-test", _query_frame(table.iloc[query_index]), metrics, n_relevant, params, n_boot, seed, confidence)


def evaluate_retrieval(table: pd.DataFrame, protocol: str = "leave-one-out", exclude: str = "group",
                       ks: Sequence[int] = DEFAULT_KS, n_boot: int = 1000, seed: int = 0, confidence: float = DEFAULT_CONFIDENCE,
                       exclude_own_group: bool | None = None, **train_test_kw: Any) -> RetrievalResult:
    """One protocol by name, pooled over all queries.

    ``"same-domain"``: each clip queries the other clips of its own domain;
    ``"cross-domain"``: each clip queries the clips of every *other* domain;
    ``"leave-one-out"``: each clip queries everything; ``"train-test"``: see
    :func:`train_test_retrieval` (extra keywords go there). ``exclude_own_group``
    (True -> exclude="group", False -> "video") is the architecture contract's spelling.
    """
    if exclude_own_group is not None:
        exclude = "group" if exclude_own_group else "video"
    if protocol not in PROTOCOLS:
        raise ParameterError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if protocol == "train-test":
        return train_test_retrieval(table, ks=ks, exclude=exclude, n_boot=n_boot, seed=seed, confidence=confidence, **train_test_kw)
    if train_test_kw:
        raise ParameterError(f"protocol {protocol!r} takes no options {sorted(train_test_kw)}")
    exclude, ks = check_exclude(exclude), _check_ks(ks)
    check_bootstrap(n_boot, confidence)
    check_table(table)
    domain_rule = {"same-domain": "same", "cross-domain": "other"}.get(protocol)
    return _protocol(table, protocol, exclude, ks, domain_rule, n_boot, seed, confidence)


# ----------------------------------------------------------------------------- output
def results_to_json(result: RetrievalResult | pd.DataFrame | dict) -> dict | list:
    """A JSON-ready form (NaN -> null). A RetrievalResult gives protocol, params, counts and the
    summary; a score_statistics/hubness dict drops its raw samples and per-clip N_k."""
    if isinstance(result, RetrievalResult):
        return {"protocol": result.protocol, "params": jsonable(result.params),
                "n_queries": len(result.per_query), "n_queries_without_relevant": result.n_queries_without_relevant,
                "metrics": result.metrics, "summary": jsonable(result.summary.reset_index().iloc[0].to_dict())}
    if isinstance(result, dict):
        return jsonable({key: results_to_json(value) if isinstance(value, RetrievalResult) else value
                         for key, value in result.items() if key not in ("samples", "n_k")})
    if isinstance(result, pd.DataFrame):
        return jsonable(result)
    raise ParameterError(f"results_to_json takes a RetrievalResult, DataFrame or dict, got {type(result).__name__}")


def write_results(result: RetrievalResult | pd.DataFrame | dict, out_dir: str | Path, name: str | None = None) -> list[Path]:
    """Write a result as CSV (tables) and JSON (summary) into ``out_dir``; returns the paths written.

    RetrievalResult -> ``<name>_per_query.csv``, ``<name>_summary.csv``, ``<name>.json``
    (name defaults to the protocol); DataFrame -> ``<name>.csv`` and ``<name>.json``;
    dict (score statistics, hubness) -> ``<name>.json`` plus ``<name>_hubs.csv`` when present.
    """
    if name is None:
        if not isinstance(result, RetrievalResult):
            raise ParameterError("write_results needs name=... for a DataFrame or dict result")
        name = result.protocol
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if isinstance(result, RetrievalResult):
        result.per_query.to_csv(out / f"{name}_per_query.csv", index=False)
        result.summary.to_csv(out / f"{name}_summary.csv")
        written += [out / f"{name}_per_query.csv", out / f"{name}_summary.csv"]
    elif isinstance(result, pd.DataFrame):
        result.to_csv(out / f"{name}.csv")
        written.append(out / f"{name}.csv")
    elif isinstance(result, dict) and isinstance(result.get("hubs"), pd.DataFrame):
        result["hubs"].to_csv(out / f"{name}_hubs.csv", index=False)
        written.append(out / f"{name}_hubs.csv")
    (out / f"{name}.json").write_text(json.dumps(results_to_json(result), indent=2))
    written.append(out / f"{name}.json")
    return written
