"""Extraction and indexing: videos -> embeddings table -> Milvus, without losing work.

Extraction writes one small parquet file per finished video into an output folder
(``<out>/parts/<key>.parquet``), atomically (write to a temporary name, then rename).
A run that is killed and started again skips every video whose part exists and whose
content fingerprint still matches, so nothing finished is recomputed and no row is
written twice. ``pandas.read_parquet(out / "parts")`` reads the whole table.

Dense windows over long videos (``window_spec``, ``motionmatch extract --stride-s``) write
``parts/<key>.plan.json`` (the video's fingerprint, detected cuts, windows and notes) and then one
part per chunk of windows, ``parts/<key>.c00000.parquet``, ``.c00001`` ...; the video is done when
its last chunk exists, and a killed run resumes at the first missing chunk.

Bad inputs never stop a run: each one is recorded in ``failures.csv`` with the file,
the stage and the reason, and the summary counts embedded, skipped and failed videos.

Size: a little over 600 lines because the resume bookkeeping (parts, plans, chunks, failures.csv) lives
here once, for the local path and for the Ray path (:mod:`motionmatch.ray_extract`), which reuses it.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from concurrent.futures.process import BrokenProcessPool
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .clips import (DEFAULT_WINDOW_FRAME_STRIDE, DEFAULT_WINDOW_FRAMES, NO_SHOTS, ClipSpec, ClipWindow, WindowSpec,
                    iter_window_clips, open_with_timestamps, plan_windows, prefetched_clips, sample_clips)
from .decode import fingerprint_file, open_video
from .shots import detect_shots
from .errors import EncoderMismatchError, MotionMatchError, ParameterError, VideoError
from .estimate import ExtractionEstimate
from .datasets import Failure, normalise_manifest
from .table import (EXTRACT_META, FAILURE_COLUMNS, META_NOTE_KEYS, TABLE_COLUMNS, make_clip_id, parts_dir,
                    read_extract_meta)

# ----------------------------------------------------------------------------- extraction
@dataclass
class ExtractSummary:
    """What an extraction run did; printed at the end of the CLI and notebook 01."""

    out_dir: str
    encoder_id: str
    videos_total: int = 0
    embedded: int = 0
    skipped_done: int = 0
    failed: int = 0
    clips_embedded: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["failures"] = [asdict(f) for f in self.failures]
        return out

    def __str__(self) -> str:
        text = (f"{self.videos_total} videos: {self.embedded} embedded, {self.skipped_done} already done, "
                f"{self.failed} failed; {self.clips_embedded} clips in {self.seconds:.1f} s "
                f"[{self.encoder_id}] -> {self.out_dir}")
        problems = [f for f in self.failures if f.stage != "window"]
        notes = [f for f in self.failures if f.stage == "window"]  # dense windows only: padded windows
        if problems:
            text += f"\nfailures ({len(problems)}, see failures.csv):"
            for failure in problems[:20]:
                text += f"\n  {failure.path}: {failure.reason}"
        if notes:
            text += f"\nnotes ({len(notes)}, in failures.csv with stage 'window'):"
            for note in notes[:20]:
                text += f"\n  {note.path}: {note.reason}"
        return text


def _part_path(out_dir: Path, video_path: str) -> Path:
    return parts_dir(out_dir) / (hashlib.sha1(video_path.encode("utf-8")).hexdigest()[:20] + ".parquet")


def _check_run_meta(out_dir: Path, meta: dict, overwrite: bool) -> None:
    meta_path = out_dir / EXTRACT_META
    if meta_path.exists() and not overwrite:
        previous = read_extract_meta(out_dir)
        decisive = lambda m: {k: v for k, v in m.items() if k not in META_NOTE_KEYS}  # noqa: E731
        if decisive(previous) != decisive(meta):
            raise ParameterError(
                f"{out_dir} holds embeddings made with different settings "
                f"(encoder {previous.get('encoder_id')}, clips {previous.get('clip_spec')}); "
                f"this run asks for encoder {meta['encoder_id']}, clips {meta['clip_spec']}. "
                "Use another output folder, or pass overwrite=True (--overwrite) to start again.")
    if overwrite and parts_dir(out_dir).exists():
        for part in [*parts_dir(out_dir).glob("*.parquet"), *parts_dir(out_dir).glob("*" + PLAN_SUFFIX)]:
            part.unlink()
    parts_dir(out_dir).mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True))


def _decode_job(path: str, spec: ClipSpec) -> tuple[str, str, list, list | None, str | None]:
    """Runs in a worker process: fingerprint + decode one video's clips."""
    try:
        fingerprint = fingerprint_file(path)
        clips = sample_clips(path, spec)
        windows = [c.window for c in clips]
        frames = [c.frames for c in clips]
        return path, fingerprint, windows, frames, None
    except VideoError as err:
        return path, "", [], None, f"{err.reason}|{err.hint}"
    except Exception as err:  # a decoder crash must not stop the run
        return path, "", [], None, f"unexpected decoder error: {type(err).__name__}: {err}|re-encode the file or remove it"


