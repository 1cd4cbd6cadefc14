"""Plotly figures for the notebooks and HTML reports.

Every function returns a ``plotly.graph_objects.Figure``; nothing is shown here, so the
same figures work in JupyterLab, in papermill runs and in code-free HTML.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def score_histogram(relevant: np.ndarray, irrelevant: np.ndarray, title: str = "Cosine scores",
                    band: tuple[float, float] | None = (0.95, 0.98), nbins: int = 80) -> go.Figure:
    """Overlaid histograms of relevant (same label) and irrelevant pair scores.

    ``band`` shades the range the original notes say most scores fall in.
    """
    fig = go.Figure()
    fig.add_histogram(x=np.asarray(irrelevant), name="irrelevant pairs (different label)", opacity=0.6,
                      histnorm="probability density", nbinsx=nbins, marker_color="#d62728")
    fig.add_histogram(x=np.asarray(relevant), name="relevant pairs (same label)", opacity=0.6,
                      histnorm="probability density", nbinsx=nbins, marker_color="#1f77b4")
    if band is not None:
        fig.add_vrect(x0=band[0], x1=band[1], fillcolor="grey", opacity=0.15, line_width=0,
                      annotation_text=f"notes' band {band[0]:.2f}-{band[1]:.2f}", annotation_position="top left")
    fig.update_layout(barmode="overlay", title=title, xaxis_title="cosine similarity", yaxis_title="density",
                      legend=dict(orientation="h", y=-0.2))
    return fig


def umap_scatter(coords: np.ndarray, table: pd.DataFrame, color: str = "label", symbol: str | None = None,
                 title: str | None = None, hover: Sequence[str] = ("video_path", "clip_index", "label", "domain")) -> go.Figure:
    """2-D scatter of UMAP coordinates coloured by a table column."""
    frame = table[[c for c in dict.fromkeys([*hover, color, *( [symbol] if symbol else [])]) if c in table.columns]].copy()
    frame["x"], frame["y"] = coords[:, 0], coords[:, 1]
    if "video_path" in frame:
        frame["video"] = frame["video_path"].map(lambda p: str(p).rsplit("/", 1)[-1])
    fig = px.scatter(frame, x="x", y="y", color=color, symbol=symbol,
                     hover_data=[c for c in ("video", "clip_index", "label", "domain") if c in frame.columns],
                     title=title or f"UMAP of clip embeddings, coloured by {color}")
    fig.update_traces(marker=dict(size=6, opacity=0.8))
    fig.update_layout(xaxis_title="UMAP-1", yaxis_title="UMAP-2")
    return fig


def umap_embed(vectors: np.ndarray, n_neighbors: int = 15, seed: int = 0) -> np.ndarray:
    """UMAP to 2-D by cosine distance; small inputs get a smaller neighbourhood.

    Below 4096 points UMAP computes every pairwise distance anyway, with a compiled Python callable
    per pair; scikit-learn's ``cosine_distances`` gives them all at once ("precomputed"), 5-7 s sooner for the
    demo's 2560 clips.
    """
    import umap

    vectors = np.asarray(vectors, dtype=np.float64)
    n_neighbors = int(max(2, min(n_neighbors, len(vectors) - 1)))
    data, metric = vectors, "cosine"
    if len(vectors) < 4096:
        from sklearn.metrics.pairwise import cosine_distances

        data, metric = cosine_distances(vectors), "precomputed"
        np.fill_diagonal(data, 0.0)
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, metric=metric, random_state=seed,
                        init="random" if len(vectors) < 10 else "spectral", n_jobs=1)
    with warnings.catch_warnings():  # "inverse_transform will be unavailable": never used here
        warnings.filterwarnings("ignore", message="using precomputed metric")
        return reducer.fit_transform(data)


def heatmap(matrix: pd.DataFrame, title: str, zmin: float | None = 0.0, zmax: float | None = 1.0,
            text_format: str = ".2f", colorscale: str = "Blues") -> go.Figure:
    """Annotated heatmap of a DataFrame (rows = query side, columns = gallery side)."""
    fig = px.imshow(matrix.to_numpy(dtype=float), x=[str(c) for c in matrix.columns], y=[str(i) for i in matrix.index],
                    zmin=zmin, zmax=zmax, color_continuous_scale=colorscale, text_auto=text_format, aspect="auto")
    fig.update_layout(title=title, xaxis_title=matrix.columns.name or "", yaxis_title=matrix.index.name or "")
    return fig


def clip_thumbnail(video_path: str, start_s: float, end_s: float, size: int = 96) -> np.ndarray:
    """The middle frame of a clip as a small RGB array (for result strips)."""
    from ..video.decode import probe_video, read_frames

    info = probe_video(video_path)
    middle = 0.5 * (float(start_s) + float(end_s))
    index = int(np.clip(round(middle * info.fps), 0, max(0, info.num_frames - 1)))
    frame = read_frames(video_path, [index])[0]
    height, width = frame.shape[:2]
    scale = size / max(height, width)
    if scale < 1:
        import cv2

        frame = cv2.resize(frame, (max(1, int(width * scale)), max(1, int(height * scale))), interpolation=cv2.INTER_AREA)
    return frame


def result_strip(query: dict, hits: Sequence, title: str = "Query and top results", size: int = 96) -> go.Figure:
    """A row of thumbnails: the query first, then each hit with its score and label.

    ``query`` has keys video_path, start_s, end_s, label; ``hits`` are store Hits (or
    dicts with the same keys plus ``score``). Files that cannot be decoded show as grey.
    """
    items = [dict(query, score=None)] + [h if isinstance(h, dict) else h.__dict__ for h in hits]
    fig = make_subplots(rows=1, cols=len(items), horizontal_spacing=0.01,
                        subplot_titles=[_strip_title(i, it) for i, it in enumerate(items)])
    for column, item in enumerate(items, start=1):
        try:
            image = clip_thumbnail(item["video_path"], item["start_s"], item["end_s"], size=size)
        except Exception:
            image = np.full((size, size, 3), 128, dtype=np.uint8)
        fig.add_trace(go.Image(z=image, hovertemplate=f"{item['video_path']}<extra></extra>"), row=1, col=column)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=10)
    fig.update_layout(title=title, height=size * 2 + 80, width=max(600, 130 * len(items)), margin=dict(l=10, r=10, t=90, b=10))
    return fig


def _strip_title(position: int, item: dict) -> str:
    label = str(item.get("label", ""))
    if position == 0:
        return f"QUERY<br>{label}"
    return f"#{position} {item['score']:.3f}<br>{label}"


def metric_bars(summary: pd.DataFrame, metric: str, group: str, title: str) -> go.Figure:
    """Bar chart of a metric with 95% CI error bars (columns metric, metric_lo, metric_hi)."""
    frame = summary.reset_index() if group not in summary.columns else summary
    error = dict(type="data", symmetric=False,
                 array=(frame[f"{metric}_hi"] - frame[metric]).to_numpy(),
                 arrayminus=(frame[metric] - frame[f"{metric}_lo"]).to_numpy()) if f"{metric}_hi" in frame else None
    fig = go.Figure(go.Bar(x=frame[group].astype(str), y=frame[metric], error_y=error))
    fig.update_layout(title=title, yaxis_title=metric, yaxis_range=[0, 1])
    return fig


def training_curves(history: pd.DataFrame, title: str = "Projection head training") -> go.Figure:
    """Loss and validation metric per epoch (columns epoch, train_loss, and "val ..." metrics)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_scatter(x=history["epoch"], y=history["train_loss"], name="train loss", secondary_y=False)
    for column in [c for c in history.columns if c.startswith("val ")]:
        fig.add_scatter(x=history["epoch"], y=history[column], name=column, secondary_y=True)
    fig.update_layout(title=title, xaxis_title="epoch")
    return fig


