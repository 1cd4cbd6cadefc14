"""Smoke tests of the benchmarks at microscopic sizes, so their code cannot rot.

The search benchmark runs the real thing (numpy, a Milvus Lite file, faiss) on 2,000 vectors of 64
dims; the long-video cost benchmark runs its ``--quick`` mode (real extractions in subprocesses); the
segment-search benchmark runs on 2,000 windows. They check the structure of the results and that
they are sane (recall, stage times inside the total, the copied range found), and the verdict
logic on made-up numbers. No timing assertions: timings are the benchmarks' job.
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


# ----------------------------------------------------------------------------- python -m bench: registration, targets
def test_every_registered_benchmark_has_a_title_and_targets_of_both_forms_are_tabled():
    from bench import __main__ as runner

    assert set(runner.TITLES) == set(runner.BENCHMARKS)
    assert runner.BENCHMARKS.index("shots") < runner.BENCHMARKS.index("long_cost") < runner.BENCHMARKS.index("segment_search")
    outcomes = {
        "long_cost": {"status": "ok", "seconds": 1.0, "result": {"targets": {
            "a": {"target": "linear", "measured": "R² 0.999", "passed": True},
            "b": {"target": "flat", "measured": "1.20x", "passed": False}}}},
        "localize": {"status": "ok", "seconds": 1.0, "result": {"targets": [
            {"target": "copy µAP >= 0.90", "measured": "0.93", "verdict": "PASS"},
            {"target": "F1 >= 0.70", "measured": "0.41", "verdict": "FAIL"},
            {"target": "GPU", "measured": "no GPU", "verdict": "NOT MEASURED"}]}},
        "segment_search": {"status": "missing", "seconds": 0.0, "error": "not there"},
    }
    rows = runner._target_rows(outcomes)
    assert rows == ["| long_cost | linear | R² 0.999 | **PASS** |", "| long_cost | flat | 1.20x | **FAIL** |",
                    "| localize | copy µAP >= 0.90 | 0.93 | **PASS** |", "| localize | F1 >= 0.70 | 0.41 | **FAIL** |",
                    "| localize | GPU | no GPU | NOT MEASURED |"]
    assert "## Segment search" in runner.results_markdown(outcomes, quick=True, command="python -m bench --quick")


# ----------------------------------------------------------------------------- long_cost
def test_linear_judge_passes_a_line_and_fails_superlinear_growth():
    import numpy as np

    from bench import bench_long_cost

    minutes = [0.2, 0.4, 0.8, 1.6]
    line = bench_long_cost.judge_linear([{"minutes": m, "cpu_s": 4.0 + 40.0 * m} for m in minutes])
    assert line["passed"] and line["slope"] == pytest.approx(40.0) and line["r2"] == pytest.approx(1.0)
    assert line["marginal_s_per_min"] == pytest.approx([40.0, 40.0, 40.0])
    seconds = [4.0 + 40.0 * m + 60.0 * m * m for m in minutes]
    curved = bench_long_cost.judge_linear([{"minutes": m, "wall_s": s} for m, s in zip(minutes, seconds)], "wall_s")
    assert not curved["passed"] and curved["max_step_deviation"] > bench_long_cost.STEP_TOLERANCE
    assert curved["r2"] == pytest.approx(np.corrcoef(minutes, seconds)[0, 1] ** 2)  # numpy as the oracle


def test_memory_judge_compares_the_long_video_with_the_short_one():
    from bench import bench_long_cost

    short = {"minutes": 250 / 12 / 60, "peak_rss_mib": 1000.0, "frames": 250, "windows": 40}
    judged = bench_long_cost.judge_memory([short, {"minutes": 2.5, "peak_rss_mib": 1040.0, "frames": 1800, "windows": 290}])
    assert judged["passed"] and judged["ratio"] == pytest.approx(1.04) and judged["duration_ratio"] == pytest.approx(7.2)
    grown = bench_long_cost.judge_memory([short, {"minutes": 2.5, "peak_rss_mib": 1150.0, "frames": 1800, "windows": 290}])
    assert not grown["passed"] and grown["ratio"] == pytest.approx(1.15)


def test_stage_timers_time_calls_and_a_generator_s_next():
    import time

    from bench import bench_long_cost

    timers = bench_long_cost.StageTimers()

    def slow_items(n):
        for i in range(n):
            time.sleep(0.02)
            yield i

    assert list(timers.wrap_iter("decode", slow_items)(3)) == [0, 1, 2]
    assert timers.wrap("encode", lambda x: time.sleep(0.03) or x)(7) == 7
    assert timers.wall["decode"] >= 0.06 and timers.wall["encode"] >= 0.03 and timers.wall["shots"] == 0.0


@pytest.mark.slow
def test_long_cost_quick_runs_the_whole_path(tmp_path):
    from bench import bench_long_cost

    out = tmp_path / "long_cost.json"
    result = bench_long_cost.main(["--quick", "--out", str(out)])
    assert json.loads(out.read_text())["targets"] == result["targets"]
    for target in result["targets"].values():  # quick sizes are not the targets' sizes
        assert target["passed"] is None and "not judged" in target["measured"]
    rows = result["linear_rows"] + result["memory_rows"]
    for kind in ("linear_rows", "memory_rows"):
        windows = [row["windows"] for row in result[kind]]
        assert windows == sorted(windows) and windows[-1] > windows[0] > 0  # longer video, more windows
    for row in rows:
        assert row["peak_rss_mib"] > 50 and row["frames"] > 0
        alone = row["stage_wall_s"]["probe"] + row["stage_wall_s"]["shots"]  # before decode and encode start
        assert alone + max(row["stage_wall_s"]["decode"], row["stage_wall_s"]["encode"]) <= row["wall_s"] * 1.02 + 0.05
        assert row["stage_wall_s"]["shots"] > 0 and row["stage_wall_s"]["encode"] > 0 and row["content"]["wall"] > 0
    stages = [row["wall"] for row in result["stages"]]  # probe, shots, decode, encode, phase, content, totals
    assert stages[-2] > stages[1] > 0 and stages[2] > 0 and stages[3] > 0
    assert stages[-2] == pytest.approx(stages[0] + stages[1] + stages[4])  # the phase is the rest of the run
    assert "| stage | wall s / video-hour |" in result["summary"]


# ----------------------------------------------------------------------------- segment_search
def test_structured_vectors_resemble_a_video_and_queries_resemble_their_source():
    import numpy as np

    from bench import bench_segment_search as seg

    rng = np.random.default_rng(0)
    videos = np.stack([seg.video_vectors(rng, 50, seg.DIM) for _ in range(2)])
    assert videos.dtype == np.float32 and np.allclose(np.linalg.norm(videos, axis=-1), 1.0, atol=1e-5)
    neighbours = float(np.mean(np.sum(videos[0, 1:] * videos[0, :-1], axis=1)))
    far_apart = float(np.mean(videos[0, :5] @ videos[0, -5:].T))
    other_video = float(np.mean(videos[0] @ videos[1].T))
    assert neighbours > far_apart > other_video + 0.1
    query = seg.make_queries(videos, 3, 6, phases=4, seed=0)[0]
    source = videos[query["video"], query["first"]:query["first"] + 6]
    cosines = np.sum(query["vectors"] * source, axis=1)
    assert query["phase_vectors"].shape == (3, 6, seg.DIM) and 0.85 < cosines.min() and cosines.max() < 0.995


def test_segment_search_small_collection(tmp_path):
    from bench import bench_segment_search as seg

    out = tmp_path / "segment_search.json"
    result = seg.main(["--windows", "2000", "--queries", "4", "--warmup", "1", "--out", str(out)])
    assert json.loads(out.read_text())["p50_ms"] == result["p50_ms"]
    assert result["settings"]["windows"] == 2000 and result["settings"]["videos"] == 20
    for mode in ("plain", "segments", "segments_other"):
        assert len(result["latencies_ms"][mode]) == 4 and result["p50_ms"][mode] > 0
    assert result["ratio_p50"]["segments"] == pytest.approx(result["p50_ms"]["segments"] / result["p50_ms"]["plain"])
    assert min(result["top_segment_is_source"].values()) >= 0.75  # the segment search finds the copied range
    for target in result["targets"].values():  # 2,000 windows: the 1e5 target is not judged
        assert target["passed"] is None and "not judged" in target["measured"]
