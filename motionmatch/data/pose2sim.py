"""The real cross-camera sample: Pose2Sim's demo, people filmed by 4 synchronised cameras, cut into labelled windows.

Where it comes from. The ``pose2sim`` wheel on PyPI (version :data:`POSE2SIM_VERSION`, BSD-3-Clause, copyright
perfanalytics) ships its demo videos: ``Pose2Sim/Demo_SinglePerson/videos/cam0*.mp4`` and
``Pose2Sim/Demo_Batch/Trial_*/videos/cam0*.mp4`` (and ``Demo_MultiPerson``). The wheel is fetched once with
``pip download --no-deps`` into ``<cache_dir>/pose2sim/`` (config's ``cache_dir``, ``MOTIONMATCH_CACHE_DIR``) and
checked against the sha256 recorded here; a wheel that fails the check is deleted and fetched again.

What is in it (measured on 0.10.49): two distinct trials, each 4 cameras x 100 frames at 60 fps (1.67 s), portrait
1080x1920 (cam01/cam02 of Trial_1 are 1080 wide, the others 1088). ``Demo_SinglePerson`` is byte for byte
``Demo_Batch/Trial_1`` and ``Demo_MultiPerson`` is ``Trial_2``: duplicates are found by sha256 and dropped, so the
sample holds Trial_1 (one man) and Trial_2. Trial_2 is not new movement: its man replays Trial_1's man frame for frame
(slightly warped frames; BlazePose's landmarks of the two, same camera and frame, are 8 cm apart at the median, 36 cm
at 30 frames apart) with a second person, a woman, added to the scene. So Trial_1:wK and Trial_2:wK show the same
movement of the man, and only the woman tells them apart.

How it is cut. Every camera of a trial is cut at the same times: window ``k`` holds the frames whose real timestamps
lie in ``[k * window_s, (k + 1) * window_s)`` (a quarter-frame tolerance absorbs timestamp rounding), only complete
windows within the shortest camera, so a window is the same moment in every camera. The cameras' frame rates and
frame counts are compared first; when they disagree the cut is still by time (each camera keeps its own frames of
that time span) and ``pose2sim_sample.json`` records the disagreement under ``sync``. Frames are downscaled so their
longer side is at most ``long_side`` pixels (960 by default: halves the decode and pose cost; BlazePose crops the
person to 256x256 anyway) and written as H.264 with :func:`motionmatch.video.write_video`.

The default window is 0.55 s (33 frames at 60 fps), not 2 s: the videos are only 1.67 s long. It gives 3 windows per
trial, each long enough for two non-overlapping 16-frame clips (frames 0-15 and 17-32), which the same-camera
protocol of ``bench/bench_pose.py`` needs.

Manifest (``manifest.csv``, paths relative to it): ``label`` = trial and window (``Trial_1:w02``), ``domain`` = the
camera (``cam02``), ``group`` = the window alone (``w02``), ``split`` = "". Why not trial:window for the group: a
split must never put one moment in train and test, and Trial_1:w02 and Trial_2:w02 are the same moment of the man's
movement. (Retrieval across cameras must then exclude by video, not by group: every clip relevant to a query is in
its group.)
``pose2sim_sample.json`` records the source wheel, its sha256, the licence, the settings and every clip cut (its
trial, camera, window, frame range and times). A second call with the same settings finds it and does nothing.
"""
from __future__ import annotations

import csv
import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import MotionMatchError, ParameterError
from ..table import MANIFEST_COLUMNS
from ..validation import check_scalar