def _workers_can_start(workers: int, context) -> bool:
    """Whether a fresh pool's worker processes can run a trivial job at all."""
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            pool.submit(os.getpid).result()
        return True
    except BrokenProcessPool:
        return False


WORKER_DIED = ("the decode worker process died while decoding this file (a decoder crash or out of memory)"
               "|re-encode the file (e.g. ffmpeg -i in.mp4 -c:v libx264 out.mp4) or remove it")


def _submit(pool: ProcessPoolExecutor, pending: list, job, path: str, spec: ClipSpec) -> bool:
    """Queue one video on the pool; False when the pool is already broken (a worker died since the last result).

    The broken pool then shows at this submission rather than at a result; the video was never started, so
    the caller puts it back, and the futures in flight report the breakage as usual.
    """
    try:
        pending.append((path, pool.submit(job, path, spec)))
        return True
    except BrokenProcessPool:
        return False


def _iter_decoded(paths: Sequence[str], spec: ClipSpec, workers: int, prefetch: int,
                  job=_decode_job) -> Iterator[tuple]:
    """Decode videos ahead of the encoder, in worker processes, with a bounded window.

    At most ``prefetch`` decoded videos are held at once, so memory stays flat however
    large the folder is. A worker that dies (a decoder crash, the kernel's OOM killer) costs
    only the video it was decoding: the pool is restarted, the videos that were in flight are
    decoded again one at a time to find the one that kills its worker, that one is reported as
    failed and the others carry on. Workers that cannot start at all (a script without a
    ``__main__`` guard) raise ParameterError with what to do.
    ``job`` (a picklable ``(path, spec) -> tuple``) is the per-video work; tests inject faults through it.
    """
    if workers <= 0:
        for path in paths:
            yield job(path, spec)
        return
    import multiprocessing

    # spawn, not fork: forking a process that already runs torch's thread pools can deadlock.
    context = multiprocessing.get_context("spawn")
    queue = list(paths)
    isolate: list[str] = []  # in flight when a pool broke: retried alone, one at a time
    checked_start = False
    while queue or isolate:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            pending: list[tuple[str, Future]] = []
            solo = False
            broken = False
            while queue or isolate or pending:
                if not pending:
                    solo = bool(isolate)
                    if solo:
                        path = isolate.pop(0)
                        if not _submit(pool, pending, job, path, spec):
                            isolate.insert(0, path)
                if not solo:
                    while queue and len(pending) < prefetch:
                        path = queue.pop(0)
                        if not _submit(pool, pending, job, path, spec):  # broke since the last result: not started
                            queue.insert(0, path)
                            break
                if not pending:  # the pool broke with nothing in flight: start a new one
                    broken = True
                    break
                path, done = pending.pop(0)
                try:
                    result = done.result()
                except BrokenProcessPool as err:
                    broken = True
                    if not checked_start:
                        checked_start = True
                        if not _workers_can_start(workers, context):
                            raise ParameterError(
                                "the decode worker processes cannot start. They are started with 'spawn', which "
                                "re-imports the calling script: in a script, call extraction under "
                                "`if __name__ == \"__main__\":`, or pass workers=0 (decode in this process). "
                                f"Finished videos are kept; run again to resume. ({err})") from err
                    if solo:
                        yield (path, "", [], None, WORKER_DIED)
                    else:
                        isolate.extend([path] + [p for p, _ in pending])
                    break
                yield result
            if not broken:
                return


def write_failures(out_dir: str | Path, failures: Iterable[Failure]) -> Path:
    path = Path(out_dir) / "failures.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(FAILURE_COLUMNS))
        writer.writeheader()
        for failure in failures:
            writer.writerow(asdict(failure))
    return path


