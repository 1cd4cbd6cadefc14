"""The numbered notebooks, executed headlessly by papermill with tiny parameters.

Each notebook records key values with ``motionmatch.report.record``; the tests assert on those, against
oracles computed here where they can. A notebook runs when a test first needs it, after the notebooks it reads
from (:data:`NEEDS`), so ``-k 04`` runs 01 and 04 only. The executed copies of the key notebooks are then re-run
by ``pytest --nbval-lax``, which compares the cells marked ``# NBVAL_CHECK_OUTPUT`` against the papermill run.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from motionmatch.report import read_records
from motionmatch.report.notebooks import list_notebooks, notebook_parameters, render_html, run_notebook

NOTEBOOKS = {p.name.split("-")[0]: p for p in list_notebooks()}
# what each notebook reads from the ones before it: 02 indexes 01's table, 03 searches 02's collection, 04-06 read
# 01's table; 07 makes its own long videos; 08 its own real sample (Pose2Sim) and sprite videos
NEEDS = {"01": (), "02": ("01",), "03": ("02",), "04": ("01",), "05": ("01",), "06": ("01",), "07": (), "08": ()}
K_03 = 5  # notebook 03's k
CLIPS_08 = 3  # notebook 08's clips per window video (24 window videos)


class NotebookRuns:
    """The notebooks executed with tiny parameters into one work folder, each when a test first asks for it (after
    the notebooks it needs), so ``-k 04`` runs 01 and 04 only."""

    def __init__(self, work):
        self.work = work
        self.out = work / "reports"
        self.records: dict[str, dict] = {}
        self._sample = None

    def sample(self):
        if self._sample is None:
            from motionmatch.data.synthetic import generate_sample_dataset

            self._sample = generate_sample_dataset(self.work / "sample", seed=1, videos_per_class_per_domain=3,
                                                   groups_per_class_per_domain=3, num_frames=24, size=(96, 64),
                                                   progress=False)
        return self._sample

    def visual_table(self):
        """A second encoder's table of the same clips, for notebook 06's hybrid (CLIP with tiny random weights)."""
        from motionmatch.data import load_source
        from motionmatch.encoders import build_encoder
        from motionmatch.extract import extract_embeddings
        from motionmatch.video import ClipSpec

        out = self.work / "embeddings_visual"
        manifest, _ = load_source(self.sample())
        extract_embeddings(manifest, build_encoder("clip-tiny"), out,
                           clip_spec=ClipSpec(frames_per_clip=8, clips_per_video=2), progress=False)
        return str(out)

    def parameters(self, prefix: str) -> dict:
        work = self.work
        shared = {"embeddings_dir": str(work / "embeddings"), "milvus_uri": str(work / "motionmatch.db")}
        if prefix == "01":
            return dict(embeddings_dir=shared["embeddings_dir"], source=str(self.sample()), encoder="flow",
                        frames_per_clip=8, clips_per_video=2)
        if prefix == "02":
            return dict(shared)
        if prefix == "03":
            return dict(shared, k=K_03)
        if prefix == "04":
            return dict(embeddings_dir=shared["embeddings_dir"], n_boot=200, umap_neighbors=10)
        if prefix == "05":
            return dict(embeddings_dir=shared["embeddings_dir"], out_dir=str(work / "evaluation"), n_boot=200)
        if prefix == "06":
            return dict(shared, n_boot=200, max_epochs=5, extra_embeddings={"visual": self.visual_table()})
        if prefix == "08":
            return self.parameters_08()
        # tiny long videos: 4 x 24 s (seed 1: two motions occur in two videos each), dense windows every second,
        # 4 same-motion queries besides the copy queries; the windows' collection in the same Milvus Lite file
        return dict(long_sample_dir=str(work / "long"), n_videos=4, duration_s=24.0, seed=1,
                    long_embeddings_dir=str(work / "embeddings_long"), milvus_uri=shared["milvus_uri"], stride_s=1.0,
                    n_eval_queries=4, n_boot=200, n_previews=2)

    def parameters_08(self) -> dict:
        """Notebook 08 on the real Pose2Sim sample, 3 clips per window video, one sprite video per class and domain.

        It needs two wheels from PyPI (pose2sim's videos, mediapipe's BlazePose models), fetched once into config's
        cache_dir; a machine that cannot fetch them fails here, saying which and how to get them by hand."""
        from motionmatch.data.pose2sim import SampleUnavailableError, fetch_pose2sim_wheel
        from motionmatch.encoders.pose_models import pose_model_paths
        from motionmatch.errors import WeightsUnavailableError

        try:
            fetch_pose2sim_wheel(print_fn=lambda _: None)
            pose_model_paths(print_fn=lambda _: None)
        except (SampleUnavailableError, WeightsUnavailableError) as error:
            pytest.fail(f"notebook 08 needs the pose2sim and mediapipe wheels from PyPI (cached under "
                        f"MOTIONMATCH_CACHE_DIR); fetching failed: {error}", pytrace=False)
        work = self.work
        return dict(pose2sim_dir=str(work / "pose2sim"), channels_dir=str(work / "channels"),
                    milvus_uri=str(work / "motionmatch.db"), pose_collection="nb08_pose", clips_per_video=CLIPS_08,
                    max_epochs=3, hybrid_queries=8, sprite_videos=1, n_failures=2, n_boot=50)

    def __getitem__(self, prefix: str) -> dict:
        """The values notebook ``prefix`` recorded (it runs now unless it has run)."""
        if prefix not in self.records:
            for needed in NEEDS[prefix]:
                self[needed]
            executed = run_notebook(NOTEBOOKS[prefix], self.out, self.parameters(prefix), html=False)
            self.records[prefix] = read_records(executed)
        return self.records[prefix]

    def executed(self, prefix: str):
        self[prefix]
        return self.out / NOTEBOOKS[prefix].name


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return NotebookRuns(tmp_path_factory.mktemp("notebooks"))


def test_all_numbered_notebooks_are_present():
    assert sorted(NOTEBOOKS) == ["01", "02", "03", "04", "05", "06", "07", "08"]
    assert set(NEEDS) == set(NOTEBOOKS)


@pytest.mark.parametrize("prefix", sorted(NOTEBOOKS))
def test_every_parameter_is_visible_to_papermill(prefix):
    """A parameter papermill cannot parse would be silently ignored when passed with -p."""
    import json
    import re

    notebook = NOTEBOOKS[prefix]
    cells = json.loads(notebook.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, "exactly one cell is tagged parameters"
    written = re.findall(r"^(\w+)\s*:", "".join(tagged[0]["source"]), flags=re.M)
    assert set(written) == set(notebook_parameters(notebook))


@pytest.mark.parametrize("prefix", sorted(NOTEBOOKS))
def test_parameters_with_a_package_default_are_empty(prefix):
    """They resolve through motionmatch.config.setting, so MOTIONMATCH_* reaches notebooks as it reaches the CLI."""
    from motionmatch.config import SETTINGS

    declared = notebook_parameters(NOTEBOOKS[prefix])
    configured = {name: declared[name]["default"] for name in SETTINGS if name in declared}
    assert all(default == '""' for default in configured.values()), configured


def test_01_extracts_every_sample_video_with_unit_vectors(runs):
    r = runs["01"]
    assert r["encoder_id"] == "flow:v1"
    assert r["encoder_note"].startswith("FlowEncoder (flow:v1)")  # asked for by name: no fallback story
    assert r["videos_failed"] == 0
    assert r["n_clips"] == r["videos_total"] * 2
    assert r["max_norm_error"] == pytest.approx(0, abs=1e-5)


def test_02_indexes_the_run_once_with_its_clip_spec_and_gallery_calibration(runs):
    from motionmatch.table import read_extract_meta

    r = runs["02"]
    assert r["encoder_id"] == runs["01"]["encoder_id"]  # 02 reads the run through load_run
    assert r["rows_after_first"] == runs["01"]["n_clips"]
    assert r["rows_after_second"] == r["rows_after_first"]
    # the collection records how the clips were cut (a query is cut the same way) and stores the gallery
    # calibration of segment scores, as `motionmatch index` does
    assert r["collection_clip_spec"] == read_extract_meta(runs.work / "embeddings")["clip_spec"]
    assert any(name.startswith("segment_calibration.") for name in r["stored_arrays"]), r["stored_arrays"]


def test_03_query_in_the_index_finds_itself_first(runs):
    r = runs["03"]
    assert r["self_hit_is_query"] is True
    assert r["self_hit_score"] == pytest.approx(1.0, abs=1e-3)
    # one hit per video: k distinct videos (the index holds 60)
    assert r["grouped_hits"] == K_03 and r["grouped_distinct_videos"] == K_03


def brute_force_p10(table, exclude: str = "group", domains: str = "all") -> float:
    """P@10 by a plain loop over queries (an oracle outside motionmatch.evaluation.retrieval): mean over queries with a relevant item."""
    import numpy as np

    from motionmatch.table import effective_groups, embedding_matrix

    vectors = embedding_matrix(table)
    scores = vectors @ vectors.T
    labels, videos = table.label.to_numpy(), table.video_path.to_numpy()
    groups, domain = effective_groups(table), table.domain.to_numpy()
    values = []
    for i in range(len(table)):
        allowed = videos != videos[i]
        if exclude == "group":
            allowed &= groups != groups[i]
        if domains != "all":
            allowed &= (domain == domain[i]) if domains == "same" else (domain != domain[i])
        allowed[i] = False
        candidates = np.flatnonzero(allowed)
        if (labels[candidates] == labels[i]).any():
            top = candidates[np.argsort(-scores[i, candidates], kind="stable")[:10]]
            values.append((labels[top] == labels[i]).sum() / 10)
    return float(np.mean(values))


def test_04_score_statistics_match_a_brute_force_oracle(runs):
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from motionmatch.table import effective_groups, embedding_matrix, load_embeddings

    r = runs["04"]
    table = load_embeddings(runs.work / "embeddings")
    vectors = embedding_matrix(table)
    groups, videos, labels = effective_groups(table), table.video_path.to_numpy(), table.label.to_numpy()
    allowed = np.triu(np.ones((len(table),) * 2, dtype=bool), 1) & np.not_equal.outer(groups, groups) \
        & np.not_equal.outer(videos, videos)
    same = np.equal.outer(labels, labels)
    scores = vectors @ vectors.T
    relevant, irrelevant = scores[allowed & same], scores[allowed & ~same]
    assert r["relevant_mean"] == pytest.approx(relevant.mean(), abs=1e-5)
    assert r["irrelevant_mean"] == pytest.approx(irrelevant.mean(), abs=1e-5)
    assert r["auc"] == pytest.approx(roc_auc_score(np.r_[np.ones(relevant.size), np.zeros(irrelevant.size)],
                                                   np.r_[relevant, irrelevant]), abs=1e-4)
    every = np.r_[relevant, irrelevant]
    assert r["frac_in_band"] == pytest.approx(np.mean((every >= 0.95) & (every <= 0.98)), abs=1e-6)
    assert r["same_domain_p10"] == pytest.approx(brute_force_p10(table, "group", "same"), abs=1e-6)
    assert r["cross_domain_p10"] == pytest.approx(brute_force_p10(table, "group", "other"), abs=1e-6)
    # the flow descriptor separates motion: same-label pairs score higher than different-label pairs
    assert r["auc"] > 0.6


def test_05_reports_leakage_and_writes_tables(runs):
    from motionmatch.table import load_embeddings

    r = runs["05"]
    table = load_embeddings(runs.work / "embeddings")
    by_video, by_group = brute_force_p10(table, "video"), brute_force_p10(table, "group")
    assert r["P@10 leave-one-out exclude=video"] == pytest.approx(by_video, abs=1e-6)
    assert r["P@10 leave-one-out exclude=group"] == pytest.approx(by_group, abs=1e-6)
    assert r["leakage_p10"] == pytest.approx(by_video - by_group, abs=1e-6)
    assert (runs.work / "evaluation" / "findings.json").exists()
    assert (runs.work / "evaluation" / "headline.csv").exists()


def test_06_compares_methods_against_zero_shot(runs):
    from motionmatch.beyond import split_held_out_groups
    from motionmatch.table import load_embeddings

    r = runs["06"]
    # zero-shot cosine on the held-out groups, recomputed by a plain loop on the notebook's split
    _, test_table = split_held_out_groups(load_embeddings(runs.work / "embeddings"), test_fraction=0.5, seed=0)
    assert r["zero_shot_cross_p10"] == pytest.approx(brute_force_p10(test_table, "group", "other"), abs=1e-6)
    assert r["improvement_cross_p10"] == pytest.approx(r["best_cross_p10"] - r["zero_shot_cross_p10"], abs=1e-9)
    assert r["hybrid_queries_checked"] == min(50, len(test_table))  # the notebook's sample, stated and recorded
    assert r["extra_vectors"] == ["visual"]  # the CLIP table was given...
    assert "visual" in r["hybrid_fields"]  # ...and became a vector field of the Milvus hybrid collection
    assert r["round_trip_max_difference"] <= 1e-6  # queries embedded with the transforms reloaded from Milvus


def test_07_finds_the_query_motion_in_long_videos(runs):
    import pandas as pd

    from motionmatch.table import load_embeddings, read_extract_meta

    r = runs["07"]
    work = runs.work
    table = load_embeddings(work / "embeddings_long")
    assert r["n_windows"] == len(table) and table.video_path.nunique() == 4
    # indexed by index_run: the collection records the dense windows, so a query range is cut the same way
    meta = read_extract_meta(work / "embeddings_long")
    assert r["collection_clip_spec"]["windows"]["stride_s"] == 1.0
    assert {k: r["collection_clip_spec"][k] for k in meta["clip_spec"]} == meta["clip_spec"]
    truth = pd.read_csv(work / "long" / "ground_truth.csv")
    durations = truth.groupby("video").end_s.max()
    query, segments = r["query"], r["top_segments"]
    assert segments, "the query found no segment"
    assert all(s["video"] != query["video"] for s in segments)  # the query's own file is left out
    assert all(0 <= s["start_s"] < s["end_s"] <= durations[s["video"]] + 0.5 for s in segments)
    assert [s["score"] for s in segments] == sorted((s["score"] for s in segments), reverse=True)
    metrics = pd.DataFrame(r["localisation"]).set_index(["kind", "metric"])["value"]
    assert set(metrics.index.get_level_values(0)) == {"copy", "same_motion", "all"}
    # copy queries re-found in their source: mean tIoU far above chance (a random segment of this length in
    # 4 x 24 s overlaps a 4 s range with tIoU ~0.03 on average; the notebook measured 0.26 at stride 1 s)
    assert metrics[("copy", "mean_IoU")] >= 0.15
    effect = pd.DataFrame(r["calibration_effect"]).set_index(["kind", "metric"])
    assert effect.loc[("all", "segment_uAP"), "z-score vs gallery"] == pytest.approx(metrics[("all", "segment_uAP")],
                                                                                    abs=1e-3)
    executed = runs.executed("07").read_text(encoding="utf-8")
    assert "data:image/webp;base64," in executed  # animated previews are inline, in the saved notebook
    assert "similarity to the query over time" in executed and "Self-similarity" in executed


def _cross_camera_p1(table, column: str) -> float:
    """P@1 by a plain loop (an oracle outside motionmatch.evaluation): each clip with a person ranks the other
    cameras' clips with a person by cosine; mean over queries with a relevant clip (same trial:window)."""
    import numpy as np

    vectors = np.stack(table[column].to_numpy()).astype(np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    seen = table.coverage.to_numpy() > 0 if "coverage" in table else np.ones(len(table), dtype=bool)
    labels, cameras = table.label.to_numpy(), table.domain.to_numpy()
    hits = []
    for i in np.flatnonzero(seen):
        candidates = np.flatnonzero((cameras != cameras[i]) & seen)
        if (labels[candidates] == labels[i]).any():
            best = candidates[np.argmax(vectors[candidates] @ vectors[i])]
            hits.append(labels[best] == labels[i])
    return float(np.mean(hits))


def test_08_pose_finds_the_same_moment_in_another_camera_and_stays_out_where_nobody_is(runs):
    from motionmatch.extract import load_run

    r = runs["08"]
    channels = runs.work / "channels"
    flow, pose = load_run(channels / "flow").table, load_run(channels / "pose").table
    assert r["n_clips"] == len(flow) == len(pose) == 2 * 4 * 3 * CLIPS_08  # trials x cameras x windows x clips
    assert pose.encoder_id.unique().tolist() == ["pose:v2"]
    assert r["n_no_person"] == int((pose.coverage <= 0).sum())
    # the recorded P@1 against a loop over the tables the notebook wrote
    assert r["whole_pose_cross_p1"] == pytest.approx(_cross_camera_p1(pose, "embedding"), abs=1e-9)
    assert r["whole_flow_cross_p1"] == pytest.approx(_cross_camera_p1(flow, "embedding"), abs=1e-9)
    lo, hi = r["whole_pose_cross_p1_ci"]
    assert lo <= r["whole_pose_cross_p1"] <= hi
    # the skeleton bridges the cameras, flow does not (full sample, bench_pose 2026-12-05: 0.73 against 0.28; chance 0.167)
    assert r["whole_pose_cross_p1"] > r["whole_flow_cross_p1"] + 0.1
    assert r["test_groups_seen_before_test"] == 0 and len(r["test_groups"]) == 1
    assert 0.0 <= r["chosen_pose_weight"] <= 1.0
    for method in ("flow", "pose", "fused"):
        assert 0.0 <= r[f"test_{method}_cross_p10"] <= 1.0
    # Milvus hybrid search reproduces the numpy fusion: the weighted sum exactly; RRF up to how its ties are ordered
    # (ranks (1, 3) and (3, 1) fuse to one value), so there the top-k scores must agree
    rows = list(zip(r["hybrid_rankers"], r["hybrid_numpy_p10"], r["hybrid_milvus_p10"], r["hybrid_same_scores"]))
    assert any(numpy is not None for _, numpy, _, _ in rows) and "weighted" in r["hybrid_rankers"]
    for ranker, numpy, milvus, same_scores in rows:
        if numpy is None:
            assert milvus is None
        elif ranker == "weighted":
            assert milvus == pytest.approx(numpy, abs=1e-6)
        else:
            assert same_scores == 1.0
    # the sprites show nobody: the pose channel says so for every clip, and fusion is exactly flow there
    assert r["sprites_clips_with_person"] == 0
    assert r["sprites_fusion_max_difference"] == 0.0 and r["sprites_same_ranking"] is True
    executed = runs.executed("08").read_text(encoding="utf-8")
    assert "The worst queries" in executed and "Where nobody is in view" in executed


def test_html_report_names_the_encoder_and_embeds_plotly(runs):
    html = render_html(runs.executed("04")).read_text(encoding="utf-8")
    assert "FlowEncoder" in html[: html.find("Do the scores bunch")]  # the encoder is named before any finding
    assert "Plotly.newPlot" in html  # figures are in the page...
    assert "plotly.js v" in html or "plotly.js" in html  # ...with plotly.js itself embedded
    remote_scripts = re.findall(r"<script[^>]+src=[\"']https?://[^\"']*plotly", html)
    assert not remote_scripts  # no plotly fetched from a CDN: figures render with no internet


def test_nbval_lax_reruns_key_cells_identically(runs):
    executed = [str(runs.executed(p)) for p in ("01", "02", "03")]
    result = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
                             "--nbval-current-env", *executed],
                            cwd=runs.out, capture_output=True, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
