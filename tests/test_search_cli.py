"""`motionmatch search` with a time range / segments and `motionmatch evaluate --segments`, in-process, on
the tiny long-video gallery of test_localize (FlowEncoder, a temporary Milvus Lite file)."""
from __future__ import annotations

import json
import time

import pandas as pd
import pytest
from test_localize import long_gallery, open_index

from motionmatch import cli

SEGMENT_KEYS = {"video_path", "start_s", "end_s", "score", "query_start_s", "query_end_s", "hits"}
HIT_KEYS = {"video_path", "start_s", "end_s", "score", "cosine", "query_start_s", "query_end_s"}


@pytest.fixture(scope="session")
def gallery(tmp_path_factory):
    return long_gallery(str(tmp_path_factory.mktemp("long_gallery")))


@pytest.fixture
def indexed(gallery, tmp_db_uri):
    open_index(gallery, tmp_db_uri).close()
    return ["--milvus-uri", tmp_db_uri, "--collection", "long"]


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_segments_json_shape(gallery, indexed, capsys):
    query = gallery["videos"] / gallery["queries"].path.iloc[0]
    code, out, err = run(capsys, "search", query, *indexed, "--segments", "--json", "-k", 5)
    assert code == 0, err
    segments = json.loads(out)
    assert 0 < len(segments) <= 5
    assert [s["score"] for s in segments] == sorted((s["score"] for s in segments), reverse=True)
    for segment in segments:
        assert SEGMENT_KEYS <= set(segment) and segment["end_s"] > segment["start_s"]
        assert segment["scores"] == "z-score against the gallery"
        assert segment["hits"] and all(HIT_KEYS <= set(h) for h in segment["hits"])
        assert all(h["video_path"] == segment["video_path"] for h in segment["hits"])
        assert all(-1.0 - 1e-6 <= h["cosine"] <= 1.0 + 1e-6 for h in segment["hits"])


def test_plain_search_keeps_hits_and_flags(gallery, indexed, capsys):
    query = gallery["videos"] / gallery["queries"].path.iloc[0]
    code, out, err = run(capsys, "search", query, *indexed, "--json", "-k", 7, "--one-per-video")
    assert code == 0, err
    hits = json.loads(out)
    assert len(hits) == 3  # three videos, one hit each
    assert len({h["video_path"] for h in hits}) == 3 and all({"clip_id", "label", "query_start_s"} <= set(h) for h in hits)
    label = gallery["table"].label.iloc[0]
    code, out, err = run(capsys, "search", query, *indexed, "--json", "-k", 100, "--filter", f"label={label}")
    assert code == 0, err
    assert {h["label"] for h in json.loads(out)} == {label}
    code, out, err = run(capsys, "search", query, *indexed, "-k", 3)
    assert code == 0 and out.strip().endswith("3 hits")


def test_own_file_excluded_by_default_and_kept_on_request(gallery, indexed, capsys):
    own = gallery["videos"] / "long_000.mp4"
    code, out, err = run(capsys, "search", own, *indexed, "--start", 20, "--end", 26, "--segments", "--json")
    assert code == 0, err
    assert "its own windows are left out" in err
    assert {s["video_path"] for s in json.loads(out)}.isdisjoint({str(own)})
    code, out, err = run(capsys, "search", own, *indexed, "--start", 20, "--end", 26, "--segments", "--json",
                         "--include-video")
    assert code == 0, err
    top = json.loads(out)[0]
    assert top["video_path"] == str(own) and top["start_s"] < 26 and top["end_s"] > 20


@pytest.mark.parametrize("extra, message", [
    (["--start", "5", "--end", "5"], "must be before --end"),
    (["--start", "-2"], "--start (seconds) must be >= 0"),
    (["--start", "100"], "is past the end"),
    (["--end", "100"], "is past the end"),
    (["--calibration", "nothing.npz"], "no such calibration file"),
])
def test_bad_input_exits_2_before_work(gallery, indexed, capsys, extra, message):
    query = gallery["videos"] / gallery["queries"].path.iloc[0]
    started = time.monotonic()
    code, out, err = run(capsys, "search", query, *indexed, "--segments", *extra)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert out == "" and time.monotonic() - started < 10


def test_missing_query_file_exits_2(indexed, tmp_path, capsys):
    code, _, err = run(capsys, "search", tmp_path / "nope.mp4", *indexed, "--segments")
    assert code == 2 and "nope.mp4" in err


def test_short_range_is_padded_and_said(gallery, indexed, capsys):
    query = gallery["videos"] / gallery["queries"].path.iloc[0]
    code, out, err = run(capsys, "search", query, *indexed, "--start", 2, "--end", 2.3, "--segments")
    assert code == 0, err
    assert "note: padded: the range 2.00-2.30 s is shorter than one window" in err and "1 windows" in out


def test_evaluate_segments_writes_the_metric_table(gallery, indexed, tmp_path, capsys):
    out_dir = tmp_path / "evaluation"
    code, out, err = run(capsys, "evaluate", "--segments", gallery["relevant"], *indexed, "--out", out_dir,
                         "--n-boot", 50)
    assert code == 0, err
    for metric in ("R1@tIoU=0.5", "R1@tIoU=0.7", "mean_IoU", "VCSL_P", "VCSL_R", "VCSL_F1", "segment_uAP",
                   "boundary_error_s"):
        assert metric in out
    table = pd.read_csv(out_dir / "localization.csv")
    assert set(table["kind"]) == {"copy"} and (table["n_queries"] == len(gallery["queries"])).all()
    r1 = table.set_index("metric").loc["R1@tIoU=0.5"]
    assert r1.ci_low <= r1.value <= r1.ci_high and r1.value >= 0.5
    saved = json.loads((out_dir / "localization.json").read_text())
    assert saved["metrics"] and saved["calibration"] == "gallery"
    assert len(pd.read_csv(out_dir / "localization_predictions.csv")) > 0
    code, _, err = run(capsys, "evaluate", "--segments", tmp_path / "none.csv", *indexed)
    assert code == 2 and "none.csv does not exist" in err
