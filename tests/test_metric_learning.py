"""Projection head: beats raw vectors on unseen groups, is deterministic, round-trips, refuses other encoders."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from motionmatch.errors import EncoderMismatchError, ParameterError
from motionmatch.refine.heads import (HeadTrainingConfig, ProjectionHead, TrainedHead, retrieval_metrics,
                                         split_by_group, train_projection_head)
from motionmatch.table import embedding_matrix

DIM = 64
ENCODER_ID = "synthetic:v1"


def synthetic_table(seed: int, first_group: int = 0, n_groups: int = 6, n_classes: int = 8, clips: int = 4) -> pd.DataFrame:
    """8 classes x 6 groups x 4 clips, 64-d. The label lives in a low-variance 8-d subspace; each group
    (performer) adds a large nuisance offset, half of them along a strong 'domain' direction, on top of
    a common component shared by every clip (anisotropy)."""
    basis = np.linalg.qr(np.random.default_rng(123).normal(size=(DIM, DIM)))[0]
    class_dirs, domain_dir, nuisance_dirs, common_dir = basis[:, :8], basis[:, 8], basis[:, 9:49], basis[:, 63]
    class_codes = np.random.default_rng(7).normal(size=(n_classes, 8))
    rng = np.random.default_rng(seed)
    rows = []
    for group in range(first_group, first_group + n_groups):
        group_rng = np.random.default_rng(1000 + group)
        nuisance = nuisance_dirs @ group_rng.normal(size=40) * 0.25 + domain_dir * (1.5 if group % 2 else -1.5)
        for label in range(n_classes):
            for clip in range(clips):
                vector = 3.0 * common_dir + nuisance + class_dirs @ class_codes[label] * 0.25 + rng.normal(size=DIM) * 0.05
                rows.append({"clip_id": f"g{group}-c{label}-{clip}", "label": f"class{label}", "group": f"g{group}",
                             "domain": "A" if group % 2 else "B", "encoder_id": ENCODER_ID,
                             "embedding": (vector / np.linalg.norm(vector)).astype(np.float32)})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def train_table() -> pd.DataFrame:
    return synthetic_table(seed=0)


@pytest.fixture(scope="module")
def unseen_table() -> pd.DataFrame:
    return synthetic_table(seed=1, first_group=6)  # groups the head never saw


def held_out_p10(table: pd.DataFrame, vectors: np.ndarray) -> float:
    return retrieval_metrics(vectors, table["label"].to_numpy(), table["group"].to_numpy(), k=10)["P@10"]



@pytest.mark.parametrize("loss", ["triplet", "ntxent"])
def test_head_beats_raw_vectors_on_unseen_groups(train_table, unseen_table, loss):
    trained = train_projection_head(train_table, HeadTrainingConfig(loss=loss, max_epochs=25, batch_size=32, patience=25),
                                    progress=False)
    raw = held_out_p10(unseen_table, embedding_matrix(unseen_table))
    projected = held_out_p10(unseen_table, trained.project(embedding_matrix(unseen_table)))
    assert projected >= raw + 0.2, (loss, raw, projected)
    assert 1 <= trained.best_epoch <= len(trained.history) <= 25
    assert {"epoch", "train_loss", "val P@10", "val mAP@10"} <= set(trained.history[0])


def test_blank_groups_mean_each_video_is_its_own_group(train_table):
    """Issue 18 bug 4: head training read `group` as text, so a table with blank groups was one group "" and
    trained with no validation split; it now takes evaluation's rule (a blank group: the video is its own)."""
    blank = train_table.assign(video_path=train_table["group"] + "/" + train_table["label"] + ".mp4", group="")
    trained = train_projection_head(blank, HeadTrainingConfig(max_epochs=2, batch_size=32), progress=False)
    assert "val P@10" in trained.history[0] and not np.isnan(trained.history[0]["val P@10"])


def test_same_seed_gives_identical_heads(train_table, unseen_table):
    config = HeadTrainingConfig(loss="triplet", max_epochs=4, batch_size=32, seed=5)
    vectors = embedding_matrix(unseen_table)
    first = train_projection_head(train_table, config, progress=False).project(vectors)
    second = train_projection_head(train_table, config, progress=False).project(vectors)
    other_seed = train_projection_head(train_table, HeadTrainingConfig(loss="triplet", max_epochs=4, batch_size=32, seed=6),
                                       progress=False).project(vectors)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other_seed)