def default_decode_workers() -> int:
    """Decode worker processes to run by default: CPU cores - 2, at most 4.

    On a 2-core machine this is 0: torch's threads already use both cores, and `make bench`
    measured extraction 1.74x faster than the naive path with one worker against 2.26x with
    decoding inline. With cores to spare (a GPU machine) workers overlap decoding with the model.
    """
    return max(0, min(4, (os.cpu_count() or 1) - 2))


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
    estimated total time is printed with ``print_fn`` (see :mod:`motionmatch.estimate`).

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
        return _finish(out_dir, summary, started)

    wanted, todo = plan_todo(manifest, out_dir, prune, summary)
    estimate = ExtractionEstimate(total_clips=len(todo) * clip_spec.clips_per_video, encoder_id=encoder.encoder_id,
                                  device=str(getattr(encoder, "device", "cpu")), frames_per_clip=clip_spec.frames_per_clip,
                                  clips_per_video=clip_spec.clips_per_video, videos=len(todo), print_fn=print_fn)
    bar = tqdm(total=len(todo), desc=f"extract [{encoder.encoder_id}]", unit="video", disable=not progress)
    for path, fingerprint, windows, frames, error in _iter_decoded(todo, clip_spec, workers, prefetch=max(2, 2 * workers)):
        bar.update(1)
        if error is not None:
            reason, _, hint = error.partition("|")
            summary.failures.append(Failure(path, "decode", reason, hint))
            continue
        try:
            encode_started = time.perf_counter()
            vectors = encoder.encode(frames, batch_size=batch_size)
            estimate.observe(len(frames), time.perf_counter() - encode_started)
        except MotionMatchError:
            raise  # a configuration problem (weights, parameters): stop, it would fail for every video
        except Exception as err:
            summary.failures.append(Failure(path, "encode", f"{type(err).__name__}: {err}",
                                            "check the clip size and the encoder settings"))
            continue
        row = wanted[path]
        _write_part(out_dir, row, fingerprint, windows, vectors, encoder.encoder_id)
        summary.embedded += 1
        summary.clips_embedded += len(windows)
    bar.close()
    return _finish(out_dir, summary, started)


