"""Retrieval methods: how a table's clips become vectors, and how a method scores a gallery.

A method is a :class:`MethodSpec`: one or more vector fields (:class:`VectorSpec`: raw, centred,
whitened or a trained head), fused (RRF / weighted sum of cosines) and optionally re-ranked.
``spec.fit(fit_table)`` gives a :class:`FittedMethod` whose ``score(query_table, gallery_table)``
returns ``(scores (n_q, n_g), ms_per_query)``. The maths lives in :mod:`motionmatch.refine.calibrate`,
:mod:`motionmatch.refine.heads` and :mod:`motionmatch.refine.rerank`; re-ranking is
:meth:`motionmatch.refine.rerank.Reranker.score_matrix`, the same code ``Reranker.rerank`` runs.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from ..refine.calibrate import ScoreCalibration
from ..errors import ParameterError
from ..evaluation.retrieval import exclusion_mask
from ..refine.heads import HeadTrainingConfig, TrainedHead, train_projection_head
from ..refine.rerank import Reranker
from ..table import effective_groups, embedding_matrix, l2_normalize, table_encoder_id
from ..validation import check_choice
from .gating import field_gates, gated_rrf, gated_weighted

VECTOR_KINDS = ("raw", "center", "whiten", "head")
FUSIONS = ("none", "rrf", "weighted")
KR_POOL_SIZE = 100  # k-reciprocal re-ranks each query's top candidates (rest keep the cosine order below)
RRF_K = 60


def column_matrix(table: pd.DataFrame, column: str) -> np.ndarray:
    """The vectors of one column of a non-empty table, (n, dim) float32."""
    if len(table) == 0:
        raise ParameterError("the table is empty; nothing to score")
    return embedding_matrix(table, column)


@dataclass(frozen=True)
class VectorSpec:
    """One way to turn a table's clips into unit vectors: raw, centred, whitened, or a trained head."""

    kind: str = "raw"  # "raw" | "center" | "whiten" | "head"
    column: str = "embedding"  # the table column read (extra encoders: "flow", "visual"); heads read "embedding"
    n_components: int | None = None  # whiten only; None = every direction with variance
    head: HeadTrainingConfig | None = None  # head only

    def __post_init__(self) -> None:
        check_choice(self.kind, "VectorSpec.kind", VECTOR_KINDS)
        if self.kind == "head" and (self.head is None or self.column != "embedding"):
            raise ParameterError("a head VectorSpec needs head=HeadTrainingConfig(...) and reads the 'embedding' column")
        if self.n_components is not None and self.kind != "whiten":
            raise ParameterError("n_components applies to kind='whiten' only")

    @property
    def label(self) -> str:
        """Short human description, e.g. 'whitened (64 dims)'."""
        source = "" if self.column == "embedding" else f"{self.column} "
        if self.kind == "raw":
            return f"{source}raw"
        if self.kind == "center":
            return f"{source}centred"
        if self.kind == "whiten":
            return f"{source}whitened ({self.n_components or 'all'} dims)"
        config = self.head
        loss = f"triplet m={config.margin:g} {config.triplet_miner}" if config.loss == "triplet" \
            else f"NT-Xent tau={config.temperature:g}"
        shape = f"{config.out_dim or 'auto'}-d" + (f", hidden {config.hidden_dim}" if config.hidden_dim else "")
        default = HeadTrainingConfig()
        shown = {"loss", "margin", "temperature", "triplet_miner", "out_dim", "hidden_dim", "max_epochs", "seed", "device"}
        others = [f"{name}={getattr(config, name)}" for name in default.__dataclass_fields__
                  if name not in shown and getattr(config, name) != getattr(default, name)]
        return f"head ({loss}, {shape}{''.join(', ' + o for o in others)})"

    def fit(self, fit_table: pd.DataFrame, progress: bool = False) -> "FittedVectors":
        """Fit on the fit table (labels are read only by heads)."""
        started = time.perf_counter()
        artifact: ScoreCalibration | TrainedHead | None = None
        if self.kind in ("center", "whiten"):
            encoder_id = table_encoder_id(fit_table) if self.column == "embedding" else ""
            artifact = ScoreCalibration(mode=self.kind, n_components=self.n_components, encoder_id=encoder_id)
            artifact.fit(column_matrix(fit_table, self.column))
        elif self.kind == "head":
            artifact = train_projection_head(fit_table, self.head, progress=progress)
        return FittedVectors(self, artifact, time.perf_counter() - started, n_fitted=len(fit_table))


