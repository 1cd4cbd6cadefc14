"""Evaluation: metrics against hand-computed cases, protocols on constructed tables."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from motionmatch.evaluation import retrieval as evaluate
from motionmatch.errors import ParameterError
from motionmatch.evaluation.diagnostics import confused_examples, confusion_top1, hubness, score_statistics
from motionmatch.evaluation.retrieval import (domain_matrix, evaluate_retrieval, evaluate_scores, exclusion_comparison,
                                              exclusion_mask, leave_one_out, per_class, same_vs_cross_domain,
                                              train_test_retrieval, write_results)
from motionmatch.metrics.ranking import (average_precision, average_precision_at_k, hit_rate_at_k,
                                 metric_names, ndcg_at_k, precision_at_k, rank_relevance, recall_at_k)


def make_table(vectors, labels, videos=None, groups=None, domains=None, splits=None) -> pd.DataFrame:
    """An embeddings table with the pipeline's columns; one video and group per clip unless given."""
    vectors = np.asarray(vectors, dtype=np.float32)
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    n = len(vectors)
    videos = videos if videos is not None else [f"v{i}.mp4" for i in range(n)]
    return pd.DataFrame({
        "clip_id": [f"c{i}" for i in range(n)], "video_path": videos, "video_fingerprint": "x",
        "clip_index": 0, "start_s": 0.0, "end_s": 1.0, "padded_frames": 0, "label": labels,
        "domain": domains if domains is not None else "d", "group": groups if groups is not None else "",
        "split": splits if splits is not None else "", "encoder_id": "test", "embedding": list(vectors)})


# ----------------------------------------------------------------------------- metrics by hand
RELEVANT = np.array([[1, 0, 1, 0, 0],
                     [0, 0, 0, 0, 1],
                     [0, 0, 0, 0, 0]], dtype=bool)
N_RELEVANT = np.array([3, 1, 0])


def test_precision_recall_hit_by_hand():
    np.testing.assert_allclose(precision_at_k(RELEVANT, 1), [1, 0, 0])
    np.testing.assert_allclose(precision_at_k(RELEVANT, 3), [2 / 3, 0, 0])
    np.testing.assert_allclose(precision_at_k(RELEVANT, 10), [0.2, 0.1, 0])  # short ranking: empty places miss
    np.testing.assert_allclose(recall_at_k(RELEVANT, N_RELEVANT, 3), [2 / 3, 0, np.nan])
    np.testing.assert_allclose(recall_at_k(RELEVANT, N_RELEVANT, 5), [2 / 3, 1, np.nan])
    np.testing.assert_allclose(hit_rate_at_k(RELEVANT, 1), [1, 0, 0])
    np.testing.assert_allclose(hit_rate_at_k(RELEVANT, 5), [1, 1, 0])


def test_average_precision_and_ndcg_by_hand():
    # query 0: hits at ranks 1 and 3 of 3 relevant -> (1 + 2/3) / 3; query 1: hit at rank 5 -> 1/5
    np.testing.assert_allclose(average_precision(RELEVANT, N_RELEVANT), [5 / 9, 0.2, np.nan])
    ideal3 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    np.testing.assert_allclose(ndcg_at_k(RELEVANT, N_RELEVANT, 3), [(1 + 0.5) / ideal3, 0, np.nan])
    np.testing.assert_allclose(ndcg_at_k(RELEVANT, N_RELEVANT, 5)[1], 1 / math.log2(6))
    perfect = np.array([[1, 1, 0]], dtype=bool)
    assert ndcg_at_k(perfect, [2], 3)[0] == pytest.approx(1.0)
    assert average_precision(perfect, [2])[0] == pytest.approx(1.0)


