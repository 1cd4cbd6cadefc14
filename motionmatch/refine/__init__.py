"""Refine: what goes beyond raw cosine, each object saving itself.

* :mod:`~motionmatch.refine.calibrate`: :class:`ScoreCalibration` (centring, PCA whitening; save/load .npz);
* :mod:`~motionmatch.refine.zscore`: segment scores as z-scores against the gallery, stored with a collection;
* :mod:`~motionmatch.refine.rerank`: :class:`Reranker` (alpha-QE, DBA, k-reciprocal);
* :mod:`~motionmatch.refine.heads`: projection heads trained with pytorch-metric-learning (:class:`TrainedHead`).

``heads`` imports torch, so it loads when first asked for (``from motionmatch.refine import TrainedHead``).
"""
from __future__ import annotations

from typing import Any

from .calibrate import CALIBRATION_MODES, ScoreCalibration, score_spread
from .rerank import Reranker
from .zscore import GALLERY, fit_gallery_calibration, gallery_moments, load_gallery_calibration, save_gallery_calibration

_LAZY = {name: "heads" for name in ("HeadTrainingConfig", "ProjectionHead", "TrainedHead", "train_projection_head")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CALIBRATION_MODES", "ScoreCalibration", "score_spread", "Reranker", "GALLERY", "fit_gallery_calibration",
           "gallery_moments", "load_gallery_calibration", "save_gallery_calibration", *_LAZY]
