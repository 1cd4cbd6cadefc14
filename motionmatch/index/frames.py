"""The frame store: every frame of the indexed footage as a 24 x 24 grey thumbnail, for the fine stage of a segment search.

A collection of dense windows (``motionmatch extract --stride-s``) gets a companion collection
``<collection>__frames`` with one row per window: the window's :class:`~motionmatch.video.clips.FrameBlock` (the
frames from its first frame to the next window's first, so the rows tile each video once) as base64 text
fields ``frame_times`` and ``frame_thumbs``, and as its vector the appearance of the block's first frame
(:func:`motionmatch.video.fingerprint.search_vectors`: its appearance at 16 x 16, 256-d), so the store answers
two questions:

* **where could this query be a copy?** a top-k search of the query's frames' appearance (and of their
  mirror images), voted per video and time offset: copies found whatever their motion looks like
  (:func:`motionmatch.search.fine.copy_candidates`);
* **what are the frames of this range?** the blocks of a video between two times, decoded back into times and
  thumbnails (:func:`fetch_frames`), with no video file opened at search time.

It is written by :func:`motionmatch.index.index_run` with the same fingerprint-aware sync as the windows (so an
unchanged video is not rewritten) and is optional: a collection without it is searched without the fine stage,
with a note. **Cost per video-hour** at 24 fps (``python -m bench.bench_long_cost``, real decoded 160 x 120
frames, 2 shared cores): the packed thumbnails take 13.7 MB (159 bytes a frame), the Milvus Lite file grows by
33.4 MB (base64 text, the 256-d block vectors and their index); making the thumbnails costs 4.7 s inside the
extraction's decoding thread (230 s at 1280 x 720, where the area resize dominates) and writing the store about
5 s (marginal; 0.5 s fixed per call). At search time the fine stage reads it (``python -m
bench.bench_segment_search`` times that).
"""
from __future__ import annotations

import base64
import zlib
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..errors import ParameterError, StoreError
from ..table import FRAME_COLUMNS
from ..video.fingerprint import THUMB, FrameSignal, search_vectors, unpack
from .schema import FRAMES_SUFFIX

FRAME_ENCODER_ID = "frames:thumb24-v1"
BLOCK_MARGIN_S = 3.0  # a block holds the frames up to the next window's start (at most a window span): fetch earlier
FRAME_PREPROCESSING = {"kind": "thumbnails", "size": THUMB, "grey": True, "resize": "area", "packed": "zlib",
                       "vector": "appearance of the window's first frame at 16 x 16"}


def frames_collection(collection: str) -> str:
    """The frame store's collection name for a window collection."""
    return collection + FRAMES_SUFFIX


def has_frames(table: pd.DataFrame) -> bool:
    """Whether an embeddings table carries the frames of its windows (dense extraction)."""
    return all(column in table.columns for column in FRAME_COLUMNS) and len(table) > 0


def frame_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The frame store's rows for an embeddings table with :data:`~motionmatch.table.FRAME_COLUMNS`."""
    if not has_frames(table):
        raise ParameterError("the table has no frame columns (frame_times, frame_thumbs): extract it with dense "
                             "windows (motionmatch extract --stride-s) to build a frame store")
    thumbs = [unpack(blob) if len(blob) else np.zeros((0, THUMB, THUMB), np.uint8) for blob in table["frame_thumbs"]]
    keep = np.array([len(t) > 0 for t in thumbs])
    firsts = np.stack([t[0] for t, k in zip(thumbs, keep) if k]) if keep.any() else np.zeros((0, THUMB, THUMB))
    rows = table.loc[keep, ["clip_id", "video_path", "video_fingerprint", "clip_index", "start_s", "end_s",
                            "padded_frames", "label", "domain", "group", "split"]].copy()
    rows["encoder_id"] = FRAME_ENCODER_ID
    rows["embedding"] = list(search_vectors(firsts)) if len(firsts) else []
    rows["frame_times"] = [base64.b64encode(np.asarray(t, dtype=np.float64).tobytes()).decode("ascii")
                           for t, k in zip(table["frame_times"], keep) if k]
    rows["frame_thumbs"] = [base64.b64encode(blob).decode("ascii") for blob, k in zip(table["frame_thumbs"], keep) if k]
    return rows.reset_index(drop=True)


