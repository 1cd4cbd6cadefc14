"""The long-video gallery of bench_localize and bench_query_cuts, built the way a user builds one (cached).

``generate-sample --long`` videos (labelled motion segments, hard cuts, continuous transitions, distractors),
copy and same-motion query lists, dense-window embeddings with the CLI's defaults (FlowEncoder) and a Milvus
Lite collection indexed by :func:`motionmatch.index.index_run` (which also stores the gallery calibration).
"""
from __future__ import annotations

import time
from pathlib import Path

from .run import OUT_DIR

LONG_QUICK = {"n_videos": 4, "duration_s": 30.0, "n_queries": 8}
LONG_FULL = {"n_videos": 8, "duration_s": 60.0, "n_queries": 30}
QUERY_S = 4.0  # length of every query range


def gallery_root(size: dict, seed: int, shots: str) -> Path:
    """``bench/out/localize_<n>x<duration>s_seed<seed>_<shots>``: one cached gallery per setting."""
    return OUT_DIR / f"localize_{size['n_videos']}x{size['duration_s']:g}s_seed{seed}_{shots}"


def build_gallery(root: Path, seed: int, n_videos: int, duration_s: float, n_queries: int, shots: str) -> dict:
    """Videos, dense-window embeddings and both query lists under ``root`` (what exists is reused)."""
    from motionmatch.data import generate_long_videos, load_source, write_copy_queries, write_same_motion_queries
    from motionmatch.encoders import build_encoder
    from motionmatch.extract import extract_embeddings
    from motionmatch.video import DEFAULT_STRIDE_S, WindowSpec, dense_clip_spec

    videos, embeddings = root / "videos", root / "embeddings"
    timings = {}
    began = time.perf_counter()
    if not (videos / "ground_truth.csv").is_file():
        generate_long_videos(videos, n_videos=n_videos, duration_s=duration_s, seed=seed, progress=False)
    timings["generate_s"] = time.perf_counter() - began
    began = time.perf_counter()
    if not (videos / "all_relevant.csv").is_file():
        write_copy_queries(videos, n_queries=n_queries, query_s=QUERY_S, seed=seed)
        write_same_motion_queries(videos, n_queries=n_queries, query_s=QUERY_S, seed=seed)
    timings["queries_s"] = time.perf_counter() - began
    began = time.perf_counter()
    manifest, _ = load_source(videos)
    manifest = manifest[~manifest["path"].astype(str).str.contains("/queries")].reset_index(drop=True)
    extract_embeddings(manifest, build_encoder("flow"), embeddings, clip_spec=dense_clip_spec(), progress=False,
                       workers=0, window_spec=WindowSpec(stride_s=DEFAULT_STRIDE_S, shots=shots),
                       print_fn=lambda *_: None)
    timings["extract_s"] = time.perf_counter() - began
    return {"root": root, "videos": videos, "embeddings": embeddings, "timings": timings, "stride_s": DEFAULT_STRIDE_S}


def open_store(gallery: dict):
    """The gallery indexed into ``root/index.db`` as `motionmatch index` does (idempotent); the open store."""
    from motionmatch.extract import load_run
    from motionmatch.index import MotionStore, index_run

    store = MotionStore(str(gallery["root"] / "index.db"), "long")
    began = time.perf_counter()
    index_run(load_run(gallery["embeddings"]), store, print_fn=lambda *_: None)
    gallery["timings"]["index_s"] = time.perf_counter() - began
    return store


def query_lists(gallery: dict):
    """``(queries, relevant)`` of both query kinds (``all_queries.csv``, ``all_relevant.csv``)."""
    from motionmatch.data import read_query_list

    videos = gallery["videos"]
    return read_query_list(videos / "all_relevant.csv", videos / "all_queries.csv")


__all__ = ["LONG_QUICK", "LONG_FULL", "QUERY_S", "gallery_root", "build_gallery", "open_store", "query_lists"]
