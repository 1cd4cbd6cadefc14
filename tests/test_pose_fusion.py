"""bench_pose's fusion protocol (bench/pose_fusion.py) against the package's evaluation engine, on planted vectors.

The protocol scores each channel once per re-ranker and fuses for every weight; that shortcut must give exactly what
a two-field weighted MethodSpec gives, gates and re-ranking included, and the 2-fold choice must find the channel
that carries the labels.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import pose_fusion
from motionmatch.beyond.methods import MethodSpec, VectorSpec
from motionmatch.refine.rerank import Reranker

LABELS, CAMERAS, CLIPS = 6, 4, 3


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def planted():
    """Pose vectors near their label's centre (a camera adds a small offset); flow is noise; one clip has no person."""
    rng = np.random.default_rng(0)
    centres, offsets = rng.normal(size=(LABELS, 32)), rng.normal(size=(CAMERAS, 32))
    rows, pose, flow = [], [], []
    for label in range(LABELS):
        for camera in range(CAMERAS):
            for clip in range(CLIPS):
                rows.append({"clip_id": f"L{label}C{camera}K{clip}", "video_path": f"L{label}C{camera}.mp4",
                             "label": f"L{label}", "domain": f"cam{camera}"})
                pose.append(centres[label] + 0.6 * offsets[camera] + 0.8 * rng.normal(size=32))
                flow.append(rng.normal(size=16))
    coverage = np.ones(len(rows))
    coverage[5] = 0.0
    return pd.DataFrame(rows), _unit(np.array(flow)), _unit(np.array(pose)), coverage


@pytest.mark.parametrize("reranker", [None, Reranker(query_expansion=True, qe_k=3),
                                      Reranker(database_augmentation=True, dba_k=3, query_expansion=True, qe_k=3),
                                      Reranker(k_reciprocal=True, k1=10, k2=3)], ids=["none", "qe", "dba+qe", "krec"])
def test_the_shortcut_equals_a_weighted_two_field_method(planted, reranker):
    table, flow, pose, coverage = planted
    frame = pose_fusion.engine_table(table, flow, pose, coverage)
    channels = pose_fusion.channels(frame, reranker)
    for weight in (0.0, 0.35, 1.0):
        spec = MethodSpec((VectorSpec("raw"), VectorSpec("raw", column="pose")), fusion="weighted",
                          weights=(1 - weight, weight), reranker=reranker)
        expected = spec.fit(frame).score(frame, frame, "group")[0]
        np.testing.assert_allclose(channels.fused(weight), expected, rtol=1e-6, atol=1e-7)
    same_camera = frame["domain"].to_numpy()[:, None] == frame["domain"].to_numpy()[None, :]
    assert np.isneginf(channels.fused(0.5)[same_camera]).all()  # the query's own camera is never retrieved


def test_two_fold_chooses_the_channel_that_carries_the_labels(planted):
    table, flow, pose, coverage = planted
    result = pose_fusion.two_fold(table, flow, pose, coverage, n_boot=50)
    assert set(result) == set(pose_fusion.ROWS)
    for row in pose_fusion.ROWS:
        folds = result[row]["folds"]
        assert len(folds) == 2 and all(f["weight"] >= 0.5 for f in folds)  # flow is noise here
        assert not set(folds[0]["weight_chosen_on"]) & set(folds[0]["measured_on"])
        assert result[row]["P@10"] > 0.5
        # a clip with no person has nothing to rank by pose alone (every pair -inf): it leaves the queries then
        assert result[row]["n_queries"] + result[row]["n_queries_without_relevant"] == len(table)
    assert result["fused"]["folds"][0]["reranker"] == "none"
    flow_only = pose_fusion.channels(pose_fusion.engine_table(table, flow, pose, coverage), None).fused(0.0)
    from motionmatch.evaluation import query_metrics, summarise_metrics

    frame = pose_fusion.engine_table(table, flow, pose, coverage)
    chance = summarise_metrics([query_metrics(flow_only, frame, frame, exclude="group", ks=(10,), pair_scores=False)],
                               ("P@10",), n_boot=0, with_auc=False)["P@10"]
    assert chance < 0.35  # the planted flow really is noise, so the choice above means something


def test_plain_fusion_keeps_same_camera_pairs_and_falls_back_to_flow_without_a_person(planted):
    table, flow, pose, coverage = planted
    scores = pose_fusion.plain_fused(table, flow, pose, coverage, 0.7)
    assert np.isneginf(np.diag(scores)).all()
    off = ~np.eye(len(table), dtype=bool)
    assert np.isfinite(scores[off]).all()
    np.testing.assert_allclose(scores[5, 6], float(flow[5] @ flow[6]), rtol=1e-5)  # clip 5 has no person
    np.testing.assert_allclose(scores[6, 7], 0.3 * float(flow[6] @ flow[7]) + 0.7 * float(pose[6] @ pose[7]), rtol=1e-5)


def test_reranker_grid_and_labels():
    grid = pose_fusion.reranker_grid()
    labels = [pose_fusion.reranker_label(r) for r in grid]
    assert labels[0] == "none" and len(set(labels)) == len(labels)
    assert any("DBA" in label and "alpha-QE" in label for label in labels)
