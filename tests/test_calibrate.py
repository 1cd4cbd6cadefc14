"""Score calibration: whitening decorrelates, centring un-bunches scores, exact round trips, encoder checks."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from motionmatch.refine.calibrate import ScoreCalibration, array_to_json, score_spread
from motionmatch.errors import EncoderMismatchError, ParameterError
from motionmatch.refine.heads import retrieval_metrics
from motionmatch.table import l2_normalize


def anisotropic_set(seed: int = 0, n_classes: int = 6, n_groups: int = 5, clips: int = 4, dim: int = 32):
    """Vectors = large common offset + small class signal + group nuisance + noise: cosines bunch near 1."""
    rng = np.random.default_rng(seed)
    offset = np.zeros(dim)
    offset[0] = 1.0
    class_codes = rng.normal(size=(n_classes, dim)) * 0.03
    vectors, labels, groups = [], [], []
    for group in range(n_groups):
        nuisance = rng.normal(size=dim) * 0.03
        for label in range(n_classes):
            for _ in range(clips):
                vectors.append(offset + class_codes[label] + nuisance + rng.normal(size=dim) * 0.02)
                labels.append(label)
                groups.append(group)
    return l2_normalize(np.array(vectors)), np.array(labels), np.array(groups)


def as_table(vectors: np.ndarray, encoder_id: str = "synthetic:v1") -> pd.DataFrame:
    return pd.DataFrame({"clip_id": [f"c{i}" for i in range(len(vectors))], "encoder_id": encoder_id,
                         "embedding": list(vectors)})


def test_whitening_gives_identity_covariance_on_the_fitted_data():
    rng = np.random.default_rng(1)
    mixing = rng.normal(size=(12, 12)) * np.linspace(0.05, 2.0, 12)  # correlated, very unequal variances
    vectors = rng.normal(size=(400, 12)) @ mixing + 3.0
    calibration = ScoreCalibration(mode="whiten", eps=0.0).fit(vectors)
    whitened = calibration.transform(vectors, normalize=False).astype(np.float64)
    covariance = np.cov(whitened, rowvar=False)
    raw_covariance = np.cov(vectors, rowvar=False)
    assert np.abs(raw_covariance - np.diag(np.diag(raw_covariance))).max() > 0.1  # it was correlated
    np.testing.assert_allclose(covariance, np.eye(12), atol=1e-3)
    assert np.allclose(whitened.mean(axis=0), 0.0, atol=1e-4)
    normalised = calibration.transform(vectors)
    np.testing.assert_allclose(np.linalg.norm(normalised, axis=1), 1.0, atol=1e-5)


def test_whitening_keeps_n_components_and_only_nonzero_variance_directions():
    rng = np.random.default_rng(2)
    low_rank = rng.normal(size=(50, 3)) @ rng.normal(size=(3, 10))  # rank 3 in 10-d
    assert ScoreCalibration(mode="whiten").fit(low_rank).output_dim == 3
    assert ScoreCalibration(mode="whiten", n_components=2).fit(low_rank).output_dim == 2
    with pytest.raises(ParameterError, match="n_components"):
        ScoreCalibration(mode="whiten", n_components=60).fit(low_rank)


def test_centring_widens_the_score_spread_without_hurting_precision():
    vectors, labels, groups = anisotropic_set()
    raw = score_spread(vectors)
    assert raw["q05"] > 0.9 and raw["std"] < 0.05  # bunched near 1, as the notes report for V-JEPA 2

    centred = ScoreCalibration(mode="center").fit(vectors).transform(vectors)
    after = score_spread(centred)
    assert after["std"] > 5 * raw["std"]
    assert after["q95"] - after["q05"] > 5 * (raw["q95"] - raw["q05"])
    assert after["frac_in_095_098"] <= raw["frac_in_095_098"]
    assert abs(after["mean"]) < 0.1

    raw_p10 = retrieval_metrics(vectors, labels, groups)["P@10"]
    centred_p10 = retrieval_metrics(centred, labels, groups)["P@10"]
    assert raw_p10 < 0.99  # room to drop, so the check below can fail
    assert centred_p10 >= raw_p10 - 1e-9


def test_score_spread_counts_the_bunch_by_hand():
    angles = np.deg2rad([0.0, 10.0, 90.0])  # cos: 0.9848 (0-10), 0 (0-90), 0.1736 (10-90)
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    spread = score_spread(vectors)
    assert spread["frac_in_095_098"] == 0.0  # 0.9848 is above the band
    assert spread["max"] == pytest.approx(np.cos(np.deg2rad(10)), abs=1e-6)
    assert spread["mean"] == pytest.approx((np.cos(np.deg2rad(10)) + 0 + np.cos(np.deg2rad(80))) / 3, abs=1e-6)
    in_band = np.stack([np.cos(np.deg2rad([0.0, 15.0])), np.sin(np.deg2rad([0.0, 15.0]))], axis=1)  # cos 15 deg = 0.966
    assert score_spread(in_band)["frac_in_095_098"] == 1.0


@pytest.mark.parametrize("mode,n_components", [("center", None), ("whiten", None), ("whiten", 5)])
def test_to_arrays_round_trip_is_exact(mode, n_components):
    vectors, _, _ = anisotropic_set(seed=3)
    calibration = ScoreCalibration(mode=mode, n_components=n_components, eps=1e-5, encoder_id="synthetic:v1").fit(vectors)
    arrays = calibration.to_arrays()
    assert set(arrays) == {"mean", "components", "explained_variance", "meta_json"}
    assert all(isinstance(value, np.ndarray) for value in arrays.values())
    assert arrays["meta_json"].dtype == np.uint8
    assert array_to_json(arrays["meta_json"])["mode"] == mode

    restored = ScoreCalibration.from_arrays({name: value.copy() for name, value in arrays.items()})
    queries = l2_normalize(np.random.default_rng(4).normal(size=(7, vectors.shape[1])))
    np.testing.assert_array_equal(restored.transform(queries), calibration.transform(queries))
    assert restored.encoder_id == "synthetic:v1" and restored.eps == 1e-5 and restored.n_fitted_ == len(vectors)
    assert restored.output_encoder_id == calibration.output_encoder_id


def test_wrong_dimension_or_encoder_raises_encoder_mismatch():
    vectors, _, _ = anisotropic_set()
    calibration = ScoreCalibration(mode="center").fit_on_table(as_table(vectors, "vjepa2:a"))
    assert calibration.encoder_id == "vjepa2:a"
    with pytest.raises(EncoderMismatchError, match=r"32-d.*vjepa2:a.*got 16-d"):
        calibration.transform(np.ones((2, 16), dtype=np.float32))
    with pytest.raises(EncoderMismatchError, match="flow:v1"):
        calibration.transform_table(as_table(vectors, "flow:v1"))


def test_transform_table_tags_the_output_encoder_id():
    vectors, _, _ = anisotropic_set()
    table = as_table(vectors, "vjepa2:a")
    calibration = ScoreCalibration(mode="center").fit_on_table(table)
    calibrated = calibration.transform_table(table)
    assert calibrated["encoder_id"].unique().tolist() == [calibration.output_encoder_id]
    assert calibration.output_encoder_id.startswith("vjepa2:a+calib:center:")
    np.testing.assert_array_equal(np.stack(calibrated["embedding"]), calibration.transform(vectors))
    assert table["encoder_id"].unique().tolist() == ["vjepa2:a"]  # input untouched


def test_bad_parameters_and_mixed_tables_are_refused():
    with pytest.raises(ParameterError, match="mode"):
        ScoreCalibration(mode="zca")
    with pytest.raises(ParameterError, match="not fitted"):
        ScoreCalibration().transform(np.ones((1, 4)))
    vectors, _, _ = anisotropic_set()
    mixed = pd.concat([as_table(vectors[:5], "a"), as_table(vectors[5:10], "b")])
    with pytest.raises(ParameterError, match="mixes encoders"):
        ScoreCalibration().fit_on_table(mixed)


def test_save_and_load_an_npz_file(tmp_path):
    vectors, _, _ = anisotropic_set()
    calibration = ScoreCalibration(mode="whiten", n_components=8, encoder_id="vjepa2:a").fit(vectors)
    path = calibration.save(tmp_path / "sub" / "calibration.npz")
    assert path == tmp_path / "sub" / "calibration.npz" and path.is_file()
    with pytest.raises(ParameterError, match="must end in .npz"):
        calibration.save(tmp_path / "calibration.bin")
    loaded = ScoreCalibration.load(path)
    np.testing.assert_array_equal(loaded.transform(vectors), calibration.transform(vectors))
    assert loaded.output_encoder_id == calibration.output_encoder_id and loaded.n_fitted_ == len(vectors)
    with pytest.raises(ParameterError, match="motionmatch calibrate"):
        ScoreCalibration.load(tmp_path / "missing.npz")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(ParameterError, match="not a calibration file"):
        ScoreCalibration.load(tmp_path / "broken.npz")


def test_arrays_round_trip_through_milvus_lite(tmp_path):
    from motionmatch.index.store import MotionStore

    vectors, _, _ = anisotropic_set()
    calibration = ScoreCalibration(mode="whiten", n_components=8, encoder_id="synthetic:v1").fit(vectors)
    store = MotionStore(uri=str(tmp_path / "calibration.db"), collection="clips")
    try:
        store.ensure_collection("synthetic:v1", vectors.shape[1], {"synthetic": True})
        for name, array in calibration.to_arrays().items():
            store.save_array(f"calibration.{name}", array)
        restored = ScoreCalibration.from_arrays({name: store.load_array(f"calibration.{name}")
                                                 for name in calibration.to_arrays()})
    finally:
        store.close()
    np.testing.assert_array_equal(restored.transform(vectors), calibration.transform(vectors))