POSE2SIM_VERSION = "0.10.49"
POSE2SIM_WHEEL = f"pose2sim-{POSE2SIM_VERSION}-py3-none-any.whl"
POSE2SIM_WHEEL_SHA256 = "403e0dc4065898ba6a595e72a8970950310979253d60e24c2e00b16b36bf21e1"
POSE2SIM_WHEEL_MB = 51
POSE2SIM_URL = f"https://pypi.org/project/pose2sim/{POSE2SIM_VERSION}/"
LICENCE = "BSD-3-Clause"
LICENCE_MEMBER = f"pose2sim-{POSE2SIM_VERSION}.dist-info/licenses/LICENSE"
# Demo_Batch first, so the trial names that survive deduplication are Demo_Batch's ("Trial_1", "Trial_2").
VIDEO_PATTERNS = (re.compile(r"^Pose2Sim/Demo_Batch/(?P<trial>Trial_\d+)/videos/(?P<camera>cam\d+)\.mp4$"),
                  re.compile(r"^Pose2Sim/(?P<trial>Demo_SinglePerson)/videos/(?P<camera>cam\d+)\.mp4$"),
                  re.compile(r"^Pose2Sim/(?P<trial>Demo_MultiPerson)/videos/(?P<camera>cam\d+)\.mp4$"))
DEFAULT_WINDOW_S = 0.55
DEFAULT_LONG_SIDE = 960
SAMPLE_FORMAT = 2  # bump when the layout or the cutting rule changes: cached samples are then rewritten
META_NAME = "pose2sim_sample.json"
PIP_TIMEOUT_S = 900.0


class SampleUnavailableError(MotionMatchError):
    """The Pose2Sim wheel could not be fetched or does not match its recorded sha256."""


# ----------------------------------------------------------------------------- the wheel
def pose2sim_cache_dir() -> Path:
    """Where the wheel is kept: ``<cache_dir>/pose2sim``."""
    from ..config import setting

    return Path(setting("cache_dir")).expanduser() / "pose2sim"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manual_steps(folder: Path) -> str:
    return (f"To put it there by hand: on a machine with internet access run `python -m pip download --no-deps "
            f"pose2sim=={POSE2SIM_VERSION} -d pose2sim_wheel` and copy pose2sim_wheel/{POSE2SIM_WHEEL} to {folder}/ "
            f"(MOTIONMATCH_CACHE_DIR moves the cache), or pass wheel=/path/to/{POSE2SIM_WHEEL}.")


def fetch_pose2sim_wheel(print_fn: Callable[[str], Any] = print) -> Path:
    """The verified ``pose2sim`` wheel in the cache, downloaded with pip first when missing or corrupt."""
    folder = pose2sim_cache_dir()
    wheel = folder / POSE2SIM_WHEEL
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SampleUnavailableError(f"cannot create the cache folder {folder} ({error}); set MOTIONMATCH_CACHE_DIR "
                                     "to a writable folder") from error
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one download at a time; a second caller finds the wheel in place
        if wheel.is_file():
            if _sha256(wheel) == POSE2SIM_WHEEL_SHA256:
                return wheel
            print_fn(f"cached {wheel} does not match its sha256; removing it and fetching it again")
            wheel.unlink()
        print_fn(f"fetching pose2sim=={POSE2SIM_VERSION} from PyPI ({POSE2SIM_WHEEL_MB} MB) for its demo videos...")
        with tempfile.TemporaryDirectory(prefix="motionmatch-pose2sim-", dir=folder) as download_dir:
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                       f"pose2sim=={POSE2SIM_VERSION}", "-d", download_dir]
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
                                      stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired as error:
                raise SampleUnavailableError(f"`pip download pose2sim=={POSE2SIM_VERSION}` did not finish within "
                                             f"{PIP_TIMEOUT_S:.0f} s. " + _manual_steps(folder)) from error
            downloaded = Path(download_dir) / POSE2SIM_WHEEL
            if done.returncode != 0 or not downloaded.is_file():
                tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:]) or "no output"
                raise SampleUnavailableError(f"could not fetch the Pose2Sim demo: `pip download --no-deps "
                                             f"pose2sim=={POSE2SIM_VERSION}` failed (exit {done.returncode}: {tail}). "
                                             + _manual_steps(folder))
            digest = _sha256(downloaded)
            if digest != POSE2SIM_WHEEL_SHA256:
                raise SampleUnavailableError(f"{POSE2SIM_WHEEL} from PyPI has sha256 {digest}, not the recorded "
                                             f"{POSE2SIM_WHEEL_SHA256}: the download is damaged or the release "
                                             "changed; retry, and if it persists record the new checksum here")
            os.replace(downloaded, wheel)
        print_fn(f"  wrote {wheel} (sha256 verified)")
    return wheel


