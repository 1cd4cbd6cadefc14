"""bench_pose's fusion protocol: flow + pose (and re-ranking) chosen on half of the labels, measured on the other half.

Every score comes from the package's evaluation engine (:class:`motionmatch.beyond.MethodSpec`: raw cosine per
channel, the pose channel gated by its coverage, :func:`motionmatch.beyond.gating.gated_weighted` fusion, and
:class:`motionmatch.refine.rerank.Reranker` stages), on a table whose ``group`` is the camera, so a query never
retrieves, expands with or re-ranks by its own camera's clips: the cross-camera protocol of ``bench_pose``.

Three rows, each chosen per fold on the queries of half of the labels (best cross-camera P@10, then P@1; ties: the
earlier candidate) and measured on the queries of the other half, both ways round:

* ``fused``: ``(1 - w) x flow + w x pose``, ``w`` on :data:`WEIGHT_GRID`;
* ``pose + re-ranking``: the pose channel alone with one of :func:`reranker_grid` (or none);
* ``fused + re-ranking``: a weight and a re-ranker, chosen together.

The re-ranking grid is the one notebook 06's comparison tries (:data:`motionmatch.beyond.compare.DEFAULT_QE_KS`,
``DEFAULT_DBA_KS``, ``DEFAULT_KR_PARAMS``) plus DBA followed by alpha-QE; it was fixed before this sample was seen.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

WEIGHT_GRID = tuple(round(w, 2) for w in np.linspace(0, 1, 21))
ROWS = ("fused", "pose + re-ranking", "fused + re-ranking")


def reranker_grid() -> list:
    """None (no re-ranking), then alpha-QE, DBA, k-reciprocal and DBA + alpha-QE on notebook 06's grids."""
    from motionmatch.beyond.compare import DEFAULT_DBA_KS, DEFAULT_KR_PARAMS, DEFAULT_QE_KS
    from motionmatch.refine.rerank import Reranker

    grid = [None]
    grid += [Reranker(query_expansion=True, qe_k=k) for k in DEFAULT_QE_KS]
    grid += [Reranker(database_augmentation=True, dba_k=k) for k in DEFAULT_DBA_KS]
    grid += [Reranker(k_reciprocal=True, k1=k1, k2=k2) for k1, k2 in DEFAULT_KR_PARAMS]
    grid += [Reranker(database_augmentation=True, dba_k=d, query_expansion=True, qe_k=q)
             for d in DEFAULT_DBA_KS for q in DEFAULT_QE_KS]
    return grid


def reranker_label(reranker) -> str:
    """'none', or the stages of a re-ranker as notebook 06 names them (e.g. 'DBA(k=5) + alpha-QE(k=3)')."""
    if reranker is None:
        return "none"
    from motionmatch.beyond.methods import MethodSpec, VectorSpec

    return MethodSpec((VectorSpec("raw"),), reranker=reranker).label.split(" + ", 1)[1]


def engine_table(table: pd.DataFrame, flow: np.ndarray, pose: np.ndarray, coverage: np.ndarray) -> pd.DataFrame:
    """The clips with flow as ``embedding`` and pose as an extra channel gated by ``pose_coverage``; ``group`` = camera
    (the engine then excludes a query's own camera, as the cross-camera protocol does)."""
    from motionmatch.beyond.splits import coverage_column

    frame = table[["clip_id", "video_path", "label", "domain"]].copy()
    frame["group"] = table["domain"].to_numpy()
    frame["embedding"] = list(np.asarray(flow, dtype=np.float32))
    frame["pose"] = list(np.asarray(pose, dtype=np.float32))
    frame[coverage_column("pose")] = np.asarray(coverage, dtype=np.float64)
    return frame


@dataclass
class Channels:
    """The engine's per-channel score matrices under one re-ranker, fused for any weight (cross-camera)."""

    flow: np.ndarray
    pose: np.ndarray
    gates: list
    mask: np.ndarray

    def fused(self, weight: float) -> np.ndarray:
        """``(1 - weight) x flow + weight x pose`` through the engine's gated fusion; -inf on excluded pairs."""
        from motionmatch.beyond.gating import gated_weighted

        return gated_weighted([self.flow, self.pose], (1 - weight, weight), self.gates, self.mask)


