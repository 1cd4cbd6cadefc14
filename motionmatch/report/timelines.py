"""Plotly figures for finding a motion in long videos (notebook 07), in the look of :mod:`motionmatch.report.plots`.

Pure functions of arrays and tables, each returning a ``plotly.graph_objects.Figure``:

* :func:`similarity_timeline`: one video's per-window similarity to the query over time, the
  segments found shaded (score in the hover) and, where known, the ground truth shaded with a
  hatch;
* :func:`self_similarity`: the cosine self-similarity of a video's windows, with time axes;
  a motion that repeats shows as diagonals parallel to the main one;
* :func:`segments_overview`: a Gantt-like chart of the segments found, one row per video;
* :func:`timelines_for` and :func:`video_self_similarity`: those figures for a search result and an
  embeddings table (notebook 07), one call each.

Windows are ``(n, 2)`` arrays of ``start_s, end_s`` (or tables with those columns); segments are
:class:`motionmatch.search.align.Segment` objects, mappings, or tables with ``start_s, end_s`` and
optionally ``score``, ``label`` and ``video`` / ``video_path``. Times are seconds.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..errors import ParameterError
from .previews import format_range
from ..metrics.localization import temporal_iou
from ..table import embedding_matrix, l2_normalize, require_columns
from ..validation import check_scalar

LINE_COLOUR = "#1f77b4"
FOUND_COLOUR = "#ff7f0e"
TRUTH_COLOUR = "#2ca02c"
SPAN_FIELDS = ("video", "start_s", "end_s", "score", "label")


def window_array(window_times: Any, n: int | None = None, what: str = "window_times") -> np.ndarray:
    """``(n, 2)`` float array of window ``start_s, end_s`` from an array or a table with those columns."""
    if isinstance(window_times, pd.DataFrame):
        require_columns(window_times, ["start_s", "end_s"], what)
        window_times = window_times[["start_s", "end_s"]].to_numpy()
    times = np.asarray(window_times, dtype=float)
    if times.ndim != 2 or times.shape[1] != 2 or len(times) == 0 or (n is not None and len(times) != n):
        wanted = f"({n}, 2)" if n is not None else "(n_windows, 2)"
        raise ParameterError(f"{what} must be a {wanted} array of start_s, end_s; got shape {times.shape}")
    if not np.all(np.isfinite(times)) or np.any(times[:, 1] <= times[:, 0]):
        raise ParameterError(f"{what} needs finite times with end_s > start_s in every row")
    return times


def span_table(spans: Any, what: str = "segments") -> pd.DataFrame:
    """Segments or ground-truth spans as a table with columns :data:`SPAN_FIELDS` (score NaN, label "" if absent).

    Takes a table, or an iterable of Segment-like objects, mappings or ``(start_s, end_s)`` pairs.
    """
    if spans is None:
        return pd.DataFrame(columns=list(SPAN_FIELDS))
    if isinstance(spans, pd.DataFrame):
        require_columns(spans, ["start_s", "end_s"], what)
        rows = spans.to_dict("records")
    else:
        rows = []
        for item in spans:
            if isinstance(item, Mapping):
                rows.append(dict(item))
            elif isinstance(item, (tuple, list)) and len(item) == 2:
                rows.append({"start_s": item[0], "end_s": item[1]})
            elif hasattr(item, "start_s") and hasattr(item, "end_s"):
                rows.append({name: getattr(item, name) for name in ("video_path", *SPAN_FIELDS) if hasattr(item, name)})
            else:
                raise ParameterError(f"{what}: cannot read a time range from {item!r}; give objects with start_s "
                                     "and end_s, mappings with those keys, or (start_s, end_s) pairs")
    if not rows:
        return pd.DataFrame(columns=list(SPAN_FIELDS))
    table = pd.DataFrame(rows)
    for name in ("start_s", "end_s"):
        if name not in table:
            raise ParameterError(f"{what}: every span needs start_s and end_s")
    if "video" not in table:
        table["video"] = table["video_path"] if "video_path" in table else ""
    table["score"] = pd.to_numeric(table["score"], errors="coerce") if "score" in table else np.nan
    table["label"] = table["label"].fillna("").astype(str) if "label" in table else ""
    table = table[list(SPAN_FIELDS)].astype({"start_s": float, "end_s": float})
    bounds = table[["start_s", "end_s"]].to_numpy()
    if not np.all(np.isfinite(bounds)) or np.any(bounds[:, 1] <= bounds[:, 0]):
        raise ParameterError(f"{what}: every span needs finite start_s < end_s")
    return table.reset_index(drop=True)


def _band(start_s: float, end_s: float, low: float, high: float) -> tuple[list[float], list[float]]:
    """The corners of a rectangle, for a filled scatter trace."""
    return [start_s, end_s, end_s, start_s, start_s], [low, low, high, high, low]


def similarity_timeline(window_times: Any, scores: Any, segments: Any = (), ground_truth: Any = None,
                        threshold: float | None = None, title: str = "Similarity to the query over time",
                        duration_s: float | None = None) -> go.Figure:
    """Per-window similarity of one video over time, found segments and ground truth shaded.

    Each window's score is drawn at its centre. Each found segment is one orange band (trace name
    ``"found segment"``, hover: range and score); each ground-truth span one hatched green band
    (``"ground truth"``, hover: range and label). ``threshold`` draws a dashed line. The x axis
    runs from 0 to ``duration_s`` (default: the last window, segment or span end).
    """
    times = window_array(window_times)
    scores = np.asarray(scores, dtype=float).reshape(-1)
    if scores.shape != (len(times),) or not np.all(np.isfinite(scores)):
        raise ParameterError(f"scores must hold one finite value per window ({len(times)}); got shape {scores.shape}")
    found, truth = span_table(segments, "segments"), span_table(ground_truth, "ground_truth")
    marks = [scores.min(), scores.max()]
    if threshold is not None:
        marks.append(check_scalar(threshold, "threshold", float))
    low, high = min(marks) - 0.05, max(marks) + 0.05
    end = max([times[:, 1].max(), *found["end_s"], *truth["end_s"]])
    if duration_s is not None:
        end = check_scalar(duration_s, "duration_s", float, min_value=0, include_min=False)

    fig = go.Figure()
    for number, span in enumerate(truth.itertuples()):
        xs, ys = _band(span.start_s, span.end_s, low, high)
        text = f"ground truth {format_range(span.start_s, span.end_s)}" + (f"<br>{span.label}" if span.label else "")
        fig.add_scatter(x=xs, y=ys, mode="lines", fill="toself", fillcolor="rgba(44,160,44,0.12)",
                        fillpattern=dict(shape="/", fgcolor=TRUTH_COLOUR, fgopacity=0.35, size=8),
                        line=dict(width=0), hoveron="fills", hoverinfo="text", text=text, name="ground truth",
                        legendgroup="ground truth", showlegend=number == 0)
    for number, span in enumerate(found.itertuples()):
        xs, ys = _band(span.start_s, span.end_s, low, high)
        score = "" if np.isnan(span.score) else f"<br>score {span.score:.3f}"
        fig.add_scatter(x=xs, y=ys, mode="lines", fill="toself", fillcolor="rgba(255,127,14,0.25)",
                        line=dict(width=1, color=FOUND_COLOUR), hoveron="fills", hoverinfo="text",
                        text=f"found {format_range(span.start_s, span.end_s)}{score}", name="found segment",
                        legendgroup="found segment", showlegend=number == 0)
    centres = times.mean(axis=1)
    fig.add_scatter(x=centres, y=scores, mode="lines+markers", name="window similarity", marker=dict(size=4),
                    line=dict(color=LINE_COLOUR), customdata=[format_range(a, b) for a, b in times],
                    hovertemplate="window %{customdata}<br>similarity %{y:.3f}<extra></extra>")
    if threshold is not None:
        fig.add_hline(y=float(threshold), line_dash="dash", line_color="grey",
                      annotation_text=f"threshold {float(threshold):.2f}", annotation_position="top left")
    fig.update_layout(title=title, xaxis_title="time in the video (s)", yaxis_title="cosine similarity to the query",
                      xaxis_range=[0.0, float(end)], yaxis_range=[low, high], hovermode="closest",
                      legend=dict(orientation="h", y=-0.2))
    return fig


def _pool(vectors: np.ndarray, times: np.ndarray, max_windows: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each run of ``ceil(n / max_windows)`` consecutive windows (vectors and centre times).

    The similarity matrix of the mean vectors is exactly the block mean of the full matrix
    (``mean_a mean_b v_a . v_b = mean_a v_a . mean_b v_b``), at a fraction of the cost.
    """
    centres = times.mean(axis=1)
    size = -(-len(vectors) // max_windows)
    if size == 1:
        return vectors, centres
    starts = np.arange(0, len(vectors), size)
    counts = np.diff(np.r_[starts, len(vectors)])[:, None]
    return np.add.reduceat(vectors, starts, axis=0) / counts, np.add.reduceat(centres, starts) / counts[:, 0]


def self_similarity(vectors: Any, window_times: Any, title: str = "Self-similarity of the video's windows",
                    max_windows: int = 400) -> go.Figure:
    """Heatmap of cosine similarity between every pair of a video's windows, time on both axes.

    ``vectors`` are the windows' embeddings (normalised here). Repeated motion shows as
    diagonals parallel to the main one, offset by the repeat's delay. Beyond ``max_windows``
    windows, consecutive windows are averaged in blocks (the heatmap is then the block mean) so
    the page stays small: the matrix is embedded as float32, 400 x 400 takes about 1.3 MB of HTML.
    """
    matrix = np.asarray(vectors, dtype=np.float64)
    if matrix.ndim != 2 or len(matrix) == 0:
        raise ParameterError(f"vectors must be a (n_windows, dim) array; got shape {matrix.shape}")
    times = window_array(window_times, n=len(matrix))
    max_windows = check_scalar(max_windows, "max_windows", int, min_value=2)
    pooled, centres = _pool(l2_normalize(matrix).astype(np.float64), times, max_windows)
    similarity = (pooled @ pooled.T).astype(np.float32)
    fig = go.Figure(go.Heatmap(z=similarity, x=centres, y=centres, colorscale="Viridis", zmax=1.0,
                               zmin=max(-1.0, float(similarity.min())), colorbar=dict(title="cosine"),
                               hovertemplate="%{x:.1f} s vs %{y:.1f} s: %{z:.3f}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="time (s)", yaxis_title="time (s)",
                      yaxis=dict(autorange="reversed", scaleanchor="x", scaleratio=1), width=560, height=520)
    return fig


def segments_overview(segments: Any, durations: Mapping[str, float] | None = None,
                      title: str = "Segments found, per video") -> go.Figure:
    """A Gantt-like chart: one row per video, one bar per found segment, coloured by score.

    ``durations`` (video -> length in seconds) adds a grey bar for each video's full length,
    so where in the video the segments lie is visible. Rows are named by file name.
    """
    found = span_table(segments, "segments")
    if found.empty:
        raise ParameterError("segments_overview needs at least one segment")
    found["name"] = found["video"].map(lambda v: Path(str(v)).name or "(video)")
    fig = go.Figure()
    if durations:
        names = [Path(str(v)).name for v in durations]
        lengths = [check_scalar(d, f"duration of {v}", float, min_value=0) for v, d in durations.items()]
        fig.add_bar(y=names, x=lengths, base=[0.0] * len(names), orientation="h", name="video length",
                    marker_color="rgba(0,0,0,0.08)", hovertemplate="%{y}: %{x:.1f} s<extra></extra>")
    hover = [f"{row.video}<br>{format_range(row.start_s, row.end_s)}"
             + ("" if np.isnan(row.score) else f"<br>score {row.score:.3f}") + (f"<br>{row.label}" if row.label else "")
             for row in found.itertuples()]
    scored = found["score"].notna().any()
    fig.add_bar(y=found["name"], x=found["end_s"] - found["start_s"], base=found["start_s"], orientation="h",
                name="found segment", hovertext=hover, hoverinfo="text",
                marker=dict(color=found["score"], colorscale="Oranges", showscale=True, colorbar=dict(title="score"))
                if scored else dict(color=FOUND_COLOUR))
    fig.update_layout(title=title, barmode="overlay", xaxis_title="time in the video (s)", yaxis_title="",
                      yaxis=dict(autorange="reversed"), height=160 + 28 * found["name"].nunique(), showlegend=False)
    return fig


def video_scores(table: pd.DataFrame, video_path: str, query_vectors: np.ndarray) -> pd.DataFrame:
    """Each window of ``video_path`` with its best cosine over the query's windows, in time order."""
    windows = table[table["video_path"] == video_path].sort_values("start_s")
    if windows.empty:
        raise ParameterError(f"{video_path} has no windows in this table: was it extracted with the gallery?")
    cosine = l2_normalize(embedding_matrix(windows)) @ l2_normalize(np.asarray(query_vectors, dtype=np.float32)).T
    return pd.DataFrame({"start_s": windows["start_s"].to_numpy(float), "end_s": windows["end_s"].to_numpy(float),
                         "score": cosine.max(axis=1)})


def found_table(result, root: str | os.PathLike | None = None, ground_truth: pd.DataFrame | None = None) -> pd.DataFrame:
    """The segments of a :class:`~motionmatch.search.range.SearchResult` as a table, best first.

    With ``ground_truth`` (paths relative to ``root``), each segment gets the label of the
    ground-truth span it overlaps most (``truth_label``) and that overlap's tIoU.
    """
    rows = []
    for rank, s in enumerate(result.segments, start=1):
        row = {"rank": rank, "video": Path(s.video_path).name, "start_s": round(s.start_s, 2),
               "end_s": round(s.end_s, 2), "score": round(float(s.score), 3),
               "query_start_s": round(s.query_start_s, 2), "query_end_s": round(s.query_end_s, 2),
               "window_hits": len(s.hits)}
        if ground_truth is not None:
            spans = ground_truth[ground_truth["video"] == Path(s.video_path).name]
            tiou = temporal_iou([[s.start_s, s.end_s]], spans[["start_s", "end_s"]].to_numpy(float))[0]
            best = int(np.argmax(tiou)) if len(spans) else -1
            row["truth_label"] = str(spans["label"].iloc[best]) if best >= 0 and tiou[best] > 0 else ""
            row["tIoU"] = round(float(tiou[best]), 3) if best >= 0 else 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def video_durations(ground_truth: pd.DataFrame) -> dict[str, float]:
    """File name -> length in seconds, from a ground truth (``video, end_s``): where its last span ends."""
    require_columns(ground_truth, ["video", "end_s"], "ground_truth")
    return {str(video): float(end) for video, end in ground_truth.groupby("video")["end_s"].max().items()}


def timelines_for(result, table: pd.DataFrame, ground_truth: pd.DataFrame | None = None, label: str = "",
                  top_videos: int = 3) -> list[go.Figure]:
    """A :func:`similarity_timeline` for each of the ``top_videos`` videos with the best segments of ``result``
    (a :class:`~motionmatch.search.SearchResult`), in the order of their best segment.

    Each draws the video's windows of ``table`` scored by :func:`video_scores` against the query's windows, the
    segments found in it, and, with ``ground_truth`` (``video`` = file name, ``start_s, end_s, label``), the
    spans of the query's ``label`` shaded, the x axis running to the video's end.
    """
    top_videos = check_scalar(top_videos, "top_videos", int, min_value=1)
    shown = list(dict.fromkeys(s.video_path for s in result.segments))[:top_videos]
    durations = video_durations(ground_truth) if ground_truth is not None else {}
    truth = ground_truth[ground_truth["label"] == label] if ground_truth is not None and label else None
    figures = []
    for video_path in shown:
        name = Path(video_path).name
        curve = video_scores(table, video_path, result.vectors)
        figures.append(similarity_timeline(
            curve[["start_s", "end_s"]], curve["score"], [s for s in result.segments if s.video_path == video_path],
            ground_truth=None if truth is None else truth[truth["video"] == name], duration_s=durations.get(name),
            title=f"{name}: similarity to the query over time"))
    return figures


def video_self_similarity(table: pd.DataFrame, video_path: str, title: str = "", max_windows: int = 400) -> go.Figure:
    """:func:`self_similarity` of the windows of ``video_path`` in ``table``, in time order."""
    windows = table[table["video_path"] == str(video_path)].sort_values("start_s")
    if windows.empty:
        raise ParameterError(f"{video_path} has no windows in this table: was it extracted with the gallery?")
    return self_similarity(embedding_matrix(windows), windows[["start_s", "end_s"]],
                           title=title or f"Self-similarity of {Path(str(video_path)).name}'s windows",
                           max_windows=max_windows)


__all__ = ["video_scores", "found_table", "window_array", "span_table", "similarity_timeline", "self_similarity",
           "segments_overview", "video_durations", "timelines_for", "video_self_similarity"]