def _check_wheel(wheel: Path) -> Path:
    if not wheel.is_file():
        raise ParameterError(f"{wheel}: no such file; pass the path of {POSE2SIM_WHEEL} or wheel=None to fetch it")
    digest = _sha256(wheel)
    if digest != POSE2SIM_WHEEL_SHA256:
        raise SampleUnavailableError(f"{wheel} has sha256 {digest}, not {POSE2SIM_WHEEL_SHA256} (pose2sim "
                                     f"{POSE2SIM_VERSION}); download that release again or pass wheel=None")
    return wheel


# ----------------------------------------------------------------------------- what to cut
def demo_videos(wheel: Path) -> tuple[dict[str, dict[str, str]], list[dict[str, str]]]:
    """The demo videos of the wheel without duplicates: ({trial: {camera: member}}, [dropped duplicate])."""
    kept: dict[str, dict[str, str]] = {}
    dropped: list[dict[str, str]] = []
    seen: dict[str, str] = {}  # sha256 -> member kept
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        for pattern in VIDEO_PATTERNS:
            for member in sorted(n for n in names if pattern.match(n)):
                match = pattern.match(member)
                digest = hashlib.sha256(archive.read(member)).hexdigest()
                if digest in seen:
                    dropped.append({"member": member, "same_bytes_as": seen[digest], "sha256": digest})
                    continue
                seen[digest] = member
                kept.setdefault(match["trial"], {})[match["camera"]] = member
    if not kept:
        raise SampleUnavailableError(f"{wheel} holds no Pose2Sim/Demo_*/videos/cam*.mp4; is it pose2sim "
                                     f"{POSE2SIM_VERSION}?")
    return kept, dropped


def _window_indices(timestamps: np.ndarray, fps: float, window_s: float, n_windows: int) -> list[np.ndarray]:
    """Frame indices of each window ``[k w, (k + 1) w)`` by real timestamps, with a quarter-frame tolerance."""
    tolerance = 0.25 / fps
    shifted = timestamps + tolerance
    return [np.flatnonzero((shifted >= k * window_s) & (shifted < (k + 1) * window_s)) for k in range(n_windows)]


def _resized(frame: np.ndarray, long_side: int) -> np.ndarray:
    import cv2

    height, width = frame.shape[:2]
    if not long_side or max(height, width) <= long_side:
        return frame
    scale = long_side / max(height, width)
    size = (max(2, int(round(width * scale))), max(2, int(round(height * scale))))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _settings(window_s: float, long_side: int) -> dict[str, Any]:
    return {"format": SAMPLE_FORMAT, "pose2sim_version": POSE2SIM_VERSION, "wheel_sha256": POSE2SIM_WHEEL_SHA256,
            "window_s": window_s, "long_side": long_side}


def _cached(out_dir: Path, settings: dict[str, Any]) -> dict | None:
    """The recorded sample when it was written with ``settings`` and every listed clip is on disk."""
    meta_path, manifest = out_dir / META_NAME, out_dir / "manifest.csv"
    if not meta_path.is_file() or not manifest.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("settings") != settings:
        return None
    clips = meta.get("clips", [])
    return meta if clips and all((out_dir / clip["path"]).is_file() for clip in clips) else None


def _remove_previous(out_dir: Path) -> None:
    """Delete the clips a previous sample with other settings recorded (nothing else in ``out_dir``)."""
    try:
        previous = json.loads((out_dir / META_NAME).read_text())
    except (OSError, ValueError):
        return
    for clip in previous.get("clips", []):
        path = (out_dir / clip["path"]).resolve()
        if out_dir.resolve() in path.parents:
            path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- the sample
