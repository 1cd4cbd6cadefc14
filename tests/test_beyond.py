"""Beyond zero-shot on REAL embeddings: generated videos, decoded and embedded by the flow encoder, real Milvus Lite."""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest

from motionmatch import beyond
from motionmatch.cli import beyond as cli_beyond
from motionmatch.data import sources as datasets
from motionmatch.evaluation import retrieval as evaluate
from motionmatch.extract import local as pipeline
from motionmatch.video.clips import ClipSpec
from motionmatch.encoders import build_encoder
from motionmatch.errors import EncoderMismatchError, ParameterError
from motionmatch.index.store import MotionStore
from motionmatch.table import effective_groups, embedding_matrix, load_embeddings
from motionmatch.data.synthetic import generate_sample_dataset

# small grids keep the file fast; the notebook uses the defaults
FAST = dict(n_boot=100, max_epochs=4, whiten_grid=(16, None), qe_ks=(3, 5), dba_ks=(3,), kr_params=((10, 3),),
            weight_step=0.25)


@pytest.fixture(scope="module")
def embeddings_dir(tmp_path_factory):
    """60 real videos (10 motions x 2 domains x 3 groups), 2 clips each, embedded once by the flow encoder."""
    work = tmp_path_factory.mktemp("beyond")
    manifest = generate_sample_dataset(work / "sample", seed=3, videos_per_class_per_domain=3,
                                       groups_per_class_per_domain=3, num_frames=24, size=(96, 64), progress=False)
    source, failures = datasets.load_source(manifest)
    out = work / "embeddings"
    summary = pipeline.extract_embeddings(source, build_encoder("flow"), out, progress=False,
                                          clip_spec=ClipSpec(frames_per_clip=8, frame_stride=2, clips_per_video=2),
                                          discovery_failures=failures)
    assert summary.failed == 0
    return out


@pytest.fixture(scope="module")
def table(embeddings_dir):
    return load_embeddings(embeddings_dir)


@pytest.fixture(scope="module")
def split(table):
    # 2 of the 3 groups of every (label, domain) go to test, so same-domain is measurable there too
    return beyond.split_held_out_groups(table, test_fraction=0.67, seed=0)


@pytest.fixture(scope="module")
def comparison(split):
    fit_table, test_table = split
    return beyond.compare_on_split(fit_table, test_table, seed=0, **FAST)


def test_split_puts_each_group_on_one_side_and_each_cell_on_both(table):
    fit_table, test_table = beyond.split_held_out_groups(table, test_fraction=0.4, seed=1)
    assert len(fit_table) + len(test_table) == len(table)
    assert not set(fit_table.group) & set(test_table.group)
    cells = lambda t: set(zip(t.label, t.domain))
    assert cells(fit_table) == cells(test_table) == cells(table)
    assert test_table.groupby(["label", "domain"]).group.nunique().eq(1).all()  # round(0.4 * 3) = 1 of 3


def test_split_moves_one_group_cells_of_a_label_together(table):
    one_group_per_cell = table[table.group.str.endswith("_g0")].reset_index(drop=True)
    fit_table, test_table = beyond.split_held_out_groups(one_group_per_cell, test_fraction=0.4, seed=0)
    assert not set(fit_table.group) & set(test_table.group)
    assert len(fit_table) and len(test_table)
    for side in (fit_table, test_table):  # a label on a side has both domains there: cross-domain stays measurable
        assert side.groupby("label").domain.nunique().eq(2).all()
    assert set(test_table.label).isdisjoint(fit_table.label)
    with pytest.raises(ParameterError, match="at least 2"):
        beyond.split_held_out_groups(table[table.group == table.group.iloc[0]])


def test_protocol_pairs_pool_to_the_evaluate_protocols(split):
    """Scoring pair by pair (as compare_methods does) and pooling equals evaluate's protocol on the whole table."""
    _, test_table = split
    vectors = embedding_matrix(test_table)
    for protocol in beyond.PROTOCOLS:
        pairs = [p for p in beyond.protocol_pairs(test_table) if p.protocol == protocol]
        parts = []
        for pair in pairs:
            queries, gallery = test_table.iloc[pair.query_rows], test_table.iloc[pair.gallery_rows]
            scores = vectors[pair.query_rows] @ vectors[pair.gallery_rows].T
            parts.append(evaluate.query_metrics(scores, queries, gallery, "group", (10,)))
        mine = evaluate.summarise_metrics(parts, ("P@10", "mAP"), n_boot=100)
        reference = evaluate.evaluate_retrieval(test_table, protocol=protocol, exclude="group", n_boot=100)
        assert mine["P@10"] == pytest.approx(reference.metric("P@10"), abs=1e-9)
        assert mine["mAP"] == pytest.approx(reference.metric("mAP"), abs=1e-9)
        assert mine["n_queries"] == len(reference.per_query)