def test_metric_parameter_errors():
    for bad in (0, -1):
        with pytest.raises(ParameterError, match=">= 1"):
            precision_at_k(RELEVANT, bad)
    for bad in (2.5, True):
        with pytest.raises(ParameterError, match="whole number"):
            precision_at_k(RELEVANT, bad)
    with pytest.raises(ParameterError, match="n_relevant is smaller"):
        average_precision(RELEVANT, [1, 1, 0])
    with pytest.raises(ParameterError, match="one total per query"):
        recall_at_k(RELEVANT, [1, 1], 2)


# ----------------------------------------------------------------------------- library oracles
def random_rankings(seed: int = 11, n_queries: int = 40, n_items: int = 30):
    """Continuous scores (no ties) and binary relevance, every query with at least one relevant item."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n_queries, n_items))
    truth = rng.random((n_queries, n_items)) < rng.uniform(0.05, 0.5, size=(n_queries, 1))
    truth[np.arange(n_queries), rng.integers(0, n_items, n_queries)] = True
    ranked, n_relevant = rank_relevance(scores, truth)
    return scores, truth, ranked, n_relevant


def test_average_precision_matches_scikit_learn():
    from sklearn.metrics import average_precision_score

    scores, truth, ranked, n_relevant = random_rankings()
    expected = [average_precision_score(t, s) for t, s in zip(truth, scores)]
    np.testing.assert_allclose(average_precision(ranked, n_relevant), expected, rtol=1e-12)


def test_ndcg_matches_scikit_learn():
    from sklearn.metrics import ndcg_score

    scores, truth, ranked, n_relevant = random_rankings(seed=12)
    for k in (1, 3, 10, 30):
        expected = [ndcg_score(t[None, :].astype(float), s[None, :], k=k) for t, s in zip(truth, scores)]
        np.testing.assert_allclose(ndcg_at_k(ranked, n_relevant, k), expected, rtol=1e-12)


def test_precision_recall_hit_rate_and_ap_at_k_against_a_plain_loop():
    scores, truth, ranked, n_relevant = random_rankings(seed=13)
    for k in (1, 5, 12):
        top = [set(np.argsort(-s)[:k]) for s in scores]
        relevant = [set(np.flatnonzero(t)) for t in truth]
        np.testing.assert_allclose(precision_at_k(ranked, k), [len(a & b) / k for a, b in zip(top, relevant)])
        np.testing.assert_allclose(recall_at_k(ranked, n_relevant, k), [len(a & b) / len(b) for a, b in zip(top, relevant)])
        np.testing.assert_allclose(hit_rate_at_k(ranked, k), [float(bool(a & b)) for a, b in zip(top, relevant)])
        loop = []
        for s, t in zip(scores, truth):
            hits = t[np.argsort(-s)[:k]]
            precisions = np.cumsum(hits) / np.arange(1, k + 1)
            loop.append((precisions * hits).sum() / min(k, t.sum()))
        np.testing.assert_allclose(average_precision_at_k(ranked, n_relevant, k), loop)


def test_rank_relevance_drops_excluded_items_from_hits_and_totals():
    scores = np.array([[0.9, 0.8, 0.7, 0.1]])
    truth = np.array([[True, False, True, True]])
    ranked, n_relevant = rank_relevance(scores, truth, excluded=np.array([[True, False, False, False]]))
    assert ranked.tolist() == [[False, True, True, False]] and n_relevant.tolist() == [2]
    assert metric_names((1, 5)) == ["P@1", "P@5", "Recall@1", "Recall@5", "HitRate@1", "HitRate@5",
                                    "nDCG@1", "nDCG@5", "mAP"]


def test_evaluate_scores_is_the_protocol_engine():
    """Any score matrix through evaluate_scores gives what the protocols give for cosine scores."""
    table = near_duplicate_table(seed=5)
    vectors = np.stack(table.embedding)
    mine = evaluate_scores(vectors @ vectors.T, table, table, exclude="group", k=5, n_boot=100)
    reference = leave_one_out(table, exclude="group", ks=(5,), n_boot=100)
    assert mine["P@5"] == pytest.approx(reference.metric("P@5"), abs=1e-12)
    assert mine["mAP"] == pytest.approx(reference.metric("mAP"), abs=1e-12)
    assert mine["n_queries"] == len(reference.per_query)
    # the query's own clip, video and group never count, whatever their score
    rigged = np.where(exclusion_mask(table, table, "group"), 100.0, 0.0)
    honest = evaluate_scores(rigged, table, table, exclude="group", k=2, n_boot=10)
    leaky = evaluate_scores(rigged, table, table, exclude="none", k=2, n_boot=10)  # 2 group mates per clip
    assert leaky["P@2"] == 1.0 and honest["P@2"] < 0.5


# ----------------------------------------------------------------------------- protocols
def near_duplicate_table(seed: int = 0) -> pd.DataFrame:
    """Groups of 3 videos that are near-copies of one random vector; class carries no signal."""
    rng = np.random.default_rng(seed)
    rows = []
    for label in range(4):
        for group in range(4):
            centre = rng.normal(size=32)
            for video in range(3):
                rows.append((centre + 0.01 * rng.normal(size=32), f"L{label}", f"L{label}_g{group}_v{video}.mp4",
                             f"L{label}_g{group}"))
    vectors, labels, videos, groups = zip(*rows)
    return make_table(np.array(vectors), list(labels), list(videos), list(groups))


def test_group_exclusion_reveals_near_duplicate_leakage():
    table = near_duplicate_table()
    leaky = leave_one_out(table, exclude="video", ks=(1, 2), n_boot=200)
    honest = leave_one_out(table, exclude="group", ks=(1, 2), n_boot=200)
    assert leaky.metric("P@1") == 1.0 and leaky.metric("P@2") == 1.0
    assert honest.metric("P@1") < 0.6
    comparison = exclusion_comparison(table, ks=(1,), n_boot=100)
    assert comparison.index.tolist() == ["none", "video", "group"]
    assert comparison.loc["video", "P@1"] - comparison.loc["group", "P@1"] > 0.4
    assert (comparison["n_queries"] == len(table)).all()


def test_own_video_is_always_excluded():
    rng = np.random.default_rng(1)
    vectors = np.repeat(rng.normal(size=(10, 16)), 2, axis=0)  # two identical clips per video
    videos = [f"v{i // 2}.mp4" for i in range(20)]
    labels = [f"L{i // 2}" for i in range(20)]  # each video its own label: only its twin is relevant
    table = make_table(vectors, labels, videos)
    assert leave_one_out(table, exclude="none", ks=(1,), n_boot=50).metric("P@1") == 1.0
    result = leave_one_out(table, exclude="video", ks=(1,), n_boot=50)
    assert result.n_queries_without_relevant == 20 and len(result.per_query) == 0


def test_queries_without_relevant_items_are_counted_not_averaged():
    table = make_table(np.eye(4) + 0.01, ["a", "a", "b", "lonely"])
    result = leave_one_out(table, ks=(1,), n_boot=50)
    assert result.n_queries_without_relevant == 2  # "b" and "lonely" have no other clip of their label
    assert sorted(result.per_query["query_id"]) == ["c0", "c1"]
    assert result.summary.loc["all", "n_queries"] == 2


def two_domain_table() -> pd.DataFrame:
    """studio: class c at e_c; street: class c at e_(c+1 mod 3), so cross-domain top-1 is always wrong."""
    rng = np.random.default_rng(2)
    rows = []
    for domain, shift in (("studio", 0), ("street", 1)):
        for label in range(3):
            for copy in range(3):
                vector = np.eye(6)[(label + shift) % 3] + 0.01 * rng.normal(size=6)
                rows.append((vector, f"L{label}", domain))
    vectors, labels, domains = zip(*rows)
    return make_table(np.array(vectors), list(labels), domains=list(domains))


def test_same_vs_cross_domain_matrix():
    table = two_domain_table()
    long = same_vs_cross_domain(table, ks=(1, 2), n_boot=100)
    assert len(long) == 4 and set(long["kind"]) == {"same", "cross"}
    matrix = domain_matrix(long, "P@1")
    assert matrix.shape == (2, 2)
    assert matrix.loc["studio", "studio"] == 1.0 and matrix.loc["street", "street"] == 1.0
    assert matrix.loc["studio", "street"] == 0.0 and matrix.loc["street", "studio"] == 0.0
    assert (long["n_queries"] == 9).all()
    cross = long[long["kind"] == "cross"].iloc[0]
    assert cross["P@2"] == 0.0 and cross["HitRate@1"] == 0.0  # top 2 across domains are the wrong class' 3 copies
    assert evaluate_retrieval(table, "same-domain", ks=(1,), n_boot=50).metric("P@1") == 1.0
    assert evaluate_retrieval(table, "cross-domain", ks=(1,), n_boot=50).metric("P@1") == 0.0
    contract_spelling = evaluate_retrieval(table, "cross-domain", ks=(1,), n_boot=50, exclude_own_group=False)
    assert contract_spelling.params["exclude"] == "video"
    with pytest.raises(ParameterError, match="no metric"):
        domain_matrix(long, "P@10")


def test_train_test_retrieval_clip_level_by_hand():
    train = [[1, 0], [0.8, 0.6], [0, 1]]
    test = [[0.9, 0.1], [0, 1]]
    table = make_table(np.array(train + test, dtype=float), ["x", "y", "y", "y", "x"],
                       splits=["train"] * 3 + ["test"] * 2)
    result = train_test_retrieval(table, ks=(1, 2, 3), n_boot=100)
    # query y (0.9, 0.1) ranks x, y, y; query x (0, 1) ranks y, y, x
    assert result.metric("HitRate@1") == 0.0
    assert result.metric("HitRate@2") == pytest.approx(0.5)
    assert result.metric("HitRate@3") == pytest.approx(1.0)
    assert result.metric("mAP") == pytest.approx(((1 / 2 + 2 / 3) / 2 + 1 / 3) / 2)
    assert result.params["n_gallery"] == 3
    assert result.per_query["query_id"].tolist() == ["c3", "c4"]


def test_train_test_retrieval_video_level_by_hand():
    # train video A (x): clips (1,0),(0,1); train video B (y): (0.96,0.28) twice; test video Q (x): (0.96,0.28),(0,1)
    vectors = np.array([[1, 0], [0, 1], [0.96, 0.28], [0.96, 0.28], [0.96, 0.28], [0, 1]], dtype=float)
    table = make_table(vectors, ["x", "x", "y", "y", "x", "x"], videos=["A", "A", "B", "B", "Q", "Q"],
                       splits=["train"] * 4 + ["test"] * 2)
    clip_level = train_test_retrieval(table, ks=(1,), n_boot=50)
    assert clip_level.metric("HitRate@1") == 0.5  # Q's first clip finds B, its second finds A
    video_level = train_test_retrieval(table, ks=(1,), level="video", n_boot=50)
    assert video_level.per_query["query_id"].tolist() == ["Q"]
    assert video_level.metric("HitRate@1") == 1.0  # mean-pooled Q (0.6, 0.8) is closer to A than to B
    with pytest.raises(ParameterError, match="matches no clip"):
        train_test_retrieval(table, query_split="val")
    with pytest.raises(ParameterError, match="level"):
        train_test_retrieval(table, level="frame")


def test_chunked_ranking_matches_one_block(monkeypatch):
    table = near_duplicate_table(seed=3)
    whole = leave_one_out(table, ks=(1, 5), n_boot=50).per_query
    monkeypatch.setattr(evaluate, "CHUNK_ELEMENTS", 50)
    blocked = leave_one_out(table, ks=(1, 5), n_boot=50).per_query
    pd.testing.assert_frame_equal(whole, blocked)


def test_protocol_parameter_validation():
    table = two_domain_table()
    with pytest.raises(ParameterError, match=">= 1"):
        leave_one_out(table, ks=(0, 5))
    with pytest.raises(ParameterError, match="exclude must be one of"):
        leave_one_out(table, exclude="domain")
    with pytest.raises(ParameterError, match="protocol must be one of"):
        evaluate_retrieval(table, protocol="holdout")
    with pytest.raises(ParameterError, match=r"lacks column\(s\) \['group'\]"):
        leave_one_out(table.drop(columns="group"))
    with pytest.raises(ParameterError, match="empty"):
        score_statistics(table.iloc[:0])
    with pytest.raises(ParameterError, match="n_boot"):
        leave_one_out(table, n_boot=0)


# ----------------------------------------------------------------------------- per class
def test_summary_ci_and_per_class():
    result = leave_one_out(near_duplicate_table(), exclude="group", ks=(1, 5), n_boot=300)
    summary = result.summary.loc["all"]
    for metric in result.metrics:
        assert summary[f"{metric}_lo"] <= summary[metric] + 1e-12 <= summary[f"{metric}_hi"] + 2e-12
    classes = per_class(result, n_boot=100)
    assert classes.index.tolist() == ["L0", "L1", "L2", "L3"]
    assert classes["n_queries"].sum() == len(result.per_query)
    expected = result.per_query.groupby("label")["P@5"].mean()
    np.testing.assert_allclose(classes["P@5"], expected)


# ----------------------------------------------------------------------------- score statistics
def brute_force_pairs(table: pd.DataFrame, exclude: str) -> tuple[np.ndarray, np.ndarray]:
    vectors = np.stack(table.embedding)
    relevant, irrelevant = [], []
    for i in range(len(table)):
        for j in range(i + 1, len(table)):
            a, b = table.iloc[i], table.iloc[j]
            if a.video_path == b.video_path or (exclude == "group" and a.group and a.group == b.group):
                continue
            (relevant if a.label == b.label else irrelevant).append(float(vectors[i] @ vectors[j]))
    return np.array(relevant), np.array(irrelevant)


def test_score_statistics_separated_vs_random():
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(4), 10)
    separated = make_table(np.eye(8)[labels] + 0.05 * rng.normal(size=(40, 8)), [f"L{l}" for l in labels])
    stats = score_statistics(separated)
    assert stats["auc"] == 1.0 and stats["overlap"] == 0.0
    assert stats["gap"] > 0.8 and stats["relevant_mean"] > 0.9
    random = make_table(rng.normal(size=(300, 64)), [f"L{l}" for l in rng.integers(0, 5, 300)])
    stats = score_statistics(random)
    assert abs(stats["auc"] - 0.5) < 0.05 and abs(stats["gap"]) < 0.02 and stats["overlap"] > 0.85
    assert set(stats["samples"]) == {"relevant", "irrelevant"}


def test_score_statistics_matches_brute_force_and_tests_the_band():
    rng = np.random.default_rng(6)
    n = 30
    vectors = np.ones((n, 16)) + 0.2 * rng.normal(size=(n, 16))  # cosines spread around 0.96
    labels = [f"L{i % 3}" for i in range(n)]
    videos = [f"v{i // 2}.mp4" for i in range(n)]
    groups = [f"g{i // 6}" for i in range(n)]
    table = make_table(vectors, labels, videos, groups)
    for exclude in ("video", "group"):
        stats = score_statistics(table, exclude=exclude, top_k=3, max_pairs=100_000)
        relevant, irrelevant = brute_force_pairs(table, exclude)
        assert stats["n_relevant_pairs"] == len(relevant) and stats["n_irrelevant_pairs"] == len(irrelevant)
        assert stats["relevant_mean"] == pytest.approx(relevant.mean(), abs=1e-6)
        assert stats["irrelevant_std"] == pytest.approx(irrelevant.std(), abs=1e-5)
        every = np.r_[relevant, irrelevant]
        assert stats["frac_in_095_098"] == pytest.approx(np.mean((every >= 0.95) & (every <= 0.98)))
        assert 0 < stats["frac_in_095_098"] < 1
        assert len(stats["samples"]["relevant"]) == len(relevant)  # under the budget: every pair kept
    scores = np.stack(table.embedding) @ np.stack(table.embedding).T
    same_group = np.equal.outer(table.group.to_numpy(), table.group.to_numpy())
    top3 = -np.sort(-np.where(same_group, -np.inf, scores), axis=1)[:, :3]
    assert stats["top3_frac_in_095_098"] == pytest.approx(np.mean((top3 >= 0.95) & (top3 <= 0.98)))
    sampled = score_statistics(table, exclude="group", max_pairs=40, seed=3)
    assert len(sampled["samples"]["relevant"]) <= 20 and len(sampled["samples"]["irrelevant"]) <= 20
    assert sampled["n_relevant_pairs"] == stats["n_relevant_pairs"]  # exact counts do not depend on sampling


# ----------------------------------------------------------------------------- hubness and confusion
def test_hubness_finds_a_planted_hub():
    rng = np.random.default_rng(7)
    centre = np.eye(64)[0]
    vectors = centre + rng.normal(size=(60, 64)) / 8  # a cloud around one direction, unit-size spread
    table = make_table(np.vstack([vectors, centre]), ["x"] * 61)  # the hub sits at the cloud's centre
    result = hubness(table, k=5)
    assert result["hubs"].iloc[0]["clip_id"] == "c60"
    assert result["n_k"]["c60"] == 60 and result["max_n_k"] == 60  # in every other clip's top 5
    assert result["hubs"].iloc[1]["N_k"] < 40
    assert result["skewness"] > 2.0
    # N_k against a brute-force count of every clip's top 5 (argsort over the full score matrix)
    vectors = np.stack(table.embedding)
    scores = vectors @ vectors.T
    np.fill_diagonal(scores, -np.inf)  # one clip per video and group: only itself is excluded
    top5 = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(result["n_k"].to_numpy(), np.bincount(top5.ravel(), minlength=len(table)))
    assert result["skewness"] == pytest.approx(float(__import__("scipy").stats.skew(result["n_k"].to_numpy())))
    assert list(result["hubs"].columns) == ["clip_id", "video_path", "label", "N_k"]


def confusion_table() -> pd.DataFrame:
    e = np.eye(5)
    vectors = [e[0], e[1], e[0] + 0.1 * e[2], e[1] + 0.1 * e[2], e[3], e[3] + 0.1 * e[4]]
    return make_table(np.array(vectors), ["A", "A", "B", "B", "C", "C"])


def test_confusion_top1_and_examples():
    matrix = confusion_top1(confusion_table())
    expected = pd.DataFrame([[0, 2, 0], [2, 0, 0], [0, 0, 2]], index=list("ABC"), columns=list("ABC"))
    np.testing.assert_array_equal(matrix.to_numpy(), expected.to_numpy())
    assert matrix.index.tolist() == list("ABC") and matrix.columns.tolist() == list("ABC")
    examples = confused_examples(confusion_table(), n=5)
    assert len(examples) == 2 and set(zip(examples.query_label, examples.neighbour_label)) == {("A", "B"), ("B", "A")}
    assert (examples["cell_count"] == 2).all()
    first = examples.iloc[0]
    assert {first["query_clip_id"], first["neighbour_clip_id"]} in ({"c0", "c2"}, {"c1", "c3"})
    assert {"query_video_path", "neighbour_start_s"} <= set(examples.columns)


# ----------------------------------------------------------------------------- output
def test_write_results_csv_and_json(tmp_path):
    table = confusion_table()
    result = leave_one_out(table, ks=(1,), n_boot=50)
    paths = write_results(result, tmp_path)
    assert sorted(p.name for p in paths) == ["leave-one-out.json", "leave-one-out_per_query.csv",
                                             "leave-one-out_summary.csv"]
    saved = json.loads((tmp_path / "leave-one-out.json").read_text())
    assert saved["summary"]["P@1"] == pytest.approx(result.metric("P@1"))
    assert pd.read_csv(tmp_path / "leave-one-out_per_query.csv").shape[0] == len(result.per_query)
    one_label = table.assign(label="A")  # no irrelevant pairs: AUC is undefined and must be written as null
    write_results(score_statistics(one_label), tmp_path, "scores")
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert "samples" not in scores and scores["auc"] is None and scores["n_relevant_pairs"] == 15
    write_results(hubness(table, k=2), tmp_path, "hubs")
    assert (tmp_path / "hubs_hubs.csv").exists()
    with pytest.raises(ParameterError, match="name"):
        write_results(confusion_top1(table), tmp_path)


# ----------------------------------------------------------------------------- the findings suite's helpers
def findings_table(seed: int = 8) -> pd.DataFrame:
    """4 labels x 2 domains x 3 groups x 2 clips: a label direction plus a domain offset plus noise."""
    rng = np.random.default_rng(seed)
    rows = [(label, domain, group, clip) for label in range(4) for domain in range(2) for group in range(3)
            for clip in range(2)]
    vectors = [np.eye(8)[label] + 0.6 * np.eye(8)[4 + domain] + 0.3 * rng.normal(size=8) for label, domain, _, _ in rows]
    return make_table(vectors, [f"L{r[0]}" for r in rows], videos=[f"v{r[0]}_{r[1]}_{r[2]}.mp4" for r in rows],
                      groups=[f"g{r[0]}_{r[1]}_{r[2]}" for r in rows], domains=[f"d{r[1]}" for r in rows])


def test_band_shares_and_score_values_name_the_band_once():
    from motionmatch.evaluation import band_shares, score_summary, score_values

    table = findings_table()
    stats = score_statistics(table, exclude="group", top_k=5, band=(0.5, 0.9))
    shares = band_shares(stats)
    assert (shares.low, shares.high, shares.top_k) == (0.5, 0.9, 5)
    relevant, irrelevant = brute_force_pairs(table, "group")
    every = np.r_[relevant, irrelevant]
    assert shares.all_pairs == pytest.approx(np.mean((every >= 0.5) & (every <= 0.9)))
    assert shares.top == stats["top5_frac_in_050_090"]
    values = score_values(stats)
    assert set(values) == {"relevant_mean", "irrelevant_mean", "gap", "auc", "overlap", "frac_in_band",
                           "top5_frac_in_band"}
    assert values["relevant_mean"] == pytest.approx(relevant.mean()) and values["frac_in_band"] == shares.all_pairs
    summary = score_summary(stats)["value"]
    assert summary["share of top-5 scores in [0.50, 0.90]"] == shares.top


def test_domain_comparison_pools_each_kind_and_names_the_notes():
    from motionmatch.evaluation import NOTES_P10, run_findings

    table = findings_table()
    found = run_findings(table, protocol="domains", n_boot=50, seed=0, progress=False)
    compared = found.domain_comparison("P@10")
    assert list(compared.index) == ["same-domain", "cross-domain"]
    for kind in compared.index:
        direct = evaluate_retrieval(table, protocol=kind, exclude="group", n_boot=50, seed=0)
        assert compared.loc[kind, "P@10"] == pytest.approx(direct.metric("P@10"))
        assert compared.loc[kind, "95% CI low"] <= compared.loc[kind, "P@10"] <= compared.loc[kind, "95% CI high"]
        assert compared.loc[kind, "queries"] == direct.summary.loc["all", "n_queries"]
        assert compared.loc[kind, "notes' value"] == NOTES_P10[kind]
    assert "notes' value" not in found.domain_comparison("mAP").columns
    one_domain = run_findings(table.assign(domain="d"), protocol="domains", n_boot=50, progress=False)
    with pytest.raises(ParameterError, match="more than one domain"):
        one_domain.domain_comparison()