def write_pose2sim_sample(out_dir: str | os.PathLike, window_s: float = DEFAULT_WINDOW_S,
                          long_side: int = DEFAULT_LONG_SIDE, wheel: str | os.PathLike | None = None,
                          print_fn: Callable[[str], Any] = print) -> Path:
    """Cut the Pose2Sim demo into labelled windows under ``out_dir``; return its ``manifest.csv``.

    ``window_s``: window length in seconds (every camera cut at the same times). ``long_side``: frames are downscaled
    so their longer side has at most this many pixels (0 keeps the original size). ``wheel``: a local copy of
    ``pose2sim-0.10.49-py3-none-any.whl`` (checked by sha256); None fetches it into the cache with pip.
    Written: ``<trial>/<camera>/<trial>_<camera>_w<k>.mp4``, ``manifest.csv``, ``pose2sim_sample.json`` and the
    source's ``LICENSE-pose2sim.txt``. When the sample with these settings is already there, nothing is done.
    """
    window_s = check_scalar(window_s, "window_s", float, min_value=0, include_min=False)
    long_side = check_scalar(long_side, "long_side", int, min_value=0)
    if 0 < long_side < 64:
        raise ParameterError(f"long_side must be 0 (keep the size) or at least 64 pixels, got {long_side}")
    out_dir = Path(out_dir)
    settings = _settings(window_s, long_side)
    meta = _cached(out_dir, settings)
    if meta is not None:
        print_fn(f"Pose2Sim sample already present: {out_dir / 'manifest.csv'} ({len(meta['clips'])} clips, "
                 f"window {window_s:g} s); nothing to do")
        return out_dir / "manifest.csv"
    wheel_path = _check_wheel(Path(wheel)) if wheel is not None else fetch_pose2sim_wheel(print_fn)
    trials, dropped = demo_videos(wheel_path)
    for duplicate in dropped:
        print_fn(f"  {duplicate['member']} is byte-identical to {duplicate['same_bytes_as']}: dropped")
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_previous(out_dir)
    (out_dir / META_NAME).unlink(missing_ok=True)  # written last: an interrupted run is redone, never half-trusted
    clips, rows, sync = [], [], {}
    with tempfile.TemporaryDirectory(prefix="motionmatch-pose2sim-") as unpacked, \
            zipfile.ZipFile(wheel_path) as archive:
        for trial, cameras in trials.items():
            sources = {camera: Path(archive.extract(member, unpacked)) for camera, member in sorted(cameras.items())}
            trial_clips, trial_sync = _cut_trial(trial, sources, window_s, long_side, out_dir, print_fn)
            clips += trial_clips
            sync[trial] = trial_sync
        licence_text = archive.read(LICENCE_MEMBER).decode("utf-8") if LICENCE_MEMBER in archive.namelist() else ""
    for clip in clips:
        rows.append({"path": clip["path"], "label": f"{clip['trial']}:w{clip['window']:02d}",
                     "domain": clip["camera"], "group": f"w{clip['window']:02d}", "split": ""})
    manifest = out_dir / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(MANIFEST_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    if licence_text:
        (out_dir / "LICENSE-pose2sim.txt").write_text(licence_text, encoding="utf-8")
    meta = {"settings": settings, "source": {"package": "pose2sim", "version": POSE2SIM_VERSION,
                                             "wheel": POSE2SIM_WHEEL, "sha256": POSE2SIM_WHEEL_SHA256,
                                             "url": POSE2SIM_URL, "licence": LICENCE,
                                             "licence_file": "LICENSE-pose2sim.txt" if licence_text else "",
                                             "copyright": "Copyright (c) 2022, perfanalytics"},
            "trials": {trial: sorted(cameras) for trial, cameras in trials.items()},
            "videos": {trial: dict(sorted(cameras.items())) for trial, cameras in trials.items()},
            "duplicates_dropped": dropped, "sync": sync, "window_s": window_s, "long_side": long_side,
            "labels": "label = trial:window (e.g. Trial_1:w02); domain = camera; group = window (w02); split ''",
            "trial_note": "Trial_2's man replays Trial_1's movement frame for frame, with a second person added; "
                          "group is the window alone so that a split never separates Trial_1:wK from Trial_2:wK",
            "clips": clips}
    partial = out_dir / f".{META_NAME}.partial"
    partial.write_text(json.dumps(meta, indent=2))
    os.replace(partial, out_dir / META_NAME)
    print_fn(f"wrote {manifest} ({len(clips)} clips: {len(trials)} trials x cameras x windows of {window_s:g} s)")
    return manifest


def _cut_trial(trial: str, sources: dict[str, Path], window_s: float, long_side: int, out_dir: Path,
               print_fn: Callable[[str], Any]) -> tuple[list[dict], dict]:
    """Write every window of every camera of one trial; return the clips written and the sync check."""
    from ..video import iter_frames, open_video, write_video

    opened = {camera: open_video(path) for camera, path in sources.items()}
    infos = {camera: video.info() for camera, video in opened.items()}
    stamps = {camera: video.timestamps() for camera, video in opened.items()}
    fps = {camera: round(info.fps, 6) for camera, info in infos.items()}
    frames = {camera: info.num_frames for camera, info in infos.items()}
    durations = {camera: info.duration_s for camera, info in infos.items()}
    agree = len(set(fps.values())) == 1 and len(set(frames.values())) == 1
    common_s = min(durations.values())
    n_windows = int(np.floor((common_s + 0.25 / min(fps.values())) / window_s))
    if n_windows < 1:
        raise ParameterError(f"window_s={window_s:g} is longer than {trial}'s videos ({common_s:.3f} s); "
                             f"choose window_s <= {common_s:.2f}")
    note = ("fps and frame counts agree: every camera is cut at the same frame indices" if agree else
            "fps or frame counts differ: each camera is cut at the same times by its own timestamps, windows only "
            f"within the shortest camera ({common_s:.3f} s)")
    if not agree:
        print_fn(f"  warning: {trial}: cameras disagree (fps {fps}, frames {frames}); {note}")
    clips = []
    for camera, path in sources.items():
        windows = _window_indices(stamps[camera], infos[camera].fps, window_s, n_windows)
        window_of = np.full(infos[camera].num_frames, -1)
        for k, indices in enumerate(windows):
            window_of[indices] = k
        buffers: dict[int, list[np.ndarray]] = {k: [] for k in range(n_windows)}
        for chunk in iter_frames(path, chunk_frames=16):
            for offset, frame in enumerate(chunk.frames):
                k = int(window_of[chunk.start_index + offset])
                if k < 0:
                    continue
                buffers[k].append(_resized(frame, long_side))
                if len(buffers[k]) == len(windows[k]):
                    relative = Path(trial) / camera / f"{trial}_{camera}_w{k:02d}.mp4"
                    write_video(out_dir / relative, np.stack(buffers.pop(k)), infos[camera].fps)
                    first, last = int(windows[k][0]), int(windows[k][-1])
                    clips.append({"path": relative.as_posix(), "trial": trial, "camera": camera, "window": k,
                                  "source": sources[camera].name, "start_frame": first, "end_frame": last + 1, "frames": last + 1 - first,
                                  "start_s": float(stamps[camera][first]),
                                  "end_s": float(stamps[camera][last + 1]) if last + 1 < len(stamps[camera])
                                  else float(durations[camera])})
        if buffers:
            raise ParameterError(f"{path}: windows {sorted(buffers)} of {trial}/{camera} were not filled; the video "
                                 "decodes fewer frames than it lists (re-encode it)")
    clips.sort(key=lambda clip: (clip["camera"], clip["window"]))
    used = {camera: sum(len(w) for w in _window_indices(stamps[camera], infos[camera].fps, window_s, n_windows))
            for camera in sources}
    print_fn(f"  {trial}: {len(sources)} cameras x {n_windows} windows of {window_s:g} s "
             f"({', '.join(f'{c} {frames[c]} frames @ {fps[c]:g} fps' for c in sorted(sources))})")
    return clips, {"agree": agree, "fps": fps, "frames": frames, "duration_s": durations, "windows": n_windows,
                   "frames_used": used, "frames_dropped_at_end": {c: frames[c] - used[c] for c in sources},
                   "note": note}


__all__ = ["write_pose2sim_sample", "fetch_pose2sim_wheel", "demo_videos", "pose2sim_cache_dir", "POSE2SIM_VERSION",
           "POSE2SIM_WHEEL_SHA256", "DEFAULT_WINDOW_S", "SampleUnavailableError"]
