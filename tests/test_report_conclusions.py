"""report/conclusions.py: each sentence follows the numbers it is made from, on real tables scored by the real
evaluation (no number typed in), and each threshold flips its sentence."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from motionmatch import beyond
from motionmatch.evaluation import run_findings, score_statistics
from motionmatch.report import (beyond_conclusion, clustering_conclusion, evaluation_conclusion, hybrid_check_line)
from motionmatch.report.conclusions import HUB_SKEW

NOTE, CAVEAT = "FlowEncoder (flow:v1)", "- **Caveat.** not V-JEPA 2"


def shifted_table(permute: bool, noise: float = 0.1, seed: int = 8) -> pd.DataFrame:
    """4 labels x 2 domains x 3 groups x 2 clips. ``permute``: domain d1 shows label L in the direction of label
    L + 1, so a query finds its motion within its domain but not across (the notes' cross-domain drop)."""
    rng = np.random.default_rng(seed)
    rows = [(label, domain, group, clip) for label in range(4) for domain in range(2) for group in range(3)
            for clip in range(2)]
    vectors = np.stack([np.eye(8)[(label + domain) % 4 if permute else label] + 0.5 * np.eye(8)[4 + domain]
                        + noise * rng.normal(size=8) for label, domain, _, _ in rows])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return pd.DataFrame({
        "clip_id": [f"c{i}" for i in range(len(rows))], "video_path": [f"v{r[0]}_{r[1]}_{r[2]}.mp4" for r in rows],
        "video_fingerprint": "x", "clip_index": [r[3] for r in rows], "start_s": 0.0, "end_s": 1.0,
        "padded_frames": 0, "label": [f"L{r[0]}" for r in rows], "domain": [f"d{r[1]}" for r in rows],
        "group": [f"g{r[0]}_{r[1]}_{r[2]}" for r in rows], "split": "", "encoder_id": "flow:v1",
        "embedding": list(vectors.astype(np.float32))})


@pytest.fixture(scope="module")
def clean():
    table = shifted_table(permute=False)
    return table, run_findings(table, n_boot=50, seed=0, progress=False)


@pytest.fixture(scope="module")
def shifted():
    table = shifted_table(permute=True)
    return table, run_findings(table, n_boot=50, seed=0, progress=False)


def test_clustering_conclusion_states_the_measured_numbers(clean):
    table, found = clean
    stats = score_statistics(table, exclude="group")
    domains = found.domain_comparison()
    text = clustering_conclusion(stats, domains, NOTE, CAVEAT)
    assert text.startswith(f"**Encoder behind every number here:** {NOTE}") and text.endswith(CAVEAT)
    assert f"Relevant pairs average {stats['relevant_mean']:.3f}" in text and f"ROC AUC {stats['auc']:.2f}" in text
    assert (f"P@10 is {domains.loc['same-domain', 'P@10']:.2f} within a domain and "
            f"{domains.loc['cross-domain', 'P@10']:.2f} across") in text
    assert "the notes: 0.65 and 0.25" in text
    assert "well separated" in text and "the cross-domain drop is small" in text  # AUC 1.0; cross above same
    assert "Caveat" not in clustering_conclusion(stats, domains, NOTE)


def test_clustering_conclusion_follows_the_band_and_the_domain_drop(clean, shifted):
    table, found = shifted
    stats = score_statistics(table, exclude="group")
    domains = found.domain_comparison()
    assert domains.loc["same-domain", "P@10"] - domains.loc["cross-domain", "P@10"] > 0.1
    assert "reproduces the notes' finding" in clustering_conclusion(stats, domains, NOTE)
    everything = clustering_conclusion(score_statistics(table, band=(-1.0, 1.0)), domains, NOTE)
    assert "100% of the top-10 scores" in everything and "fall in -1.00-1.00" in everything
    assert "this index agrees" in everything  # every score in the band: above BUNCHED_SHARE
    nothing = clustering_conclusion(score_statistics(table, band=(0.9999, 1.0)), domains, NOTE)
    assert "this index does not show that" in nothing


def test_evaluation_conclusion_states_what_was_computed(clean):
    table, found = clean
    text = evaluation_conclusion(found, NOTE, CAVEAT)
    headline = found.headline.set_index(["protocol", "exclude"])["P@10"]
    assert f"{headline[('leave-one-out', 'group')]:.2f} with the query's group excluded" in text
    assert f"near-duplicates add {found.leakage('P@10'):+.2f}" in text
    assert f"Same-domain P@10 {headline[('same-domain', 'group')]:.2f}" in text
    assert f"ROC AUC {found.scores['auc']:.2f}" in text
    skew = found.hubness["skewness"]
    assert f"Hubness skew {skew:.2f}" in text and (("real problem" in text) == (skew > HUB_SKEW))
    only_domains = evaluation_conclusion(run_findings(table, protocol="domains", n_boot=50, progress=False), NOTE)
    assert "Same-domain" in only_domains and "Leave-one-out" not in only_domains and "Hubness" not in only_domains


@pytest.fixture(scope="module")
def comparison_and_check(clean, tmp_path_factory):
    table, _ = clean
    result = beyond.compare_methods(table, test_fraction=0.67, seed=0, n_boot=20, max_epochs=2, whiten_grid=(None,),
                                    qe_ks=(3,), dba_ks=(3,), kr_params=((10, 3),), weight_step=0.5)
    check = beyond.milvus_hybrid_check(result.fit_table, result.test_table,
                                       str(tmp_path_factory.mktemp("hybrid") / "hybrid.db"),
                                       spec=result.chosen[beyond.ROW_WEIGHTED],
                                       fitted=result.fitted[beyond.ROW_WEIGHTED].fields, k=10, max_queries=12)
    return result, check


def test_beyond_conclusion_adds_the_hybrid_check_and_the_caveat(comparison_and_check):
    result, check = comparison_and_check
    text = beyond_conclusion(result, check, 0.2, NOTE, CAVEAT)
    assert text.startswith(f"**Encoder behind every number:** {NOTE}") and text.endswith(CAVEAT)
    assert "\n".join(beyond.conclusion_lines(result, target_gain=0.2, encoder_description=NOTE)) in text
    line = hybrid_check_line(check)
    assert line in text
    agreement = check.table.xs("weighted", level="ranker")["same top-k scores (ties either way)"].min()
    assert f"(12 of {len(result.test_table)} test clips as queries)" in line
    assert f"the same top-10 for {agreement:.0%} of the queries" in line
    assert f"max difference {check.round_trip['max_query_vector_difference']:.1e}" in line
    assert hybrid_check_line(check) not in beyond_conclusion(result, None, 0.2, NOTE)