def test_reranked_scores_are_the_rerankers(comparison):
    """A fitted method's re-ranked scores are Reranker.rerank's: the top 10 of both agree."""
    result = comparison
    method = result.fitted[beyond.ROW_KR]
    queries = result.test_table[result.test_table.domain == result.test_table.domain.iloc[0]]
    gallery = result.test_table[result.test_table.domain != result.test_table.domain.iloc[0]]
    scores, _ = method.score(queries, gallery)
    field = method.fields[0]
    mask = evaluate.exclusion_mask(queries, gallery)
    pool = min(method.spec.kr_pool, int((~mask).sum(axis=1).min()))
    order, top_scores, _ = method.spec.reranker.rerank(field.transform(queries), field.transform(gallery),
                                                       top_k=pool, exclude_mask=mask)
    np.testing.assert_allclose(np.take_along_axis(scores, order[:, :10], axis=1), top_scores[:, :10], atol=1e-6)


def test_compare_methods_returns_every_row_with_finite_numbers(comparison):
    result = comparison
    expected = [beyond.ROW_ZERO_SHOT, beyond.ROW_CENTER, beyond.ROW_WHITEN, beyond.ROW_TRIPLET, beyond.ROW_NTXENT,
                beyond.ROW_RRF, beyond.ROW_WEIGHTED, beyond.ROW_QE, beyond.ROW_DBA, beyond.ROW_KR, beyond.ROW_BEST]
    assert list(result.table.index) == expected
    numeric = result.table.drop(columns=["chosen on validation"])
    assert np.isfinite(numeric.to_numpy(dtype=float)).all(), numeric[~np.isfinite(numeric.astype(float)).all(axis=1)]
    for protocol in beyond.PROTOCOLS:
        for metric in ("P@10", "mAP"):
            column = f"{protocol} {metric}"
            assert (result.table[f"{column} lo"] <= result.table[column] + 1e-12).all()
            assert (result.table[column] <= result.table[f"{column} hi"] + 1e-12).all()
            assert result.table[column].between(0, 1).all()
    assert result.table.loc[beyond.ROW_ZERO_SHOT, "ms/query added"] == 0.0
    assert result.table.loc[beyond.ROW_TRIPLET, "fit s"] > 0.0
    # the flow descriptor carries motion: zero-shot is far above chance (1 label in 10)
    assert result.value(beyond.ROW_ZERO_SHOT, "cross-domain P@10") > 0.2
    assert not result.head_history["triplet"].empty and not result.head_history["ntxent"].empty
    assert result.improvement() == pytest.approx(result.value(beyond.ROW_BEST, "cross-domain P@10")
                                                 - result.value(beyond.ROW_ZERO_SHOT, "cross-domain P@10"))
    formatted = result.formatted()
    assert formatted.loc[beyond.ROW_BEST, "cross-domain P@10 [95% CI]"].count("[") == 1
    text = "\n".join(beyond.conclusion_lines(result, encoder_description="FlowEncoder"))
    assert "FlowEncoder" in text and ("MET" in text or "NOT met" in text)


def test_choices_are_made_on_validation_only(comparison, split):
    result = comparison
    tested = result.audit["tested"]
    assert tested == set(effective_groups(split[1]))
    for stage in ("fitted_while_choosing", "validated", "fitted_final"):
        assert result.audit[stage] and not result.audit[stage] & tested, stage
    assert not result.audit["fitted_while_choosing"] & result.audit["validated"]
    # scrambling the test labels changes the test numbers but none of the choices
    fit_table, test_table = split
    scrambled = test_table.assign(label=np.random.default_rng(0).permutation(test_table.label.to_numpy()))
    again = beyond.compare_on_split(fit_table, scrambled, seed=0, **FAST)
    assert {row: spec.label for row, spec in again.chosen.items()} == \
        {row: spec.label for row, spec in result.chosen.items()}
    pd.testing.assert_frame_equal(again.validation, result.validation)
    assert not np.allclose(again.table["cross-domain P@10"], result.table["cross-domain P@10"])