def start_extraction(manifest: pd.DataFrame, encoder, out_dir: Path, clip_spec: ClipSpec | None,
                     window_spec: WindowSpec | None, batch_size: int, overwrite: bool, encoder_note: str,
                     discovery_failures: Sequence[Failure] = (), extra_meta: dict | None = None):
    """Check the settings, write extract_meta.json, and start the summary; shared by the local and Ray paths.

    Returns ``(clip_spec, manifest, summary, started)``. ``extra_meta`` (e.g. ``{"ray": ...}``) is recorded
    too; its keys must be in ``table.META_NOTE_KEYS`` so runs with and without it resume each other.
    """
    if batch_size <= 0:
        raise ParameterError(f"batch_size must be > 0, got {batch_size}")
    if clip_spec is None and window_spec is not None:  # the measured dense-window default
        clip_spec = ClipSpec(frames_per_clip=DEFAULT_WINDOW_FRAMES, frame_stride=DEFAULT_WINDOW_FRAME_STRIDE)
    clip_spec = clip_spec or ClipSpec(frames_per_clip=encoder.frames_per_clip)
    tubelet = int(encoder.preprocessing().get("tubelet_size", 1) or 1)
    if clip_spec.frames_per_clip % tubelet:
        raise ParameterError(
            f"frames_per_clip={clip_spec.frames_per_clip} is not a multiple of the encoder's tubelet size {tubelet}; "
            f"use e.g. {tubelet * max(1, clip_spec.frames_per_clip // tubelet)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"encoder_id": encoder.encoder_id, "preprocessing": encoder.preprocessing(), "clip_spec": asdict(clip_spec)}
    if window_spec is not None:
        meta["windows"] = asdict(window_spec)
    if encoder_note:
        meta["encoder_note"] = encoder_note
    meta.update(extra_meta or {})
    _check_run_meta(out_dir, json.loads(json.dumps(meta)), overwrite)

    manifest = normalise_manifest(manifest).drop_duplicates("path")
    summary = ExtractSummary(out_dir=str(out_dir), encoder_id=encoder.encoder_id, videos_total=len(manifest))
    summary.failures.extend(discovery_failures)
    return clip_spec, manifest, summary, time.perf_counter()


def plan_todo(manifest: pd.DataFrame, out_dir: Path, prune: bool, summary: ExtractSummary) -> tuple[dict, list[str]]:
    """Clips per video: ``({path: manifest row}, paths not yet done)``; counts the done ones, prunes gone ones."""
    wanted = {}
    todo: list[str] = []
    for row in manifest.itertuples(index=False):
        wanted[row.path] = row
        part = _part_path(out_dir, row.path)
        if part.exists() and _part_is_current(part, row.path):
            summary.skipped_done += 1
        else:
            todo.append(row.path)
    if prune:
        keep = {_part_path(out_dir, p).name for p in wanted}
        for part in parts_dir(out_dir).glob("*.parquet"):
            if part.name not in keep:
                part.unlink()
    return wanted, todo


def _finish(out_dir: Path, summary: ExtractSummary, started: float) -> ExtractSummary:
    """Count the failures, write failures.csv and summary.json."""
    summary.failed = len([f for f in summary.failures if f.stage in ("decode", "encode")])
    summary.seconds = time.perf_counter() - started
    write_failures(out_dir, summary.failures)
    (out_dir / "summary.json").write_text(json.dumps(summary.as_dict(), indent=2))
    return summary


def _part_is_current(part: Path, video_path: str) -> bool:
    """A finished part is reused only if the file's content has not changed since."""
    try:
        stored = pd.read_parquet(part, columns=["video_fingerprint"])["video_fingerprint"]
        return len(stored) > 0 and stored.iloc[0] == fingerprint_file(video_path)
    except (VideoError, OSError):
        return False
    except Exception:  # a part cut short by a crash: recompute it
        return False


def _write_part(out_dir: Path, row, fingerprint: str, windows, vectors: np.ndarray, encoder_id: str,
                target: Path | None = None) -> None:
    records = []
    for window, vector in zip(windows, vectors):
        records.append({
            "clip_id": make_clip_id(row.path, window.clip_index, encoder_id),
            "video_path": row.path,
            "video_fingerprint": fingerprint,
            "clip_index": int(window.clip_index),
            "start_s": float(window.start_s),
            "end_s": float(window.end_s),
            "padded_frames": int(window.padded_frames),
            "label": row.label, "domain": row.domain, "group": row.group, "split": row.split,
            "encoder_id": encoder_id,
            "embedding": np.asarray(vector, dtype=np.float32),
        })
    frame = pd.DataFrame(records, columns=list(TABLE_COLUMNS))
    target = target or _part_path(out_dir, row.path)
    temporary = target.with_name(target.name + ".tmp")
    frame.to_parquet(temporary, index=False)
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, target)


# ----------------------------------------------------------------------------- dense windows (long videos)
PLAN_SUFFIX = ".plan.json"  # parts/<key>.plan.json: a video's windows, notes and fingerprint, written before its parts


def _chunk_path(out_dir: Path, video_path: str, chunk: int) -> Path:
    """parts/<key>.c<chunk>.parquet: one part per chunk of windows (``load_embeddings`` globs parts/*.parquet)."""
    return _part_path(out_dir, video_path).with_suffix(f".c{chunk:05d}.parquet")


def _plan_path(out_dir: Path, video_path: str) -> Path:
    return _part_path(out_dir, video_path).with_suffix(PLAN_SUFFIX)


def _video_files(out_dir: Path, video_path: str) -> list[Path]:
    """The plan and every chunk part of one video."""
    key = _part_path(out_dir, video_path).stem
    return [p for p in parts_dir(out_dir).glob(key + ".*") if p.name.endswith((".parquet", PLAN_SUFFIX))]


def _load_plan(out_dir: Path, video_path: str, fingerprint: str) -> dict | None:
    """The stored plan of a video whose content has not changed; a stale or broken plan and its parts are removed."""
    path = _plan_path(out_dir, video_path)
    if not path.exists():
        return None
    try:
        plan = json.loads(path.read_text())
        if plan.get("video_fingerprint") == fingerprint:
            plan["windows"] = [ClipWindow(w[0], tuple(w[1]), w[2], w[3], w[4]) for w in plan["windows"]]
            return plan
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        pass
    for stale in _video_files(out_dir, video_path):  # the file changed (or the plan is unreadable): start it again
        stale.unlink()
    return None