def channels(frame: pd.DataFrame, reranker, exclude: str = "group") -> Channels:
    """Each channel scored by the engine (raw cosine, ``reranker`` stages), the way a two-field MethodSpec does
    (``exclude="group"``: the query's own camera is never retrieved; ``"none"``: only the clip itself)."""
    from motionmatch.beyond.gating import field_gates
    from motionmatch.beyond.methods import MethodSpec, VectorSpec
    from motionmatch.evaluation.retrieval import exclusion_mask

    per_field = [MethodSpec((VectorSpec("raw", column=column),), reranker=reranker).fit(frame).score(frame, frame,
                                                                                                   exclude)[0]
                 for column in ("embedding", "pose")]
    return Channels(per_field[0], per_field[1], field_gates(["embedding", "pose"], frame, frame),
                    exclusion_mask(frame, frame, exclude))


def _p_at(scores: np.ndarray, frame: pd.DataFrame, rows: np.ndarray):
    from motionmatch.evaluation import query_metrics

    return query_metrics(scores[rows], frame[rows], frame, exclude="group", ks=(1, 10), pair_scores=False)


def two_fold(table: pd.DataFrame, flow: np.ndarray, pose: np.ndarray, coverage: np.ndarray, n_boot: int = 1000,
             log=lambda message: None) -> dict:
    """``{row: {"folds": [...], "P@1", "P@10" (+ CIs), ...}}`` for :data:`ROWS` (cross-camera, held out)."""
    from motionmatch.evaluation import summarise_metrics

    frame = engine_table(table, flow, pose, coverage)
    labels = sorted(frame["label"].unique())
    halves = [set(labels[0::2]), set(labels[1::2])]
    scored = [(reranker, channels(frame, reranker)) for reranker in reranker_grid()]
    log(f"fusion: {len(scored)} re-rankers x {len(WEIGHT_GRID)} weights")
    candidates = {
        "fused": [(None, w, scored[0][1].fused(w)) for w in WEIGHT_GRID],
        "pose + re-ranking": [(r, 1.0, ch.fused(1.0)) for r, ch in scored],
        "fused + re-ranking": [(r, w, ch.fused(w)) for r, ch in scored for w in WEIGHT_GRID],
    }
    out: dict = {}
    for row, options in candidates.items():
        folds, held_out = [], []
        for choose, measure in ((halves[0], halves[1]), (halves[1], halves[0])):
            choose_rows = frame["label"].isin(choose).to_numpy()
            best = None
            for i, (reranker, weight, scores) in enumerate(options):
                value = summarise_metrics([_p_at(scores, frame, choose_rows)], ("P@1", "P@10"), n_boot=0, with_auc=False)
                key = (value["P@10"], value["P@1"])
                if best is None or key > best[0]:
                    best = (key, i)
            reranker, weight, scores = options[best[1]]
            measure_rows = frame["label"].isin(measure).to_numpy()
            held_out.append(_p_at(scores, frame, measure_rows))
            folds.append({"weight_chosen_on": sorted(choose), "weight": float(weight),
                          "reranker": reranker_label(reranker), "chosen_P@10": best[0][0],
                          "measured_on": sorted(measure), "index": best[1]})
        out[row] = {"folds": folds, **summarise_metrics(held_out, ("P@1", "P@10"), n_boot=n_boot, with_auc=False)}
    return out


def plain_fused(table: pd.DataFrame, flow: np.ndarray, pose: np.ndarray, coverage: np.ndarray,
                weight: float) -> np.ndarray:
    """``(1 - weight) x flow + weight x pose`` for every pair but a clip with itself (for the protocols that mask
    their own pairs: same camera, moment@1)."""
    return channels(engine_table(table, flow, pose, coverage), None, exclude="none").fused(weight)


__all__ = ["ROWS", "WEIGHT_GRID", "Channels", "channels", "engine_table", "plain_fused", "reranker_grid", "reranker_label", "two_fold"]