def test_check_no_leakage_counts_each_stage_and_names_a_leak(comparison):
    import dataclasses

    assert comparison.check_no_leakage() == {"fitted_while_choosing": 0, "validated": 0, "fitted_final": 0}
    tested = sorted(comparison.audit["tested"])[0]
    leaky = dataclasses.replace(comparison, audit={**comparison.audit,
                                                   "validated": comparison.audit["validated"] | {tested}})
    with pytest.raises(beyond.LeakageError, match=f"1 test group\\(s\\) reached validated .*{tested}"):
        leaky.check_no_leakage()
    with pytest.raises(ParameterError, match="no audit"):
        dataclasses.replace(comparison, audit={}).check_no_leakage()


def test_split_summary_and_score_spreads_describe_the_split(comparison, split):
    from motionmatch.refine import score_spread

    summary = comparison.split_summary()
    assert summary["clips"].tolist() == [len(comparison.train_table), len(comparison.val_table), len(split[1])]
    assert summary.loc["test (measure once)", "groups"] == len(set(effective_groups(split[1])))
    assert summary["groups"].sum() == len(set(effective_groups(pd.concat(split))))  # every group on one side
    spreads = comparison.score_spreads(seed=0)
    assert list(spreads.index) == [beyond.ROW_ZERO_SHOT, beyond.ROW_CENTER, beyond.ROW_WHITEN]
    raw = score_spread(embedding_matrix(split[1]), seed=0)
    assert spreads.loc[beyond.ROW_ZERO_SHOT, "q50"] == pytest.approx(raw["q50"], abs=1e-6)
    assert spreads.loc[beyond.ROW_ZERO_SHOT, "share of pair cosines in [0.95, 0.98]"] == pytest.approx(
        raw["frac_in_095_098"])
    assert spreads.loc[beyond.ROW_CENTER, "q50"] < spreads.loc[beyond.ROW_ZERO_SHOT, "q50"]  # centring lowers cosines


def test_milvus_hybrid_search_reproduces_the_numpy_fusion(comparison, tmp_path):
    result = comparison
    check = beyond.milvus_hybrid_check(result.fit_table, result.test_table, str(tmp_path / "hybrid.db"),
                                       spec=result.chosen[beyond.ROW_WEIGHTED],
                                       fitted=result.fitted[beyond.ROW_WEIGHTED].fields, k=10)
    weighted = check.table.xs("weighted", level="ranker")
    # a weighted sum of cosines is per item: Milvus and numpy return the same top-10 lists
    assert (weighted["identical top-k lists"] == 1.0).all(), weighted
    np.testing.assert_allclose(weighted["Milvus P@10"], weighted["numpy P@10"], atol=1e-12)
    np.testing.assert_allclose(weighted["numpy P@10"],
                               [result.value(beyond.ROW_WEIGHTED, f"{p} P@10") for p in weighted.index], atol=1e-9)
    rrf = check.table.xs("rrf", level="ranker")
    # cross-domain has no own group in the gallery, so the fused RRF scores coincide (ties may swap places);
    # same-domain ranks may differ by design (documented in milvus_hybrid_check)
    assert rrf.loc["cross-domain", "same top-k scores (ties either way)"] == 1.0
    assert (weighted["same top-k scores (ties either way)"] == 1.0).all()
    assert rrf.loc["same-domain", "top-k overlap"] > 0.9
    assert check.round_trip["head_arrays_equal"] is True
    assert check.round_trip["max_query_vector_difference"] == 0.0
    assert check.round_trip["encoder_id_matches"] is True
    assert set(check.fields) == {"embedding", "head"}
    assert check.n_queries_checked == check.n_test_clips == len(result.test_table)
    sampled = beyond.milvus_hybrid_check(result.fit_table, result.test_table, str(tmp_path / "hybrid.db"),
                                         spec=result.chosen[beyond.ROW_WEIGHTED],
                                         fitted=result.fitted[beyond.ROW_WEIGHTED].fields, k=10, max_queries=7)
    assert sampled.n_queries_checked == 7 and sampled.table["queries"].max() <= 7
    assert (sampled.table.xs("weighted", level="ranker")["identical top-k lists"] == 1.0).all()


