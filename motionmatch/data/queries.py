"""Query sets for localisation: what to search and which moments are relevant, written and read in one place.

* :func:`write_copy_queries`: copies of labelled ranges of the long sample, re-encoded (``queries.csv`` and
  ``relevant.csv``);
* :func:`write_same_motion_queries`: ranges of one video whose motion other videos show (same label, other
  groups), joined with the copies into ``all_queries.csv`` / ``all_relevant.csv``;
* :func:`read_query_list`: a query list and its relevant moments, checked, with absolute paths
  (``motionmatch evaluate --segments``, notebook 07, the benches);
* :func:`pick_query`: one query range for a notebook when the user gave none.

A relevant moment is a row of :data:`~motionmatch.metrics.localization.RELEVANT_COLUMNS`: ``query_id, video,
start_s, end_s, query_start_s, query_end_s`` (the reference range and the query range it matches).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..metrics.localization import RELEVANT_COLUMNS
from ..table import require_columns
from ..validation import check_scalar
from ..video.write import write_video
from .long_synthetic import DISTRACTOR_LABEL, QUERY_COLUMNS, range_starts, write_csv


def _read_in_chunks(video, indices: np.ndarray, chunk: int = 48) -> Iterator[np.ndarray]:
    """Frames at ``indices`` decoded ``chunk`` at a time (memory stays flat for long ranges)."""
    for start in range(0, len(indices), chunk):
        yield from video.read(indices[start:start + chunk])


def write_copy_queries(out_dir: str | os.PathLike, n_queries: int = 20, query_s: float = 4.0, seed: int = 0,
                       crf: int = 30) -> Path:
    """Cut copy queries from the long videos under ``out_dir`` (as written by :func:`generate_long_videos`).

    Each query is ``query_s`` seconds of one labelled segment (never a distractor), re-encoded at
    ``crf`` (the originals use 18), written to ``out_dir/queries/copy_<k>.mp4``. Writes
    ``queries.csv`` (:data:`QUERY_COLUMNS`) and ``relevant.csv`` (the localisation table:
    :data:`motionmatch.metrics.localization.RELEVANT_COLUMNS`, one row per query: the source range, taken
    from the source file's real timestamps). Returns the path of ``relevant.csv``.
    """
    from ..video.decode import open_video

    n_queries = check_scalar(n_queries, "n_queries", int, min_value=1)
    query_s = check_scalar(query_s, "query_s", float, min_value=0, include_min=False)
    seed = check_scalar(seed, "seed", int, min_value=0)
    crf = check_scalar(crf, "crf", int, min_value=0, max_value=51)
    out_dir = Path(out_dir)
    truth_path = out_dir / "ground_truth.csv"
    if not truth_path.is_file():
        raise ParameterError(f"{truth_path} does not exist: run generate_long_videos({str(out_dir)!r}) first")
    truth = pd.read_csv(truth_path)
    eligible = truth[(truth["label"] != DISTRACTOR_LABEL) & (truth["end_s"] - truth["start_s"] >= query_s)]
    if eligible.empty:
        raise ParameterError(f"{truth_path} has no labelled segment of at least query_s={query_s:g} s; "
                             "use a shorter query_s")
    rng = np.random.default_rng([seed, 2])
    queries, relevant = [], []
    for index in range(n_queries):
        row = eligible.iloc[int(rng.integers(len(eligible)))]
        video = open_video(out_dir / row["video"])
        stamps, fps = video.timestamps(), video.info().fps
        n_frames = max(1, int(round(query_s * fps)))
        starts = range_starts(stamps, fps, row["start_s"], row["end_s"], n_frames)
        first_frame = int(starts[int(rng.integers(len(starts)))])
        frames = np.arange(first_frame, min(first_frame + n_frames, len(stamps)))
        name = f"queries/copy_{index:03d}.mp4"
        write_video(out_dir / name, _read_in_chunks(video, frames), fps, crf=crf)
        first, last = float(stamps[frames[0]]), float(stamps[frames[-1]]) + 1.0 / fps
        query_id = f"copy_{index:03d}"
        queries.append({"query_id": query_id, "path": name, "kind": "copy", "label": row["label"],
                        "video": row["video"], "start_s": first, "end_s": last})
        relevant.append({"query_id": query_id, "video": row["video"], "start_s": first, "end_s": last,
                         "query_start_s": 0.0, "query_end_s": len(frames) / fps})
    write_csv(out_dir / "queries.csv", QUERY_COLUMNS, queries)
    return write_csv(out_dir / "relevant.csv", RELEVANT_COLUMNS, relevant)


def write_same_motion_queries(out_dir: str | os.PathLike, n_queries: int = 20, query_s: float = 4.0,
                              seed: int = 0) -> Path:
    """"Same motion" queries for the long videos under ``out_dir`` (:func:`~motionmatch.data.long_synthetic.generate_long_videos`).

    Each query is a ``query_s`` range of one labelled segment (the indexed long video itself, searched by
    range, so its own file is left out by default); its relevant moments are the segments with the same
    label in *other* groups of *other* videos (a look the query never shows). Writes
    ``same_motion_queries.csv`` and ``same_motion_relevant.csv`` and, joined with the copy queries of
    ``queries.csv`` / ``relevant.csv`` when present, ``all_queries.csv`` / ``all_relevant.csv``; returns the
    path of ``all_relevant.csv`` (``motionmatch evaluate --segments DIR/all_relevant.csv --queries DIR/all_queries.csv``).
    """
    n_queries = check_scalar(n_queries, "n_queries", int, min_value=1)
    query_s = check_scalar(query_s, "query_s", float, min_value=0, include_min=False)
    out_dir = Path(out_dir)
    truth_path = out_dir / "ground_truth.csv"
    if not truth_path.is_file():
        raise ParameterError(f"{truth_path} does not exist: run generate_long_videos({str(out_dir)!r}) first")
    truth = pd.read_csv(truth_path)
    labelled = truth[truth["label"] != DISTRACTOR_LABEL]
    eligible = [row for row in labelled[labelled["end_s"] - labelled["start_s"] >= query_s].itertuples()
                if ((labelled["label"] == row.label) & (labelled["video"] != row.video)).any()]
    if not eligible:
        raise ParameterError(f"{truth_path}: no labelled segment of at least {query_s:g} s whose label occurs in "
                             "another video; generate more or longer videos, or a shorter query_s")
    rng = np.random.default_rng([seed, 3])
    queries, relevant = [], []
    for index in range(n_queries):
        row = eligible[int(rng.integers(len(eligible)))]
        start = float(row.start_s + rng.uniform(0, row.end_s - row.start_s - query_s))
        query_id = f"same_{index:03d}"
        queries.append({"query_id": query_id, "path": row.video, "kind": "same_motion", "label": row.label,
                        "video": row.video, "start_s": start, "end_s": start + query_s,
                        "query_start_s": start, "query_end_s": start + query_s})
        targets = labelled[(labelled["label"] == row.label) & (labelled["video"] != row.video)]
        relevant.extend({"query_id": query_id, "video": t.video, "start_s": t.start_s, "end_s": t.end_s,
                         "query_start_s": start, "query_end_s": start + query_s} for t in targets.itertuples())
    queries_frame, relevant_frame = pd.DataFrame(queries), pd.DataFrame(relevant)
    queries_frame.to_csv(out_dir / "same_motion_queries.csv", index=False)
    relevant_frame.to_csv(out_dir / "same_motion_relevant.csv", index=False)
    if (out_dir / "queries.csv").is_file() and (out_dir / "relevant.csv").is_file():
        queries_frame = pd.concat([pd.read_csv(out_dir / "queries.csv"), queries_frame], ignore_index=True)
        relevant_frame = pd.concat([pd.read_csv(out_dir / "relevant.csv"), relevant_frame], ignore_index=True)
    queries_frame.to_csv(out_dir / "all_queries.csv", index=False)
    relevant_frame.to_csv(out_dir / "all_relevant.csv", index=False)
    return out_dir / "all_relevant.csv"


def read_query_list(relevant_path: str | os.PathLike, queries_path: str | os.PathLike | None = None
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(queries, relevant)`` with absolute paths: ``relevant_path`` is a localisation ground truth
    (:data:`~motionmatch.metrics.localization.RELEVANT_COLUMNS`, e.g. ``relevant.csv`` from
    :func:`~motionmatch.data.long_synthetic.write_copy_queries`); ``queries_path`` (default ``queries.csv``
    beside it) lists ``query_id, path`` and optionally ``kind`` (default "copy") and the range to search,
    ``query_start_s, query_end_s`` (default: the whole file). Relative paths are relative to each CSV's folder.
    """
    relevant_path = Path(relevant_path)
    queries_path = Path(queries_path) if queries_path else relevant_path.parent / "queries.csv"
    for path, what in ((relevant_path, "--segments (the relevant moments)"), (queries_path, "--queries")):
        if not path.is_file():
            raise ParameterError(f"{path} does not exist: {what} must be a CSV; write one with "
                                 "motionmatch.data.long_synthetic.write_copy_queries or give its path")
    relevant, queries = pd.read_csv(relevant_path), pd.read_csv(queries_path)
    require_columns(relevant, RELEVANT_COLUMNS, f"{relevant_path}")
    require_columns(queries, ("query_id", "path"), f"{queries_path}")
    unknown = sorted(set(relevant["query_id"]) - set(queries["query_id"]))
    if unknown:
        raise ParameterError(f"{relevant_path} names queries {unknown[:5]} that {queries_path} does not list")
    queries = queries.copy()
    queries["path"] = [str((queries_path.parent / p).resolve()) for p in queries["path"].astype(str)]
    queries["kind"] = queries["kind"].fillna("copy").astype(str) if "kind" in queries else "copy"
    for column in ("query_start_s", "query_end_s"):
        queries[column] = queries[column].astype(float) if column in queries else np.nan
    missing = [p for p in queries["path"] if not Path(p).is_file()]
    if missing:
        raise ParameterError(f"{len(missing)} query file(s) listed in {queries_path} do not exist, e.g. {missing[0]}")
    relevant = relevant.copy()
    relevant["video"] = [str((relevant_path.parent / v).resolve()) for v in relevant["video"].astype(str)]
    return queries, relevant


def pick_query(ground_truth: pd.DataFrame, video: str = "", start_s: float = -1.0, end_s: float = -1.0,
               max_s: float = 8.0, seed: int = 0) -> dict:
    """The query range: the one given, or a labelled segment (<= ``max_s`` of it) whose label another video has.

    ``ground_truth`` has ``video, start_s, end_s, label``. Returns ``{"video", "start_s", "end_s",
    "label"}`` (label "" when the range was given and matches no segment).
    """
    if video and start_s >= 0 and end_s >= 0:
        rows = ground_truth[(ground_truth["video"] == Path(video).name) & (ground_truth["start_s"] <= start_s)
                            & (ground_truth["end_s"] >= end_s)]
        return {"video": video, "start_s": float(start_s), "end_s": float(end_s),
                "label": str(rows["label"].iloc[0]) if len(rows) else ""}
    if (start_s >= 0) != (end_s >= 0):
        raise ParameterError("give both query_start_s and query_end_s, or neither (-1: chosen from the ground truth)")
    max_s = check_scalar(max_s, "max_s", float, min_value=0, include_min=False)
    truth = ground_truth[ground_truth["label"] != "distractor"]
    videos_per_label = truth.groupby("label")["video"].nunique()
    shared = truth[truth["label"].map(videos_per_label) > 1]
    if video:
        shared = shared[shared["video"] == Path(video).name]
    if shared.empty:
        raise ParameterError("no labelled segment whose motion also appears in another video: "
                             "give query_video, query_start_s and query_end_s")
    long_enough = shared[shared["end_s"] - shared["start_s"] >= 4.0]
    pool = long_enough if len(long_enough) else shared
    row = pool.iloc[int(np.random.default_rng(seed).integers(len(pool)))]
    length = min(max_s, float(row.end_s - row.start_s))
    middle = (float(row.start_s) + float(row.end_s)) / 2
    return {"video": str(row.video), "start_s": round(middle - length / 2, 2), "end_s": round(middle + length / 2, 2),
            "label": str(row.label)}


__all__ = ["write_copy_queries", "write_same_motion_queries", "read_query_list", "pick_query"]
