"""Smoke tests of the benchmarks at microscopic sizes, so their code cannot rot.

The search benchmark runs the real thing (numpy, a Milvus Lite file, faiss) on 2,000 vectors of 64
dims; the long-video cost benchmark runs its ``--quick`` mode (real extractions in subprocesses); the
segment-search benchmark runs on 2,000 windows; the aligner comparison on a few planted trials. They check
the structure of the results and that they are sane (recall, stage times inside the total, the copied range
found), the one record schema every benchmark returns (``bench.harness.Record``), the quick-mode rule, and the
verdict logic on made-up numbers. No timing assertions: timings are the benchmarks' job.
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
    from bench.harness import Record

    recommended = result["RECOMMENDED"]
    assert set(recommended) == {"index_type", "params", "search_params"}
    assert recommended["index_type"] in {"FLAT", "HNSW", "IVF_FLAT"}
    # 2,000 vectors: neither target size ran, and the benchmark must say so rather than pass or fail (sizes were
    # given, so not even `make bench-large`'s 1e6 verdict is borrowed).
    records = [Record.from_dict(target) for target in result["targets"]]
    assert [r.name for r in records] == ["p50_within_3x_numpy_at_1e5", "p50_under_50ms_at_1e6"]
    for record in records:
        assert record.verdict == "NOT MEASURED" and "did not run" in record.detail and record.value is None
        assert record.bench == "search" and record.command.startswith("python -m bench.bench_search --sizes")
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


# ----------------------------------------------------------------------------- the harness and python -m bench
def _record(bench, name, value, verdict, mode="full", **fields):
    from bench.harness import Record

    return Record(bench, name, value, fields.pop("unit", "x"), fields.pop("target", name), verdict, mode=mode,
                  **fields).as_dict()


def test_every_registered_benchmark_has_a_title_and_records_of_every_verdict_are_tabled():
    from bench import __main__ as runner

    assert set(runner.TITLES) == set(runner.BENCHMARKS)
    assert runner.BENCHMARKS.index("shots") < runner.BENCHMARKS.index("long_cost") < runner.BENCHMARKS.index("segment_search")
    outcomes = {
        "long_cost": {"status": "ok", "seconds": 1.0, "result": {"targets": [
            _record("long_cost", "linear", 0.999, "PASS", unit="R²", target="linear"),
            _record("long_cost", "memory", 1.2, "FAIL", target="flat", detail="150 vs 21 s")]}},
        "localize": {"status": "ok", "seconds": 1.0, "result": {"targets": [
            _record("localize", "uap", 0.93, "NOT JUDGED", mode="quick", unit="", target="copy µAP >= 0.90"),
            _record("localize", "gpu", None, "NOT MEASURED", target="GPU", detail="no GPU")]}},
        "segment_search": {"status": "missing", "seconds": 0.0, "error": "not there"},
    }
    rows = runner._target_rows(outcomes)
    assert rows == ["| long_cost | linear | 0.999 R² | **PASS** |", "| long_cost | flat | 1.200x; 150 vs 21 s | **FAIL** |",
                    "| localize | copy µAP >= 0.90 | 0.930 | NOT JUDGED (quick) |",
                    "| localize | GPU | no GPU | NOT MEASURED |"]
    assert "## Segment search" in runner.results_markdown(outcomes, quick=True, command="python -m bench --quick")


def test_collect_refuses_an_older_bench_json_and_quick_runs(tmp_path, monkeypatch):
    from bench import __main__ as runner

    monkeypatch.setattr(runner, "OUT_DIR", tmp_path)
    (tmp_path / "shots.json").write_text(json.dumps({"mode": "full", "command": "python -m bench.bench_shots",
                                                      "targets": {"default": {"passed": True}}}))  # the old form
    (tmp_path / "windows.json").write_text(json.dumps({"mode": "quick", "command": "x", "targets": []}))
    (tmp_path / "memory.json").write_text(json.dumps({"mode": "full", "command": "python -m bench.bench_memory",
                                                       "when": "2026-12-03T08:00:00", "seconds": 3.0, "summary": "s",
                                                       "targets": [_record("memory", "flat", 0.01, "PASS")]}))
    outcomes = runner.collect(["shots", "windows", "memory"])
    assert outcomes["shots"]["status"] == "missing" and "older bench" in outcomes["shots"]["error"]
    assert outcomes["windows"]["status"] == "missing" and "no full run" in outcomes["windows"]["error"]
    assert outcomes["memory"]["status"] == "ok" and "2026-12-03T08:00:00" in outcomes["memory"]["collected"]
    assert runner._target_rows(outcomes) == ["| memory | flat | 0.010x | **PASS** |"]



def test_collect_replaces_only_the_collected_benchmarks_rows_and_sections(tmp_path, monkeypatch):
    from bench import __main__ as runner

    monkeypatch.setattr(runner, "OUT_DIR", tmp_path)
    monkeypatch.setattr(runner, "RESULTS_MD", tmp_path / "RESULTS.md")

    def write(name, value, summary):
        (tmp_path / f"{name}.json").write_text(json.dumps({
            "mode": "full", "command": f"python -m bench.bench_{name}", "when": "2026-12-07T10:00:00", "seconds": 1.0,
            "summary": summary, "targets": [_record(name, "t", value, "PASS")]}))

    (tmp_path / "RESULTS.md").write_text("# Results\n\nhand-written part\n")
    write("memory", 0.01, "memory summary one")
    write("shots", 0.5, "shots summary")
    runner.merge_collected(runner.collect(["memory", "shots"]))
    write("memory", 0.02, "memory summary two")
    (tmp_path / "shots.json").unlink()  # missing now: its earlier rows stay
    runner.merge_collected(runner.collect(["memory", "shots"]))
    text = (tmp_path / "RESULTS.md").read_text()
    assert text.startswith("# Results\n\nhand-written part\n") and text.count(runner.COLLECTED_BEGIN) == 1
    assert "memory summary two" in text and "memory summary one" not in text and "shots summary" in text
    assert "| memory | t | 0.020x | **PASS** |" in text and "| memory | t | 0.010x | **PASS** |" not in text
    assert "| shots | t | 0.500x | **PASS** |" in text
    assert text.index("## Shot boundaries") < text.index("## Memory")  # in the benchmarks' order

def test_a_bench_run_applies_the_quick_rule_and_writes_one_schema(tmp_path):
    from bench.harness import BenchRun, Record

    for quick, verdicts in ((False, ["PASS", "FAIL", "NOT JUDGED", "NOT MEASURED"]),
                            (True, ["NOT JUDGED", "NOT JUDGED", "NOT JUDGED", "NOT MEASURED"])):
        run = BenchRun("demo", ["--quick"] if quick else [], quick=quick, out=tmp_path / f"demo_{quick}.json")
        run.target("a", 2.5, "x", "a >= 2x", passed=True)
        run.target("b", 1.5, "x", "b >= 2x", passed=False)
        run.target("c", 3.0, "x", "c at 1e5", passed=True, not_judged="measured at 2,000")
        run.not_measured("d", "GPU", "no CUDA device")
        result = run.finish("summary", extra=1)
        records = [Record.from_dict(r) for r in json.loads((tmp_path / f"demo_{quick}.json").read_text())["targets"]]
        assert [r.verdict for r in records] == verdicts
        assert {r.command for r in records} == {f"python -m bench.bench_demo{' --quick' if quick else ''}"}
        assert all(r.when == result["when"] and r.machine["cpus"] and r.mode == result["mode"] for r in records)
        assert result["summary"].startswith("summary\n\n- ") and result["extra"] == 1
        if quick:
            assert "quick mode: too small to judge (`python -m bench.bench_demo` judges it)" in records[0].detail
    with pytest.raises(ValueError, match="verdict"):
        Record("demo", "x", 1.0, "", "t", "MAYBE")


def test_latencies_and_stage_timers():
    import time

    from bench.harness import StageTimers, time_calls

    timed = time_calls(lambda x: time.sleep(x) or x, [0.0] * 3 + [0.01] * 30, warmup=3, cap_s=0.05, min_calls=5,
                       keep=True)
    assert 5 <= timed.n < 33 and timed.results[:3] == [0.0, 0.0, 0.0]  # warm-ups are timed again, then the cap
    assert timed.p50_ms <= timed.p99_ms and timed.p99_ms >= 9.0
    timers = StageTimers({"decode": time.thread_time, "encode": time.thread_time, "shots": time.process_time})

    def slow_items(n):
        for i in range(n):
            time.sleep(0.02)
            yield i

    assert list(timers.wrap_iter("decode", slow_items)(3)) == [0, 1, 2]
    assert timers.wrap("encode", lambda x: time.sleep(0.03) or x)(7) == 7
    assert timers.wall["decode"] >= 0.06 and timers.wall["encode"] >= 0.03 and timers.wall["shots"] == 0.0
    assert timers.calls["decode"] == 4 and timers.calls["encode"] == 1  # 3 items, then StopIteration


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


@pytest.mark.slow
def test_long_cost_quick_runs_the_whole_path(tmp_path):
    from bench import bench_long_cost

    out = tmp_path / "long_cost.json"
    result = bench_long_cost.main(["--quick", "--out", str(out)])
    assert json.loads(out.read_text())["targets"] == result["targets"]
    for target in result["targets"]:  # quick sizes are not the targets' sizes
        assert target["verdict"] == "NOT JUDGED" and "quick mode" in target["detail"] and target["value"] > 0
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
    for target in result["targets"]:  # 2,000 windows: the 1e5 target is not judged
        assert target["verdict"] == "NOT JUDGED" and "2,000 windows, the target is at 100,000" in target["detail"]
    assert result["settings"]["search_range_defaults"]["aligner"] == "temporal_network"


# ----------------------------------------------------------------------------- aligners
def test_aligner_comparison_scores_every_aligner_on_every_planted_case(tmp_path):
    from bench import bench_aligners
    from motionmatch.search import ALIGNERS, DEFAULT_ALIGNER

    table = bench_aligners.compare_aligners(n_trials=2, seed=1)
    assert set(table["method"]) == set(ALIGNERS) and set(table["case"]) == set(bench_aligners.PLANTED_CASES) | {"all"}
    easy = table[table["case"] == "diagonal"]
    assert (easy["query_macro_F1"] > 0.9).all() and (easy["segment_uAP"] > 0.9).all()
    result = bench_aligners.main(["--trials", "2", "--out", str(tmp_path / "aligners.json")])
    (record,) = result["targets"]
    assert record["name"] == "default_aligner" and DEFAULT_ALIGNER in record["target"]
    assert record["verdict"] in ("PASS", "FAIL") and 0 < record["value"] <= 1
    assert "| temporal_network |" in result["summary"]
