"""The numbered notebooks, executed headlessly by papermill with tiny parameters.

Each notebook records key values with ``motionmatch.report.records.record``; the tests assert on
those. The executed copies of the key notebooks are then re-run by ``pytest --nbval-lax``,
which compares the cells marked ``# NBVAL_CHECK_OUTPUT`` against the papermill run.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from motionmatch.report.records import read_records
from motionmatch.report.notebooks import list_notebooks, notebook_parameters, render_html, run_notebook

NOTEBOOKS = {p.name.split("-")[0]: p for p in list_notebooks()}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Run 01 -> 07 in order on a tiny generated sample set; return (out_dir, records by prefix)."""
    work = tmp_path_factory.mktemp("notebooks")
    sample = work / "sample"
    from motionmatch.data.synthetic import generate_sample_dataset

    generate_sample_dataset(sample, seed=1, videos_per_class_per_domain=3, groups_per_class_per_domain=3,
                            num_frames=24, size=(96, 64))
    shared = {
        "embeddings_dir": str(work / "embeddings"),
        "milvus_uri": str(work / "motionmatch.db"),
    }
    parameters = {
        "01": dict(embeddings_dir=shared["embeddings_dir"], source=str(sample / "manifest.csv"), encoder="flow",
                   frames_per_clip=8, clips_per_video=2),
        "02": dict(shared),
        "03": dict(shared, k=5),
        "04": dict(embeddings_dir=shared["embeddings_dir"], n_boot=200, umap_neighbors=10),
        "05": dict(embeddings_dir=shared["embeddings_dir"], out_dir=str(work / "evaluation"), n_boot=200),
        "06": dict(shared, n_boot=200, max_epochs=5),
        # tiny long videos: 4 x 24 s (seed 1: two motions occur in two videos each), dense windows every second,
        # 4 same-motion queries besides the copy queries
        "07": dict(long_dir=str(work / "long"), n_videos=4, duration_s=24.0, seed=1, embeddings_dir=str(work / "embeddings_long"),
                   milvus_uri=shared["milvus_uri"], stride_s=1.0, n_eval_queries=4, n_boot=200, n_previews=2),
    }
    # a second encoder's table of the same clips, for notebook 06's hybrid (CLIP with tiny random weights)
    from motionmatch.video.clips import ClipSpec
    from motionmatch.encoders import build_encoder
    from motionmatch.data.sources import load_source
    from motionmatch.extract.local import extract_embeddings

    manifest, _ = load_source(sample / "manifest.csv")
    extract_embeddings(manifest, build_encoder("clip-tiny"), work / "embeddings_visual",
                       clip_spec=ClipSpec(frames_per_clip=8, clips_per_video=2), progress=False)
    parameters["06"]["extra_embeddings"] = {"visual": str(work / "embeddings_visual")}
    out = work / "reports"
    records = {}
    for prefix, notebook in NOTEBOOKS.items():
        executed = run_notebook(notebook, out, parameters.get(prefix, {}), html=False)
        records[prefix] = read_records(executed)
    return out, records, work


def test_all_numbered_notebooks_are_present():
    assert sorted(NOTEBOOKS) == ["01", "02", "03", "04", "05", "06", "07"]


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


def test_01_extracts_every_sample_video_with_unit_vectors(run):
    _, records, _ = run
    r = records["01"]
    assert r["encoder_id"] == "flow:v1"
    assert r["encoder_note"].startswith("FlowEncoder (flow:v1)")  # asked for by name: no fallback story
    assert records["02"]["encoder_id"] == r["encoder_id"]  # 02 reads the run through load_run
    assert r["videos_failed"] == 0
    assert r["n_clips"] == r["videos_total"] * 2
    assert r["max_norm_error"] == pytest.approx(0, abs=1e-5)


def test_02_indexing_twice_leaves_the_same_rows(run):
    _, records, _ = run
    r = records["02"]
    assert r["rows_after_first"] == records["01"]["n_clips"]
    assert r["rows_after_second"] == r["rows_after_first"]


