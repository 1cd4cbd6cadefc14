"""Beyond zero-shot: calibrated scores, metric learning, hybrid fusion and re-ranking, each measured.

Orchestration only: the maths lives in :mod:`motionmatch.calibrate`, :mod:`motionmatch.metric_learning`,
:mod:`motionmatch.rerank`, :mod:`motionmatch.evaluate` and :mod:`motionmatch.store`. This module
decides *how* they are compared so that the comparison can be trusted:

1. **Held-out groups.** :func:`split_held_out_groups` puts every group (source video / performer /
   scene) on one side only, stratified so each (label, domain) cell shows up on both sides when it
   has at least two groups. The test groups are touched once, at the very end.
2. **Choices on validation only.** The fit side is split again by group into *train* and
   *validation*. Every choice (whitening dimensions, which head, fusion weights, re-ranking
   parameters, the "best combination") is made by fitting on train and scoring validation; the
   chosen configuration is then refitted on the whole fit side and evaluated once on test.
   :class:`ComparisonResult` keeps an audit of the groups each stage saw.
3. **Protocols.** :func:`protocol_pairs`: *same-domain* ranks the other clips of the query's own
   domain (leave-one-out), *cross-domain* ranks every clip of another domain, pooled over ordered
   domain pairs. The query's own clip, video and group never count (:func:`exclusion_mask`).
4. **Costs.** Every method reports the query-time milliseconds it adds over zero-shot cosine and
   its fit seconds (gallery-side work such as DBA is index time, reported separately).

A method is a :class:`MethodSpec` (vector fields + optional fusion + optional re-ranking);
``spec.fit(fit_table)`` returns a :class:`FittedMethod` whose ``score(query_table, gallery_table)``
gives ``(scores (n_q, n_g), ms_per_query)``. :func:`milvus_hybrid_check` reproduces the hybrid
rows through real Milvus multi-vector search, with the calibration and the head stored with the
collection and reloaded for the query side (:func:`save_transforms` / :func:`load_transforms`).

Known limits, stated rather than hidden: scoring is dense (n_queries x n_gallery), which suits
evaluation sets up to ~10k clips; in same-domain leave-one-out, DBA may let a gallery clip borrow
from the query clip itself (it augments the whole gallery once), the cross-domain protocol is free
of this.
"""
from __future__ import annotations

import itertools
import math
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .calibrate import ScoreCalibration, l2_normalize, table_encoder_id
from .errors import EncoderMismatchError, ParameterError
from .evaluate import average_precision, bootstrap_ci, precision_at_k
from .metric_learning import HeadTrainingConfig, TrainedHead, train_projection_head
from .rerank import Reranker, alpha_query_expansion, database_side_augmentation, k_reciprocal_rerank

PROTOCOLS = ("same-domain", "cross-domain")
SELECTIONS = ("cross-domain", "same-domain", "mean")
EXCLUDES = ("group", "video", "none")
VECTOR_KINDS = ("raw", "center", "whiten", "head")
FUSIONS = ("none", "rrf", "weighted")
DEFAULT_WHITEN_GRID: tuple[int | None, ...] = (16, 32, 64, 128, None)  # None = every direction with variance
DEFAULT_QE_KS = (3, 5, 10)  # alpha-QE neighbours tried on validation
DEFAULT_DBA_KS = (3, 5, 10)  # DBA neighbours tried on validation
DEFAULT_KR_PARAMS = ((10, 3), (20, 6))  # (k1, k2) of k-reciprocal re-ranking tried on validation
KR_POOL_SIZE = 100  # k-reciprocal re-ranks each query's top candidates (rest keep the cosine order below)
RRF_K = 60
TIMING_REPEATS = 3  # test-time scoring is repeated and the fastest ms/query kept
TRANSFORM_PREFIXES = {"calibration": "calibration.", "head": "head."}  # array-name prefixes in the store
SCORE_TOLERANCE = 1e-5  # Milvus computes in float32: fused scores agree with numpy's to about 1e-6
MAX_AUC_PAIRS = 200_000  # per kind (relevant / irrelevant); above it a seeded sample is used

ROW_ZERO_SHOT = "zero-shot cosine"
ROW_CENTER = "calibration: center"
ROW_WHITEN = "calibration: whiten"
ROW_TRIPLET = "head: triplet"
ROW_NTXENT = "head: NT-Xent"
ROW_RRF = "hybrid: RRF"
ROW_WEIGHTED = "hybrid: weighted"
ROW_QE = "re-rank: alpha-QE"
ROW_DBA = "re-rank: DBA"
ROW_KR = "re-rank: k-reciprocal"
ROW_BEST = "best combination"


# ----------------------------------------------------------------------------- tables and splits
def _require_columns(table: pd.DataFrame, columns: Sequence[str], what: str = "the embeddings table") -> None:
    if not isinstance(table, pd.DataFrame):
        raise ParameterError(f"{what} must be a pandas DataFrame (load it with motionmatch.pipeline.load_embeddings), "
                             f"got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ParameterError(f"{what} lacks column(s) {missing}; it has {list(table.columns)} — "
                             "load it with motionmatch.pipeline.load_embeddings")


def effective_groups(table: pd.DataFrame) -> np.ndarray:
    """The group of every row as evaluation sees it: a blank group means "the video is its own group"."""
    _require_columns(table, ("video_path", "group"))
    group = table["group"].fillna("").astype(str).to_numpy()
    video = table["video_path"].astype(str).to_numpy()
    return np.where(group == "", np.char.add("video:", video.astype(str)), np.char.add("group:", group.astype(str)))


