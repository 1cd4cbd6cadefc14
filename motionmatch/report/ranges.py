"""Refined time ranges against the ground truth (notebook 07): what the coarse stage answered, what the fine stage
made of it, and what was true; per edit, how often a copy's range is right.

* :func:`edited_copy`: one edited copy of a query list (:func:`motionmatch.data.write_edited_copies`) and its
  ground truth;
* :func:`answer_ranges`: the top answer of a search as each stage gave it (coarse windows, fine stage without and
  with snapping...), next to the ground-truth span it should match, with tIoU and boundary errors;
* :func:`range_timeline`: those ranges as bars on one time axis, the ground truth's ends as lines;
* :func:`compare_metrics`: segment metrics of the same queries searched with two settings, side by side;
* :func:`per_edit_table`: R1@tIoU (95% bootstrap CI), video R@1 and boundary error per edit, and pooled.

Ground truth rows have ``video, start_s, end_s`` (and ``label`` for :func:`answer_ranges`' ``label``); videos are
matched by file name, as :func:`motionmatch.report.found_table` matches them (the long sample's names are unique).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..errors import ParameterError
from ..metrics.bootstrap import DEFAULT_N_BOOT
from ..metrics.localization import evaluate_localization, temporal_iou
from ..table import require_columns
from ..validation import check_scalar
from .previews import format_range
from .timelines import FOUND_COLOUR, LINE_COLOUR, TRUTH_COLOUR

TRUTH_STAGE = "ground truth"
RANGE_COLUMNS = ("stage", "video", "start_s", "end_s", "kind", "rank", "tIoU", "start_error_s", "end_error_s")
SNAP_METRICS = ("R1@tIoU=0.5", "R1@tIoU=0.7", "tIoU_given_video", "moment_given_video", "tIoU_given_moment",
                "boundary_error_s", "start_error_s", "end_error_s")
PER_EDIT_COLUMNS = ("edit", "n_queries", "R1@tIoU", "ci_low", "ci_high", "video_R@1", "boundary_error_s")
POOLED = "pooled"
_STAGE_COLOURS = ("#9ecae1", LINE_COLOUR, FOUND_COLOUR)


def _name(video) -> str:
    return Path(str(video)).name


def edited_copy(queries: pd.DataFrame, relevant: pd.DataFrame, edit: str, index: int = 0
                ) -> tuple[pd.Series, pd.DataFrame]:
    """``(query, its relevant rows)``: the ``index``-th edited copy made with ``edit`` in a query list with an
    ``edit`` column (``edited_queries.csv``, read by :func:`motionmatch.data.read_query_list`)."""
    require_columns(queries, ["query_id", "path", "edit"], "the edited queries")
    require_columns(relevant, ["query_id", "video", "start_s", "end_s"], "the edited copies' relevant moments")
    chosen = queries[queries["edit"] == edit]
    index = check_scalar(index, "index", int, min_value=0)
    if index >= len(chosen):
        raise ParameterError(f"there are {len(chosen)} copies made with edit {edit!r} (edits here: "
                             f"{', '.join(sorted(set(queries['edit'])))}); give another edit or a smaller index")
    query = chosen.iloc[index]
    return query, relevant[relevant["query_id"] == query["query_id"]].reset_index(drop=True)


def _truth_span(truth: pd.DataFrame, video: str, start_s: float, end_s: float, label: str) -> pd.Series | None:
    """The ground-truth span of ``video`` (and ``label``) that overlaps ``[start_s, end_s)`` most, else the
    nearest one; None when the video has none."""
    require_columns(truth, ["video", "start_s", "end_s"], "the ground truth")
    rows = truth[truth["video"].map(_name) == _name(video)]
    if label:
        require_columns(truth, ["label"], "the ground truth (a label was given)")
        rows = rows[rows["label"] == label]
    if rows.empty:
        return None
    spans = rows[["start_s", "end_s"]].to_numpy(float)
    overlap = temporal_iou([[start_s, end_s]], spans)[0]
    distance = np.abs(spans.mean(axis=1) - (start_s + end_s) / 2)
    best = int(np.argmax(overlap)) if overlap.max() > 0 else int(np.argmin(distance))
    return rows.iloc[best]


def answer_ranges(stages: Mapping[str, object], truth: pd.DataFrame, label: str = "",
                  in_truth_video: bool = False) -> pd.DataFrame:
    """The top answer of a search, stage by stage, against the ground truth.

    ``stages`` maps a name to a :class:`~motionmatch.search.SearchResult` of the same query, in the order to show
    them; the **last** one's top segment is the answer (with ``in_truth_video``, its best-ranked segment in a video
    that holds a ground-truth span: how well the range is bounded once the video is right, whatever the encoder
    ranked first). From each other stage, the segment in the answer's video that overlaps it most (a stage with
    none there gets an empty row). ``truth`` holds the relevant spans (``video, start_s, end_s``; with ``label``,
    only spans of that label count); the one that overlaps the answer most is the ground-truth row. Columns
    :data:`RANGE_COLUMNS`; ``rank`` is the segment's place in its stage's list (1: the top answer); tIoU and errors
    (signed, seconds: negative is early) are against that span."""
    if not stages:
        raise ParameterError("answer_ranges needs at least one stage (a name -> search result)")
    final = list(stages.values())[-1]
    if not final.segments:
        raise ParameterError(f"the {list(stages)[-1]!r} search found no segment: nothing to compare")
    answer = final.segments[0]
    if in_truth_video:
        answer = next((s for s in final.segments
                       if _truth_span(truth, s.video_path, s.start_s, s.end_s, label) is not None), answer)
    span = _truth_span(truth, answer.video_path, answer.start_s, answer.end_s, label)
    rows = []
    for name, result in stages.items():
        ranked = list(result.segments)
        mine = [s for s in ranked if s.video_path == answer.video_path]
        if not mine:
            rows.append({"stage": name, "video": _name(answer.video_path), "start_s": np.nan, "end_s": np.nan,
                         "kind": "not found", "rank": np.nan})
            continue
        overlap = temporal_iou([[s.start_s, s.end_s] for s in mine], [[answer.start_s, answer.end_s]])[:, 0]
        best = mine[int(np.argmax(overlap))] if result is not final else answer
        rows.append({"stage": name, "video": _name(best.video_path), "start_s": float(best.start_s),
                     "end_s": float(best.end_s), "kind": best.kind,
                     "rank": next(i for i, s in enumerate(ranked, 1) if s is best)})
    table = pd.DataFrame(rows)
    if span is None:
        table[["tIoU", "start_error_s", "end_error_s"]] = np.nan
        return table.reindex(columns=list(RANGE_COLUMNS))
    found = table["start_s"].notna()
    truth_box = [[float(span["start_s"]), float(span["end_s"])]]
    table["tIoU"] = np.nan
    if found.any():
        table.loc[found, "tIoU"] = temporal_iou(table.loc[found, ["start_s", "end_s"]].to_numpy(float), truth_box)[:, 0]
    table["start_error_s"] = table["start_s"] - float(span["start_s"])
    table["end_error_s"] = table["end_s"] - float(span["end_s"])
    truth_row = {"stage": TRUTH_STAGE, "video": _name(span["video"]), "start_s": float(span["start_s"]),
                 "end_s": float(span["end_s"]), "kind": str(span["label"]) if "label" in span else "",
                 "rank": np.nan, "tIoU": 1.0, "start_error_s": 0.0, "end_error_s": 0.0}
    return pd.concat([pd.DataFrame([truth_row]), table], ignore_index=True).reindex(columns=list(RANGE_COLUMNS))


def range_timeline(ranges: pd.DataFrame, title: str = "The answer, stage by stage, against the ground truth",
                   margin_s: float = 2.0) -> go.Figure:
    """:func:`answer_ranges`' rows as horizontal bars on one time axis (ground truth in green, top), the ground
    truth's start and end as dotted lines, so how far each stage's ends sit from them shows at a glance."""
    require_columns(ranges, ["stage", "start_s", "end_s"], "ranges")
    drawn = ranges.dropna(subset=["start_s", "end_s"])
    if drawn.empty:
        raise ParameterError("range_timeline needs at least one row with a range")
    margin_s = check_scalar(margin_s, "margin_s", float, min_value=0)
    fig = go.Figure()
    colours = iter(_STAGE_COLOURS * len(ranges))
    for row in drawn.itertuples():
        truth = row.stage == TRUTH_STAGE
        colour = TRUTH_COLOUR if truth else next(colours)
        extra = "" if truth or not hasattr(row, "tIoU") or pd.isna(row.tIoU) else f"<br>tIoU {row.tIoU:.3f}"
        kind = f" ({row.kind})" if getattr(row, "kind", "") else ""
        fig.add_bar(y=[row.stage], x=[row.end_s - row.start_s], base=[row.start_s], orientation="h",
                    marker_color=colour, name=row.stage, hoverinfo="text",
                    hovertext=f"{row.stage}{kind}: {format_range(row.start_s, row.end_s)}{extra}")
    truth = drawn[drawn["stage"] == TRUTH_STAGE]
    for edge in (truth[["start_s", "end_s"]].to_numpy(float).reshape(-1) if len(truth) else []):
        fig.add_vline(x=float(edge), line_dash="dot", line_color=TRUTH_COLOUR)
    video = str(drawn["video"].iloc[0]) if "video" in drawn else ""
    low, high = float(drawn["start_s"].min()) - margin_s, float(drawn["end_s"].max()) + margin_s
    fig.update_layout(title=title, barmode="overlay", showlegend=False, yaxis=dict(autorange="reversed"),
                      xaxis_title=f"time in {video} (s)" if video else "time (s)", xaxis_range=[max(0.0, low), high],
                      height=140 + 40 * len(drawn))
    return fig


def compare_metrics(tables: Mapping[str, pd.DataFrame], kind: str | None = None,
                    metrics: Sequence[str] = SNAP_METRICS) -> pd.DataFrame:
    """Metrics of the same queries searched with different settings, side by side: rows ``metric``, one column of
    values per table (and ``<name> CI`` with the 95% interval). Tables are
    :func:`motionmatch.evaluation.evaluate_search` metrics (``kind, metric, value, ci_low, ci_high``); ``kind``
    picks one query kind."""
    if len(tables) < 2:
        raise ParameterError("compare_metrics needs two or more metric tables (a name -> metrics)")
    columns = {}
    for name, table in tables.items():
        require_columns(table, ["metric", "value", "ci_low", "ci_high"], f"the {name!r} metrics")
        chosen = table if kind is None else table[table["kind"] == kind]
        if chosen.empty:
            raise ParameterError(f"the {name!r} metrics hold no rows of kind {kind!r}")
        indexed = chosen.set_index("metric")
        missing = [m for m in metrics if m not in indexed.index]
        if missing:
            raise ParameterError(f"the {name!r} metrics lack {missing}; they hold {sorted(indexed.index)}")
        columns[name] = indexed.loc[list(metrics), "value"].astype(float)
        columns[f"{name} CI"] = [f"[{lo:.3f}, {hi:.3f}]" for lo, hi in indexed.loc[list(metrics), ["ci_low", "ci_high"]]
                                 .to_numpy(float)]
    out = pd.DataFrame(columns, index=list(metrics))
    out.index.name = "metric"
    return out


def per_edit_table(queries: pd.DataFrame, relevant: pd.DataFrame, predictions: pd.DataFrame, threshold: float = 0.7,
                   n_boot: int = DEFAULT_N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Per edit of the edited copies (``queries`` with an ``edit`` column), and pooled: R1 at ``threshold`` tIoU
    with its 95% bootstrap CI over that edit's queries (:func:`motionmatch.metrics.evaluate_localization`), video
    R@1 and the median boundary error. ``predictions`` are :func:`motionmatch.evaluation.evaluate_search`'s.
    Columns :data:`PER_EDIT_COLUMNS`."""
    require_columns(queries, ["query_id", "edit"], "the edited queries")
    threshold = check_scalar(threshold, "threshold", float, min_value=0, max_value=1, include_min=False)
    metric = f"R1@tIoU={threshold:g}"
    groups = [(edit, set(queries.loc[queries["edit"] == edit, "query_id"])) for edit in dict.fromkeys(queries["edit"])]
    rows = []
    for edit, ids in [*groups, (POOLED, set(queries["query_id"]))]:
        chosen = relevant[relevant["query_id"].isin(ids)]
        if chosen.empty:
            raise ParameterError(f"no relevant moment for the copies of edit {edit!r}: are these the edited queries' "
                                 "relevant moments (edited_relevant.csv)?")
        scored = evaluate_localization(predictions[predictions["query_id"].isin(ids)], chosen, thresholds=(threshold,),
                                       n_boot=n_boot, seed=seed).set_index("metric")
        rows.append({"edit": edit, "n_queries": int(scored.loc[metric, "n_queries"]), "R1@tIoU": scored.loc[metric, "value"],
                     "ci_low": scored.loc[metric, "ci_low"], "ci_high": scored.loc[metric, "ci_high"],
                     "video_R@1": scored.loc["video_R@1", "value"],
                     "boundary_error_s": scored.loc["boundary_error_s", "value"]})
    return pd.DataFrame(rows, columns=list(PER_EDIT_COLUMNS))


__all__ = ["TRUTH_STAGE", "RANGE_COLUMNS", "SNAP_METRICS", "PER_EDIT_COLUMNS", "POOLED", "edited_copy",
           "answer_ranges", "range_timeline", "compare_metrics", "per_edit_table"]
