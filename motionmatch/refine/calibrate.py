"""Score calibration fitted on the gallery: mean-centring or PCA whitening, then L2.

Why? Raw V-JEPA 2 embeddings are anisotropic: every clip shares a large common
component, so cosine scores bunch at 0.95-0.98 and small differences decide the
ranking. Subtracting the gallery mean ("center") removes that shared component;
PCA whitening ("whiten") also equalises the variance of every direction, so a
few high-variance nuisance directions (lighting, camera, domain) stop dominating.

Persistence: `to_arrays()` gives a dict of numpy arrays in which the small JSON
metadata (mode, parameters, encoder_id) is stored as UTF-8 bytes in a uint8
array under the key ``"meta_json"`` (see `json_to_array` / `array_to_json`), so
the whole transform fits a store that saves named arrays.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import EncoderMismatchError, ParameterError
from ..metrics.ranking import fraction_in_range
from ..table import embedding_matrix, l2_normalize, require_columns, table_encoder_id
from ..validation import check_choice, check_scalar

CALIBRATION_MODES = ("center", "whiten")
META_KEY = "meta_json"  # key of the uint8 JSON metadata array in every to_arrays() dict


def json_to_array(meta: dict[str, Any]) -> np.ndarray:
    """Encode small JSON metadata as a uint8 array (UTF-8 bytes), so it travels with the other arrays."""
    return np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8).copy()


def array_to_json(array: np.ndarray) -> dict[str, Any]:
    """Decode metadata written by `json_to_array`."""
    return json.loads(np.asarray(array, dtype=np.uint8).tobytes().decode("utf-8"))


class ScoreCalibration:
    """Centre or whiten embeddings with statistics fitted on the gallery, then L2-normalise.

    sklearn-style: `fit(gallery)` then `transform(vectors)` for both gallery and queries.
    """

    def __init__(self, mode: str = "center", n_components: int | None = None, eps: float = 1e-6,
                 encoder_id: str = ""):
        """
        mode: "center" (subtract the gallery mean) or "whiten" (PCA whitening fitted on the gallery).
        n_components: whitening only; number of principal directions kept (None: all with non-zero variance).
        eps: whitening only; added to every eigenvalue before dividing, so tiny-variance directions are not blown up.
        encoder_id: the encoder the vectors come from; `fit_on_table` fills it in.
        """
        check_choice(mode, "ScoreCalibration mode", CALIBRATION_MODES)
        if n_components is not None:
            check_scalar(n_components, "n_components", int, min_value=1)
            if mode != "whiten":
                raise ParameterError(f"n_components={n_components!r} needs mode='whiten'")
        eps = check_scalar(eps, "eps", float, min_value=0)
        self.mode = mode
        self.n_components = n_components
        self.eps = float(eps)
        self.encoder_id = encoder_id
        self.mean_: np.ndarray | None = None  # (dim,) gallery mean
        self.components_: np.ndarray | None = None  # (n_kept, dim) principal axes (whiten only)
        self.explained_variance_: np.ndarray | None = None  # (n_kept,) their variances (whiten only)
        self.n_fitted_: int = 0  # gallery size the statistics were fitted on

    # ----- fitting -------------------------------------------------------------------------------------------
    def fit(self, vectors: np.ndarray, encoder_id: str | None = None) -> "ScoreCalibration":
        """Fit the mean (and the PCA whitening) on gallery vectors of shape (n, dim)."""
        vectors = _as_matrix(vectors, "vectors")
        if encoder_id is not None:
            self.encoder_id = encoder_id
        n_samples, dim = vectors.shape
        if n_samples < 2:
            raise ParameterError(f"ScoreCalibration.fit needs at least 2 gallery vectors, got {n_samples}")
        self.n_fitted_ = n_samples
        if self.mode == "center":
            self.mean_ = vectors.astype(np.float64).mean(axis=0).astype(np.float32)
            self.components_ = np.zeros((0, dim), dtype=np.float32)
            self.explained_variance_ = np.zeros(0, dtype=np.float32)
            return self
        max_components = min(n_samples - 1, dim)
        if self.n_components is not None and self.n_components > max_components:
            raise ParameterError(f"n_components={self.n_components} exceeds what {n_samples} gallery vectors of "
                                 f"dim {dim} support (at most {max_components}); lower it or fit on more clips")
        from sklearn.decomposition import PCA

        pca = PCA(n_components=self.n_components or max_components, whiten=True, svd_solver="full")
        pca.fit(vectors.astype(np.float64))
        variance = pca.explained_variance_
        # Without an explicit n_components keep only directions that carry variance (the data's rank).
        keep = variance > 1e-10 * variance[0] if self.n_components is None else np.ones_like(variance, dtype=bool)
        self.mean_ = pca.mean_.astype(np.float32)
        self.components_ = pca.components_[keep].astype(np.float32)
        self.explained_variance_ = variance[keep].astype(np.float32)
        return self

    def fit_on_table(self, table: pd.DataFrame) -> "ScoreCalibration":
        """Fit on every row of an embeddings table (the gallery) and record its encoder_id."""
        return self.fit(_table_matrix(table), encoder_id=table_encoder_id(table))

    # ----- applying ------------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Input dimension the calibration was fitted on."""
        self._require_fitted()
        return int(self.mean_.shape[0])

    @property
    def output_dim(self) -> int:
        """Dimension of the calibrated vectors."""
        self._require_fitted()
        return self.dim if self.mode == "center" else int(self.components_.shape[0])

    @property
    def output_encoder_id(self) -> str:
        """encoder_id to record for calibrated vectors: the source encoder plus this calibration's digest,
        so a store holding calibrated vectors refuses raw ones (and vice versa)."""
        self._require_fitted()
        digest = hashlib.sha1(b"".join(a.tobytes() for a in (self.mean_, self.components_, self.explained_variance_)))
        return f"{self.encoder_id}+calib:{self.mode}:{digest.hexdigest()[:8]}"

    def transform(self, vectors: np.ndarray, normalize: bool = True, encoder_id: str | None = None) -> np.ndarray:
        """Calibrate (n, dim) vectors; L2-normalised float32 unless normalize=False.

        encoder_id: when given, it must match the encoder the calibration was fitted on.
        """
        self._require_fitted()
        vectors = _as_matrix(vectors, "vectors")
        if encoder_id is not None and self.encoder_id and encoder_id != self.encoder_id:
            raise EncoderMismatchError(f"this calibration was fitted on encoder {self.encoder_id!r} but the vectors "
                                       f"come from {encoder_id!r}; fit a calibration on that encoder's gallery")
        if vectors.shape[1] != self.dim:
            raise EncoderMismatchError(f"this calibration was fitted on {self.dim}-d vectors from encoder "
                                       f"{self.encoder_id or '(unknown)'!r}, got {vectors.shape[1]}-d vectors; "
                                       "use the encoder it was fitted on or fit a new calibration")
        centred = vectors.astype(np.float64) - self.mean_
        if self.mode == "whiten":
            scale = 1.0 / np.sqrt(self.explained_variance_.astype(np.float64) + self.eps)
            centred = (centred @ self.components_.T.astype(np.float64)) * scale
        return l2_normalize(centred) if normalize else centred.astype(np.float32)

    def fit_transform(self, vectors: np.ndarray, encoder_id: str | None = None) -> np.ndarray:
        """`fit` then `transform` the same vectors."""
        return self.fit(vectors, encoder_id=encoder_id).transform(vectors)

    def transform_table(self, table: pd.DataFrame) -> pd.DataFrame:
        """A copy of an embeddings table with calibrated embeddings and `output_encoder_id` as encoder_id."""
        calibrated = self.transform(_table_matrix(table), encoder_id=table_encoder_id(table))
        out = table.copy()
        out["embedding"] = list(calibrated)
        out["encoder_id"] = self.output_encoder_id
        return out

    # ----- persistence ---------------------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """{"mean", "components", "explained_variance", "meta_json"}; `from_arrays` restores it exactly."""
        self._require_fitted()
        meta = {"kind": "ScoreCalibration", "mode": self.mode, "n_components": self.n_components,
                "eps": self.eps, "encoder_id": self.encoder_id, "n_fitted": self.n_fitted_}
        return {"mean": self.mean_.copy(), "components": self.components_.copy(),
                "explained_variance": self.explained_variance_.copy(), META_KEY: json_to_array(meta)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "ScoreCalibration":
        """Rebuild a fitted calibration from `to_arrays()` output."""
        missing = {"mean", "components", "explained_variance", META_KEY} - set(arrays)
        if missing:
            raise ParameterError(f"calibration arrays lack {sorted(missing)}; pass the dict from ScoreCalibration.to_arrays()")
        meta = array_to_json(arrays[META_KEY])
        if meta.get("kind") != "ScoreCalibration":
            raise ParameterError(f"these arrays hold a {meta.get('kind')!r}, not a ScoreCalibration")
        calibration = cls(mode=meta["mode"], n_components=meta["n_components"], eps=meta["eps"],
                          encoder_id=meta["encoder_id"])
        calibration.mean_ = np.asarray(arrays["mean"], dtype=np.float32).copy()
        calibration.components_ = np.asarray(arrays["components"], dtype=np.float32).copy()
        calibration.explained_variance_ = np.asarray(arrays["explained_variance"], dtype=np.float32).copy()
        calibration.n_fitted_ = int(meta["n_fitted"])
        return calibration

    def save(self, path: str | Path) -> Path:
        """Write the fitted calibration to ``path`` (``.npz``, the arrays of :meth:`to_arrays`); returns the path."""
        path = Path(path)
        if path.suffix != ".npz":
            raise ParameterError(f"{path}: the calibration file must end in .npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **self.to_arrays())
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ScoreCalibration":
        """Read a calibration written by :meth:`save`; a missing or foreign file says what to run."""
        path = Path(path)
        if not path.is_file():
            raise ParameterError(f"{path}: no such calibration file; write one with `motionmatch calibrate --out {path}`")
        try:
            with np.load(path, allow_pickle=False) as data:  # a .npz of named arrays (to_arrays)
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError) as err:
            raise ParameterError(f"{path} is not a calibration file ({err}); fit one with `motionmatch calibrate`") from None
        return cls.from_arrays(arrays)

    def _require_fitted(self) -> None:
        if self.mean_ is None:
            raise ParameterError("this ScoreCalibration is not fitted; call fit(gallery_vectors) or fit_on_table(table) first")

    def __repr__(self) -> str:
        state = f"fitted on {self.n_fitted_}" if self.mean_ is not None else "unfitted"
        return f"ScoreCalibration(mode={self.mode!r}, n_components={self.n_components}, encoder_id={self.encoder_id!r}, {state})"


def score_spread(vectors: np.ndarray, max_vectors: int = 2000, seed: int = 0) -> dict[str, float]:
    """Distribution of pairwise cosines between distinct vectors: shows the 0.95-0.98 bunching and what calibration does to it.

    Returns mean, std, min, max, q05, q25, q50, q75, q95 and frac_in_095_098 (share of pairs scoring in
    [0.95, 0.98]). Vectors are L2-normalised first; above `max_vectors` a seeded random subset is used.
    """
    vectors = l2_normalize(_as_matrix(vectors, "vectors"))
    if len(vectors) < 2:
        raise ParameterError(f"score_spread needs at least 2 vectors, got {len(vectors)}")
    if len(vectors) > max_vectors:
        keep = np.random.default_rng(seed).choice(len(vectors), size=max_vectors, replace=False)
        vectors = vectors[np.sort(keep)]
    cosines = (vectors @ vectors.T)[np.triu_indices(len(vectors), k=1)].astype(np.float64)
    q05, q25, q50, q75, q95 = np.quantile(cosines, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {"n_vectors": float(len(vectors)), "mean": float(cosines.mean()), "std": float(cosines.std()),
            "min": float(cosines.min()), "max": float(cosines.max()),
            "q05": float(q05), "q25": float(q25), "q50": float(q50), "q75": float(q75), "q95": float(q95),
            "frac_in_095_098": fraction_in_range(cosines, 0.95, 0.98)}


def _table_matrix(table: pd.DataFrame) -> np.ndarray:
    require_columns(table, ("embedding",))
    if len(table) == 0:
        raise ParameterError("the embeddings table is empty; extract embeddings first (`motionmatch extract`)")
    return embedding_matrix(table)


def _as_matrix(vectors: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise ParameterError(f"{name} must be a 2-D array (n, dim), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ParameterError(f"{name} contains NaN or inf; re-extract the embeddings that produced them")
    return array
