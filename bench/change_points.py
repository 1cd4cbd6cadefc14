"""bench_localize's change-point check: how well does the search find where a reference's motion changes?

Same-motion answers end at the reference's changes (:func:`motionmatch.search.changes.motion_changes`), so this scores
those changes against a gallery's ground truth (``ground_truth.csv``: every labelled segment's start, ``cut`` or
``continuous``). A found change within :data:`TOLERANCE_S` of a true one is right. Rows: the index's cuts alone
(read from how its windows tile each video), the defaults (cuts + :func:`~motionmatch.search.changes.kernel_changes`),
and the kernel change-point penalty grid the default was chosen from; each row gives precision, recall and F1 over
every boundary, and the recall of the changes that are not cuts.

Run: ``python -m bench.bench_localize --changes --seed 0`` (any seed; the gallery is built if missing).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TOLERANCE_S = 1.0
PENALTY_GRID = (2.0, 3.0, 4.0, 5.0, 6.0, 8.0)


def _changes(times: np.ndarray, vectors: np.ndarray, penalty: float | None) -> np.ndarray:
    """Cuts alone (``penalty`` None) or cuts + kernel changes with ``penalty`` inside each shot, without 0."""
    from motionmatch.search import changes

    cuts = changes.window_cuts(times)
    if penalty is None:
        return cuts
    if penalty == changes.CPD_PENALTY:
        found = changes.motion_changes(times, vectors)
        return found[found > times[:, 0].min() + 1e-6]
    shot = np.searchsorted(cuts, times[:, 0] + 1e-6)
    inside = [changes.kernel_changes(times[shot == k], vectors[shot == k], penalty=penalty) for k in np.unique(shot)]
    return np.unique(np.r_[cuts, *inside])


def change_point_rows(embeddings: Path, ground_truth: Path, tolerance_s: float = TOLERANCE_S) -> list[dict]:
    """One row per detector setting over every video of a gallery (module docstring)."""
    from motionmatch.extract import load_run
    from motionmatch.search import changes

    table = load_run(embeddings).table
    truth = pd.read_csv(ground_truth)
    settings = [("cuts only", None)] + [(f"cuts + kernel changes, penalty {p:g}"
                                         + (" (default)" if p == changes.CPD_PENALTY else ""), p) for p in PENALTY_GRID]
    near = lambda a, b: np.array([np.any(np.abs(b - x) <= tolerance_s) for x in a], dtype=bool)  # noqa: E731
    counts = {name: np.zeros(6) for name, _ in settings}  # right found, found, true found, true, gradual found, gradual
    for video, rows in table.groupby("video_path"):
        rows = rows.sort_values("start_s", kind="stable")
        times = rows[["start_s", "end_s"]].to_numpy(float)
        vectors = np.stack(rows["embedding"].to_numpy())
        marks = truth[(truth["video"] == Path(video).name) & (truth["transition"] != "start")]
        every = marks["start_s"].to_numpy(float)
        gradual = marks.loc[marks["transition"] == "continuous", "start_s"].to_numpy(float)
        for name, penalty in settings:
            found = _changes(times, vectors, penalty)
            counts[name] += [near(found, every).sum(), len(found), near(every, found).sum(), len(every),
                             near(gradual, found).sum(), len(gradual)]
    out = []
    for name, _ in settings:
        right, n_found, true_found, n_true, gradual_found, n_gradual = counts[name]
        precision, recall = right / max(n_found, 1), true_found / max(n_true, 1)
        out.append({"setting": name, "found": int(n_found), "true": int(n_true), "precision": precision,
                    "recall": recall, "F1": 2 * precision * recall / max(precision + recall, 1e-12),
                    "changes without a cut": int(n_gradual), "their recall": gradual_found / max(n_gradual, 1)})
    return out


def markdown(rows: list[dict], tolerance_s: float = TOLERANCE_S) -> str:
    lines = [f"Motion changes against the ground truth (tolerance {tolerance_s:g} s):", "",
             "| setting | found | true | precision | recall | F1 | changes without a cut | their recall |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['setting']} | {r['found']} | {r['true']} | {r['precision']:.3f} | {r['recall']:.3f} | "
              f"{r['F1']:.3f} | {r['changes without a cut']} | {r['their recall']:.3f} |" for r in rows]
    return "\n".join(lines)


__all__ = ["PENALTY_GRID", "TOLERANCE_S", "change_point_rows", "markdown"]