def split_held_out_groups(table: pd.DataFrame, test_fraction: float = 0.4,
                          seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit_table, test_table), split by group: no group is on both sides.

    Stratified by (label, domain): a cell with n >= 2 groups sends round(test_fraction * n) of them
    (at least 1, at most n - 1) to test, so the cell appears on both sides. Cells holding a single
    group cannot be on both sides; for each label those singletons move *together* (the label's
    one-group cells of every domain go to the same side), so a label that is split this way still
    has clips in more than one domain on its side and cross-domain retrieval stays measurable.
    """
    _require_columns(table, ("video_path", "group", "label", "domain"))
    if not 0 < test_fraction < 1:
        raise ParameterError(f"test_fraction must be between 0 and 1 (e.g. 0.4), got {test_fraction!r}")
    groups = effective_groups(table)
    frame = pd.DataFrame({"group": groups, "label": table["label"].astype(str).to_numpy(),
                          "domain": table["domain"].astype(str).to_numpy()})
    per_group = frame.groupby("group", sort=True).agg(label=("label", lambda s: s.mode().iloc[0]),
                                                      domain=("domain", lambda s: s.mode().iloc[0]))
    if len(per_group) < 2:
        raise ParameterError(f"the table has {len(per_group)} group(s); a held-out split needs at least 2 "
                             "(fill the 'group' column of the manifest, or add videos)")
    rng = np.random.default_rng(seed)
    test_groups: set[str] = set()
    singletons: dict[str, list[str]] = {}
    for (label, _domain), cell in per_group.groupby(["label", "domain"], sort=True):
        names = list(rng.permutation(cell.index.to_numpy()))
        if len(names) == 1:
            singletons.setdefault(label, []).extend(names)
            continue
        n_test = min(len(names) - 1, max(1, int(round(test_fraction * len(names)))))
        test_groups.update(names[:n_test])
    bundles = [singletons[label] for label in sorted(singletons)]
    if bundles:
        order = rng.permutation(len(bundles))
        n_test = int(round(test_fraction * len(bundles)))
        if len(bundles) >= 2:
            n_test = min(len(bundles) - 1, max(1, n_test))
        elif not test_groups:
            n_test = 1  # a single bundle and nothing else in test: keep the test side non-empty
        for index in order[:n_test]:
            test_groups.update(bundles[index])
    if not test_groups or len(test_groups) == len(per_group):  # degenerate tables: keep both sides non-empty
        names = list(rng.permutation(per_group.index.to_numpy()))
        test_groups = set(names[:max(1, min(len(names) - 1, int(round(test_fraction * len(names)))))])
    in_test = np.isin(groups, list(test_groups))
    return table[~in_test].reset_index(drop=True), table[in_test].reset_index(drop=True)


def attach_extra_vectors(table: pd.DataFrame, extra_tables: Mapping[str, pd.DataFrame] | None) -> pd.DataFrame:
    """Add each extra encoder's embeddings (e.g. ``{"visual": clip_table}``) as a column of the same name.

    Rows are matched on (video_path, clip_index); encoders with different clip lengths sample
    windows centred alike, so this pairs each clip with the other encoder's clip at the same index.
    Every row of ``table`` needs a match.
    """
    out = table.copy()
    for name, extra in (extra_tables or {}).items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,60}", name) or name in out.columns or name == "head":
            raise ParameterError(f"extra vector name {name!r} is not usable: use letters, digits and '_', not an "
                                 f"existing column ({', '.join(out.columns)}) nor 'head'")
        _require_columns(extra, ("video_path", "clip_index", "embedding"), f"extra table {name!r}")
        keyed = extra.assign(_key=extra["video_path"].astype(str) + "#" + extra["clip_index"].astype(int).astype(str))
        lookup = dict(zip(keyed["_key"], keyed["embedding"]))
        keys = out["video_path"].astype(str) + "#" + out["clip_index"].astype(int).astype(str)
        missing = int((~keys.isin(lookup.keys())).sum())
        if missing:
            raise ParameterError(f"extra table {name!r} has no clip for {missing} of {len(out)} rows (matched on "
                                 "video_path and clip_index); extract it from the same videos with the same clips_per_video")
        out[name] = [np.asarray(lookup[key], dtype=np.float32) for key in keys]
    return out


def _column_matrix(table: pd.DataFrame, column: str) -> np.ndarray:
    _require_columns(table, (column,))
    if len(table) == 0:
        raise ParameterError("the table is empty; nothing to score")
    return np.stack([np.asarray(v, dtype=np.float32) for v in table[column]])


# ----------------------------------------------------------------------------- exclusion and metrics
def exclusion_mask(query_table: pd.DataFrame, gallery_table: pd.DataFrame, exclude: str = "group") -> np.ndarray:
    """(n_q, n_g) bool: gallery items a query may not retrieve (its own clip always; its video; its group)."""
    if exclude not in EXCLUDES:
        raise ParameterError(f"exclude must be one of {EXCLUDES}, got {exclude!r}")
    _require_columns(query_table, ("clip_id", "video_path", "group"), "the query table")
    _require_columns(gallery_table, ("clip_id", "video_path", "group"), "the gallery table")

    def codes(query_values: np.ndarray, gallery_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        joint = pd.factorize(np.concatenate([query_values, gallery_values]))[0]
        return joint[:len(query_values)], joint[len(query_values):]

    q, g = codes(query_table["clip_id"].astype(str).to_numpy(), gallery_table["clip_id"].astype(str).to_numpy())
    mask = q[:, None] == g[None, :]
    if exclude in ("video", "group"):
        q, g = codes(query_table["video_path"].astype(str).to_numpy(), gallery_table["video_path"].astype(str).to_numpy())
        mask |= q[:, None] == g[None, :]
    if exclude == "group":
        q, g = codes(effective_groups(query_table), effective_groups(gallery_table))
        mask |= q[:, None] == g[None, :]
    return mask


@dataclass
class QueryMetrics:
    """Per-query P@k and AP of one (query set, gallery) scoring, plus the allowed pair scores."""

    p_at_k: np.ndarray  # queries with at least one relevant allowed item
    ap: np.ndarray
    relevant_scores: np.ndarray  # every allowed (query, item) pair with the same label
    irrelevant_scores: np.ndarray  # every allowed pair with different labels
    n_without_relevant: int  # queries left out: nothing relevant to find


def query_metrics(scores: np.ndarray, query_table: pd.DataFrame, gallery_table: pd.DataFrame,
                  exclude: str = "group", k: int = 10) -> QueryMetrics:
    """Rank the gallery by ``scores`` (higher first) with exclusions applied; metrics via motionmatch.evaluate."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(query_table), len(gallery_table)):
        raise ParameterError(f"scores must be (n_queries, n_gallery) = {(len(query_table), len(gallery_table))}, "
                             f"got {scores.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"k must be a positive integer, got {k!r}")
    excluded = exclusion_mask(query_table, gallery_table, exclude)
    scores = np.where(excluded, -np.inf, scores)
    q_labels = query_table["label"].astype(str).to_numpy()
    g_labels = gallery_table["label"].astype(str).to_numpy()
    same_label = q_labels[:, None] == g_labels[None, :]
    order = np.argsort(-scores, axis=1, kind="stable")
    allowed_sorted = np.take_along_axis(~excluded, order, axis=1)
    relevant_sorted = np.take_along_axis(same_label, order, axis=1) & allowed_sorted
    n_relevant = relevant_sorted.sum(axis=1)
    has = n_relevant > 0
    p_at_k = precision_at_k(relevant_sorted[has], k) if has.any() else np.zeros(0)
    ap = average_precision(relevant_sorted[has], n_relevant[has]) if has.any() else np.zeros(0)
    allowed = ~excluded & np.isfinite(scores)
    return QueryMetrics(p_at_k=np.asarray(p_at_k, float), ap=np.asarray(ap, float),
                        relevant_scores=scores[allowed & same_label], irrelevant_scores=scores[allowed & ~same_label],
                        n_without_relevant=int((~has).sum()))


def _auc(relevant: np.ndarray, irrelevant: np.ndarray, seed: int) -> float:
    from sklearn.metrics import roc_auc_score

    if relevant.size == 0 or irrelevant.size == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    if relevant.size > MAX_AUC_PAIRS:
        relevant = rng.choice(relevant, MAX_AUC_PAIRS, replace=False)
    if irrelevant.size > MAX_AUC_PAIRS:
        irrelevant = rng.choice(irrelevant, MAX_AUC_PAIRS, replace=False)
    return float(roc_auc_score(np.r_[np.ones(relevant.size), np.zeros(irrelevant.size)], np.r_[relevant, irrelevant]))


def summarise_metrics(parts: Sequence[QueryMetrics], k: int = 10, n_boot: int = 1000, seed: int = 0,
                      with_auc: bool = True) -> dict[str, Any]:
    """Pool per-query metrics of several scorings: means, 95% bootstrap CIs (n_boot=0: none) and ROC AUC."""
    p = np.concatenate([part.p_at_k for part in parts]) if parts else np.zeros(0)
    ap = np.concatenate([part.ap for part in parts]) if parts else np.zeros(0)
    out: dict[str, Any] = {"n_queries": int(p.size),
                           "n_queries_without_relevant": int(sum(part.n_without_relevant for part in parts))}
    for name, values in ((f"P@{k}", p), ("mAP", ap)):
        out[name] = float(values.mean()) if values.size else float("nan")
        low, high = bootstrap_ci(values, n_boot=n_boot, seed=seed) if n_boot and values.size else (float("nan"),) * 2
        out[f"{name}_lo"], out[f"{name}_hi"] = low, high
    if with_auc:
        relevant = np.concatenate([part.relevant_scores for part in parts]) if parts else np.zeros(0)
        irrelevant = np.concatenate([part.irrelevant_scores for part in parts]) if parts else np.zeros(0)
        out["auc"] = _auc(relevant, irrelevant, seed)
    return out


def evaluate_scores(scores: np.ndarray, query_table: pd.DataFrame, gallery_table: pd.DataFrame,
                    exclude: str = "group", k: int = 10, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """P@k and mAP with 95% bootstrap CIs, and the ROC AUC of relevant vs irrelevant allowed pairs.

    The query's own clip, video and (``exclude="group"``) group are set to -inf and never count.
    Queries with nothing relevant to find are left out of the means (``n_queries_without_relevant``).
    Keys: ``P@k, P@k_lo, P@k_hi, mAP, mAP_lo, mAP_hi, auc, n_queries, n_queries_without_relevant``.
    """
    return summarise_metrics([query_metrics(scores, query_table, gallery_table, exclude, k)], k, n_boot, seed)


# ----------------------------------------------------------------------------- protocols
@dataclass
class ProtocolPair:
    """One scoring of a protocol: queries of one domain against the gallery of one domain."""

    protocol: str  # "same-domain" or "cross-domain"
    query_domain: str
    gallery_domain: str
    query_rows: np.ndarray  # row positions in the test table
    gallery_rows: np.ndarray


def protocol_pairs(test_table: pd.DataFrame) -> list[ProtocolPair]:
    """Same-domain pairs (A, A): leave-one-out inside each domain; cross-domain pairs: every ordered (A, B), A != B."""
    _require_columns(test_table, ("domain",))
    domains = test_table["domain"].astype(str).to_numpy()
    names = sorted(set(domains))
    rows = {name: np.flatnonzero(domains == name) for name in names}
    pairs = [ProtocolPair("same-domain", a, a, rows[a], rows[a]) for a in names]
    pairs += [ProtocolPair("cross-domain", a, b, rows[a], rows[b]) for a in names for b in names if a != b]
    return pairs


# ----------------------------------------------------------------------------- vector representations
@dataclass(frozen=True)
class VectorSpec:
    """One way to turn a table's clips into unit vectors: raw, centred, whitened, or a trained head."""

    kind: str = "raw"  # "raw" | "center" | "whiten" | "head"
    column: str = "embedding"  # the table column read (extra encoders: "flow", "visual"); heads read "embedding"
    n_components: int | None = None  # whiten only; None = every direction with variance
    head: HeadTrainingConfig | None = None  # head only

    def __post_init__(self) -> None:
        if self.kind not in VECTOR_KINDS:
            raise ParameterError(f"VectorSpec.kind={self.kind!r} is unknown; use one of {VECTOR_KINDS}")
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
            artifact.fit(_column_matrix(fit_table, self.column))
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
        return self.transform_matrix(_column_matrix(table, self.spec.column))

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
        if self.fusion not in FUSIONS:
            raise ParameterError(f"fusion={self.fusion!r} is unknown; use one of {FUSIONS}")
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
        """
        mask = exclusion_mask(query_table, gallery_table, exclude)
        reranker = self.spec.reranker or Reranker()
        started = time.perf_counter()
        galleries = [f.transform(gallery_table) for f in self.fields]
        if reranker.database_augmentation:
            galleries = [database_side_augmentation(g, k=reranker.dba_k, alpha=reranker.dba_alpha) for g in galleries]
        indexed = time.perf_counter()
        per_field = [self._field_scores(f.transform(query_table), g, mask, reranker) for f, g in zip(self.fields, galleries)]
        scores = self._fuse(per_field, mask)
        done = time.perf_counter()
        self.last_index_seconds = indexed - started
        return scores, (done - indexed) * 1e3 / max(len(query_table), 1)

    def _field_scores(self, queries: np.ndarray, gallery: np.ndarray, mask: np.ndarray, reranker: Reranker) -> np.ndarray:
        if queries.shape[1] != gallery.shape[1]:
            raise EncoderMismatchError(f"query vectors are {queries.shape[1]}-d, gallery vectors {gallery.shape[1]}-d")
        if reranker.query_expansion:
            queries = alpha_query_expansion(queries, gallery, k=reranker.qe_k, alpha=reranker.qe_alpha, exclude_mask=mask)
        scores = np.where(mask, -np.inf, queries @ gallery.T).astype(np.float64)
        if not reranker.k_reciprocal:
            return scores
        allowed_per_query = int((~mask).sum(axis=1).min())
        pool = min(self.spec.kr_pool, allowed_per_query)
        if pool < 2:
            return scores
        candidates = np.argsort(-scores, axis=1, kind="stable")[:, :pool]
        order, distances = k_reciprocal_rerank(queries, gallery, k1=reranker.k1, k2=reranker.k2,
                                               lambda_value=reranker.lambda_value, candidates=candidates)
        reranked = scores - 10.0  # outside the pool: cosine order, below every pool item (pool scores are in [0, 1])
        np.put_along_axis(reranked, order, 1.0 - distances.astype(np.float64), axis=1)
        return np.where(mask, -np.inf, reranked)

    def _fuse(self, per_field: list[np.ndarray], mask: np.ndarray) -> np.ndarray:
        if self.spec.fusion == "none":
            return per_field[0]
        if self.spec.fusion == "weighted":
            fused = sum(w * np.where(mask, 0.0, s) for w, s in zip(self.spec.weights, per_field))
        else:  # rrf: ranks among the allowed items, 1-based
            fused = np.zeros_like(per_field[0])
            rows = np.arange(len(fused))[:, None]
            for scores in per_field:
                order = np.argsort(-scores, axis=1, kind="stable")
                ranks = np.empty_like(order)
                ranks[rows, order] = np.arange(1, order.shape[1] + 1)
                fused += 1.0 / (self.spec.rrf_k + ranks)
        return np.where(mask, -np.inf, fused)

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


# ----------------------------------------------------------------------------- running a method on a protocol
@dataclass
class ProtocolRun:
    """A fitted method scored on every protocol pair of one table."""

    parts: dict[str, list[QueryMetrics]]  # protocol -> one QueryMetrics per domain pair
    ms_per_query: float  # pooled over all pairs
    index_seconds: float  # gallery-side time, summed over pairs


def run_protocols(fitted: FittedMethod, table: pd.DataFrame, exclude: str = "group", k: int = 10,
                  timing_repeats: int = 1) -> ProtocolRun:
    """Score every protocol pair of ``table`` (see :func:`protocol_pairs`).

    timing_repeats: score each pair this many times and keep the fastest ms/query (timings of
    sub-millisecond work are noisy; the scores are deterministic).
    """
    parts: dict[str, list[QueryMetrics]] = {p: [] for p in PROTOCOLS}
    total_ms, total_queries, index_seconds = 0.0, 0, 0.0
    for pair in protocol_pairs(table):
        queries, gallery = table.iloc[pair.query_rows], table.iloc[pair.gallery_rows]
        scores, ms = fitted.score(queries, gallery, exclude)
        for _ in range(max(0, timing_repeats - 1)):
            ms = min(ms, fitted.score(queries, gallery, exclude)[1])
        parts[pair.protocol].append(query_metrics(scores, queries, gallery, exclude, k))
        total_ms += ms * len(queries)
        total_queries += len(queries)
        index_seconds += fitted.last_index_seconds
    return ProtocolRun(parts, total_ms / max(total_queries, 1), index_seconds)


def _selection_value(run: ProtocolRun, selection: str, k: int) -> tuple[float, float]:
    """What validation maximises: (primary, tie-breaker), NaN -> -inf."""
    def p_at_k(protocol: str) -> float:
        values = np.concatenate([p.p_at_k for p in run.parts[protocol]]) if run.parts[protocol] else np.zeros(0)
        return float(values.mean()) if values.size else -math.inf
    same, cross = p_at_k("same-domain"), p_at_k("cross-domain")
    if selection == "cross-domain":
        return cross, same
    if selection == "same-domain":
        return same, cross
    finite = [v for v in (same, cross) if math.isfinite(v)]
    return (float(np.mean(finite)) if finite else -math.inf), cross


# ----------------------------------------------------------------------------- the comparison
@dataclass
class ComparisonResult:
    """Everything :func:`compare_methods` measured; ``table`` is THE table (one row per method)."""

    table: pd.DataFrame  # index: method; numeric columns (see compare_methods)
    validation: pd.DataFrame  # every candidate tried on validation, and which one each row chose
    chosen: dict[str, MethodSpec]  # row -> the configuration chosen on validation
    fitted: dict[str, FittedMethod]  # row -> that configuration fitted on the whole fit side
    metrics: dict[str, dict[str, dict[str, Any]]]  # row -> protocol -> evaluate dict (test)
    score_samples: dict[str, dict[str, np.ndarray]]  # row -> {"relevant", "irrelevant"} test pair scores
    head_history: dict[str, pd.DataFrame]  # "triplet" / "ntxent" -> history of the head fitted on the fit side
    fit_table: pd.DataFrame
    test_table: pd.DataFrame
    train_table: pd.DataFrame  # the fit side minus validation: what candidates are fitted on while choosing
    val_table: pd.DataFrame
    encoder_id: str
    selection: str
    k: int
    audit: dict[str, set[str]] = field(default_factory=dict)  # groups of each stage: fitted_while_choosing, validated, fitted_final, tested
    best_rows: dict[str, str] = field(default_factory=dict)  # role ("vector", "calibration", "head", "hybrid") -> row chosen on validation

    def formatted(self, digits: int = 3) -> pd.DataFrame:
        """THE table for people: 'value [low, high]' strings for metrics with CIs."""
        t = self.table
        out = pd.DataFrame(index=t.index)
        for protocol in PROTOCOLS:
            for metric in (f"P@{self.k}", "mAP"):
                name = f"{protocol} {metric}"
                out[f"{name} [95% CI]"] = [f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]" if np.isfinite(v) else "n/a"
                                           for v, lo, hi in zip(t[name], t[f"{name} lo"], t[f"{name} hi"])]
        out["score AUC"] = t["score AUC"].round(digits)
        out["ms/query added"] = t["ms/query added"].round(3)
        out["fit s"] = t["fit s"].round(2)
        out["chosen on validation"] = t["chosen on validation"]
        return out

    def value(self, row: str, column: str) -> float:
        """One number of the table, e.g. value('best combination', 'cross-domain P@10')."""
        if row not in self.table.index or column not in self.table.columns:
            raise ParameterError(f"no {row!r} x {column!r} in the table; rows {list(self.table.index)}, "
                                 f"columns {list(self.table.columns)}")
        return float(self.table.loc[row, column])

    def improvement(self, row: str = ROW_BEST, protocol: str = "cross-domain") -> float:
        """P@k of a row minus zero-shot's, on the test groups."""
        column = f"{protocol} P@{self.k}"
        return self.value(row, column) - self.value(ROW_ZERO_SHOT, column)

    def test_vectors(self, row: str) -> np.ndarray:
        """A single-field row's vectors for the test table (e.g. raw vs head for UMAP)."""
        return self.fitted[row].test_vectors(self.test_table)


def _calibration_candidates(dim: int, n_train: int, grid: Sequence[int | None]) -> list[MethodSpec]:
    cap = min(dim, n_train - 1)
    values: list[int | None] = []
    for n in grid:
        if n is None or n <= cap:
            if n not in values:
                values.append(n)
    return [MethodSpec((VectorSpec("whiten", n_components=n),)) for n in values]


def compare_methods(table: pd.DataFrame, test_fraction: float = 0.4, val_fraction: float = 0.34, seed: int = 0,
                    k: int = 10, n_boot: int = 1000, max_epochs: int = 50, exclude: str = "group",
                    selection: str = "cross-domain", whiten_grid: Sequence[int | None] = DEFAULT_WHITEN_GRID,
                    head_variants: Sequence[Mapping[str, Any]] = ({},), qe_ks: Sequence[int] = DEFAULT_QE_KS,
                    dba_ks: Sequence[int] = DEFAULT_DBA_KS, kr_params: Sequence[tuple[int, int]] = DEFAULT_KR_PARAMS,
                    weight_step: float = 0.1, extra_tables: Mapping[str, pd.DataFrame] | None = None,
                    progress: bool = False, log: Callable[[str], None] | None = None) -> ComparisonResult:
    """Zero-shot against every method alone and the best combination, on held-out groups.

    Splits ``table`` with :func:`split_held_out_groups` (``test_fraction``, ``seed``) and hands over
    to :func:`compare_on_split`; see there for every other parameter.
    """
    fit_table, test_table = split_held_out_groups(table, test_fraction, seed)
    return compare_on_split(fit_table, test_table, val_fraction=val_fraction, seed=seed, k=k, n_boot=n_boot,
                            max_epochs=max_epochs, exclude=exclude, selection=selection, whiten_grid=whiten_grid,
                            head_variants=head_variants, qe_ks=qe_ks, dba_ks=dba_ks, kr_params=kr_params,
                            weight_step=weight_step, extra_tables=extra_tables, progress=progress, log=log)


def compare_on_split(fit_table: pd.DataFrame, test_table: pd.DataFrame, val_fraction: float = 0.34, seed: int = 0,
                     k: int = 10, n_boot: int = 1000, max_epochs: int = 50, exclude: str = "group",
                     selection: str = "cross-domain", whiten_grid: Sequence[int | None] = DEFAULT_WHITEN_GRID,
                     head_variants: Sequence[Mapping[str, Any]] = ({},), qe_ks: Sequence[int] = DEFAULT_QE_KS,
                     dba_ks: Sequence[int] = DEFAULT_DBA_KS, kr_params: Sequence[tuple[int, int]] = DEFAULT_KR_PARAMS,
                     weight_step: float = 0.1, extra_tables: Mapping[str, pd.DataFrame] | None = None,
                     progress: bool = False, log: Callable[[str], None] | None = None) -> ComparisonResult:
    """Choose every method's configuration on a validation split of ``fit_table``; measure it once on ``test_table``.

    val_fraction: share of the fit side's groups used for validation (split like the test split, seed + 1).
    selection: what validation maximises: "cross-domain" P@k (the issue's target), "same-domain", or "mean".
    whiten_grid: whitening dimensions tried (None = all; capped by the dimension and the train size).
    head_variants: HeadTrainingConfig overrides tried for each loss (e.g. ``({}, {"out_dim": 64})``).
    qe_ks, dba_ks, kr_params: re-ranking parameters tried; weight_step: fusion weight grid step.
    extra_tables: other encoders' tables of the same clips (``{"visual": ..., "flow": ...}``) added as
    hybrid fields ("flow" is skipped when the primary encoder is the flow encoder).
    Table columns: ``{same,cross}-domain P@k`` / ``mAP`` with `` lo`` / `` hi`` CIs, ``score AUC``
    (all allowed test pairs), ``ms/query added`` (over zero-shot cosine, floored at 0), ``ms/query``,
    ``index s`` (gallery-side work), ``fit s``, ``chosen on validation``.
    """
    if selection not in SELECTIONS:
        raise ParameterError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ParameterError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0 < weight_step < 1:
        raise ParameterError(f"weight_step must be between 0 and 1 (e.g. 0.1), got {weight_step!r}")
    _require_columns(fit_table, ("clip_id", "video_path", "label", "domain", "group", "encoder_id", "embedding"),
                     "the fit table")
    _require_columns(test_table, ("clip_id", "video_path", "label", "domain", "group", "encoder_id", "embedding"),
                     "the test table")
    overlap = set(effective_groups(fit_table)) & set(effective_groups(test_table))
    if overlap:
        raise ParameterError(f"{len(overlap)} group(s) are on both the fit and the test side (e.g. {sorted(overlap)[0]}); "
                             "split with split_held_out_groups")
    encoder_id = table_encoder_id(pd.concat([fit_table[["encoder_id"]], test_table[["encoder_id"]]]))
    say = log or (lambda message: None)

    extra_names = [name for name in (extra_tables or {}) if not (name == "flow" and encoder_id.startswith("flow:"))]
    extras = {name: extra_tables[name] for name in extra_names}
    if extras:
        fit_table, test_table = attach_extra_vectors(fit_table, extras), attach_extra_vectors(test_table, extras)
    train_table, val_table = split_held_out_groups(fit_table, val_fraction, seed + 1)
    dim = int(_column_matrix(fit_table.iloc[:1], "embedding").shape[1])

    choose_cache, final_cache = FitCache(train_table, progress), FitCache(fit_table, progress)
    validation_rows: list[dict[str, Any]] = []
    validated: dict[MethodSpec, tuple[float, float]] = {}

    def validate(spec: MethodSpec) -> tuple[float, float]:
        if spec not in validated:
            run = run_protocols(spec.fit(train_table, choose_cache), val_table, exclude, k)
            validated[spec] = _selection_value(run, selection, k)
        return validated[spec]

    def choose(row: str, candidates: Sequence[MethodSpec]) -> MethodSpec:
        values = [validate(spec) for spec in candidates]
        best = max(range(len(candidates)), key=lambda i: (values[i], -i))  # ties: the earlier (simpler) candidate
        for i, (spec, value) in enumerate(zip(candidates, values)):
            validation_rows.append({"row": row, "candidate": spec.label,
                                    f"val {selection} P@{k}": value[0] if math.isfinite(value[0]) else np.nan,
                                    "val tie-breaker": value[1] if math.isfinite(value[1]) else np.nan,
                                    "chosen": i == best})
        say(f"{row}: chose {candidates[best].label} (validation {selection} P@{k} = {values[best][0]:.3f})")
        return candidates[best]

    chosen: dict[str, MethodSpec] = {}
    chosen[ROW_ZERO_SHOT] = choose(ROW_ZERO_SHOT, [MethodSpec((VectorSpec("raw"),))])
    chosen[ROW_CENTER] = choose(ROW_CENTER, [MethodSpec((VectorSpec("center"),))])
    chosen[ROW_WHITEN] = choose(ROW_WHITEN, _calibration_candidates(dim, len(train_table), whiten_grid))
    for row, loss in ((ROW_TRIPLET, "triplet"), (ROW_NTXENT, "ntxent")):
        chosen[row] = choose(row, [MethodSpec((VectorSpec("head", head=head_config(loss, max_epochs, seed, **variant)),))
                                   for variant in head_variants])

    best_rows: dict[str, str] = {}

    def best_of(role: str, rows: Sequence[str]) -> MethodSpec:
        best_rows[role] = max(rows, key=lambda r: (validate(chosen[r]), -rows.index(r)))
        return chosen[best_rows[role]]

    best_vector = best_of("vector", [ROW_ZERO_SHOT, ROW_CENTER, ROW_WHITEN, ROW_TRIPLET, ROW_NTXENT])
    best_calibration = best_of("calibration", [ROW_ZERO_SHOT, ROW_CENTER, ROW_WHITEN]).fields[0]
    best_head = best_of("head", [ROW_TRIPLET, ROW_NTXENT]).fields[0]
    hybrid_fields = (best_calibration, best_head, *(VectorSpec("raw", column=name) for name in extra_names))
    chosen[ROW_RRF] = choose(ROW_RRF, [MethodSpec(hybrid_fields, fusion="rrf")])
    chosen[ROW_WEIGHTED] = choose(ROW_WEIGHTED, [MethodSpec(hybrid_fields, fusion="weighted", weights=w)
                                                 for w in simplex_weights(len(hybrid_fields),
                                                                          weight_step if len(hybrid_fields) == 2 else 0.25)])
    qe = [Reranker(query_expansion=True, qe_k=q) for q in qe_ks]
    dba = [Reranker(database_augmentation=True, dba_k=d) for d in dba_ks]
    kr = [Reranker(k_reciprocal=True, k1=k1, k2=k2) for k1, k2 in kr_params]
    chosen[ROW_QE] = choose(ROW_QE, [replace(best_vector, reranker=r) for r in qe])
    chosen[ROW_DBA] = choose(ROW_DBA, [replace(best_vector, reranker=r) for r in dba])
    chosen[ROW_KR] = choose(ROW_KR, [replace(best_vector, reranker=r) for r in kr])

    qe_r, dba_r, kr_r = (chosen[row].reranker for row in (ROW_QE, ROW_DBA, ROW_KR))
    combos = [None, qe_r, dba_r, kr_r,
              replace(dba_r, query_expansion=True, qe_k=qe_r.qe_k),
              replace(qe_r, k_reciprocal=True, k1=kr_r.k1, k2=kr_r.k2),
              replace(dba_r, k_reciprocal=True, k1=kr_r.k1, k2=kr_r.k2),
              replace(dba_r, query_expansion=True, qe_k=qe_r.qe_k, k_reciprocal=True, k1=kr_r.k1, k2=kr_r.k2)]
    best_hybrid = best_of("hybrid", [ROW_RRF, ROW_WEIGHTED])
    candidates = list(dict.fromkeys([*(chosen[r] for r in chosen),
                                     *(replace(base, reranker=r) for base in (best_vector, best_hybrid) for r in combos)]))
    chosen[ROW_BEST] = choose(ROW_BEST, candidates)

    # ---- the one evaluation on the test groups
    metrics: dict[str, dict[str, dict[str, Any]]] = {}
    fitted: dict[str, FittedMethod] = {}
    samples: dict[str, dict[str, np.ndarray]] = {}
    rows = []
    for row, spec in chosen.items():
        fitted[row] = spec.fit(fit_table, final_cache)
        run = run_protocols(fitted[row], test_table, exclude, k, timing_repeats=TIMING_REPEATS)
        metrics[row] = {protocol: summarise_metrics(run.parts[protocol], k, n_boot, seed) for protocol in PROTOCOLS}
        pooled = summarise_metrics([p for parts in run.parts.values() for p in parts], k, n_boot=1, seed=seed)
        relevant = np.concatenate([p.relevant_scores for parts in run.parts.values() for p in parts])
        irrelevant = np.concatenate([p.irrelevant_scores for parts in run.parts.values() for p in parts])
        samples[row] = {"relevant": _sample(relevant, seed), "irrelevant": _sample(irrelevant, seed)}
        record: dict[str, Any] = {"method": row}
        for protocol in PROTOCOLS:
            for metric in (f"P@{k}", "mAP"):
                m = metrics[row][protocol]
                record[f"{protocol} {metric}"] = m[metric]
                record[f"{protocol} {metric} lo"] = m[f"{metric}_lo"]
                record[f"{protocol} {metric} hi"] = m[f"{metric}_hi"]
        record.update({"score AUC": pooled["auc"], "ms/query": run.ms_per_query, "index s": run.index_seconds,
                       "fit s": fitted[row].fit_seconds, "chosen on validation": spec.label})
        rows.append(record)
        say(f"{row}: test cross-domain P@{k} = {metrics[row]['cross-domain'][f'P@{k}']:.3f}")
    frame = pd.DataFrame(rows).set_index("method")
    frame.insert(frame.columns.get_loc("ms/query"), "ms/query added",
                 (frame["ms/query"] - frame.loc[ROW_ZERO_SHOT, "ms/query"]).clip(lower=0.0))
    histories = {spec.head.loss: final_cache.fitted[spec].history for spec in final_cache.fitted if spec.kind == "head"
                 and spec in (chosen[ROW_TRIPLET].fields[0], chosen[ROW_NTXENT].fields[0])}
    audit = {"fitted_while_choosing": set(choose_cache.groups_seen), "validated": set(effective_groups(val_table)),
             "fitted_final": set(final_cache.groups_seen), "tested": set(effective_groups(test_table))}
    return ComparisonResult(table=frame, validation=pd.DataFrame(validation_rows), chosen=chosen, fitted=fitted,
                            metrics=metrics, score_samples=samples, head_history=histories, fit_table=fit_table,
                            test_table=test_table, train_table=train_table, val_table=val_table, encoder_id=encoder_id,
                            selection=selection, k=k, audit=audit, best_rows=best_rows)


def _sample(values: np.ndarray, seed: int, limit: int = 20_000) -> np.ndarray:
    values = values[np.isfinite(values)]
    if values.size > limit:
        values = np.random.default_rng(seed).choice(values, limit, replace=False)
    return values.astype(np.float32)


# ----------------------------------------------------------------------------- transforms stored with a collection
def save_transforms(store, calibration: ScoreCalibration | None = None, head: TrainedHead | None = None) -> list[str]:
    """Store a calibration and/or a projection head with a collection (``store.save_array``); returns the array names.

    Arrays of an earlier calibration / head under the same prefix are removed first, so a reload
    never mixes two fits.
    """
    written = []
    for kind, artifact in (("calibration", calibration), ("head", head)):
        if artifact is None:
            continue
        prefix = TRANSFORM_PREFIXES[kind]
        for name in [n for n in store.list_arrays() if n.startswith(prefix)]:
            store.delete_array(name)
        for key, array in artifact.to_arrays().items():
            store.save_array(prefix + key, array)
            written.append(prefix + key)
    return written


def load_transforms(store, expected_encoder_id: str | None = None) -> tuple[ScoreCalibration | None, TrainedHead | None]:
    """The calibration and head stored with a collection by :func:`save_transforms` (None where absent)."""
    names = list(store.list_arrays())
    loaded: dict[str, Any] = {}
    for kind, prefix in TRANSFORM_PREFIXES.items():
        arrays = {n[len(prefix):]: store.load_array(n) for n in names if n.startswith(prefix)}
        if not arrays:
            loaded[kind] = None
        elif kind == "calibration":
            loaded[kind] = ScoreCalibration.from_arrays(arrays)
        else:
            loaded[kind] = TrainedHead.from_arrays(arrays, expected_encoder_id=expected_encoder_id)
    if expected_encoder_id and loaded["calibration"] is not None and loaded["calibration"].encoder_id \
            and loaded["calibration"].encoder_id != expected_encoder_id:
        raise EncoderMismatchError(f"the calibration stored with collection '{store.collection}' was fitted on "
                                   f"{loaded['calibration'].encoder_id!r}, not {expected_encoder_id!r}; re-run calibrate")
    return loaded["calibration"], loaded["head"]


def _arrays_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(np.asarray(a[key]), np.asarray(b[key])) for key in a)


def hybrid_field_names(specs: Sequence[VectorSpec]) -> list[str]:
    """Milvus field names for hybrid fields: the first is 'embedding', a head is 'head', extras keep their column name."""
    names = ["embedding"]
    for spec in specs[1:]:
        name = "head" if spec.kind == "head" else spec.column
        if name in names:
            raise ParameterError(f"two hybrid fields would both be stored as {name!r}: {[s.label for s in specs]}")
        names.append(name)
    return names


def _fields_artifacts(fields: Sequence[FittedVectors]) -> tuple[ScoreCalibration | None, TrainedHead | None]:
    calibrations = [f.artifact for f in fields if isinstance(f.artifact, ScoreCalibration) and f.spec.column == "embedding"]
    heads = [f.artifact for f in fields if isinstance(f.artifact, TrainedHead)]
    if len(calibrations) > 1 or len(heads) > 1 or any(isinstance(f.artifact, ScoreCalibration) and f.spec.column != "embedding"
                                                      for f in fields):
        raise ParameterError("a hybrid collection stores at most one calibration of the main embedding and one head")
    return (calibrations[0] if calibrations else None), (heads[0] if heads else None)


def _field_encoder_id(fitted: FittedVectors, table: pd.DataFrame) -> str:
    if isinstance(fitted.artifact, (ScoreCalibration, TrainedHead)):
        return fitted.artifact.output_encoder_id
    return table_encoder_id(table)


def index_hybrid(table: pd.DataFrame, store, fields: Sequence[FittedVectors], preprocessing: Mapping[str, Any],
                 recreate: bool = True, clip_spec: Mapping[str, Any] | None = None,
                 index_type: str | None = None) -> dict[str, Any]:
    """Write ``table`` into a multi-vector collection (one field per fitted representation) and store the transforms.

    The first field becomes the collection's ``embedding`` (its encoder_id records the calibration,
    if any); the others become extra vector fields (see :func:`hybrid_field_names`). Returns
    ``{"rows", "fields": {name: dim}, "encoder_id", "arrays"}``. ``index_type`` defaults to the store's.
    """
    from .store import DEFAULT_INDEX_TYPE

    names = hybrid_field_names([f.spec for f in fields])
    vectors = {name: f.transform(table) for name, f in zip(names, fields)}
    encoder_id = _field_encoder_id(fields[0], table)
    out = table.copy()
    out["encoder_id"] = encoder_id
    for name in names:
        out[name] = list(vectors[name])
    dims = {name: int(v.shape[1]) for name, v in vectors.items()}
    store.ensure_collection(encoder_id=encoder_id, dim=dims["embedding"], preprocessing=dict(preprocessing),
                            extra_vectors={n: d for n, d in dims.items() if n != "embedding"}, recreate=recreate,
                            clip_spec=clip_spec, index_type=index_type or DEFAULT_INDEX_TYPE)
    rows = store.upsert(out, vector_columns={name: name for name in names}, progress=False)
    calibration, head = _fields_artifacts(fields)
    arrays = save_transforms(store, calibration=calibration, head=head)
    return {"rows": rows, "fields": dims, "encoder_id": encoder_id, "arrays": arrays}


@dataclass
class HybridCheckResult:
    """Milvus hybrid search against the numpy fusion, on the test groups."""

    table: pd.DataFrame  # one row per (ranker, protocol): P@k numpy, P@k Milvus, top-k agreement, ms/query
    round_trip: dict[str, Any]  # what was stored with the collection and whether it came back identical
    weights: tuple[float, ...]
    fields: dict[str, int]
    collection: str
    uri: str


def milvus_hybrid_check(fit_table: pd.DataFrame, test_table: pd.DataFrame, store_uri: str,
                        spec: MethodSpec | None = None, fitted: Sequence[FittedVectors] | None = None,
                        collection: str = "motionmatch_beyond_hybrid", k: int = 10, exclude: str = "group",
                        rrf_k: int = RRF_K, preprocessing: Mapping[str, Any] | None = None,
                        max_epochs: int = 50, seed: int = 0) -> HybridCheckResult:
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
    """
    from .store import MAX_TOPK, MotionStore

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
        original_calibration, original_head = _fields_artifacts(fitted)
        reloaded = [FittedVectors(f.spec, calibration if isinstance(f.artifact, ScoreCalibration)
                                  else head if isinstance(f.artifact, TrainedHead) else None) for f in fitted]
        query_vectors_original = {n: f.transform(test_table) for n, f in zip(names, fitted)}
        query_vectors = {n: f.transform(test_table) for n, f in zip(names, reloaded)}
        round_trip = {
            "arrays_stored": stored["arrays"],
            "collection_encoder_id": info["encoder_id"],
            "calibration_arrays_equal": None if original_calibration is None else
            _arrays_equal(original_calibration.to_arrays(), calibration.to_arrays()),
            "head_arrays_equal": None if original_head is None else
            _arrays_equal(original_head.to_arrays(), head.to_arrays()),
            "encoder_id_matches": info["encoder_id"] == _field_encoder_id(reloaded[0], test_table),
            "max_query_vector_difference": float(max(np.abs(query_vectors[n] - query_vectors_original[n]).max()
                                                     for n in names)),
        }
        numpy_methods = {"rrf": replace(spec, fusion="rrf", weights=None, rrf_k=rrf_k),
                         "weighted": replace(spec, fusion="weighted", weights=weights)}
        rows = []
        for ranker, method in numpy_methods.items():
            fitted_method = FittedMethod(method, reloaded)
            for protocol in PROTOCOLS:
                numpy_p, milvus_p, same_top, same_scores, overlap, milvus_ms, n_q = [], [], [], [], [], 0.0, 0
                for pair in (p for p in protocol_pairs(test_table) if p.protocol == protocol):
                    queries, gallery = test_table.iloc[pair.query_rows], test_table.iloc[pair.gallery_rows]
                    mask = exclusion_mask(queries, gallery, exclude)
                    scores, _ = fitted_method.score(queries, gallery, exclude)
                    gallery_ids = gallery["clip_id"].astype(str).to_numpy()
                    limit = min(MAX_TOPK, k + int(mask.sum(axis=1).max()))
                    started = time.perf_counter()
                    hits = store.hybrid_search({n: query_vectors[n][pair.query_rows] for n in names}, k=limit,
                                               ranker=ranker, weights=list(weights) if ranker == "weighted" else None,
                                               rrf_k=rrf_k, filters={"domain": pair.gallery_domain},
                                               candidate_k=min(MAX_TOPK, max(limit, len(gallery))))
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
                             weights=weights, fields=stored["fields"], collection=collection, uri=str(store_uri))


def _fmt(value: float) -> str:
    return f"{value:.3f}" if np.isfinite(value) else "n/a"


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


# ----------------------------------------------------------------------------- plain words
def conclusion_lines(result: ComparisonResult, target_gain: float = 0.20, encoder_description: str = "") -> list[str]:
    """A plain-words conclusion from the numbers (markdown bullet lines); nothing typed in by hand."""
    k = result.k
    column = f"cross-domain P@{k}"
    zero, best = result.value(ROW_ZERO_SHOT, column), result.value(ROW_BEST, column)
    gain = best - zero
    same_zero, same_best = result.value(ROW_ZERO_SHOT, f"same-domain P@{k}"), result.value(ROW_BEST, f"same-domain P@{k}")
    table = result.table
    single = table.drop(index=[ROW_BEST])
    top_row = single[column].idxmax()
    lines = [f"**Encoder behind every number:** {encoder_description or result.encoder_id}", ""]
    lines.append(f"- **Baseline.** Zero-shot cosine on {result.test_table['group'].nunique()} held-out groups "
                 f"({len(result.test_table)} clips): same-domain P@{k} {_fmt(same_zero)}, cross-domain P@{k} {zero:.3f}.")
    lines.append(f"- **Best combination (chosen on validation, never on test):** {table.loc[ROW_BEST, 'chosen on validation']}: "
                 f"cross-domain P@{k} {best:.3f} [{table.loc[ROW_BEST, column + ' lo']:.3f}, "
                 f"{table.loc[ROW_BEST, column + ' hi']:.3f}], same-domain {_fmt(same_best)}; "
                 f"it adds {table.loc[ROW_BEST, 'ms/query added']:.2f} ms per query and took "
                 f"{table.loc[ROW_BEST, 'fit s']:.1f} s to fit.")
    if not np.isfinite(same_zero):
        per_cell = result.test_table.groupby(["label", "domain"])["group"].nunique()
        held = f"{per_cell.min()}" if per_cell.min() == per_cell.max() else f"{per_cell.min()}-{per_cell.max()}"
        lines.append(f"- **Same-domain is not measurable on this split:** the test side holds {held} "
                     "group(s) per (label, domain), and the query's own group never counts, so no same-domain clip is "
                     "left to find. Use more groups per class and domain (or a larger test_fraction) to measure it.")
    lines.append(f"- **Best single method on test:** {top_row} (cross-domain P@{k} {single.loc[top_row, column]:.3f}); "
                 f"the test numbers are reported, not used to choose.")
    chosen_rows = result.validation[(result.validation["row"] == ROW_BEST) & result.validation["chosen"]]
    if len(chosen_rows):
        val_value = float(chosen_rows.iloc[0][f"val {result.selection} P@{k}"])
        val_zero = float(result.validation[result.validation["row"] == ROW_ZERO_SHOT].iloc[0][f"val {result.selection} P@{k}"])
        lines.append(f"- **Validation against test.** On validation the chosen combination scored {val_value:.3f} against "
                     f"zero-shot's {val_zero:.3f} ({val_value - val_zero:+.3f}); on test the gain is {gain:+.3f}. "
                     f"It was the best of {int((result.validation['row'] == ROW_BEST).sum())} candidates on "
                     f"{result.val_table['group'].nunique()} validation groups, so its validation score is optimistic "
                     "(the winner's curse); the test number is the one to quote.")
    met = gain >= target_gain - 1e-12
    verdict = (f"- **Acceptance (+{target_gain:.2f} absolute cross-domain P@{k} over zero-shot, same encoder):** "
               f"{'MET' if met else 'NOT met'}: {zero:.3f} -> {best:.3f} ({gain:+.3f}).")
    lines.append(verdict)
    if not met:
        reasons = []
        zero_lo, zero_hi = table.loc[ROW_ZERO_SHOT, column + " lo"], table.loc[ROW_ZERO_SHOT, column + " hi"]
        best_lo = table.loc[ROW_BEST, column + " lo"]
        if best_lo <= zero_hi:
            reasons.append(f"the best method's 95% CI [{best_lo:.3f}, ...] overlaps zero-shot's [{zero_lo:.3f}, {zero_hi:.3f}]")
        head_rows = [r for r in (ROW_TRIPLET, ROW_NTXENT) if r in table.index]
        head_gain = max(table.loc[r, column] for r in head_rows) - zero if head_rows else float("nan")
        reasons.append(f"the trained heads move cross-domain P@{k} by {head_gain:+.3f} (fitted on "
                       f"{result.fit_table['group'].nunique()} groups, {len(result.fit_table)} clips)")
        calibration_gain = max(table.loc[ROW_CENTER, column], table.loc[ROW_WHITEN, column]) - zero
        reasons.append(f"calibration moves it by {calibration_gain:+.3f}")
        ceiling = table[column].max()
        reasons.append(f"no method in the table exceeds {ceiling:.3f}, i.e. {ceiling - zero:+.3f} over zero-shot, even "
                       "when judged on test")
        lines.append("  Why not, from the numbers: " + "; ".join(reasons) + ".")
    return lines