def video_thumbnail(video_path: str, size: int = 96) -> np.ndarray:
    """The middle frame of a whole video as a small RGB array."""
    from ..video.decode import probe_video

    info = probe_video(video_path)
    return clip_thumbnail(video_path, 0.0, info.duration_s, size=size)


def thumbnail_grid(manifest: pd.DataFrame, title: str = "Videos", columns: int = 6, size: int = 96) -> go.Figure:
    """A grid of middle-frame thumbnails, one per manifest row, titled by label and domain."""
    rows = max(1, -(-len(manifest) // columns))
    titles = [f"{r.label}<br>{r.domain}" for r in manifest.itertuples()]
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=titles, horizontal_spacing=0.01, vertical_spacing=0.08)
    for position, row in enumerate(manifest.itertuples()):
        try:
            image = video_thumbnail(row.path, size=size)
        except Exception:
            image = np.full((size, size, 3), 128, dtype=np.uint8)
        fig.add_trace(go.Image(z=image, hovertemplate=f"{row.path}<extra></extra>"),
                      row=position // columns + 1, col=position % columns + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=10)
    fig.update_layout(title=title, height=rows * (size + 70) + 60, margin=dict(l=10, r=10, t=70, b=10))
    return fig


def confused_strips(examples: pd.DataFrame, n: int = 3, size: int = 96) -> list[go.Figure]:
    """One :func:`result_strip` per confused pair of :func:`motionmatch.evaluation.confused_examples` (the ``n``
    most frequent confusions first): the query clip, then its nearest allowed neighbour of another label."""
    from ..validation import check_scalar

    n = check_scalar(n, "n", int, min_value=1)
    figures = []
    for row in examples.head(n).itertuples():
        query = {"video_path": row.query_video_path, "start_s": row.query_start_s, "end_s": row.query_end_s,
                 "label": row.query_label}
        hit = {"video_path": row.neighbour_video_path, "start_s": row.neighbour_start_s, "end_s": row.neighbour_end_s,
               "label": row.neighbour_label, "score": row.score}
        figures.append(result_strip(query, [hit], size=size, title=f"'{row.query_label}' confused with "
                                                                    f"'{row.neighbour_label}' ({row.cell_count} times)"))
    return figures
