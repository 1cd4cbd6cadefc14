"""The held-out comparison of every beyond-zero-shot method against zero-shot cosine (notebook 06).

How the comparison is kept honest:

1. **Held-out groups.** :func:`motionmatch.beyond.splits.split_held_out_groups` puts every group on one
   side only; the test groups are touched once, at the very end.
2. **Choices on validation only.** The fit side is split again by group into *train* and
   *validation*. Every choice (whitening dimensions, which head, fusion weights, re-ranking
   parameters, the "best combination") is made by fitting on train and scoring validation; the
   chosen configuration is then refitted on the whole fit side and evaluated once on test.
   :class:`ComparisonResult` keeps an audit of the groups each stage saw.
3. **Protocols.** :func:`motionmatch.beyond.splits.protocol_pairs`; the query's own clip, video and group
   never count (:func:`motionmatch.evaluation.retrieval.exclusion_mask`). Every metric comes from
   :func:`motionmatch.evaluation.retrieval.query_metrics`, the one engine.
4. **Costs.** Every method reports the query-time milliseconds it adds over zero-shot cosine and
   its fit seconds (gallery-side work such as DBA is index time, reported separately).

Known limits, stated rather than hidden: scoring is dense (n_queries x n_gallery), which suits
evaluation sets up to ~10k clips; in same-domain leave-one-out, DBA may let a gallery clip borrow
from the query clip itself (it augments the whole gallery once); the cross-domain protocol is free
of this.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import MotionMatchError, ParameterError
from ..evaluation.coverage import no_person_note, no_person_table, rankable
from ..evaluation.retrieval import QueryMetrics, query_metrics, summarise_metrics
from .methods import FitCache, FittedMethod, MethodSpec, VectorSpec, column_matrix, head_config, simplex_weights
from ..refine.calibrate import score_spread
from ..refine.rerank import Reranker
from .splits import PROTOCOLS, attach_extra_vectors, protocol_pairs, split_held_out_groups
from ..table import effective_groups, require_columns, table_encoder_id
from ..validation import check_choice, check_scalar

SELECTIONS = ("cross-domain", "same-domain", "mean")
DEFAULT_WHITEN_GRID: tuple[int | None, ...] = (16, 32, 64, 128, None)  # None = every direction with variance
DEFAULT_QE_KS = (3, 5, 10)  # alpha-QE neighbours tried on validation
DEFAULT_DBA_KS = (3, 5, 10)  # DBA neighbours tried on validation
DEFAULT_KR_PARAMS = ((10, 3), (20, 6))  # (k1, k2) of k-reciprocal re-ranking tried on validation
TIMING_REPEATS = 3  # test-time scoring is repeated and the fastest ms/query kept

ROW_ZERO_SHOT = "zero-shot cosine"
ROW_CENTER = "calibration: center"
ROW_WHITEN = "calibration: whiten"
ROW_TRIPLET = "head: triplet"
ROW_NTXENT = "head: NT-Xent"
ROW_RRF = "hybrid: RRF"
ROW_WEIGHTED = "hybrid: weighted"
ROW_CHANNELS = "hybrid: weighted channels"  # the best calibrated embedding + each extra encoder's raw vectors, no head
ROW_QE = "re-rank: alpha-QE"
ROW_DBA = "re-rank: DBA"
ROW_KR = "re-rank: k-reciprocal"
ROW_BEST = "best combination"


@dataclass
class ProtocolRun:
    """A fitted method scored on every protocol pair of one table."""

    parts: dict[str, list[QueryMetrics]]  # protocol -> one QueryMetrics per domain pair
    ms_per_query: float  # pooled over all pairs
    index_seconds: float  # gallery-side time, summed over pairs


def run_protocols(fitted: FittedMethod, table: pd.DataFrame, exclude: str = "group", k: int = 10,
                  timing_repeats: int = 1, pair_scores: bool = True) -> ProtocolRun:
    """Score every protocol pair of ``table`` (see :func:`protocol_pairs`).

    timing_repeats: score each pair this many times and keep the fastest ms/query (timings of
    sub-millisecond work are noisy; the scores are deterministic). pair_scores: keep every allowed
    pair's score (for the AUC and the histograms; validation needs only P@k).
    """
    parts: dict[str, list[QueryMetrics]] = {p: [] for p in PROTOCOLS}
    total_ms, total_queries, index_seconds = 0.0, 0, 0.0
    for pair in protocol_pairs(table):
        queries, gallery = table.iloc[pair.query_rows], table.iloc[pair.gallery_rows]
        scores, ms = fitted.score(queries, gallery, exclude)
        for _ in range(max(0, timing_repeats - 1)):
            ms = min(ms, fitted.score(queries, gallery, exclude)[1])
        parts[pair.protocol].append(query_metrics(scores, queries, gallery, exclude, (k,), pair_scores=pair_scores))
        total_ms += ms * len(queries)
        total_queries += len(queries)
        index_seconds += fitted.last_index_seconds
    return ProtocolRun(parts, total_ms / max(total_queries, 1), index_seconds)


def _selection_value(run: ProtocolRun, selection: str, k: int) -> tuple[float, float]:
    """What validation maximises: (primary, tie-breaker), NaN -> -inf."""
    def p_at_k(protocol: str) -> float:
        values = np.concatenate([p.values[f"P@{k}"] for p in run.parts[protocol]]) if run.parts[protocol] else np.zeros(0)
        return float(values.mean()) if values.size else -math.inf
    same, cross = p_at_k("same-domain"), p_at_k("cross-domain")
    if selection == "cross-domain":
        return cross, same
    if selection == "same-domain":
        return same, cross
    finite = [v for v in (same, cross) if math.isfinite(v)]
    return (float(np.mean(finite)) if finite else -math.inf), cross


# ----------------------------------------------------------------------------- the comparison
class LeakageError(MotionMatchError):
    """A test group reached fitting or validation: the comparison's test numbers are not held out."""


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
    no_person: pd.DataFrame | None = None  # clips of the primary encoder with coverage 0, left out (never scored)
    exclude: str = "group"  # what a query may not retrieve in every protocol (its own clip always; video; group)

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

    def check_no_leakage(self) -> dict[str, int]:
        """Test groups seen by each earlier stage (fitting while choosing, validation, the final fit), from
        ``audit``: all zero, else a :class:`LeakageError` naming the stage and a group. Returns the counts."""
        if "tested" not in self.audit:
            raise ParameterError("this comparison has no audit of the groups each stage saw; build it with "
                                 "compare_methods or compare_on_split")
        tested = self.audit["tested"]
        seen = {stage: sorted(groups & tested) for stage, groups in self.audit.items() if stage != "tested"}
        leaked = {stage: groups for stage, groups in seen.items() if groups}
        if leaked:
            stage, groups = next(iter(leaked.items()))
            raise LeakageError(f"{sum(map(len, leaked.values()))} test group(s) reached {', '.join(leaked)} "
                               f"(e.g. {groups[0]!r} in {stage}): the test numbers are not held out; split with "
                               "split_held_out_groups and pass the fit side only to fitting and validation")
        return {stage: 0 for stage in seen}

    def test_vectors(self, row: str) -> np.ndarray:
        """A single-field row's vectors for the test table (e.g. raw vs head for UMAP)."""
        return self.fitted[row].test_vectors(self.test_table)

    def split_summary(self) -> pd.DataFrame:
        """Groups, clips, labels and domains of each side: train (fitted while choosing), validation, test."""
        sides = {"train (fit while choosing)": self.train_table, "validation (choose)": self.val_table,
                 "test (measure once)": self.test_table}
        return pd.DataFrame({name: {"groups": len(set(effective_groups(part))), "clips": len(part),
                                    "labels": part["label"].nunique(), "domains": part["domain"].nunique()}
                             for name, part in sides.items()}).T

    def score_spreads(self, rows: Sequence[str] = (ROW_ZERO_SHOT, ROW_CENTER, ROW_WHITEN), seed: int = 0) -> pd.DataFrame:
        """How each row's test vectors spread their pair cosines (:func:`motionmatch.refine.score_spread`): the 5%,
        50% and 95% quantiles, the standard deviation and the share in the notes' band [0.95, 0.98]."""
        spread = {row: score_spread(self.test_vectors(row), seed=seed) for row in rows}
        return pd.DataFrame(spread).T[["q05", "q50", "q95", "std", "frac_in_095_098"]].rename(
            columns={"frac_in_095_098": "share of pair cosines in [0.95, 0.98]"})