def test_transforms_round_trip_with_a_collection(comparison, tmp_path):
    result = comparison
    calibration = result.fitted[beyond.ROW_CENTER].fields[0].artifact
    head = result.fitted[beyond.ROW_TRIPLET].fields[0].artifact
    other_head = result.fitted[beyond.ROW_NTXENT].fields[0].artifact
    vectors = embedding_matrix(result.test_table)
    uri = str(tmp_path / "transforms.db")
    with MotionStore(uri, "transforms") as store:
        store.ensure_collection(result.encoder_id, vectors.shape[1], {"kind": "test"})
        assert beyond.load_transforms(store) == (None, None)
        beyond.save_transforms(store, calibration=calibration, head=other_head)
        beyond.save_transforms(store, head=head)  # replaces the first head entirely
    with MotionStore(uri, "transforms") as store:
        loaded_calibration, loaded_head = beyond.load_transforms(store, expected_encoder_id=result.encoder_id)
        with pytest.raises(EncoderMismatchError):
            beyond.load_transforms(store, expected_encoder_id="vjepa2:someone-else")
    np.testing.assert_array_equal(loaded_calibration.transform(vectors), calibration.transform(vectors))
    np.testing.assert_array_equal(loaded_head.project(vectors), head.project(vectors))
    assert loaded_head.config.loss == "triplet" and loaded_head.output_encoder_id == head.output_encoder_id


def test_cli_calibrate_train_head_and_hybrid_index(embeddings_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="motionmatch")
    cli_beyond.add_subcommands(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> int:
        args = parser.parse_args(list(argv))
        return cli_beyond.COMMANDS[args.command](args)

    calibration_path, head_path, uri = tmp_path / "cal.npz", tmp_path / "head.pt", str(tmp_path / "cli.db")
    assert run("calibrate", "--embeddings", str(embeddings_dir), "--mode", "whiten", "--n-components", "16",
               "--out", str(calibration_path)) == 0
    assert "share in [0.95, 0.98]" in capsys.readouterr().out
    assert run("train-head", "--embeddings", str(embeddings_dir), "--loss", "ntxent", "--max-epochs", "3",
               "--out", str(head_path)) == 0
    assert run("hybrid-index", "--embeddings", str(embeddings_dir), "--calibration", str(calibration_path),
               "--head", str(head_path), "--milvus-uri", uri, "--collection", "cli_hybrid") == 0
    assert "head (" in capsys.readouterr().out
    table = load_embeddings(embeddings_dir)
    with MotionStore(uri, "cli_hybrid") as store:
        assert store.count() == len(table)
        assert store.encoder_info()["vector_fields"] == {"embedding": 16, "head": 176}
        calibration, head = beyond.load_transforms(store, expected_encoder_id=table.encoder_id.iloc[0])
        raw = embedding_matrix(table.iloc[:2])
        hits = store.hybrid_search({"embedding": calibration.transform(raw), "head": head.project(raw)}, k=3)
    assert [h[0].clip_id for h in hits] == list(table.clip_id.iloc[:2])  # each clip finds itself first
    with pytest.raises(ParameterError, match="calibrate"):
        run("hybrid-index", "--embeddings", str(embeddings_dir), "--calibration", str(tmp_path / "missing.npz"),
            "--head", str(head_path), "--milvus-uri", uri)


def test_bad_inputs_are_refused_with_a_reason(split, table):
    fit_table, test_table = split
    with pytest.raises(ParameterError, match="both the fit and the test side"):
        beyond.compare_on_split(fit_table, pd.concat([test_table, fit_table.iloc[:2]]), **FAST)
    with pytest.raises(ParameterError, match="selection"):
        beyond.compare_on_split(fit_table, test_table, selection="best-on-test")
    with pytest.raises(ParameterError, match="test_fraction"):
        beyond.split_held_out_groups(table, test_fraction=1.0)
    with pytest.raises(ParameterError, match="fusion"):
        beyond.MethodSpec((beyond.VectorSpec("raw"), beyond.VectorSpec("center")))
