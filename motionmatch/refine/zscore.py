"""Segment scores as z-scores against the gallery: one threshold (in standard deviations) for every query and encoder.

For query window ``q`` the cosines to gallery windows have mean ``q . mu`` and variance
``sum_j lambda_j (q . v_j)^2`` (``mu``, ``v_j``, ``lambda_j``: the gallery mean, principal axes and variances
that a PCA whitening :class:`~motionmatch.refine.calibrate.ScoreCalibration` fits), so
``z = (cos - q . mu) / sd_q`` (:func:`gallery_moments`). A query whose windows are similar to everything (a
static scene, a common motion) no longer outranks a distinctive one.

**Persistence**: ``motionmatch index`` (:func:`motionmatch.index.index_run`) fits the statistics once and stores
them with the collection (:func:`save_gallery_calibration`, arrays ``segment_calibration.*``); a search loads
them (:func:`load_gallery_calibration`) and refits, with a note, when none is stored or the collection changed
since. The store is passed in (anything with ``videos``, ``fetch_table``, ``count``, ``encoder_info`` and the
array methods), so this module imports nothing of the index.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ParameterError
from ..table import embedding_matrix
from .calibrate import ScoreCalibration, array_to_json, json_to_array

GALLERY = "gallery"  # calibration="gallery": fit the z-score statistics on a sample of the collection
_EPS = 1e-6


def fit_gallery_calibration(store, max_videos: int = 200, n_components: int = 64, seed: int = 0):
    """A PCA whitening (:class:`~motionmatch.refine.calibrate.ScoreCalibration`) fitted on the windows of up to
    ``max_videos`` videos drawn at random from the collection: the z-score statistics of segment scores."""
    videos = store.videos()["video_path"].tolist()
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(videos, size=min(max_videos, len(videos)), replace=False).tolist()) if videos else []
    table = store.fetch_table(["video_path", "embedding"], filters={"video_path": chosen}) if chosen else None
    if table is None or len(table) < 3:
        raise ParameterError(f"collection '{store.collection}' holds {0 if table is None else len(table)} windows: too few "
                             "to fit score statistics; index more videos or search with calibration=None (--calibration none)")
    vectors = embedding_matrix(table)
    components = min(n_components, len(vectors) - 1, vectors.shape[1])
    return ScoreCalibration("whiten", n_components=components).fit(vectors, encoder_id=store.encoder_info()["encoder_id"])


CALIBRATION_PREFIX = "segment_calibration."  # array-name prefix of the gallery calibration stored with a collection
FITTED_ON = "fitted_on"  # with the prefix: JSON (rows, encoder_id) of the collection the calibration was fitted on


def save_gallery_calibration(store, calibration=None, **fit_options: Any):
    """Fit the gallery calibration (unless given) and store it with the collection (``store.save_array``, the
    arrays of :meth:`ScoreCalibration.to_arrays`), with the row count it was fitted on; returns it.

    ``motionmatch index`` calls this after each upsert, so a search loads the statistics instead of refitting them.
    """
    calibration = calibration if calibration is not None else fit_gallery_calibration(store, **fit_options)
    arrays = {**calibration.to_arrays(),
              FITTED_ON: json_to_array({"rows": int(store.count()), "encoder_id": store.encoder_info()["encoder_id"]})}
    store.replace_arrays(CALIBRATION_PREFIX, arrays)
    return calibration


def load_gallery_calibration(store):
    """``(calibration, note)``: the calibration stored with the collection by :func:`save_gallery_calibration`,
    or, when none is stored or it is stale (the collection's row count or encoder changed since), one fitted now
    with a note saying so and what to run."""
    names = [n for n in store.list_arrays() if n.startswith(CALIBRATION_PREFIX)]
    reason = f"collection '{store.collection}' stores no gallery calibration"
    if names:
        arrays = {n[len(CALIBRATION_PREFIX):]: store.load_array(n) for n in names}
        fitted_on = array_to_json(arrays.pop(FITTED_ON)) if FITTED_ON in arrays else {}
        rows, encoder_id = int(store.count()), store.encoder_info()["encoder_id"]
        if fitted_on.get("rows") == rows and fitted_on.get("encoder_id") == encoder_id:
            calibration = ScoreCalibration.from_arrays(arrays)
            return calibration, (f"scores are z-scores against the gallery calibration stored with collection "
                                 f"'{store.collection}' ({calibration.n_fitted_} windows, "
                                 f"{calibration.components_.shape[0]} axes)")
        reason = (f"the gallery calibration stored with collection '{store.collection}' is stale (fitted on "
                  f"{fitted_on.get('rows')} rows of {fitted_on.get('encoder_id')!r}; the collection now holds {rows} "
                  f"rows of {encoder_id!r})")
    calibration = fit_gallery_calibration(store)
    return calibration, (f"{reason}: refitted on {calibration.n_fitted_} gallery windows for this search; "
                         "`motionmatch index` stores it with the collection")


def gallery_moments(calibration, query_vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each query vector's cosine over the gallery a whitening was fitted on."""
    if getattr(calibration, "mode", None) != "whiten":
        raise ParameterError("z-scored segment scores need a PCA-whitening calibration (ScoreCalibration('whiten'), "
                             "`motionmatch calibrate --mode whiten`), or calibration='gallery'")
    q = np.asarray(query_vectors, dtype=np.float64)
    mean = q @ calibration.mean_.astype(np.float64)
    projected = q @ calibration.components_.T.astype(np.float64)
    sd = np.sqrt(np.maximum((projected ** 2) @ calibration.explained_variance_.astype(np.float64), 0.0))
    return mean, np.maximum(sd, _EPS)


__all__ = ["GALLERY", "fit_gallery_calibration", "save_gallery_calibration", "load_gallery_calibration",
           "CALIBRATION_PREFIX", "gallery_moments"]
