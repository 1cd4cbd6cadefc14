"""The bookkeeping of an extraction run, shared by the local path and the Ray path.

Extraction writes one small parquet file per finished video into an output folder
(``<out>/parts/<key>.parquet``), atomically (write to a temporary name, then rename). A run that is
killed and started again skips every video whose part exists and whose content fingerprint still
matches, so nothing finished is recomputed and no row is written twice.

Dense windows over long videos (``motionmatch extract --stride-s``) write ``parts/<key>.plan.json`` (the
video's fingerprint, detected cuts, windows and notes) and then one part per chunk of windows,
``parts/<key>.c00000.parquet``, ``.c00001`` ...; the video is done when its last chunk exists, and a
killed run resumes at the first missing chunk.

Bad inputs never stop a run: each is recorded in ``failures.csv`` with the file, the stage and the
reason; the summary counts embedded, skipped and failed videos. The failure words live here once
(:data:`ENCODE_HINT`, :data:`DECODER_CRASH_HINT`, :data:`WINDOW_NOTE_HINT`, :func:`decode_failure`).
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from ..data.sources import Failure, normalise_manifest
from ..errors import ParameterError, VideoError
from ..table import (COVERAGE_COLUMN, EXTRACT_META, FAILURE_COLUMNS, FRAME_COLUMNS, META_NOTE_KEYS, TABLE_COLUMNS,
                     make_clip_id, parts_dir, read_extract_meta)
from ..video.clips import ClipSpec, ClipWindow, open_with_timestamps
from ..video.decode import fingerprint_file
from ..video.fingerprint import pack
from ..video.shots import detect_shots
from ..video.windows import NO_SHOTS, WindowSpec, dense_clip_spec, plan_windows

ENCODE_HINT = "check the clip size and the encoder settings"
DECODER_CRASH_HINT = "re-encode the file or remove it"
WINDOW_NOTE_HINT = "nothing to do: recorded so the padding is known"
PLAN_SUFFIX = ".plan.json"  # parts/<key>.plan.json: a video's windows, notes and fingerprint, written before its parts


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
    clips_no_person: int = 0  # clips embedded with coverage 0 (the pose channel saw nobody): left out of its rankings
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
        if self.clips_no_person:
            text += (f"\nnotes: {self.clips_no_person} clips with no person (coverage 0: recorded in the 'coverage' "
                     "column, left out of pose rankings)")
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


def part_path(out_dir: Path, video_path: str) -> Path:
    return parts_dir(out_dir) / (hashlib.sha1(video_path.encode("utf-8")).hexdigest()[:20] + ".parquet")


def check_run_meta(out_dir: Path, meta: dict, overwrite: bool) -> None:
    meta_path = out_dir / EXTRACT_META
    if meta_path.exists() and not overwrite:
        previous = read_extract_meta(out_dir)
        decisive = lambda m: {k: v for k, v in m.items() if k not in META_NOTE_KEYS}  # noqa: E731
        if decisive(previous) != decisive(meta):
            differ = _differences(decisive(previous), decisive(meta))
            raise ParameterError(
                f"{out_dir} holds embeddings made with different settings "
                f"(encoder {previous.get('encoder_id')}, clips {previous.get('clip_spec')}); "
                f"this run asks for encoder {meta['encoder_id']}, clips {meta['clip_spec']}. "
                f"What differs: {'; '.join(differ[:4])}{' ...' if len(differ) > 4 else ''}. "
                "Use another output folder, or pass overwrite=True (--overwrite) to start again.")
    if overwrite and parts_dir(out_dir).exists():
        for part in [*parts_dir(out_dir).glob("*.parquet"), *parts_dir(out_dir).glob("*" + PLAN_SUFFIX)]:
            part.unlink()
    parts_dir(out_dir).mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True))


def _differences(old: Any, new: Any, where: str = "") -> list[str]:
    """Where two run descriptions differ: ``"key.sub: old -> new"``, nested dicts followed."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{where}.{key}" if where else str(key)
            if key not in old:
                out.append(f"{path}: (absent) -> {new[key]!r}")
            elif key not in new:
                out.append(f"{path}: {old[key]!r} -> (absent)")
            else:
                out += _differences(old[key], new[key], path)
        return out
    return [] if old == new else [f"{where}: {old!r} -> {new!r}"]


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
        clip_spec = dense_clip_spec()
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
    check_run_meta(out_dir, json.loads(json.dumps(meta)), overwrite)

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
        part = part_path(out_dir, row.path)
        if part.exists() and part_is_current(part, row.path):
            summary.skipped_done += 1
        else:
            todo.append(row.path)
    if prune:
        keep = {part_path(out_dir, p).name for p in wanted}
        for part in parts_dir(out_dir).glob("*.parquet"):
            if part.name not in keep:
                part.unlink()
    return wanted, todo