@dataclass
class FittedVectors:
    """A fitted :class:`VectorSpec`: ``transform(table)`` gives (n, d) float32 unit vectors."""

    spec: VectorSpec
    artifact: ScoreCalibration | TrainedHead | None
    fit_seconds: float = 0.0
    n_fitted: int = 0

    def transform(self, table: pd.DataFrame) -> np.ndarray:
        return self.transform_matrix(column_matrix(table, self.spec.column))

    def transform_matrix(self, vectors: np.ndarray) -> np.ndarray:
        """Transform raw vectors of the spec's column."""
        if self.artifact is None:
            return l2_normalize(vectors)
        if isinstance(self.artifact, TrainedHead):
            return self.artifact.project(vectors)
        return self.artifact.transform(vectors)

    @property
    def history(self) -> pd.DataFrame:
        """Per-epoch training history (heads only; empty otherwise)."""
        if isinstance(self.artifact, TrainedHead):
            return pd.DataFrame(self.artifact.history)
        return pd.DataFrame()


class FitCache:
    """Fitted representations for one fit table, so a head is trained once per configuration.

    Also the audit trail: ``groups_seen`` holds every group any fit() of this cache was given.
    """

    def __init__(self, fit_table: pd.DataFrame, progress: bool = False):
        self.fit_table = fit_table
        self.progress = progress
        self.fitted: dict[VectorSpec, FittedVectors] = {}
        self.groups_seen: set[str] = set()

    def get(self, spec: VectorSpec) -> FittedVectors:
        if spec not in self.fitted:
            self.groups_seen.update(effective_groups(self.fit_table))
            self.fitted[spec] = spec.fit(self.fit_table, progress=self.progress)
        return self.fitted[spec]


# ----------------------------------------------------------------------------- methods
@dataclass(frozen=True)
class MethodSpec:
    """A retrieval method: one or more vector fields, fused (RRF / weighted sum of cosines), optionally re-ranked.

    With several fields the re-ranking stages run on each field before fusion.
    """

    fields: tuple[VectorSpec, ...]
    fusion: str = "none"  # "none" (one field) | "rrf" | "weighted"
    weights: tuple[float, ...] | None = None  # weighted fusion: one weight per field
    rrf_k: int = RRF_K  # RRF: score = sum over fields of 1 / (rrf_k + rank)
    reranker: Reranker | None = None  # alpha-QE / DBA / k-reciprocal stages and their parameters
    kr_pool: int = KR_POOL_SIZE  # k-reciprocal re-ranks each query's top kr_pool candidates

    def __post_init__(self) -> None:
        if not self.fields:
            raise ParameterError("a MethodSpec needs at least one VectorSpec in fields")
        check_choice(self.fusion, "fusion", FUSIONS)
        if self.fusion == "none" and len(self.fields) != 1:
            raise ParameterError(f"{len(self.fields)} fields need fusion='rrf' or 'weighted'")
        if self.fusion == "weighted" and (self.weights is None or len(self.weights) != len(self.fields)
                                         or any(w < 0 for w in self.weights)):
            raise ParameterError(f"weighted fusion needs {len(self.fields)} non-negative weights, got {self.weights!r}")

    @property
    def label(self) -> str:
        """Short human description of the whole pipeline."""
        names = " + ".join(f.label for f in self.fields)
        if self.fusion == "rrf":
            names = f"RRF(k={self.rrf_k}) of [{names}]"
        elif self.fusion == "weighted":
            names = f"weighted [{', '.join(f'{w:.2f} x {f.label}' for w, f in zip(self.weights, self.fields))}]"
        stages = []
        if self.reranker is not None:
            r = self.reranker
            if r.database_augmentation:
                stages.append(f"DBA(k={r.dba_k})")
            if r.query_expansion:
                stages.append(f"alpha-QE(k={r.qe_k})")
            if r.k_reciprocal:
                stages.append(f"k-reciprocal(k1={r.k1}, k2={r.k2}, lambda={r.lambda_value:g})")
        return names + "".join(f" + {s}" for s in stages)

    def fit(self, fit_table: pd.DataFrame, cache: FitCache | None = None, progress: bool = False) -> "FittedMethod":
        """Fit every field on the fit table (through ``cache`` when given, sharing fitted heads)."""
        if cache is not None and cache.fit_table is not fit_table:
            raise ParameterError("the FitCache belongs to another fit table; pass the table it was built for")
        cache = cache or FitCache(fit_table, progress=progress)
        return FittedMethod(self, [cache.get(spec) for spec in self.fields])


