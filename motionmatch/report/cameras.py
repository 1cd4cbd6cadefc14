"""The cross-camera comparison of notebook 08, for people: a table per method, camera x camera matrices, the
pose channel's coverage, the failures with their skeletons, and a conclusion generated from the numbers.

Every number comes from :mod:`motionmatch.evaluation.scored` (any score matrix, the one metrics engine); the score
matrices from :func:`motionmatch.beyond.channel_scores`.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..errors import ParameterError
from ..evaluation.retrieval import domain_matrix
from ..evaluation.scored import score_domain_pairs, score_protocol
from ..table import COVERAGE_COLUMN, clip_coverage


def _ci(values: Mapping, name: str, digits: int = 3) -> str:
    value = values[name]
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f} [{values[name + '_lo']:.{digits}f}, {values[name + '_hi']:.{digits}f}]"


def method_table(scores: Mapping[str, np.ndarray], table: pd.DataFrame, ks: Sequence[int] = (1, 10),
                 exclude: str = "video", n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per method: cross-camera P@k (each query ranks the other cameras' clips) with 95% CIs as text, the
    numbers themselves (``P@k``, ``P@k lo``, ``P@k hi``) and the number of queries scored."""
    rows = {}
    for name, matrix in scores.items():
        values = score_protocol(matrix, table, "other", exclude, ks, n_boot, seed)
        row = {f"cross-camera P@{k} [95% CI]": _ci(values, f"P@{k}") for k in ks}
        for k in ks:
            row.update({f"P@{k}": values[f"P@{k}"], f"P@{k} lo": values[f"P@{k}_lo"], f"P@{k} hi": values[f"P@{k}_hi"]})
        row["queries"] = values["n_queries"]
        rows[name] = row
    return pd.DataFrame(rows).T.rename_axis("method")


def domain_matrices(scores: Mapping[str, np.ndarray], table: pd.DataFrame, metric: str = "P@1",
                    exclude: str = "video") -> dict[str, pd.DataFrame]:
    """Query camera x gallery camera ``metric`` of each method (no CIs: one cell holds few queries)."""
    k = int(metric.split("@")[1]) if "@" in metric else 10
    return {name: domain_matrix(score_domain_pairs(matrix, table, exclude, (k,), n_boot=0), metric)
            for name, matrix in scores.items()}


def matrices_figure(matrices: Mapping[str, pd.DataFrame], title: str, metric: str = "P@1") -> go.Figure:
    """The matrices of :func:`domain_matrices` side by side (one colour scale, 0 to 1; empty cells: nothing to find)."""
    if not matrices:
        raise ParameterError("no matrices to show")
    names = list(matrices)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.06)
    for position, name in enumerate(names):
        matrix = matrices[name]
        values = matrix.to_numpy(dtype=float)
        fig.add_trace(go.Heatmap(z=values, x=[str(c) for c in matrix.columns], y=[str(i) for i in matrix.index],
                                 zmin=0, zmax=1, colorscale="Blues", showscale=position == len(names) - 1,
                                 text=[[("" if not np.isfinite(v) else f"{v:.2f}") for v in row] for row in values],
                                 texttemplate="%{text}", hovertemplate="query %{y}, gallery %{x}: %{z:.3f}<extra></extra>"),
                      row=1, col=position + 1)
        fig.update_yaxes(autorange="reversed", row=1, col=position + 1, title_text="query camera" if position == 0 else "")
        fig.update_xaxes(title_text="gallery camera", row=1, col=position + 1)
    fig.update_layout(title=f"{title} ({metric})", height=380, margin=dict(l=60, r=20, t=90, b=50))
    return fig


def coverage_summary(table: pd.DataFrame, by: Sequence[str] = ("domain",)) -> pd.DataFrame:
    """The pose channel's coverage per ``by`` (default camera): clips, mean coverage, clips with no person."""
    coverage = clip_coverage(table)
    frame = table[list(by)].assign(**{COVERAGE_COLUMN: coverage, "no person": coverage <= 0})
    return frame.groupby(list(by)).agg(clips=(COVERAGE_COLUMN, "size"), mean_coverage=(COVERAGE_COLUMN, "mean"),
                                       min_coverage=(COVERAGE_COLUMN, "min"), no_person=("no person", "sum"))


def failure_videos(worst: pd.DataFrame) -> list[tuple[str, str]]:
    """(title, video) of each worst query and its top hit, in pairs, for :func:`~motionmatch.report.skeleton_panels`."""
    videos = []
    for row in worst.itertuples():
        videos.append((f"query {row.query_label} · {row.query_domain}", row.query_video))
        videos.append((f"top hit {row.top_hit_label} · {row.top_hit_domain} ({row.top_hit_score:.2f})", row.top_hit_video))
    return videos


def camera_conclusion(whole: pd.DataFrame, test: pd.DataFrame, chosen: str, n_clips: int, n_no_person: int,
                      fallback: dict | None = None, k: int = 10) -> list[str]:
    """Markdown bullets from the numbers: pose against flow across cameras, the fusion chosen on validation and
    measured on test, the clips with no person, and whether fusion fell back to flow where nobody was seen."""
    def cell(frame: pd.DataFrame, row: str, metric: str) -> str:
        return frame.loc[row, f"cross-camera {metric} [95% CI]"] if row in frame.index else "n/a"

    lines = [f"- **Across cameras, whole sample ({n_clips} clips):** pose P@1 {cell(whole, 'pose', 'P@1')} against "
             f"flow {cell(whole, 'flow', 'P@1')}; P@{k} {cell(whole, 'pose', f'P@{k}')} against "
             f"{cell(whole, 'flow', f'P@{k}')}. No setting was chosen on these numbers here (the pose descriptor was "
             "chosen on this sample by bench/bench_pose.py, so they are not held out from that choice)."]
    lines.append(f"- **flow + pose, chosen on validation ({chosen}), measured once on the test groups:** P@{k} "
                 f"{cell(test, 'fused', f'P@{k}')} against flow {cell(test, 'flow', f'P@{k}')} and pose "
                 f"{cell(test, 'pose', f'P@{k}')}; P@1 {cell(test, 'fused', 'P@1')}.")
    lines.append(f"- **No person:** {n_no_person} of {n_clips} clips had nobody tracked (coverage 0); they are "
                 "left out of the pose rankings, and fusion scores them with flow alone.")
    if fallback is not None:
        same = fallback["max_difference_there"] == 0 and fallback["same_ranking_there"]
        lines.append(f"- **Where nobody is in view (the sprite sample, {fallback['pairs_without_a_channel']} pairs "
                     f"without the pose channel):** fusion {'equals' if same else 'does NOT equal'} flow alone "
                     f"(largest difference {fallback['max_difference_there']:.3g}).")
    return lines


__all__ = ["method_table", "domain_matrices", "matrices_figure", "coverage_summary", "failure_videos",
           "camera_conclusion"]