def _calibration_candidates(dim: int, n_train: int, grid: Sequence[int | None]) -> list[MethodSpec]:
    cap = min(dim, n_train - 1)
    values: list[int | None] = []
    for n in grid:
        if n is None or n <= cap:
            if n not in values:
                values.append(n)
    return [MethodSpec((VectorSpec("whiten", n_components=n),)) for n in values]


def compare_methods(table: pd.DataFrame, test_fraction: float = 0.4, seed: int = 0, **options: Any) -> ComparisonResult:
    """Zero-shot against every method alone and the best combination, on held-out groups.

    Splits ``table`` with :func:`split_held_out_groups` (``test_fraction``, ``seed``) and hands over
    to :func:`compare_on_split` with ``seed`` and ``options``: see there for every other parameter.
    """
    fit_table, test_table = split_held_out_groups(table, test_fraction, seed)
    return compare_on_split(fit_table, test_table, seed=seed, **options)


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
    extra_tables: other encoders' tables of the same clips (``{"visual": ..., "flow": ...}``, ``{"pose": ...}``)
    added as hybrid fields ("flow" is skipped when the primary encoder is the flow encoder); with extras, the row
    :data:`ROW_CHANNELS` fuses the best calibrated embedding with the extras alone (no head), weights on the
    ``weight_step`` grid. An extra table with a ``coverage`` column (the pose channel) takes part in a pair only
    where both clips have coverage > 0 (:mod:`motionmatch.beyond.gating`); clips whose *primary* coverage is 0
    are left out of the comparison altogether (``no_person``), as :mod:`motionmatch.evaluation.coverage` does.
    Table columns: ``{same,cross}-domain P@k`` / ``mAP`` with `` lo`` / `` hi`` CIs, ``score AUC``
    (all allowed test pairs), ``ms/query added`` (over zero-shot cosine, floored at 0), ``ms/query``,
    ``index s`` (gallery-side work), ``fit s``, ``chosen on validation``.
    """
    check_choice(selection, "selection", SELECTIONS)
    check_scalar(n_boot, "n_boot", int, min_value=1)
    check_scalar(k, "k", int, min_value=1)
    check_scalar(weight_step, "weight_step", float, min_value=0, max_value=1, include_min=False, include_max=False)
    require_columns(fit_table, ("clip_id", "video_path", "label", "domain", "group", "encoder_id", "embedding"),
                     "the fit table")
    require_columns(test_table, ("clip_id", "video_path", "label", "domain", "group", "encoder_id", "embedding"),
                     "the test table")
    overlap = set(effective_groups(fit_table)) & set(effective_groups(test_table))
    if overlap:
        raise ParameterError(f"{len(overlap)} group(s) are on both the fit and the test side (e.g. {sorted(overlap)[0]}); "
                             "split with split_held_out_groups")
    encoder_id = table_encoder_id(pd.concat([fit_table[["encoder_id"]], test_table[["encoder_id"]]]))
    say = log or (lambda message: None)
    fit_table, fit_left_out = rankable(fit_table, "the fit table")
    test_table, test_left_out = rankable(test_table, "the test table")
    left_out = pd.concat([fit_left_out, test_left_out], ignore_index=True)
    if len(left_out):
        say(no_person_note(len(left_out), len(fit_table) + len(test_table) + len(left_out)))

    extra_names = [name for name in (extra_tables or {}) if not (name == "flow" and encoder_id.startswith("flow:"))]
    extras = {name: extra_tables[name] for name in extra_names}
    if extras:
        fit_table, test_table = attach_extra_vectors(fit_table, extras), attach_extra_vectors(test_table, extras)
    train_table, val_table = split_held_out_groups(fit_table, val_fraction, seed + 1)
    dim = int(column_matrix(fit_table.iloc[:1], "embedding").shape[1])

    choose_cache, final_cache = FitCache(train_table, progress), FitCache(fit_table, progress)
    validation_rows: list[dict[str, Any]] = []
    validated: dict[MethodSpec, tuple[float, float]] = {}

    def validate(spec: MethodSpec) -> tuple[float, float]:
        if spec not in validated:
            run = run_protocols(spec.fit(train_table, choose_cache), val_table, exclude, k, pair_scores=False)
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
    hybrid_rows = [ROW_RRF, ROW_WEIGHTED]
    if extra_names:  # the channels alone: e.g. flow + pose, without a head trained on few groups
        channel_fields = (best_calibration, *(VectorSpec("raw", column=name) for name in extra_names))
        chosen[ROW_CHANNELS] = choose(ROW_CHANNELS, [MethodSpec(channel_fields, fusion="weighted", weights=w)
                                                     for w in simplex_weights(len(channel_fields),
                                                                              weight_step if len(channel_fields) == 2
                                                                              else 0.25)])
        hybrid_rows.append(ROW_CHANNELS)
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
    best_hybrid = best_of("hybrid", hybrid_rows)
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
        metrics[row] = {protocol: summarise_metrics(run.parts[protocol], (f"P@{k}", "mAP"), n_boot, seed)
                        for protocol in PROTOCOLS}
        pooled = summarise_metrics([p for parts in run.parts.values() for p in parts], (), n_boot=0, seed=seed)
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
                            selection=selection, k=k, audit=audit, best_rows=best_rows,
                            no_person=no_person_table(left_out) if len(left_out) else None, exclude=exclude)


def _sample(values: np.ndarray, seed: int, limit: int = 20_000) -> np.ndarray:
    values = values[np.isfinite(values)]
    if values.size > limit:
        values = np.random.default_rng(seed).choice(values, limit, replace=False)
    return values.astype(np.float32)