@dataclass
class FittedMethod:
    """A fitted :class:`MethodSpec`; ``score`` ranks a gallery for a set of queries."""

    spec: MethodSpec
    fields: list[FittedVectors]
    last_index_seconds: float = 0.0  # gallery-side time of the last score() call (transform, DBA): index time

    @property
    def fit_seconds(self) -> float:
        """Seconds spent fitting the fields (each counted once)."""
        return float(sum({id(f): f.fit_seconds for f in self.fields}.values()))

    def score(self, query_table: pd.DataFrame, gallery_table: pd.DataFrame,
              exclude: str = "group") -> tuple[np.ndarray, float]:
        """(scores (n_q, n_g), ms_per_query): higher is better; the query-side time per query in milliseconds.

        ``exclude`` hides the query's own clip / video / group from the neighbour searches of
        alpha-QE and k-reciprocal (the evaluation excludes them too); scores of excluded items are -inf.
        A channel with a coverage column (the pose channel) takes part only in pairs where both clips have
        coverage > 0 (:mod:`motionmatch.beyond.gating`): elsewhere the other channels score alone, and a pair no
        channel may score is -inf (never retrieved).
        """
        mask = exclusion_mask(query_table, gallery_table, exclude)
        gates = field_gates([f.spec.column for f in self.fields], query_table, gallery_table)
        reranker = self.spec.reranker or Reranker()
        started = time.perf_counter()
        galleries = [reranker.augment_gallery(f.transform(gallery_table)) for f in self.fields]  # index time
        indexed = time.perf_counter()
        searcher = replace(reranker, database_augmentation=False)  # the galleries are augmented already
        per_field = [searcher.score_matrix(f.transform(query_table), g, mask, pool=self.spec.kr_pool)[0]
                     for f, g in zip(self.fields, galleries)]
        scores = self._fuse(per_field, mask, gates)
        done = time.perf_counter()
        self.last_index_seconds = indexed - started
        return scores, (done - indexed) * 1e3 / max(len(query_table), 1)

    def _fuse(self, per_field: list[np.ndarray], mask: np.ndarray, gates: list) -> np.ndarray:
        if self.spec.fusion == "none":
            return per_field[0] if gates[0] is None else np.where(gates[0], per_field[0], -np.inf)
        if self.spec.fusion == "weighted":
            return gated_weighted(per_field, self.spec.weights, gates, mask)
        return gated_rrf(per_field, self.spec.rrf_k, gates, mask)  # ranks among the allowed items, 1-based

    def test_vectors(self, table: pd.DataFrame) -> np.ndarray:
        """The single field's vectors for a table (single-field methods only), e.g. for UMAP."""
        if len(self.fields) != 1:
            raise ParameterError(f"{self.spec.label} has {len(self.fields)} fields; pick one of .fields")
        return self.fields[0].transform(table)


def head_config(loss: str, max_epochs: int = 50, seed: int = 0, **overrides: Any) -> HeadTrainingConfig:
    """The issue's head settings: triplet (margin 0.2, semi-hard miner) or NT-Xent (tau 0.07), plus overrides."""
    base = {"triplet": dict(loss="triplet", margin=0.2, triplet_miner="semihard"),
            "ntxent": dict(loss="ntxent", temperature=0.07)}
    if loss not in base:
        raise ParameterError(f"loss must be 'triplet' or 'ntxent', got {loss!r}")
    return HeadTrainingConfig(**{**base[loss], "max_epochs": max_epochs, "seed": seed, **overrides})


def simplex_weights(n_fields: int, step: float) -> list[tuple[float, ...]]:
    """Weight vectors on a grid of the simplex with every weight > 0 (so each candidate really fuses)."""
    if n_fields < 2:
        return [(1.0,)]
    steps = int(round(1 / step))
    return [tuple(c / steps for c in combo) for combo in itertools.product(range(1, steps), repeat=n_fields)
            if sum(combo) == steps]