def finish(out_dir: Path, summary: ExtractSummary, started: float) -> ExtractSummary:
    """Count the failures, write failures.csv and summary.json."""
    summary.failed = len([f for f in summary.failures if f.stage in ("decode", "encode")])
    summary.seconds = time.perf_counter() - started
    write_failures(out_dir, summary.failures)
    (out_dir / "summary.json").write_text(json.dumps(summary.as_dict(), indent=2))
    return summary


def part_is_current(part: Path, video_path: str) -> bool:
    """A finished part is reused only if the file's content has not changed since."""
    try:
        stored = pd.read_parquet(part, columns=["video_fingerprint"])["video_fingerprint"]
        return len(stored) > 0 and stored.iloc[0] == fingerprint_file(video_path)
    except (VideoError, OSError):
        return False
    except Exception:  # a part cut short by a crash: recompute it
        return False


def encode_clips(encoder, clips, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(vectors, coverage)`` of a batch of clips: ``encode_with_coverage`` when the encoder has it (the pose
    channel: share of frames with a person), else ``encode`` with coverage 1.0 (an encoder that sees every clip)."""
    if hasattr(encoder, "encode_with_coverage"):
        vectors, coverage = encoder.encode_with_coverage(clips, batch_size=batch_size)
        return np.asarray(vectors), np.asarray(coverage, dtype=np.float32).reshape(-1)
    vectors = np.asarray(encoder.encode(clips, batch_size=batch_size))
    return vectors, np.ones(len(vectors), dtype=np.float32)


def write_part(out_dir: Path, row, fingerprint: str, windows, vectors: np.ndarray, encoder_id: str,
                target: Path | None = None, blocks=None, coverage: np.ndarray | None = None) -> None:
    """One part (a video's clips, or a chunk of its windows), atomically; ``blocks`` (one
    :class:`~motionmatch.video.clips.FrameBlock` per window, or None) add the :data:`FRAME_COLUMNS`;
    ``coverage`` (one float per clip, or None) adds the ``coverage`` column."""
    records = []
    for index, (window, vector) in enumerate(zip(windows, vectors)):
        frames = {}
        if blocks is not None:
            block = blocks[index]
            frames = {"frame_times": [] if block is None else block.times.astype(np.float64).tolist(),
                      "frame_thumbs": b"" if block is None else pack(block.thumbs)}
        records.append({**frames,
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
            **({} if coverage is None else {COVERAGE_COLUMN: float(coverage[index])}),
        })
    frame = pd.DataFrame(records, columns=list(TABLE_COLUMNS) + (list(FRAME_COLUMNS) if blocks is not None else [])
                         + ([COVERAGE_COLUMN] if coverage is not None else []))
    target = target or part_path(out_dir, row.path)
    temporary = target.with_name(target.name + ".tmp")
    frame.to_parquet(temporary, index=False)
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, target)


def write_failures(out_dir: str | Path, failures: Iterable[Failure]) -> Path:
    path = Path(out_dir) / "failures.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(FAILURE_COLUMNS))
        writer.writeheader()
        for failure in failures:
            writer.writerow(asdict(failure))
    return path


PLAN_SUFFIX = ".plan.json"  # parts/<key>.plan.json: a video's windows, notes and fingerprint, written before its parts


def chunk_path(out_dir: Path, video_path: str, chunk: int) -> Path:
    """parts/<key>.c<chunk>.parquet: one part per chunk of windows (``load_embeddings`` globs parts/*.parquet)."""
    return part_path(out_dir, video_path).with_suffix(f".c{chunk:05d}.parquet")


def plan_path(out_dir: Path, video_path: str) -> Path:
    return part_path(out_dir, video_path).with_suffix(PLAN_SUFFIX)


def video_files(out_dir: Path, video_path: str) -> list[Path]:
    """The plan and every chunk part of one video."""
    key = part_path(out_dir, video_path).stem
    return [p for p in parts_dir(out_dir).glob(key + ".*") if p.name.endswith((".parquet", PLAN_SUFFIX))]


def load_plan(out_dir: Path, video_path: str, fingerprint: str) -> dict | None:
    """The stored plan of a video whose content has not changed; a stale or broken plan and its parts are removed."""
    path = plan_path(out_dir, video_path)
    if not path.exists():
        return None
    try:
        plan = json.loads(path.read_text())
        if plan.get("video_fingerprint") == fingerprint:
            plan["windows"] = [ClipWindow(w[0], tuple(w[1]), w[2], w[3], w[4]) for w in plan["windows"]]
            return plan
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        pass
    for stale in video_files(out_dir, video_path):  # the file changed (or the plan is unreadable): start it again
        stale.unlink()
    return None


def make_plan(out_dir: Path, video_path: str, fingerprint: str, clip_spec: ClipSpec, window_spec: WindowSpec) -> dict:
    """Detect shots, place the windows and store the plan (atomically) before any part is written."""
    return store_plan(out_dir, compute_plan(video_path, fingerprint, clip_spec, window_spec))


def compute_plan(video_path: str, fingerprint: str, clip_spec: ClipSpec, window_spec: WindowSpec) -> dict:
    """A video's plan as JSON-ready values (shots, windows, notes); the Ray path runs this in its tasks."""
    _, info, stamps = open_with_timestamps(video_path, "pyav")  # the backend iter_frames streams with
    shots = None if window_spec.shots == NO_SHOTS else detect_shots(video_path, window_spec.shots)
    windows, notes = plan_windows(info, clip_spec, window_spec, stamps, shots)
    return {"video_path": video_path, "video_fingerprint": fingerprint, "notes": notes,
            "cuts_s": [shot.start_s for shot in (shots or [])[1:]],  # where the detected shots start
            "windows": [[w.clip_index, list(w.frame_indices), w.start_s, w.end_s, w.padded_frames] for w in windows]}


def store_plan(out_dir: Path, plan: dict) -> dict:
    """Write a computed plan atomically; returns it with its windows as ClipWindow objects."""
    video_path = plan["video_path"]
    target = plan_path(out_dir, video_path)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(plan))
    os.replace(temporary, target)
    return {**plan, "windows": [ClipWindow(w[0], tuple(w[1]), w[2], w[3], w[4]) for w in plan["windows"]]}



def prune_dense(out_dir: Path, video_paths) -> None:
    """Dense mode's ``--prune``: delete every part and plan of a video not in ``video_paths``."""
    keep = {part_path(out_dir, p).stem for p in video_paths}
    for part in parts_dir(out_dir).iterdir():
        if part.name.split(".")[0] not in keep:
            part.unlink()


def missing_chunks(out_dir: Path, video_path: str, plan: dict, per_chunk: int, summary: ExtractSummary,
                   print_fn=print) -> list[int]:
    """The chunks of a planned video still to embed; records its window notes, counts it done when none is
    missing, and says when a video resumes inside (the same words on the local and the Ray path)."""
    windows = plan["windows"]
    summary.failures.extend(Failure(video_path, "window", note, WINDOW_NOTE_HINT) for note in plan["notes"])
    n_chunks = -(-len(windows) // per_chunk)
    missing = [c for c in range(n_chunks) if not chunk_path(out_dir, video_path, c).exists()]
    if not missing:
        summary.skipped_done += 1
    elif missing[0] > 0:
        print_fn(f"resuming {video_path} at chunk {missing[0]}/{n_chunks} (window {missing[0] * per_chunk} of "
                 f"{len(windows)})")
    return missing


def decode_failure(error: BaseException) -> str:
    """``"reason|hint"`` of a decoding error (a VideoError's own, else an unexpected decoder error)."""
    if isinstance(error, VideoError):
        return f"{error.reason}|{error.hint}"
    return f"unexpected decoder error: {type(error).__name__}: {error}|{DECODER_CRASH_HINT}"


def failure_from(path: str, stage: str, error: str) -> Failure:
    """A Failure from a ``"reason|hint"`` string."""
    reason, _, hint = error.partition("|")
    return Failure(path, stage, reason, hint)


__all__ = ["ExtractSummary", "ENCODE_HINT", "DECODER_CRASH_HINT", "WINDOW_NOTE_HINT", "PLAN_SUFFIX", "part_path",
           "chunk_path", "plan_path", "check_run_meta", "start_extraction", "plan_todo", "finish", "part_is_current",
           "encode_clips", "write_part", "write_failures", "load_plan", "make_plan", "compute_plan", "store_plan", "prune_dense",
           "missing_chunks", "decode_failure", "failure_from"]