def _make_plan(out_dir: Path, video_path: str, fingerprint: str, clip_spec: ClipSpec, window_spec: WindowSpec) -> dict:
    """Detect shots, place the windows and store the plan (atomically) before any part is written."""
    return _store_plan(out_dir, _compute_plan(video_path, fingerprint, clip_spec, window_spec))


def _compute_plan(video_path: str, fingerprint: str, clip_spec: ClipSpec, window_spec: WindowSpec) -> dict:
    """A video's plan as JSON-ready values (shots, windows, notes); the Ray path runs this in its tasks."""
    _, info, stamps = open_with_timestamps(video_path, "pyav")  # the backend iter_frames streams with
    shots = None if window_spec.shots == NO_SHOTS else detect_shots(video_path, window_spec.shots)
    windows, notes = plan_windows(info, clip_spec, window_spec, stamps, shots)
    return {"video_path": video_path, "video_fingerprint": fingerprint, "notes": notes,
            "cuts_s": [shot.start_s for shot in (shots or [])[1:]],  # where the detected shots start
            "windows": [[w.clip_index, list(w.frame_indices), w.start_s, w.end_s, w.padded_frames] for w in windows]}


def _store_plan(out_dir: Path, plan: dict) -> dict:
    """Write a computed plan atomically; returns it with its windows as ClipWindow objects."""
    video_path = plan["video_path"]
    target = _plan_path(out_dir, video_path)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(plan))
    os.replace(temporary, target)
    return {**plan, "windows": [ClipWindow(w[0], tuple(w[1]), w[2], w[3], w[4]) for w in plan["windows"]]}


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
    one sequential stream per video (:func:`~motionmatch.clips.iter_window_clips`), so memory does
    not grow with the duration. Notes on padded windows go to failures.csv with stage ``window``
    (not counted as failures).
    """
    rows = {row.path: row for row in manifest.itertuples(index=False)}
    if prune:
        keep = {_part_path(out_dir, p).stem for p in rows}
        for part in parts_dir(out_dir).iterdir():
            if part.name.split(".")[0] not in keep:
                part.unlink()
    per_chunk = window_spec.windows_per_chunk
    estimate = _dense_estimate(list(rows), clip_spec, window_spec, encoder, print_fn)
    bar = tqdm(total=len(rows), desc=f"extract [{encoder.encoder_id}]", unit="video", disable=not progress)
    for path, row in rows.items():
        bar.update(1)
        try:
            fingerprint = fingerprint_file(path)
            planning = time.perf_counter()
            plan = _load_plan(out_dir, path, fingerprint) or _make_plan(out_dir, path, fingerprint, clip_spec, window_spec)
            estimate.note_setup(time.perf_counter() - planning, len(plan["windows"]))
        except VideoError as err:
            summary.failures.append(Failure(path, "decode", err.reason, err.hint))
            continue
        windows = plan["windows"]
        summary.failures.extend(Failure(path, "window", note, "nothing to do: recorded so the padding is known")
                                for note in plan["notes"])
        n_chunks = -(-len(windows) // per_chunk)
        chunk = next((c for c in range(n_chunks) if not _chunk_path(out_dir, path, c).exists()), n_chunks)
        if chunk == n_chunks:
            summary.skipped_done += 1
            continue
        if chunk:
            print_fn(f"resuming {path} at chunk {chunk}/{n_chunks} (window {chunk * per_chunk} of {len(windows)})")
        try:
            written = _embed_chunks(out_dir, row, fingerprint, windows, chunk, per_chunk, encoder, batch_size, estimate)
        except MotionMatchError as err:
            if not isinstance(err, VideoError):
                raise  # a configuration problem (weights, parameters): stop, it would fail for every video
            summary.failures.append(Failure(path, "decode", err.reason, err.hint))
            continue
        except _EncodeFailed as err:
            summary.failures.append(Failure(path, "encode", str(err), "check the clip size and the encoder settings"))
            continue
        summary.embedded += 1
        summary.clips_embedded += written
    bar.close()


class _EncodeFailed(RuntimeError):
    """The encoder raised something other than a MotionMatchError on one batch."""


def _embed_chunks(out_dir: Path, row, fingerprint: str, windows: list, chunk: int, per_chunk: int, encoder,
                  batch_size: int, estimate: ExtractionEstimate) -> int:
    """Encode windows from ``chunk`` on, writing each chunk's part as soon as it is complete; returns windows written."""
    done_windows, done_vectors, batch, written = [], [], [], 0

    def encode(clips) -> None:
        encode_started = time.perf_counter()
        try:
            vectors = encoder.encode([c.frames for c in clips], batch_size=batch_size)
        except MotionMatchError:
            raise
        except Exception as err:
            raise _EncodeFailed(f"{type(err).__name__}: {err}") from err
        estimate.observe(len(clips), time.perf_counter() - encode_started)
        done_windows.extend(c.window for c in clips)
        done_vectors.extend(vectors)

    for clip in prefetched_clips(iter_window_clips(row.path, windows, start_window=chunk * per_chunk), depth=2 * batch_size):
        batch.append(clip)
        chunk_end = min(len(windows), (chunk + 1) * per_chunk)
        if len(batch) == batch_size or clip.window.clip_index == chunk_end - 1:
            encode(batch)
            batch = []
        if clip.window.clip_index == chunk_end - 1:
            _write_part(out_dir, row, fingerprint, done_windows, np.asarray(done_vectors), encoder.encoder_id,
                        target=_chunk_path(out_dir, row.path, chunk))
            written += len(done_windows)
            done_windows, done_vectors, chunk = [], [], chunk + 1
    return written