def test_save_load_and_arrays_round_trip(train_table, unseen_table, tmp_path):
    trained = train_projection_head(train_table, HeadTrainingConfig(loss="ntxent", max_epochs=3, hidden_dim=16, out_dim=8),
                                    progress=False)
    vectors = embedding_matrix(unseen_table)
    expected = trained.project(vectors)
    assert expected.shape == (len(vectors), 8) and expected.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(expected, axis=1), 1.0, atol=1e-5)

    path = trained.save(tmp_path / "heads" / "head.pt")
    loaded = TrainedHead.load(path, expected_encoder_id=ENCODER_ID)
    np.testing.assert_array_equal(loaded.project(vectors), expected)
    assert loaded.config == trained.config and loaded.history == trained.history
    assert loaded.output_encoder_id == trained.output_encoder_id

    from_arrays = TrainedHead.from_arrays(trained.to_arrays())
    np.testing.assert_array_equal(from_arrays.project(vectors), expected)


def test_wrong_encoder_is_refused(train_table, tmp_path):
    trained = train_projection_head(train_table, HeadTrainingConfig(max_epochs=1), progress=False)
    path = trained.save(tmp_path / "head.pt")
    with pytest.raises(EncoderMismatchError, match=r"belongs to encoder 'synthetic:v1'.*'vjepa2:other'"):
        TrainedHead.load(path, expected_encoder_id="vjepa2:other")
    with pytest.raises(EncoderMismatchError, match=r"synthetic:v1.*64-d input.*\(3, 32\)"):
        trained.project(np.ones((3, 32), dtype=np.float32))
    with pytest.raises(EncoderMismatchError, match="flow:v1"):
        trained.project(np.ones((3, 64), dtype=np.float32), encoder_id="flow:v1")
    with pytest.raises(ParameterError, match="no projection head file"):
        TrainedHead.load(tmp_path / "missing.pt")


def test_split_keeps_every_group_on_one_side(train_table):
    labels, groups = train_table["label"].to_numpy(), train_table["group"].to_numpy()
    train_rows, val_rows = split_by_group(labels, groups, val_fraction=0.34, seed=0)
    assert len(val_rows) > 0 and len(train_rows) + len(val_rows) == len(train_table)
    assert not set(groups[train_rows]) & set(groups[val_rows])
    few_groups = np.array(["g1", "g1", "g2", "g3"])
    train_rows, val_rows = split_by_group(np.array(["a", "b", "a", "b"]), few_groups, val_fraction=0.2, seed=0)
    assert len(train_rows) == 4 and len(val_rows) == 0  # too few groups to hold two out


def test_retrieval_metrics_by_hand():
    # Query 0 (label a, group 1): own group hides item 1; ranking of the rest: 2 (a), 3 (b), 4 (a).
    vectors = np.array([[1, 0], [1, 0], [0.9, 0.1], [0.6, 0.4], [0.1, 0.9]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.array(["a", "a", "a", "b", "a"])
    groups = np.array([1, 1, 2, 3, 4])
    top3 = retrieval_metrics(vectors[[0, 2, 3, 4]], labels[[0, 2, 3, 4]], groups[[0, 2, 3, 4]], k=3)
    # queries: 0 -> [2 a, 3 b, 4 a]: P@3 = 2/3, AP = (1 + 2/3)/2; 2 -> [0 a, 3 b, 4 a]: same;
    # 3 (b) -> no relevant: P@3 = 0, left out of mAP; 4 -> ranking [3 b, 2 a, 0 a]: P@3 2/3, AP = (1/2 + 2/3)/2.
    assert top3["P@3"] == pytest.approx((2 / 3 + 2 / 3 + 0 + 2 / 3) / 4)
    assert top3["mAP@3"] == pytest.approx(((1 + 2 / 3) / 2 * 2 + (1 / 2 + 2 / 3) / 2) / 3)


def test_projection_head_shapes_and_config_checks():
    assert ProjectionHead(64).out_dim == 64 and ProjectionHead(1024).out_dim == 512
    output = ProjectionHead(1024, hidden_dim=32)(torch.randn(5, 1024))
    assert output.shape == (5, 512)
    torch.testing.assert_close(output.norm(dim=1), torch.ones(5))
    with pytest.raises(ParameterError, match="loss"):
        HeadTrainingConfig(loss="arcface")
    with pytest.raises(ParameterError, match="samples_per_class"):
        HeadTrainingConfig(samples_per_class=1)


def test_head_arrays_round_trip_through_milvus_lite(train_table, unseen_table, tmp_path):
    from motionmatch.index.store import MotionStore

    trained = train_projection_head(train_table, HeadTrainingConfig(max_epochs=2, hidden_dim=16), progress=False)
    store = MotionStore(uri=str(tmp_path / "heads.db"), collection="clips")
    try:
        store.ensure_collection(ENCODER_ID, DIM, {"synthetic": True})
        for name, array in trained.to_arrays().items():
            store.save_array(f"head.{name}", array)
        loaded = TrainedHead.from_arrays({name: store.load_array(f"head.{name}") for name in trained.to_arrays()},
                                         expected_encoder_id=ENCODER_ID)
    finally:
        store.close()
    vectors = embedding_matrix(unseen_table)
    np.testing.assert_array_equal(loaded.project(vectors), trained.project(vectors))
