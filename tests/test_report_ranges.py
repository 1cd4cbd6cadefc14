"""report/ranges.py: refined ranges against the ground truth, settings side by side, R1@tIoU per edit (notebook 07).

Answers are real :class:`~motionmatch.search.SearchResult`-shaped values built from Segment objects with known
ranges, so every tIoU and error below is computed by hand."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from motionmatch.errors import ParameterError
from motionmatch.metrics.localization import evaluate_localization
from motionmatch.report import answer_ranges, compare_metrics, edited_copy, per_edit_table, range_timeline
from motionmatch.report.ranges import POOLED, RANGE_COLUMNS, TRUTH_STAGE
from motionmatch.search import Segment


@dataclass
class Found:
    """What answer_ranges reads of a search result: its segments, best first."""

    segments: list = field(default_factory=list)


def seg(video, start, end, score=1.0, kind="same_motion"):
    return Segment(video, float(start), float(end), float(score), kind=kind)


TRUTH = pd.DataFrame({"video": ["a.mp4", "a.mp4", "b.mp4", "a.mp4"], "start_s": [10.0, 30.0, 10.0, 50.0],
                      "end_s": [16.0, 36.0, 16.0, 54.0], "label": ["walk", "walk", "walk", "run"]})


def test_answer_ranges_compares_every_stage_with_the_span_the_answer_overlaps_most():
    coarse = Found([seg("/x/b.mp4", 0, 4), seg("/x/a.mp4", 9, 18), seg("/x/a.mp4", 40, 44)])
    refined = Found([seg("/x/a.mp4", 10.5, 16.0, kind="copy"), seg("/x/b.mp4", 1, 3)])
    table = answer_ranges({"coarse": coarse, "refined": refined}, TRUTH, label="walk")
    assert list(table.columns) == list(RANGE_COLUMNS)
    assert list(table["stage"]) == [TRUTH_STAGE, "coarse", "refined"]
    truth, first, last = (table.iloc[i] for i in range(3))
    assert (truth.video, truth.start_s, truth.end_s, truth.kind) == ("a.mp4", 10.0, 16.0, "walk")
    assert (first.start_s, first.end_s) == (9.0, 18.0)  # the coarse segment in the answer's video that overlaps it
    assert first.tIoU == pytest.approx(6 / 9) and (first.start_error_s, first.end_error_s) == (-1.0, 2.0)
    assert last.kind == "copy" and last.tIoU == pytest.approx(5.5 / 6)
    assert (last.start_error_s, last.end_error_s) == (0.5, 0.0)
    assert list(table["rank"].iloc[1:]) == [2, 1]  # where each stage ranked the segment shown


def test_answer_ranges_in_the_truths_video_skips_answers_in_videos_without_the_motion():
    """The encoder's confusion (the top answer in a video without the motion) apart from the aligner's precision."""
    refined = Found([seg("/x/c.mp4", 0, 5), seg("/x/a.mp4", 52, 54), seg("/x/a.mp4", 29, 35)])
    top = answer_ranges({"fine": refined}, TRUTH, label="walk")
    assert list(top["stage"]) == ["fine"] and np.isnan(top.iloc[0].tIoU)  # c.mp4 holds no walk
    given = answer_ranges({"fine": refined}, TRUTH, label="walk", in_truth_video=True)
    assert list(given["stage"]) == [TRUTH_STAGE, "fine"]
    assert (given.iloc[1].start_s, given.iloc[1]["rank"]) == (52.0, 2)  # a.mp4 holds walks: its best-ranked segment
    assert (given.iloc[0].start_s, given.iloc[0].end_s) == (30.0, 36.0)  # the nearest walk (52-54 s overlaps none)


def test_answer_ranges_without_a_label_takes_the_nearest_span_and_marks_a_stage_that_missed():
    missed = Found([seg("/x/b.mp4", 0, 4)])
    final = Found([seg("/x/a.mp4", 46.0, 49.0)])  # overlaps no span: the nearest (the run at 50-54 s)
    table = answer_ranges({"coarse": missed, "fine": final}, TRUTH)
    assert table.iloc[0].start_s == 50.0 and table.iloc[0].kind == "run"
    assert table.iloc[1].kind == "not found" and np.isnan(table.iloc[1].start_s)
    assert table.iloc[2].tIoU == 0.0 and table.iloc[2].start_error_s == -4.0


def test_answer_ranges_needs_an_answer():
    with pytest.raises(ParameterError, match="found no segment"):
        answer_ranges({"fine": Found([])}, TRUTH)
    with pytest.raises(ParameterError, match="at least one stage"):
        answer_ranges({}, TRUTH)
    table = answer_ranges({"fine": Found([seg("/x/c.mp4", 1, 2)])}, TRUTH)  # no truth in that video
    assert list(table["stage"]) == ["fine"] and np.isnan(table.iloc[0].tIoU)


def test_range_timeline_draws_one_bar_per_stage_and_the_truths_ends():
    table = answer_ranges({"coarse": Found([seg("/x/a.mp4", 9, 18)]), "refined": Found([seg("/x/a.mp4", 10, 16)])},
                          TRUTH, label="walk")
    fig = range_timeline(table, title="t")
    assert isinstance(fig, go.Figure) and fig.layout.title.text == "t"
    bars = [trace for trace in fig.data if trace.type == "bar"]
    assert [b.name for b in bars] == [TRUTH_STAGE, "coarse", "refined"]
    assert [(b.base[0], b.base[0] + b.x[0]) for b in bars] == [(10.0, 16.0), (9.0, 18.0), (10.0, 16.0)]
    assert sorted(shape.x0 for shape in fig.layout.shapes) == [10.0, 16.0]
    assert "a.mp4" in fig.layout.xaxis.title.text
    with pytest.raises(ParameterError, match="at least one row"):
        range_timeline(table.assign(start_s=np.nan))


def metric_table(values: dict, kind="same_motion") -> pd.DataFrame:
    return pd.DataFrame([{"kind": kind, "metric": m, "value": v, "ci_low": v - 0.1, "ci_high": v + 0.1}
                         for m, v in values.items()])


def test_compare_metrics_puts_two_settings_side_by_side():
    off = metric_table({"R1@tIoU=0.5": 0.5, "boundary_error_s": 1.2})
    on = pd.concat([metric_table({"R1@tIoU=0.5": 0.75, "boundary_error_s": 0.4}),
                    metric_table({"R1@tIoU=0.5": 0.1, "boundary_error_s": 9.0}, kind="copy")])
    table = compare_metrics({"off": off, "on": on}, kind="same_motion", metrics=("R1@tIoU=0.5", "boundary_error_s"))
    assert list(table.columns) == ["off", "off CI", "on", "on CI"]
    assert table.loc["boundary_error_s", "on"] == 0.4 and table.loc["R1@tIoU=0.5", "off"] == 0.5
    assert table.loc["R1@tIoU=0.5", "on CI"] == "[0.650, 0.850]"
    with pytest.raises(ParameterError, match="lack"):
        compare_metrics({"off": off, "on": on}, kind="same_motion", metrics=("VCSL_F1",))
    with pytest.raises(ParameterError, match="two or more"):
        compare_metrics({"off": off})


def edited_case():
    queries = pd.DataFrame({"query_id": ["e_flip_0", "e_flip_1", "e_crop_0", "e_crop_1"], "path": "q.mp4",
                            "edit": ["flip", "flip", "crop", "crop"]})
    relevant = pd.DataFrame({"query_id": queries["query_id"], "video": "/x/a.mp4", "start_s": [0.0, 10.0, 20.0, 30.0],
                             "end_s": [4.0, 14.0, 24.0, 34.0], "query_start_s": 0.0, "query_end_s": 4.0})
    predictions = pd.DataFrame({"query_id": queries["query_id"], "video": ["/x/a.mp4", "/x/b.mp4", "/x/a.mp4", "/x/a.mp4"],
                                "start_s": [0.0, 10.0, 20.5, 32.0], "end_s": [4.0, 14.0, 24.0, 36.0], "score": 1.0,
                                "query_start_s": 0.0, "query_end_s": 4.0})
    return queries, relevant, predictions


def test_per_edit_table_scores_each_edit_and_the_pool_with_the_metrics_engine():
    queries, relevant, predictions = edited_case()
    table = per_edit_table(queries, relevant, predictions, threshold=0.7, n_boot=200, seed=0)
    assert list(table["edit"]) == ["flip", "crop", POOLED]
    by = table.set_index("edit")
    # flip: one exact, one in the wrong video; crop: tIoU 3.5/4 and 2/6
    assert by.loc["flip", "R1@tIoU"] == 0.5 and by.loc["flip", "video_R@1"] == 0.5
    assert by.loc["crop", "R1@tIoU"] == 0.5 and by.loc["crop", "video_R@1"] == 1.0
    assert by.loc[POOLED, "R1@tIoU"] == 0.5 and by.loc[POOLED, "n_queries"] == 4
    assert (by["ci_low"] <= by["R1@tIoU"]).all() and (by["R1@tIoU"] <= by["ci_high"]).all()
    pooled = evaluate_localization(predictions, relevant, thresholds=(0.7,), n_boot=200, seed=0).set_index("metric")
    assert by.loc[POOLED, "ci_low"] == pooled.loc["R1@tIoU=0.7", "ci_low"]
    assert by.loc["crop", "boundary_error_s"] == pytest.approx(np.median([0.25, 2.0]))


def test_edited_copy_picks_a_copy_and_its_truth():
    queries, relevant, _ = edited_case()
    query, truth = edited_copy(queries, relevant, "crop", index=1)
    assert query["query_id"] == "e_crop_1" and list(truth["start_s"]) == [30.0]
    with pytest.raises(ParameterError, match="2 copies made with edit 'crop'"):
        edited_copy(queries, relevant, "crop", index=2)
