"""Edited copies of ranges of the long sample: the transformations VSC22's copy-detection queries use.

Each copy is a range of one labelled segment of a long video (:func:`motionmatch.data.generate_long_videos`),
edited and re-encoded, written with its localisation ground truth, so an evaluation can say per edit how
well a copy is found and bounded:

===============  =========================================================================================
edit             what the query is
===============  =========================================================================================
``rescale``      scaled to 3/4 of the width and height, re-encoded at a lower quality (crf 30)
``flip``         mirrored left-right
``crop``         the central 80% of the width and height (no rescale: a smaller frame)
``speed_0.8``    played at 0.8x (frames repeated): the query is longer than the source range
``speed_1.25``   played at 1.25x (frames dropped): the query is shorter than the source range
``brightness``   contrast x1.3 and brightness +25 (clipped)
``caption``      a black bar with white text over the bottom 18% (a subtitle or a logo strip)
``partial``      only the middle 60% of the source range (the query is a sub-range of the reference)
``padded``       the source range with 1.5 s of another video's footage before and after it (the reference
                 is a sub-range of the query)
===============  =========================================================================================

Relevant moments are exact: frame times of the source file for the reference range, and of the written
query for its own range (``query_start_s``, ``query_end_s``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..metrics.localization import RELEVANT_COLUMNS
from ..validation import check_choice, check_scalar
from ..video.write import write_video
from .long_synthetic import DISTRACTOR_LABEL, QUERY_COLUMNS, range_starts, write_csv

EDITS = ("rescale", "flip", "crop", "speed_0.8", "speed_1.25", "brightness", "caption", "partial", "padded")
PAD_S = 1.5  # seconds of other footage on each side of a ``padded`` copy
PARTIAL = 0.6  # share of the range a ``partial`` copy keeps (its middle)
EDITED_QUERY_COLUMNS = (*QUERY_COLUMNS, "edit")


def _resize(frames: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    height, width = frames.shape[1:3]
    size = (max(16, int(round(width * scale / 2)) * 2), max(16, int(round(height * scale / 2)) * 2))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def _crop(frames: np.ndarray, keep: float = 0.8) -> np.ndarray:
    height, width = frames.shape[1:3]
    h, w = int(round(height * keep / 2)) * 2, int(round(width * keep / 2)) * 2
    top, left = (height - h) // 2, (width - w) // 2
    return np.ascontiguousarray(frames[:, top:top + h, left:left + w])


def _caption(frames: np.ndarray) -> np.ndarray:
    import cv2

    out = frames.copy()
    height, width = out.shape[1:3]
    bar = int(round(height * 0.18))
    scale = max(0.3, width / 400)
    for frame in out:
        frame[height - bar:] = 0
        cv2.putText(frame, "MotionMatch 2026", (4, height - bar // 3), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _speed(n_frames: int, factor: float) -> np.ndarray:
    """Source frame (offset in the range) of each output frame when played at ``factor``x."""
    n_out = max(1, int(round(n_frames / factor)))
    return np.minimum(np.floor(np.arange(n_out) * factor + 1e-9).astype(int), n_frames - 1)


PIXEL_EDITS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "rescale": lambda f: _resize(f, 0.75),
    "flip": lambda f: np.ascontiguousarray(f[:, :, ::-1]),
    "crop": _crop,
    "brightness": lambda f: np.clip(f.astype(np.float32) * 1.3 + 25, 0, 255).astype(np.uint8),
    "caption": _caption,
}


def edit_copy(frames: np.ndarray, edit: str, filler: np.ndarray | None = None, fps: float = 24.0
              ) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """``(query frames, (first, end) of the source frames kept, (first, end) of the query frames that show them)``.

    ``frames`` (T, H, W, 3) is the source range; ``filler`` the other footage a ``padded`` copy needs.
    """
    check_choice(edit, "edit", EDITS)
    n = len(frames)
    if edit in PIXEL_EDITS:
        return PIXEL_EDITS[edit](frames), (0, n), (0, n)
    if edit.startswith("speed_"):
        picked = _speed(n, float(edit.split("_")[1]))
        return frames[picked], (0, n), (0, len(picked))
    if edit == "partial":
        keep = max(1, int(round(n * PARTIAL)))
        first = (n - keep) // 2
        return frames[first:first + keep], (first, first + keep), (0, keep)
    pad = int(round(PAD_S * fps))
    if filler is None or len(filler) < 2 * pad:
        raise ParameterError(f"a padded copy needs {2 * pad} frames of other footage, got "
                             f"{0 if filler is None else len(filler)}")
    return np.concatenate([filler[:pad], frames, filler[pad:2 * pad]]), (0, n), (pad, pad + n)


def write_edited_copies(out_dir: str | os.PathLike, per_edit: int = 8, query_s: float = 4.0, seed: int = 0,
                        edits: tuple[str, ...] = EDITS, crf: int = 23) -> Path:
    """Write ``per_edit`` edited copies of each edit under ``out_dir/queries/`` with ``edited_queries.csv`` and
    ``edited_relevant.csv`` (the localisation ground truth); returns the path of the latter.

    The source ranges are ``query_s`` seconds of labelled segments (never a distractor) of the long videos
    under ``out_dir``; a ``padded`` copy's filler comes from another video. Deterministic from ``seed``.
    """
    from ..video.decode import open_video

    per_edit = check_scalar(per_edit, "per_edit", int, min_value=1)
    query_s = check_scalar(query_s, "query_s", float, min_value=0, include_min=False)
    edits = tuple(check_choice(e, "edit", EDITS) for e in edits)
    out_dir = Path(out_dir)
    truth_path = out_dir / "ground_truth.csv"
    if not truth_path.is_file():
        raise ParameterError(f"{truth_path} does not exist: run generate_long_videos({str(out_dir)!r}) first")
    truth = pd.read_csv(truth_path)
    eligible = truth[(truth["label"] != DISTRACTOR_LABEL) & (truth["end_s"] - truth["start_s"] >= query_s)]
    if eligible.empty or truth["video"].nunique() < 2:
        raise ParameterError(f"{truth_path}: edited copies need labelled segments of at least {query_s:g} s in at "
                             "least two videos; generate more or longer videos, or a shorter query_s")
    rng = np.random.default_rng([seed, 5])
    queries, relevant = [], []
    for edit in edits:
        for index in range(per_edit):
            row = eligible.iloc[int(rng.integers(len(eligible)))]
            video = open_video(out_dir / row["video"])
            stamps, fps = video.timestamps(), video.info().fps
            n_frames = max(2, int(round(query_s * fps)))
            starts = range_starts(stamps, fps, row["start_s"], row["end_s"], n_frames)
            first_frame = int(starts[int(rng.integers(len(starts)))])
            frames = video.read(np.arange(first_frame, first_frame + n_frames))
            filler = None
            if edit == "padded":
                other = str(rng.choice(sorted(set(truth["video"]) - {row["video"]})))
                other_video = open_video(out_dir / other)
                begin = int(rng.integers(max(1, len(other_video.timestamps()) - 3 * int(PAD_S * fps))))
                filler = other_video.read(np.arange(begin, begin + 2 * int(round(PAD_S * fps))))
                if filler.shape[1:] != frames.shape[1:]:
                    raise ParameterError(f"{other} and {row['video']} differ in frame size; padded copies need one")
            edited, (src0, src1), (q0, q1) = edit_copy(frames, edit, filler, fps)
            query_id = f"edit_{edit}_{index:02d}"
            name = f"queries/{query_id}.mp4"
            write_video(out_dir / name, edited, fps, crf=30 if edit == "rescale" else crf)
            ref0 = float(stamps[first_frame + src0])
            ref1 = float(stamps[first_frame + src1 - 1]) + 1.0 / fps
            queries.append({"query_id": query_id, "path": name, "kind": "copy", "label": row["label"],
                            "video": row["video"], "start_s": ref0, "end_s": ref1, "edit": edit})
            relevant.append({"query_id": query_id, "video": row["video"], "start_s": ref0, "end_s": ref1,
                             "query_start_s": q0 / fps, "query_end_s": q1 / fps})
    write_csv(out_dir / "edited_queries.csv", EDITED_QUERY_COLUMNS, queries)
    return write_csv(out_dir / "edited_relevant.csv", RELEVANT_COLUMNS, relevant)


__all__ = ["EDITS", "PAD_S", "PARTIAL", "edit_copy", "write_edited_copies"]
