"""report/tables.py: the tables notebooks 03 and 07 show, from real hits and real localisation metrics."""
from __future__ import annotations

import pandas as pd
import pytest

from motionmatch.errors import ParameterError
from motionmatch.index import Hit
from motionmatch.metrics import PREDICTION_COLUMNS, evaluate_localization
from motionmatch.report import calibration_effect, hits_table, label_hits_by_domain

HITS = [Hit("c1", 0.99, "/data/field/spin_a.mp4", 1, 0.5, 1.5, "spin", "field", "g1"),
        Hit("c2", 0.80, "/data/studio/zoom_b.mp4", 0, 0.0, 1.0, "zoom", "studio", "g2"),
        Hit("c3", 0.75, "/data/studio/spin_c.mp4", 2, 1.0, 2.0, "spin", "studio", "g3")]


def test_hits_table_keeps_the_order_and_names_the_file():
    table = hits_table(HITS)
    assert list(table.columns) == ["score", "label", "domain", "video", "clip_index", "start_s", "end_s"]
    assert table.video.tolist() == ["spin_a.mp4", "zoom_b.mp4", "spin_c.mp4"] and table.score.tolist() == [0.99, 0.8, 0.75]
    as_records = hits_table([{**vars(h), "query_start_s": 0.0, "query_end_s": 1.0} for h in HITS])  # hit_records' dicts
    pd.testing.assert_frame_equal(as_records, table)
    assert hits_table([]).empty and list(hits_table([]).columns) == list(table.columns)
    with pytest.raises(ParameterError, match="hits"):
        hits_table([{"score": 1.0}])


def test_label_hits_by_domain_counts_the_query_label_per_gallery():
    counts = label_hits_by_domain({"field": HITS[:1], "studio": HITS[1:]}, "spin", "field")
    assert counts.to_dict("records") == [
        {"gallery domain": "field", "same domain as query": True, "hits with the query's label": 1, "k": 1},
        {"gallery domain": "studio", "same domain as query": False, "hits with the query's label": 1, "k": 2}]


def localisation(predicted_start: float) -> pd.DataFrame:
    """evaluate_search's metric rows for two copy queries whose segment starts at ``predicted_start``."""
    relevant = pd.DataFrame({"query_id": ["q1", "q2"], "video": ["a.mp4", "b.mp4"], "start_s": [2.0, 5.0],
                             "end_s": [6.0, 9.0], "query_start_s": 0.0, "query_end_s": 4.0})
    predictions = relevant.assign(start_s=relevant.start_s + predicted_start, end_s=relevant.end_s + predicted_start,
                                  score=[0.9, 0.8])[list(PREDICTION_COLUMNS)]
    return evaluate_localization(predictions, relevant, n_boot=20).assign(kind="copy")


def test_calibration_effect_puts_the_two_scorings_side_by_side():
    exact, shifted = localisation(0.0), localisation(2.0)  # tIoU 1 against 2/6
    effect = calibration_effect(exact, shifted)
    assert list(effect.columns) == ["z-score vs gallery", "raw cosine"]
    assert set(effect.index) == {("copy", "R1@tIoU=0.5"), ("copy", "VCSL_F1"), ("copy", "segment_uAP")}
    assert effect.loc[("copy", "R1@tIoU=0.5"), "z-score vs gallery"] == 1.0
    assert effect.loc[("copy", "R1@tIoU=0.5"), "raw cosine"] == 0.0
    chosen = calibration_effect(exact, shifted, metrics=["mean_IoU"])
    assert chosen.loc[("copy", "mean_IoU")].tolist() == pytest.approx([1.0, 2.0 / 6.0])
    with pytest.raises(ParameterError, match="none of the metrics"):
        calibration_effect(exact, shifted, metrics=["no such metric"])
