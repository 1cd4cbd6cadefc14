"""The generated samples, made once and reused: the short labelled clips and the long untrimmed videos.

* :func:`ensure_sample`: the synthetic short-clip set (:mod:`motionmatch.data.synthetic`) and its manifest;
* :func:`ensure_long_sample`: long videos with ``ground_truth.csv``, ``cuts.csv``, copy queries and a
  ``manifest.csv`` of the long videos only (the copy queries under ``queries/`` are not part of the gallery).

Both say what they found, and generate again only when what is there does not match what was asked.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..validation import check_scalar

LONG_LABEL = "untrimmed"  # the manifest label of a whole long video (its motions are in ground_truth.csv)


def ensure_sample(out_dir: str | os.PathLike, seed: int = 0, videos_per_class: int = 32, groups_per_class: int = 16,
                  print_fn: Callable[[str], Any] = print) -> Path:
    """The synthetic short-clip sample under ``out_dir``, generated unless one of the asked size is there;
    returns its manifest.csv (``motionmatch generate-sample``, notebook 01 and ``make demo`` all call this)."""
    from .synthetic import DOMAINS, MOTION_CLASSES, generate_sample_dataset

    videos_per_class = check_scalar(videos_per_class, "videos_per_class", int, min_value=1)
    groups_per_class = check_scalar(groups_per_class, "groups_per_class", int, min_value=1)
    manifest = Path(out_dir) / "manifest.csv"
    expected = len(MOTION_CLASSES) * len(DOMAINS) * videos_per_class
    if manifest.exists():
        present = len(pd.read_csv(manifest))
        if present == expected and all((manifest.parent / p).is_file() for p in pd.read_csv(manifest)["path"]):
            print_fn(f"sample set already present: {manifest} ({present} videos)")
            return manifest
        print_fn(f"{manifest} lists {present} videos where {expected} were asked for (or some are missing): "
                 "generating the sample set again")
    path = generate_sample_dataset(out_dir, seed=seed, videos_per_class_per_domain=videos_per_class,
                                   groups_per_class_per_domain=groups_per_class)
    print_fn(f"wrote {path}")
    return path


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
    from .long_synthetic import generate_long_videos
    from .queries import write_copy_queries

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


__all__ = ["LONG_LABEL", "ensure_sample", "ensure_long_sample", "write_long_manifest"]
