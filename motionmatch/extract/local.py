"""Extraction on this machine: videos -> embeddings table, resumable, nothing lost.

:func:`extract_embeddings` is the local path (the Ray path is :mod:`motionmatch.extract.ray_data`); both keep
their books with :mod:`motionmatch.extract.parts`, so either resumes the other's output folder. Clips per
video are decoded ahead of the encoder in worker processes (:mod:`motionmatch.extract.workers`); dense
windows over long videos are decoded in one sequential stream per video, in a thread ahead of the encoder.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..data.sources import Failure
from ..errors import MotionMatchError, ParameterError, VideoError
from ..video.clips import ClipSpec, iter_window_clips, prefetched_clips
from ..video.decode import fingerprint_file, open_video
from ..video.windows import WindowSpec
from .estimate import ExtractionEstimate
from .parts import (ENCODE_HINT, ExtractSummary, chunk_path, encode_clips, failure_from, finish, load_plan, make_plan,
                    missing_chunks, plan_todo, prune_dense, start_extraction, write_part)
from .workers import default_decode_workers, iter_decoded


# ----------------------------------------------------------------------------- extraction
def extract_embeddings(
    manifest: pd.DataFrame,
    encoder,
    out_dir: str | Path,
    clip_spec: ClipSpec | None = None,
    batch_size: int = 8,
    workers: int | None = None,
    overwrite: bool = False,
    prune: bool = False,
    discovery_failures: Sequence[Failure] = (),
    progress: bool = True,
    encoder_note: str = "",
    print_fn=print,
    window_spec: WindowSpec | None = None,
) -> ExtractSummary:
    """Embed every video in ``manifest`` with ``encoder`` into ``out_dir``; resumable.

    ``encoder_note`` (plain words on the encoder, e.g. why ``auto`` fell back) is recorded in
    ``extract_meta.json`` so every report can open with it. After the first encoded video the
    estimated total time is printed with ``print_fn`` (see :mod:`motionmatch.extract.estimate`).

    ``workers`` > 0 decodes in that many processes while the encoder runs; 0 decodes inline;
    None picks :func:`default_decode_workers`.
    ``prune`` deletes parts of videos no longer in the manifest.

    ``window_spec`` switches from clips-per-video to dense windows over each whole video (long
    untrimmed videos; see :func:`_extract_dense`): decoded in this process, streamed,
    one part per chunk of windows, resumable inside a video. It is recorded in
    ``extract_meta.json`` under ``"windows"``.
    """
    if workers is None:
        workers = default_decode_workers()
    if workers < 0:
        raise ParameterError(f"workers must be >= 0 (or None for the default), got {workers}")
    out_dir = Path(out_dir)
    clip_spec, manifest, summary, started = start_extraction(manifest, encoder, out_dir, clip_spec, window_spec,
                                                             batch_size, overwrite, encoder_note, discovery_failures)
    if window_spec is not None:
        _extract_dense(manifest, encoder, out_dir, clip_spec, window_spec, summary, batch_size=batch_size,
                      prune=prune, progress=progress, print_fn=print_fn)
        return finish(out_dir, summary, started)

    wanted, todo = plan_todo(manifest, out_dir, prune, summary)
    estimate = ExtractionEstimate(total_clips=len(todo) * clip_spec.clips_per_video, encoder_id=encoder.encoder_id,
                                  device=str(getattr(encoder, "device", "cpu")), frames_per_clip=clip_spec.frames_per_clip,
                                  clips_per_video=clip_spec.clips_per_video, videos=len(todo), print_fn=print_fn)
    bar = tqdm(total=len(todo), desc=f"extract [{encoder.encoder_id}]", unit="video", disable=not progress)
    for path, fingerprint, windows, frames, error in iter_decoded(todo, clip_spec, workers, prefetch=max(2, 2 * workers)):
        bar.update(1)
        if error is not None:
            summary.failures.append(failure_from(path, "decode", error))
            continue
        try:
            encode_started = time.perf_counter()
            vectors, coverage = encode_clips(encoder, frames, batch_size)
            estimate.observe(len(frames), time.perf_counter() - encode_started)
        except MotionMatchError:
            raise  # a configuration problem (weights, parameters): stop, it would fail for every video
        except Exception as err:
            summary.failures.append(Failure(path, "encode", f"{type(err).__name__}: {err}", ENCODE_HINT))
            continue
        row = wanted[path]
        write_part(out_dir, row, fingerprint, windows, vectors, encoder.encoder_id, coverage=coverage)
        summary.embedded += 1
        summary.clips_embedded += len(windows)
        summary.clips_no_person += int((coverage <= 0).sum())
    bar.close()
    return finish(out_dir, summary, started)


def _dense_estimate(paths: Sequence[str], clip_spec: ClipSpec, window_spec: WindowSpec, encoder, print_fn):
    """The time estimate of a dense run: about one window per ``stride_s`` of each video's duration."""
    total = 0
    for path in paths:
        try:
            total += int(open_video(path).info().duration_s // window_spec.stride_s) + 1
        except VideoError:
            continue
    return ExtractionEstimate(total_clips=total, encoder_id=encoder.encoder_id, device=str(getattr(encoder, "device", "cpu")),
                              frames_per_clip=clip_spec.frames_per_clip, videos=len(paths), print_fn=print_fn)


def _extract_dense(manifest: pd.DataFrame, encoder, out_dir: Path, clip_spec: ClipSpec, window_spec: WindowSpec,
                   summary: ExtractSummary, batch_size: int, prune: bool, progress: bool, print_fn) -> None:
    """Dense windows over each whole video; one part per ``windows_per_chunk`` windows.

    A video is done when its last chunk's part exists. A run killed inside a video resumes at its
    first missing chunk: the plan (shots and windows) is read back, decoding starts at that chunk's
    first frame, finished parts are never rewritten and no window is written twice. Decoding is
    one sequential stream per video (:func:`~motionmatch.video.clips.iter_window_clips`), so memory does
    not grow with the duration. Notes on padded windows go to failures.csv with stage ``window``
    (not counted as failures).
    """
    rows = {row.path: row for row in manifest.itertuples(index=False)}
    if prune:
        prune_dense(out_dir, rows)
    per_chunk = window_spec.windows_per_chunk
    estimate = _dense_estimate(list(rows), clip_spec, window_spec, encoder, print_fn)
    bar = tqdm(total=len(rows), desc=f"extract [{encoder.encoder_id}]", unit="video", disable=not progress)
    for path, row in rows.items():
        bar.update(1)
        try:
            fingerprint = fingerprint_file(path)
            planning = time.perf_counter()
            plan = load_plan(out_dir, path, fingerprint) or make_plan(out_dir, path, fingerprint, clip_spec, window_spec)
            estimate.note_setup(time.perf_counter() - planning, len(plan["windows"]))
        except VideoError as err:
            summary.failures.append(Failure(path, "decode", err.reason, err.hint))
            continue
        missing = missing_chunks(out_dir, path, plan, per_chunk, summary, print_fn)
        if not missing:
            continue
        try:
            written, no_person = _embed_chunks(out_dir, row, fingerprint, plan["windows"], missing[0], per_chunk,
                                               encoder, batch_size, estimate)
        except MotionMatchError as err:
            if not isinstance(err, VideoError):
                raise  # a configuration problem (weights, parameters): stop, it would fail for every video
            summary.failures.append(Failure(path, "decode", err.reason, err.hint))
            continue
        except _EncodeFailed as err:
            summary.failures.append(Failure(path, "encode", str(err), ENCODE_HINT))
            continue
        summary.embedded += 1
        summary.clips_embedded += written
        summary.clips_no_person += no_person
    bar.close()


class _EncodeFailed(RuntimeError):
    """The encoder raised something other than a MotionMatchError on one batch."""


def _embed_chunks(out_dir: Path, row, fingerprint: str, windows: list, chunk: int, per_chunk: int, encoder,
                  batch_size: int, estimate: ExtractionEstimate) -> tuple[int, int]:
    """Encode windows from ``chunk`` on, writing each chunk's part as soon as it is complete; returns
    ``(windows written, windows with coverage 0)``.

    Every decoded frame's thumbnail is kept with the window it starts in (the fine stage of a segment search
    reads them): one area resize per frame, in the same decoding pass."""
    done_windows, done_vectors, done_blocks, done_coverage, batch = [], [], [], [], []
    written, no_person = 0, 0

    def encode(clips) -> None:
        encode_started = time.perf_counter()
        try:
            vectors, coverage = encode_clips(encoder, [c.frames for c in clips], batch_size)
        except MotionMatchError:
            raise
        except Exception as err:
            raise _EncodeFailed(f"{type(err).__name__}: {err}") from err
        estimate.observe(len(clips), time.perf_counter() - encode_started)
        done_windows.extend(c.window for c in clips)
        done_vectors.extend(vectors)
        done_coverage.extend(coverage)
        done_blocks.extend(c.block for c in clips)

    clips = iter_window_clips(row.path, windows, start_window=chunk * per_chunk, thumbnails=True)
    for clip in prefetched_clips(clips, depth=2 * batch_size):
        batch.append(clip)
        chunk_end = min(len(windows), (chunk + 1) * per_chunk)
        if len(batch) == batch_size or clip.window.clip_index == chunk_end - 1:
            encode(batch)
            batch = []
        if clip.window.clip_index == chunk_end - 1:
            write_part(out_dir, row, fingerprint, done_windows, np.asarray(done_vectors), encoder.encoder_id,
                       target=chunk_path(out_dir, row.path, chunk), blocks=done_blocks,
                       coverage=np.asarray(done_coverage, dtype=np.float32))
            written += len(done_windows)
            no_person += int((np.asarray(done_coverage) <= 0).sum())
            done_windows, done_vectors, done_blocks, done_coverage, chunk = [], [], [], [], chunk + 1
    return written, no_person


__all__ = ["extract_embeddings"]
