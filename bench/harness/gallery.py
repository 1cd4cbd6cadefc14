"""The long-video gallery of bench_localize and bench_query_cuts, built the way a user builds one (cached).

``generate-sample --long`` videos (labelled motion segments, hard cuts, continuous transitions, distractors),
copy and same-motion query lists (and the VSC22-style edited copies, :func:`motionmatch.data.write_edited_copies`;
query lists of other lengths, :func:`length_lists`), dense-window embeddings with the CLI's defaults (FlowEncoder) and a Milvus
Lite collection indexed by :func:`motionmatch.index.index_run` (which also stores the gallery calibration).
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

from .run import OUT_DIR

LONG_QUICK = {"n_videos": 4, "duration_s": 30.0, "n_queries": 8}
LONG_FULL = {"n_videos": 8, "duration_s": 60.0, "n_queries": 30}
QUERY_S = 4.0  # length of every query range (the edited copies' source ranges too)


def gallery_root(size: dict, seed: int, shots: str) -> Path:
    """``bench/out/localize_<n>x<duration>s_seed<seed>_<shots>``: one cached gallery per setting."""
    return OUT_DIR / f"localize_{size['n_videos']}x{size['duration_s']:g}s_seed{seed}_{shots}"


def copies_per_edit(n_queries: int, minimum: int = 2) -> int:
    """Edited copies per edit for a run of ``n_queries`` copy queries: about ``n_queries / len(EDITS)``."""
    from motionmatch.data import EDITS

    return max(minimum, math.ceil(n_queries / len(EDITS)))


def build_gallery(root: Path, seed: int, n_videos: int, duration_s: float, n_queries: int, shots: str,
                  per_edit: int | None = None) -> dict:
    """Videos, dense-window embeddings and the query lists under ``root`` (what exists is reused): ``n_queries``
    re-encoded copies and same-motion ranges, and ``per_edit`` edited copies per edit (default
    :func:`copies_per_edit`)."""
    import pandas as pd

    from motionmatch.data import (EDITS, generate_long_videos, load_source, write_copy_queries, write_edited_copies,
                                  write_same_motion_queries)
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
    per_edit = copies_per_edit(n_queries) if per_edit is None else per_edit
    edited = videos / "edited_queries.csv"
    if not edited.is_file() or len(pd.read_csv(edited)) != per_edit * len(EDITS):
        write_edited_copies(videos, per_edit=per_edit, query_s=QUERY_S, seed=seed)
    timings["queries_s"] = time.perf_counter() - began
    began = time.perf_counter()
    manifest, _ = load_source(videos)
    manifest = manifest[~manifest["path"].astype(str).str.contains("/queries")].reset_index(drop=True)
    extract_embeddings(manifest, build_encoder("flow"), embeddings, clip_spec=dense_clip_spec(), progress=False,
                       workers=0, window_spec=WindowSpec(stride_s=DEFAULT_STRIDE_S, shots=shots),
                       print_fn=lambda *_: None)
    timings["extract_s"] = time.perf_counter() - began
    return {"root": root, "videos": videos, "embeddings": embeddings, "timings": timings, "stride_s": DEFAULT_STRIDE_S,
            "per_edit": per_edit}


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


def edited_lists(gallery: dict):
    """``(queries, relevant)`` of the edited copies (``edited_queries.csv``, with an ``edit`` column)."""
    from motionmatch.data import read_query_list

    videos = gallery["videos"]
    return read_query_list(videos / "edited_relevant.csv", videos / "edited_queries.csv")


def same_motion_lists(gallery: dict):
    """``(queries, relevant)`` of the same-motion ranges alone (``same_motion_queries.csv``)."""
    from motionmatch.data import read_query_list

    videos = gallery["videos"]
    return read_query_list(videos / "same_motion_relevant.csv", videos / "same_motion_queries.csv")


def length_lists(gallery: dict, lengths_s, n_queries: int, seed: int) -> dict:
    """Re-encoded copies and same-motion ranges of each length in ``lengths_s``, ``n_queries`` of each:
    ``{(kind, length_s): (queries, relevant)}``, or a sentence saying why a length cannot be made on this
    gallery (no labelled segment that long). Each length's lists live in ``root/lengths/<length>s/``, beside
    links to the gallery's videos (the writers name their files the same at every length)."""
    import pandas as pd

    from motionmatch.data import read_query_list, write_copy_queries, write_same_motion_queries
    from motionmatch.errors import ParameterError

    out = {}
    for length in lengths_s:
        folder = gallery["root"] / "lengths" / f"{length:g}s"
        folder.mkdir(parents=True, exist_ok=True)
        truth = pd.read_csv(gallery["videos"] / "ground_truth.csv")
        for name in ("ground_truth.csv", "cuts.csv", *sorted(set(truth["video"]))):  # never the main query lists
            link = folder / name
            if (gallery["videos"] / name).is_file() and not link.exists():
                os.symlink((gallery["videos"] / name).resolve(), link)
        for kind, writer, names in (("copy", write_copy_queries, ("relevant.csv", "queries.csv")),
                                    ("same_motion", write_same_motion_queries,
                                     ("same_motion_relevant.csv", "same_motion_queries.csv"))):
            try:
                if not (folder / names[0]).is_file():
                    writer(folder, n_queries=n_queries, query_s=float(length), seed=seed)
                out[(kind, length)] = read_query_list(folder / names[0], folder / names[1])
            except ParameterError as error:
                out[(kind, length)] = f"no {length:g} s {kind} queries on this gallery: {error}"
    return out


__all__ = ["LONG_QUICK", "LONG_FULL", "QUERY_S", "gallery_root", "copies_per_edit", "build_gallery", "open_store",
           "query_lists", "edited_lists", "same_motion_lists", "length_lists"]