# ----------------------------------------------------------------------------- indexing
@dataclass
class IndexSummary:
    collection: str
    uri: str
    rows_before: int
    rows_after: int
    videos_upserted: int
    videos_unchanged: int
    videos_replaced: int
    videos_removed: int

    def __str__(self) -> str:
        return (f"{self.collection} @ {self.uri}: {self.rows_before} -> {self.rows_after} rows; "
                f"{self.videos_upserted} videos written ({self.videos_replaced} changed), "
                f"{self.videos_unchanged} unchanged, {self.videos_removed} removed")


def index_embeddings(table: pd.DataFrame, store, encoder_id: str, preprocessing: dict,
                     remove_missing: bool = False, batch_size: int = 512, extra_vectors: dict | None = None,
                     clip_spec: dict | None = None) -> IndexSummary:
    """Sync the embeddings table into the store: idempotent, fingerprint-aware.

    Unchanged videos are not rewritten; a video whose content fingerprint changed has its
    old rows deleted before the new ones are written (it may have fewer clips now);
    with ``remove_missing`` rows of videos absent from the table are dropped.
    """
    if len(table) == 0:
        raise ParameterError("the embeddings table is empty — nothing to index")
    encoders_in_table = sorted(set(table["encoder_id"]))
    if encoders_in_table != [encoder_id]:
        raise EncoderMismatchError(f"the table holds embeddings from {encoders_in_table}, but indexing was asked "
                                   f"for {encoder_id}; extract again with the same encoder")
    dim = int(len(table["embedding"].iloc[0]))
    store.ensure_collection(encoder_id=encoder_id, dim=dim, preprocessing=preprocessing, extra_vectors=extra_vectors,
                            clip_spec=clip_spec)
    rows_before = store.count()
    existing = store.videos()
    stored_fp = dict(zip(existing["video_path"], existing["video_fingerprint"])) if len(existing) else {}
    table_fp = table.groupby("video_path", sort=False)["video_fingerprint"].first()

    stored_n = dict(zip(existing["video_path"], existing["n_clips"])) if len(existing) else {}
    table_n = table.groupby("video_path", sort=False).size()
    # a changed fingerprint, or as many clips stored as the table has (more: rewrite it whole)
    changed = [p for p, fp in table_fp.items() if p in stored_fp and (stored_fp[p] != fp or stored_n[p] > table_n[p])]
    new = [p for p in table_fp.index if p not in stored_fp]
    # fewer clips stored than the table has: a run killed mid-upsert, completed by upserting its rows again
    partial = [p for p, fp in table_fp.items() if p in stored_fp and stored_fp[p] == fp and stored_n[p] < table_n[p]]
    unchanged = len(table_fp) - len(changed) - len(new) - len(partial)
    removed = [p for p in stored_fp if p not in table_fp.index] if remove_missing else []
    if changed or removed:
        store.delete_videos(changed + removed)
    to_write = table[table["video_path"].isin(set(changed) | set(new) | set(partial))]
    if len(to_write):
        store.upsert(to_write, batch_size=batch_size, encoder_id=encoder_id, preprocessing=preprocessing)
    return IndexSummary(store.collection, store.uri, rows_before, store.count(),
                        len(changed) + len(new) + len(partial), unchanged, len(changed), len(removed))