def test_03_query_in_the_index_finds_itself_first(run):
    _, records, _ = run
    r = records["03"]
    assert r["self_hit_is_query"] is True
    assert r["self_hit_score"] == pytest.approx(1.0, abs=1e-3)
    assert r["grouped_distinct_videos"] == r["grouped_hits"]


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


def test_04_score_statistics_match_a_brute_force_oracle(run):
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from motionmatch.table import effective_groups, embedding_matrix, load_embeddings

    _, records, work = run
    r = records["04"]
    table = load_embeddings(work / "embeddings")
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
    assert r["same_domain_p10"] == pytest.approx(brute_force_p10(table, "group", "same"), abs=1e-6)
    assert r["cross_domain_p10"] == pytest.approx(brute_force_p10(table, "group", "other"), abs=1e-6)
    # the flow descriptor separates motion: same-label pairs score higher than different-label pairs
    assert r["auc"] > 0.6


def test_05_reports_leakage_and_writes_tables(run):
    from motionmatch.table import load_embeddings

    _, records, work = run
    r = records["05"]
    table = load_embeddings(work / "embeddings")
    by_video, by_group = brute_force_p10(table, "video"), brute_force_p10(table, "group")
    assert r["P@10 leave-one-out exclude=video"] == pytest.approx(by_video, abs=1e-6)
    assert r["P@10 leave-one-out exclude=group"] == pytest.approx(by_group, abs=1e-6)
    assert r["leakage_p10"] == pytest.approx(by_video - by_group, abs=1e-6)
    assert (work / "evaluation" / "findings.json").exists()
    assert (work / "evaluation" / "headline.csv").exists()


def test_06_compares_methods_against_zero_shot(run):
    from motionmatch.beyond.splits import split_held_out_groups
    from motionmatch.table import load_embeddings

    _, records, work = run
    r = records["06"]
    # zero-shot cosine on the held-out groups, recomputed by a plain loop on the notebook's split
    _, test_table = split_held_out_groups(load_embeddings(work / "embeddings"), test_fraction=0.5, seed=0)
    assert r["zero_shot_cross_p10"] == pytest.approx(brute_force_p10(test_table, "group", "other"), abs=1e-6)
    assert r["hybrid_queries_checked"] == min(50, len(test_table))  # the notebook's sample, stated and recorded
    assert r["extra_vectors"] == ["visual"]  # the CLIP table was given...
    assert "visual" in r["hybrid_fields"]  # ...and became a vector field of the Milvus hybrid collection


def test_07_finds_the_query_motion_in_long_videos(run):
    import pandas as pd

    from motionmatch.table import load_embeddings

    out, records, work = run
    r = records["07"]
    table = load_embeddings(work / "embeddings_long")
    assert r["n_windows"] == len(table) and table.video_path.nunique() == 4
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
    executed = (out / NOTEBOOKS["07"].name).read_text(encoding="utf-8")
    assert "data:image/webp;base64," in executed  # animated previews are inline, in the saved notebook
    assert "similarity to the query over time" in executed and "Self-similarity" in executed


def test_html_report_names_the_encoder_and_embeds_plotly(run):
    out, _, _ = run
    html = render_html(out / NOTEBOOKS["04"].name).read_text(encoding="utf-8")
    assert "FlowEncoder" in html[: html.find("Do the scores bunch")]  # the encoder is named before any finding
    assert "Plotly.newPlot" in html  # figures are in the page...
    assert "plotly.js v" in html or "plotly.js" in html  # ...with plotly.js itself embedded
    remote_scripts = re.findall(r"<script[^>]+src=[\"']https?://[^\"']*plotly", html)
    assert not remote_scripts  # no plotly fetched from a CDN: figures render with no internet


def test_nbval_lax_reruns_key_cells_identically(run):
    out, _, _ = run
    executed = [str(out / NOTEBOOKS[p].name) for p in ("01", "02", "03")]
    result = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
                             "--nbval-current-env", *executed],
                            cwd=out, capture_output=True, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
