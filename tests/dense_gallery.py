"""The dense gallery shared by test_edits, test_fine, test_frames and test_query (built once per session).

3 generated long videos (30 s, 128x96, 24 fps, segments of 4-10 s between cuts), extracted as dense windows
(FlowEncoder, 16 frames every 4th, one every 1 s, never across a content cut: what ``motionmatch extract
--stride-s 1`` makes) and indexed by :func:`motionmatch.index.index_run` into a Milvus Lite file, with its frame
store; one edited copy of 4 s per edit (:data:`motionmatch.data.edits.EDITS`) and 3 same-motion queries.
Import the fixtures ``gallery`` and ``store`` from here.
"""
from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import pytest

from motionmatch.data.edits import write_edited_copies
from motionmatch.index import MotionStore

COLLECTION = "dense"
QUERY_S = 4.0  # seconds of source each edited copy is cut from


@functools.lru_cache(maxsize=1)
def dense_gallery(root: str) -> dict:
    """The videos, the extraction run, its Milvus Lite index (with frame store) and the queries, under ``root``."""
    from motionmatch.data import (generate_long_videos, load_source, read_query_list, write_long_manifest,
                                  write_same_motion_queries)
    from motionmatch.encoders import build_encoder
    from motionmatch.extract import extract_embeddings, load_run
    from motionmatch.index import index_run
    from motionmatch.video import WindowSpec, dense_clip_spec

    root_path = Path(root)
    videos = root_path / "videos"
    generate_long_videos(videos, n_videos=3, duration_s=30.0, seed=0, size=(128, 96), min_segment_s=4.0,
                         max_segment_s=10.0, progress=False)
    write_long_manifest(videos)
    write_edited_copies(videos, per_edit=1, query_s=QUERY_S, seed=0)
    write_same_motion_queries(videos, n_queries=3, query_s=QUERY_S, seed=0)
    manifest, _ = load_source(videos / "manifest.csv")
    extract_embeddings(manifest, build_encoder("flow"), root_path / "embeddings", clip_spec=dense_clip_spec(),
                       window_spec=WindowSpec(stride_s=1.0, shots="content"), progress=False, workers=0,
                       print_fn=lambda *_: None)
    run = load_run(root_path / "embeddings")
    uri = str(root_path / "index.db")
    with MotionStore(uri, COLLECTION) as store:
        index_run(run, store, print_fn=lambda *_: None)
    copies, copy_truth = read_query_list(videos / "edited_relevant.csv", videos / "edited_queries.csv")
    same, same_truth = read_query_list(videos / "same_motion_relevant.csv", videos / "same_motion_queries.csv")
    return {"root": root_path, "videos": videos, "run": run, "uri": uri, "collection": COLLECTION,
            "copies": copies, "copy_truth": copy_truth, "same": same, "same_truth": same_truth,
            "ground_truth": pd.read_csv(videos / "ground_truth.csv")}


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    return dense_gallery(str(tmp_path_factory.getbasetemp() / "dense_gallery"))


@pytest.fixture(scope="module")
def store(gallery):
    with MotionStore(gallery["uri"], gallery["collection"]) as opened:
        yield opened


def copy_of(gallery: dict, edit: str) -> tuple[pd.Series, pd.Series]:
    """The edited copy of ``edit`` and its relevant moment (the source range)."""
    query = gallery["copies"][gallery["copies"]["edit"] == edit].iloc[0]
    truth = gallery["copy_truth"][gallery["copy_truth"]["query_id"] == query.query_id].iloc[0]
    return query, truth
