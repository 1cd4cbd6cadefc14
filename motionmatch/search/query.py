"""A query range decoded once: the embeddings of its windows (every phase shift too) and the thumbnails of its frames.

The windows of a query plan and of its phase-shifted copies (:func:`motionmatch.video.phase_plans`) overlap,
and the fine stage needs every frame of the range as a thumbnail (:mod:`motionmatch.video.fingerprint`). Rather
than read the file once per plan, :func:`embed_plans` streams the range through one sequential decode
(:func:`motionmatch.video.iter_frames`, the decoder the index's dense windows were made with), hands each
window to the encoder as soon as its frames are in, in batches, and keeps only the frames of windows not yet
complete, so memory is one window's span (plus a batch), however long the range.

A range split at shot cuts needs its cuts before its windows can be planned. :func:`decode_range` then decodes it
once and holds its frames (a :class:`DecodedRange`): the shot detector reads them
(:func:`motionmatch.video.shots.cuts_in_chunks`), and :func:`embed_plans` replays them and goes on with the
same decode past the range's end, so the file is still decoded once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from ..errors import ParameterError, VideoError
from ..video.decode import FrameChunk, OpenedVideo, iter_frames
from ..video.fingerprint import FrameSignal, thumbnails as make_thumbnails
from ..video.windows import QueryPlan


@dataclass
class DecodedRange:
    """One decode of a query range, held: its chunks from the range's first frame to the first chunk reaching its
    end, and the rest of the same decode (``rest``, not read yet) for windows that reach past the range."""

    path: str
    chunks: list[FrameChunk]
    rest: Iterator[FrameChunk]

    @property
    def first_frame(self) -> int:
        return self.chunks[0].start_index if self.chunks else -1

    def replay(self) -> Iterator[FrameChunk]:
        """The held chunks, then the rest of the decode."""
        try:
            yield from self.chunks
            yield from self.rest
        finally:
            self.close()

    def close(self) -> None:
        self.rest.close()


def decode_range(path: str, first_frame: int, end_s: float, small_size: tuple[int, int] | None = None,
                 chunk_frames: int = 64, opened: OpenedVideo | None = None) -> DecodedRange:
    """Decode ``path`` from ``first_frame`` until a chunk holds a frame starting at or after ``end_s``, and hold it
    (:func:`~motionmatch.video.decode.iter_frames`; ``small_size`` adds the shot detector's small frames;
    ``opened``: the file opened with PyAV already, whose header and timestamps are not read again)."""
    stream = iter_frames(path, chunk_frames, first_frame, small_size, opened=opened)
    held: list[FrameChunk] = []
    for chunk in stream:
        held.append(chunk)
        if float(chunk.timestamps[-1]) >= end_s - 1e-6:
            break
    return DecodedRange(str(path), held, stream)


def embed_plans(plans: Sequence[QueryPlan], encoder, batch_size: int = 8, thumbnails: bool = True,
                chunk_frames: int = 64, decoded: DecodedRange | None = None, opened: OpenedVideo | None = None
                ) -> tuple[list[np.ndarray], FrameSignal | None]:
    """``([vectors of each plan's windows], the range's frames)``; the plans are one query's (same file and range).

    ``vectors`` are (n_windows, dim) L2-normalised, in each plan's window order; the frames (with ``thumbnails``)
    span the first plan's range. ``decoded``: the range decoded already (:func:`decode_range`, from the plans'
    first frame or before), replayed instead of a new decode, and closed; else ``opened`` (the file opened with
    PyAV) saves the new decode reading the file's header and timestamps again. Raises VideoError when the file
    ends before a planned frame.
    """
    if not plans:
        if decoded is not None:
            decoded.close()
        return [], None
    path = plans[0].path
    others = sorted({plan.path for plan in plans} - {path})
    if others:
        raise ParameterError(f"embed_plans decodes one query file, got plans of {path} and {', '.join(others[:2])}: "
                             "call it once per query file")
    empty = [p for p, plan in enumerate(plans) if not plan.windows]
    if empty:
        raise ParameterError(f"plan {empty[0]} of {path} has no window: plan the range with "
                             "motionmatch.video.plan_query, which gives every range at least one")
    jobs = sorted(((max(w.frame_indices), p, i, w) for p, plan in enumerate(plans) for i, w in enumerate(plan.windows)),
                  key=lambda job: (job[0], job[1], job[2]))
    firsts = np.array([min(job[3].frame_indices) for job in jobs])
    suffix_first = np.minimum.accumulate(firsts[::-1])[::-1]  # the earliest frame any job from here on needs
    first = int(suffix_first[0])
    last_needed = jobs[-1][0]
    range_first = min(min(w.frame_indices) for w in plans[0].windows)
    range_end_s = plans[0].end_s  # frames starting before the range's end (a padded window's plan: the file's end)
    wanted = {i for plan in plans for w in plan.windows for i in w.frame_indices}
    results: list[dict[int, np.ndarray]] = [{} for _ in plans]
    buffer: dict[int, np.ndarray] = {}
    times, thumbs = [], []
    batch: list[tuple[int, int, np.ndarray]] = []
    emit = 0

    def flush() -> None:
        if batch:
            vectors = np.asarray(encoder.encode([clip for _, _, clip in batch], batch_size=batch_size), np.float32)
            for (p, i, _), vector in zip(batch, vectors):
                results[p][i] = vector
            batch.clear()

    last_index = -1
    if decoded is not None and (decoded.path != str(path) or not 0 <= decoded.first_frame <= first):
        decoded.close()
        raise ParameterError(f"the decoded range of {decoded.path} starts at frame {decoded.first_frame}, the plans of "
                             f"{path} need frame {first} on: decode the range the plans were made for")
    stream = decoded.replay() if decoded is not None else iter_frames(path, chunk_frames=chunk_frames,
                                                                      start_frame=first, opened=opened)
    try:
        for chunk in stream:
            past_range = float(chunk.timestamps[-1]) >= range_end_s - 1e-6
            if thumbnails:
                inside = [o for o in range(len(chunk.frames)) if chunk.start_index + o >= range_first
                          and float(chunk.timestamps[o]) < range_end_s - 1e-6]
                if inside:
                    times.extend(float(chunk.timestamps[o]) for o in inside)
                    thumbs.append(make_thumbnails(chunk.frames[inside]))
            for offset in range(len(chunk.frames)):
                index = last_index = chunk.start_index + offset
                if index in wanted:
                    buffer[index] = chunk.frames[offset]
                while emit < len(jobs) and jobs[emit][0] <= index:
                    _, p, i, window = jobs[emit]
                    batch.append((p, i, np.stack([buffer[f] for f in window.frame_indices])))
                    emit += 1
                    if len(batch) >= batch_size:
                        flush()
                    keep_from = int(suffix_first[emit]) if emit < len(jobs) else index + 1
                    for stale in [f for f in buffer if f < keep_from]:
                        del buffer[stale]
            if last_index >= last_needed and (not thumbnails or past_range):
                break
    finally:
        stream.close()
    if emit < len(jobs):
        raise VideoError(path, f"truncated or corrupt: frame {jobs[emit][0]} was planned but only {last_index + 1} "
                               "frames could be decoded", hint="re-encode the file or remove it")
    flush()
    out = [np.stack([results[p][i] for i in range(len(plan.windows))]) for p, plan in enumerate(plans)]
    signal = FrameSignal(path, np.asarray(times, dtype=np.float64), np.concatenate(thumbs)) if thumbs else None
    return out, signal


__all__ = ["DecodedRange", "decode_range", "embed_plans"]
