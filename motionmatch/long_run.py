"""Find a motion in long videos, step by step: what notebook 07 (and ``generate-sample --long``) call.

* :func:`ensure_long_sample` writes the synthetic long videos, their ``ground_truth.csv``,
  ``cuts.csv``, ``manifest.csv`` (the long videos only: the copy queries under ``queries/`` are not
  part of the gallery) and copy queries, unless a matching set is already there.
* :func:`dense_clip_spec` is the window every dense extraction uses (the CLI's ``extract
  --stride-s`` too): ``DEFAULT_WINDOW_FRAMES`` frames every ``DEFAULT_WINDOW_FRAME_STRIDE``.
* :func:`index_clip_spec` is what a collection records about how its windows were cut, so a
  query range is cut the same way.
* :func:`pick_query` chooses a query range when the user gave none: a labelled ground-truth
  segment whose label also appears in another video, so there is something to find.
* :func:`video_scores` is one video's per-window similarity to the query (the best cosine over
  the query's windows), the curve of a timeline; :func:`found_table` is the segments as a table.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .clips import DEFAULT_WINDOW_FRAME_STRIDE, DEFAULT_WINDOW_FRAMES, ClipSpec
from .errors import ParameterError
from .table import embedding_matrix, l2_normalize
from .validation import check_scalar

LONG_LABEL = "untrimmed"  # the manifest label of a whole long video (its motions are in ground_truth.csv)


def _matches(out: Path, n_videos: int, duration_s: float, copy_queries: int) -> bool:
    truth = out / "ground_truth.csv"
    if not truth.is_file() or not (out / "manifest.csv").is_file():
        return False
    present = pd.read_csv(truth)
    videos = sorted(set(present["video"]))
    ends = present.groupby("video")["end_s"].max()
    return (len(videos) == n_videos and all((out / v).is_file() for v in videos)
            and abs(float(ends.min()) - duration_s) < 1.0 and abs(float(ends.max()) - duration_s) < 1.0
            and (copy_queries == 0 or (out / "relevant.csv").exists()))


def write_long_manifest(out_dir: str | os.PathLike) -> Path:
    """``manifest.csv`` of the long videos named in ``ground_truth.csv`` (what ``extract`` should index)."""
    out = Path(out_dir)
    truth = pd.read_csv(out / "ground_truth.csv")
    videos = sorted(set(truth["video"]))
    manifest = pd.DataFrame({"path": videos, "label": LONG_LABEL, "domain": "long",
                             "group": [Path(v).stem for v in videos], "split": ""})
    path = out / "manifest.csv"
    manifest.to_csv(path, index=False)
    return path


def ensure_long_sample(out_dir: str | os.PathLike, n_videos: int = 4, duration_s: float = 180.0, seed: int = 0,
                       copy_queries: int = 20, query_s: float = 4.0, size: tuple[int, int] = (160, 120),
                       progress: bool = True, print_fn: Callable[[str], Any] = print) -> Path:
    """The long sample under ``out_dir``, generated unless a matching one is there; returns its manifest.csv."""
    from .long_synthetic import generate_long_videos, write_copy_queries

    n_videos = check_scalar(n_videos, "n_videos", int, min_value=1)
    duration_s = check_scalar(duration_s, "duration_s", float, min_value=0, include_min=False)
    copy_queries = check_scalar(copy_queries, "copy_queries", int, min_value=0)
    out = Path(out_dir)
    if _matches(out, n_videos, duration_s, copy_queries):
        print_fn(f"long videos already present: {out / 'ground_truth.csv'} ({n_videos} videos of {duration_s:g} s)")
        return out / "manifest.csv"
    if (out / "ground_truth.csv").exists():
        print_fn(f"{out / 'ground_truth.csv'} does not match {n_videos} videos of {duration_s:g} s: generating again")
    truth = generate_long_videos(out, n_videos=n_videos, duration_s=duration_s, seed=seed, size=size,
                                 progress=progress)
    print_fn(f"wrote {n_videos} long videos and {truth}")
    if copy_queries:
        relevant = write_copy_queries(out, n_queries=copy_queries, query_s=query_s, seed=seed)
        print_fn(f"wrote {copy_queries} copy queries and {relevant}")
    return write_long_manifest(out)


def dense_clip_spec(frames_per_clip: int = 0, frame_stride: int = 0) -> ClipSpec:
    """The clip of one dense window: the measured default (16 frames every 4th) unless given (0 = default)."""
    return ClipSpec(frames_per_clip=frames_per_clip or DEFAULT_WINDOW_FRAMES,
                    frame_stride=frame_stride or DEFAULT_WINDOW_FRAME_STRIDE)


def index_clip_spec(meta: dict) -> dict:
    """What a collection records about its windows, from an extraction's meta: the clip, and the dense windows."""
    return {**meta["clip_spec"], **({"windows": meta["windows"]} if "windows" in meta else {})}


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


class MemoEncoder:
    """An encoder that remembers the vectors of clips it has seen (by the bytes of their frames).

    For running the same queries twice (e.g. with and without calibration): the second pass decodes
    again but does not embed again. Everything but ``encode`` is the wrapped encoder's.
    """

    def __init__(self, encoder):
        self.inner, self.cache, self.hits = encoder, {}, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode(self, clips, batch_size: int = 8) -> np.ndarray:
        import hashlib

        keys = [hashlib.blake2b(np.ascontiguousarray(c).tobytes(), digest_size=16).digest() for c in clips]
        todo = [i for i, key in enumerate(keys) if key not in self.cache]
        if todo:
            vectors = self.inner.encode([clips[i] for i in todo], batch_size=batch_size)
            self.cache.update({keys[i]: vectors[j] for j, i in enumerate(todo)})
        self.hits += len(keys) - len(todo)
        return np.stack([self.cache[key] for key in keys]) if keys else np.zeros((0, self.inner.dim), np.float32)


def video_scores(table: pd.DataFrame, video_path: str, query_vectors: np.ndarray) -> pd.DataFrame:
    """Each window of ``video_path`` with its best cosine over the query's windows, in time order."""
    windows = table[table["video_path"] == video_path].sort_values("start_s")
    if windows.empty:
        raise ParameterError(f"{video_path} has no windows in this table: was it extracted with the gallery?")
    cosine = l2_normalize(embedding_matrix(windows)) @ l2_normalize(np.asarray(query_vectors, dtype=np.float32)).T
    return pd.DataFrame({"start_s": windows["start_s"].to_numpy(float), "end_s": windows["end_s"].to_numpy(float),
                         "score": cosine.max(axis=1)})


def found_table(result, root: str | os.PathLike | None = None, ground_truth: pd.DataFrame | None = None) -> pd.DataFrame:
    """The segments of a :class:`~motionmatch.localize.SearchResult` as a table, best first.

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
            overlap = (np.minimum(spans["end_s"], s.end_s) - np.maximum(spans["start_s"], s.start_s)).clip(lower=0)
            union = np.maximum(spans["end_s"], s.end_s) - np.minimum(spans["start_s"], s.start_s)
            tiou = overlap / union
            best = int(np.argmax(tiou.to_numpy())) if len(spans) else -1
            row["truth_label"] = str(spans["label"].iloc[best]) if best >= 0 and tiou.iloc[best] > 0 else ""
            row["tIoU"] = round(float(tiou.iloc[best]), 3) if best >= 0 else 0.0
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["LONG_LABEL", "write_long_manifest", "ensure_long_sample", "dense_clip_spec", "index_clip_spec",
           "pick_query", "MemoEncoder", "video_scores", "found_table"]