def decode_rows(rows: pd.DataFrame) -> dict[str, FrameSignal]:
    """Fetched frame-store rows (``video_path``, ``frame_times``, ``frame_thumbs``) -> one FrameSignal per video."""
    out = {}
    for video, group in rows.sort_values(["video_path", "start_s"], kind="stable").groupby("video_path", sort=False):
        times = [np.frombuffer(base64.b64decode(t), dtype=np.float64) for t in group["frame_times"]]
        thumbs = [unpack(base64.b64decode(t)) for t in group["frame_thumbs"]]
        times_all, thumbs_all = np.concatenate(times), np.concatenate(thumbs)
        order = np.argsort(times_all, kind="stable")
        unique = np.r_[True, np.diff(times_all[order]) > 1e-9]  # blocks tile the video; drop any repeat
        out[str(video)] = FrameSignal(str(video), times_all[order][unique], thumbs_all[order][unique])
    return out


def _intervals(span) -> list[tuple[float, float]]:
    """One ``(start_s, end_s)`` or several, as a list."""
    if len(span) == 2 and all(np.isscalar(v) for v in span):
        return [(float(span[0]), float(span[1]))]
    return [(float(lo), float(hi)) for lo, hi in span]


def _span_filters(spans: Mapping[str, Any]) -> list[dict]:
    """Filters for the blocks that may hold frames of each video's span(s) (a block starting before one, too)."""
    return [{"video_path": video, "start_s": (max(0.0, lo - BLOCK_MARGIN_S), hi)}
            for video, span in spans.items() for lo, hi in _intervals(span)]


def fetch_frames(frames_store, spans: Mapping[str, Any]) -> dict[str, FrameSignal]:
    """The frames of each video's ``(start_s, end_s)`` span, or of a list of spans (the frames inside any of them,
    in time order), in one query call for all of them; a video with no block there is left out
    (:func:`videos_without_frames` names them). Raises StoreError, naming the collection and the video, when
    stored blocks cannot be decoded."""
    if not spans:
        return {}
    rows = frames_store.fetch_table(["video_path", "start_s", *FRAME_COLUMNS], filters=_span_filters(spans))
    try:
        signals = decode_rows(rows)
    except (ValueError, TypeError, zlib.error) as error:  # binascii.Error is a ValueError
        collection, videos = getattr(frames_store, "collection", "?"), sorted(set(rows["video_path"]))
        raise StoreError(f"frame store '{collection}': the stored frames of {', '.join(videos[:3])}"
                         f"{' ...' if len(videos) > 3 else ''} cannot be decoded ({error}); drop that collection "
                         f"(MotionStore(uri, {collection!r}).drop()) and run `motionmatch index` again to rewrite "
                         "it, or search with --no-fine") from error
    out = {}
    for video, signal in signals.items():
        if video in spans:
            keep = np.zeros(len(signal), bool)
            for lo, hi in _intervals(spans[video]):
                keep |= (signal.times >= lo - 1e-9) & (signal.times < hi - 1e-9)
            out[video] = FrameSignal(video, signal.times[keep], signal.thumbs[keep])
    return out


def videos_without_frames(frames_store, spans: Mapping[str, tuple[float, float]]) -> list[str]:
    """The videos of ``spans`` that have no frame block in their ``(start_s, end_s)`` span: the fine stage had
    no frames of them to align or snap to (a collection indexed in part without frames, or a store out of
    sync). One query call, of the video paths only."""
    if not spans:
        return []
    found = set(frames_store.fetch_table(["video_path"], filters=_span_filters(spans))["video_path"])
    return sorted(video for video in spans if video not in found)


def signal_from_table(table: pd.DataFrame, video_path: str) -> FrameSignal:
    """One video's frames from an embeddings table with frame columns (tests, notebooks)."""
    rows = table[table["video_path"] == video_path]
    if rows.empty or not has_frames(rows):
        raise ParameterError(f"{video_path} has no frames in this table: was it extracted with dense windows?")
    times = np.concatenate([np.asarray(t, dtype=np.float64) for t in rows["frame_times"]])
    thumbs = np.concatenate([unpack(b) for b in rows["frame_thumbs"] if len(b)])
    order = np.argsort(times, kind="stable")
    return FrameSignal(video_path, times[order], thumbs[order])


__all__ = ["FRAMES_SUFFIX", "FRAME_ENCODER_ID", "frames_collection", "has_frames", "frame_rows",
           "decode_rows", "fetch_frames", "videos_without_frames", "signal_from_table"]
