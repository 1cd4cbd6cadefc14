"""Smoke test of the search benchmark at a microscopic size, so its code cannot rot.

Runs the real thing (numpy, a Milvus Lite file, faiss) on 2,000 vectors of 64 dims and checks the
structure of the result and that recall is sane. No timing assertions: timings are the benchmark's job.
"""
from __future__ import annotations

import json

import pytest

from bench import bench_search

SIZE = 2000
DIM = 64


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "search.json"
    results_md = out.with_name("RESULTS_search.md")
    result = bench_search.main(["--sizes", str(SIZE), "--dim", str(DIM), "--queries", "20", "--time-cap-s", "1",
                                "--index-types", "FLAT,HNSW,IVF_FLAT", "--out", str(out),
                                "--results-md", str(results_md)])
    result["_out"], result["_results_md"] = out, results_md
    return result


def test_json_written_and_matches_returned_rows(result):
    on_disk = json.loads(result["_out"].read_text())
    assert on_disk["rows"] == json.loads(json.dumps(result["rows"], default=float))
    assert set(on_disk) >= {"rows", "RECOMMENDED", "targets", "index_types", "skipped", "versions", "settings"}
    section = result["_results_md"].read_text()
    assert section.startswith("## Search") and "| backend |" in section and "Command: `" in section


def test_every_backend_and_index_has_complete_rows(result):
    rows = result["rows"]
    assert {(r["backend"], r["index_type"]) for r in rows} >= {
        ("numpy", "exact"), ("milvus-lite", "FLAT"), ("milvus-lite", "HNSW"), ("milvus-lite", "IVF_FLAT")}
    for row in rows:
        assert row["size"] == SIZE
        assert 0 < row["p50_ms"] <= row["p99_ms"]
        assert row["single_queries"] >= 20 and row["batch_qps"] > 0
        assert row["peak_rss_mb"] > 0 and row["vectors_mb"] == pytest.approx(SIZE * DIM * 4 / 2**20)
        assert row["p50_ratio_vs_numpy"] == pytest.approx(row["p50_ms"] / rows[0]["p50_ms"])
        if row["backend"] == "milvus-lite":
            assert row["insert_rows_per_s"] > 0 and row["build_s"] > 0


def test_recall_is_sane(result):
    recall = {(r["backend"], r["index"], r["search"]): r["recall_at_10"] for r in result["rows"]}
    assert all(0.0 <= value <= 1.0 for value in recall.values())
    assert recall[("numpy", "exact", "")] == 1.0  # the ground truth against itself
    assert recall[("milvus-lite", "FLAT", "")] >= 0.99  # exact search inside Milvus Lite
    hnsw = [v for (backend, index, _), v in recall.items() if backend == "milvus-lite" and index.startswith("HNSW")]
    assert max(hnsw) >= 0.9


def test_recommendation_and_targets_are_well_formed(result):
    recommended = result["RECOMMENDED"]
    assert set(recommended) == {"index_type", "params", "search_params"}
    assert recommended["index_type"] in {"FLAT", "HNSW", "IVF_FLAT"}
    # 2,000 vectors: neither target size ran, and the benchmark must say so rather than pass or fail.
    for target in result["targets"].values():
        assert target["passed"] is None and "not measured" in target["note"]
    assert result["index_types"]["FLAT"] == "supported"
    assert set(result["index_types"]) == set(bench_search.PROBED_INDEX_TYPES)
    assert all(v == "supported" or v.startswith(("unsupported: ", "accepted")) for v in result["index_types"].values())


def test_mixture_data_is_deterministic_and_unit_norm():
    data = bench_search.MixtureData(DIM, seed=3)
    first, again = data.vectors(120), bench_search.MixtureData(DIM, seed=3).vectors(120)
    assert first.dtype == "float32" and first.shape == (120, DIM)
    assert (first == again).all()
    assert abs(float((first ** 2).sum(axis=1).mean()) - 1.0) < 1e-5
    assert not (data.queries(5)[:, None, :] == first[None]).all(axis=2).any()  # queries are not database rows
