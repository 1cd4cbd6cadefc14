"""The synthetic frame store of bench_segment_search: per-video thumbnails, their blocks, and the query's frames.

Every window of the bench's collection gets its frame block, written the way ``motionmatch index`` writes a frame
store (``frame_rows``, upserts of 256), so the fine stage of a segment search runs on a real ``<collection>__frames``
collection. The frames are a 24 x 24 view drifting one pixel a frame across a smooth random texture per video.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from bench.harness import lite_wait_for_background_work

FPS = 24.0
FRAMES_PER_CLIP, FRAME_STRIDE, STRIDE_S = 16, 4, 0.5  # the dense-window defaults
WINDOW_FRAMES = (FRAMES_PER_CLIP - 1) * FRAME_STRIDE + 1  # 61
BLOCK_FRAMES = int(round(STRIDE_S * FPS))  # 12: a window's frame block, up to the next window's first frame
TEXTURE_SIGMA = 2.5  # pixels: smoothness of a video's synthetic texture
WANDER_PX = 7  # the view wanders up and down by this much over its texture
FRAME_NOISE = 4.0  # grey levels (sd) of the noise on a query's frames
FRAME_CHUNK_VIDEOS = 50  # videos whose frame blocks are made and written together


def video_frame_count(per_video: int) -> int:
    """Frames of a video of ``per_video`` dense windows: up to the last window's last frame."""
    return (per_video - 1) * BLOCK_FRAMES + WINDOW_FRAMES


def video_thumbs(seed: int, video: int, n_frames: int) -> np.ndarray:
    """(n_frames, 24, 24) uint8 thumbnails of one video (the same for a seed and video): a 24 x 24 view drifting
    one pixel a frame across a smooth random texture, wandering up and down, so every frame differs from the
    last, no two videos look alike and a copied range is findable by appearance."""
    from numpy.lib.stride_tricks import sliding_window_view
    from scipy.ndimage import gaussian_filter

    from motionmatch.video.fingerprint import THUMB

    rng = np.random.default_rng([seed, 2, video])
    noise = rng.standard_normal((THUMB + 2 * WANDER_PX + 2, n_frames + THUMB))
    texture = gaussian_filter(noise, TEXTURE_SIGMA, mode="wrap")
    texture = np.clip(128 + texture * (48 / texture.std()), 0, 255).astype(np.uint8)
    steps = np.arange(n_frames)
    period, phase = rng.uniform(150, 400), rng.uniform(0, 2 * np.pi)
    rows = np.round(WANDER_PX + 1 + WANDER_PX * np.sin(2 * np.pi * steps / period + phase)).astype(int)
    return np.ascontiguousarray(sliding_window_view(texture, (THUMB, THUMB))[rows, steps])


def block_bounds(per_video: int) -> list[tuple[int, int]]:
    """Each window's frame block, ``[first, last)``: to the next window's first frame, the last window all of its own
    (``video.clips.iter_window_clips`` cuts them so)."""
    return [(i * BLOCK_FRAMES, (i + 1) * BLOCK_FRAMES if i + 1 < per_video else i * BLOCK_FRAMES + WINDOW_FRAMES)
            for i in range(per_video)]


def write_frame_store(uri: str, collection: str, table, n_videos: int, per_video: int, seed: int) -> dict:
    """The collection's frame store, every window's block, as ``motionmatch index`` writes it (``frame_rows``,
    upserts of 256); returns what it cost: seconds to make, pack, build rows and upsert, and the packed bytes."""
    import pandas as pd

    from motionmatch.index import MotionStore
    from motionmatch.index.frames import FRAME_ENCODER_ID, FRAME_PREPROCESSING, frame_rows, frames_collection
    from motionmatch.table import FRAME_COLUMNS
    from motionmatch.video.fingerprint import SEARCH_THUMB, pack

    bounds = block_bounds(per_video)
    n_frames = video_frame_count(per_video)
    times = np.arange(n_frames) / FPS
    cost = {"make_s": 0.0, "pack_s": 0.0, "rows_s": 0.0, "upsert_s": 0.0, "blocks": 0, "frames": 0,
            "packed_bytes": 0, "base64_chars": 0}
    with MotionStore(uri, frames_collection(collection)) as frames:
        frames.ensure_collection(FRAME_ENCODER_ID, SEARCH_THUMB * SEARCH_THUMB, FRAME_PREPROCESSING, recreate=True,
                                 text_fields=FRAME_COLUMNS)
        for first in range(0, n_videos, FRAME_CHUNK_VIDEOS):
            videos = range(first, min(n_videos, first + FRAME_CHUNK_VIDEOS))
            started = time.perf_counter()
            thumbs = [video_thumbs(seed, video, n_frames) for video in videos]
            packed_0 = time.perf_counter()
            blobs = [pack(t[lo:hi]) for t in thumbs for lo, hi in bounds]
            rows_0 = time.perf_counter()
            chunk = table.iloc[first * per_video:(first + len(videos)) * per_video].drop(columns=["embedding"])
            chunk = chunk.assign(frame_times=[times[lo:hi] for _ in videos for lo, hi in bounds],
                                 frame_thumbs=blobs)
            rows = frame_rows(pd.DataFrame(chunk))
            upsert_0 = time.perf_counter()
            frames.upsert(rows, batch_size=256, encoder_id=FRAME_ENCODER_ID, preprocessing=FRAME_PREPROCESSING,
                          progress=False)
            done = time.perf_counter()
            cost["make_s"] += packed_0 - started
            cost["pack_s"] += rows_0 - packed_0
            cost["rows_s"] += upsert_0 - rows_0
            cost["upsert_s"] += done - upsert_0
            cost["blocks"] += len(blobs)
            cost["frames"] += len(videos) * n_frames
            cost["packed_bytes"] += sum(len(b) for b in blobs)
            cost["base64_chars"] += int(rows["frame_thumbs"].str.len().sum() + rows["frame_times"].str.len().sum())
        cost["settle_s"] = lite_wait_for_background_work(frames.client, frames.uri, frames.collection)
        cost["stored_blocks"] = frames.count()
    return cost


def query_frames(query: dict, number: int, per_video: int, n_windows: int, seed: int, path: str):
    """The query's FrameSignal: the source video's frames of the copied range, on the query's own clock, plus noise."""
    from motionmatch.video.fingerprint import FrameSignal

    thumbs = video_thumbs(seed, query["video"], video_frame_count(per_video))
    first = query["first"] * BLOCK_FRAMES
    last = first + (n_windows - 1) * BLOCK_FRAMES + WINDOW_FRAMES
    rng = np.random.default_rng([seed, 3, number])
    noisy = thumbs[first:last] + rng.normal(0, FRAME_NOISE, thumbs[first:last].shape)
    return FrameSignal(path, np.arange(last - first) / FPS,
                       np.clip(np.round(noisy), 0, 255).astype(np.uint8))


def disk_bytes(path: str | os.PathLike) -> int:
    """Bytes on disk of a Milvus Lite file (or folder), 0 where it is not there."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0
