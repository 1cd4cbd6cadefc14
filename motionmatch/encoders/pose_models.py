"""MediaPipe's BlazePose model files, fetched once from the ``mediapipe`` wheel on PyPI and checked by sha256.

The two ``.tflite`` files (Apache-2.0) ship inside ``mediapipe==0.10.21``. The package itself is never imported (its
numpy<2 and protobuf<5 pins clash with this project): ``pip download --no-deps`` fetches the wheel into a temporary
folder, the two files are copied out of the zip into ``<cache_dir>/pose/mediapipe-0.10.21/`` (config's
``cache_dir``, ``MOTIONMATCH_CACHE_DIR``), each written atomically and checked against the sha256 recorded here.
A cached file that fails its check (a partial copy, a corrupt disk) is removed and fetched again.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

from .. import config
from ..errors import WeightsUnavailableError

MEDIAPIPE_VERSION = "0.10.21"
MEDIAPIPE_WHEEL_MB = 35  # size of the wheel pip downloads, for the progress message
PIP_TIMEOUT_S = 900.0  # the whole `pip download`, retries included

# name -> (path inside the wheel, size in bytes, sha256), measured once on mediapipe 0.10.21's wheel.
POSE_MODELS: dict[str, tuple[str, int, str]] = {
    "pose_detection": ("mediapipe/modules/pose_detection/pose_detection.tflite", 2_959_046,
                       "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
    "pose_landmark_full": ("mediapipe/modules/pose_landmark/pose_landmark_full.tflite", 6_440_512,
                           "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"),
}


def pose_models_dir() -> Path:
    """The folder the model files are cached in: ``<cache_dir>/pose/mediapipe-0.10.21``."""
    return Path(config.setting("cache_dir")).expanduser() / "pose" / f"mediapipe-{MEDIAPIPE_VERSION}"


def _cached_path(name: str) -> Path:
    return pose_models_dir() / Path(POSE_MODELS[name][0]).name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _problem(name: str, path: Path) -> str:
    """Why the cached file of ``name`` is not usable ("" when it is)."""
    _, size, sha256 = POSE_MODELS[name]
    if not path.is_file():
        return "missing"
    if path.stat().st_size != size:
        return f"{path.stat().st_size} bytes instead of {size}"
    if _sha256(path) != sha256:
        return "sha256 mismatch"
    return ""


def model_status() -> dict[str, tuple[Path, str]]:
    """Each model file's cached path and what is wrong with it ('' when it is there and verifies); fetches nothing."""
    return {name: (_cached_path(name), _problem(name, _cached_path(name))) for name in POSE_MODELS}


def manual_steps() -> str:
    """How to put the model files in place by hand (for a machine that cannot reach PyPI)."""
    folder = pose_models_dir()
    members = " ".join(entry[0] for entry in POSE_MODELS.values())
    return (f"To install them by hand: (1) on a machine with internet access run "
            f"`python -m pip download --no-deps mediapipe=={MEDIAPIPE_VERSION} -d mediapipe_wheel` (any platform's "
            f"wheel holds the same files); (2) `unzip -j mediapipe_wheel/mediapipe-{MEDIAPIPE_VERSION}-*.whl "
            f"{members} -d {folder}` (copy the folder over if you unzipped elsewhere); (3) or pass "
            f"BlazePose(model_paths={{'pose_detection': ..., 'pose_landmark_full': ...}}). "
            f"MOTIONMATCH_CACHE_DIR moves the cache folder.")


def pose_model_paths(fetch: bool = True, print_fn: Callable[[str], object] = print) -> dict[str, Path]:
    """The verified cached model files by name; fetched first when missing or corrupt (unless ``fetch`` is False).

    WeightsUnavailableError, naming the manual steps, when a file is missing and cannot be fetched.
    """
    problems = {}
    for name in POSE_MODELS:
        path = _cached_path(name)
        problem = _problem(name, path)
        if problem and path.exists():
            print_fn(f"cached {path} is corrupt ({problem}); removing it" + (" and fetching it again" if fetch else ""))
            path.unlink(missing_ok=True)
        if problem:
            problems[name] = problem
    if not problems:
        return {name: _cached_path(name) for name in POSE_MODELS}
    if not fetch:
        raise WeightsUnavailableError(f"BlazePose model files are not in {pose_models_dir()} "
                                      f"({', '.join(f'{n}: {p}' for n, p in problems.items())}) and fetching is off. "
                                      + manual_steps())
    return fetch_pose_models(print_fn)


def fetch_pose_models(print_fn: Callable[[str], object] = print) -> dict[str, Path]:
    """Download the mediapipe wheel with pip, copy the model files into the cache, verify them; their paths by name.

    Nothing is downloaded when the cached files already verify (another process may have fetched them meanwhile).
    """
    folder = pose_models_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeightsUnavailableError(f"cannot create the cache folder {folder} ({error}); set MOTIONMATCH_CACHE_DIR "
                                      f"to a writable folder. " + manual_steps()) from error
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one fetch at a time; a second caller finds the files in place
        if all(not _problem(name, _cached_path(name)) for name in POSE_MODELS):
            return {name: _cached_path(name) for name in POSE_MODELS}
        print_fn(f"fetching mediapipe=={MEDIAPIPE_VERSION} from PyPI ({MEDIAPIPE_WHEEL_MB} MB) for its BlazePose "
                 f"models...")
        with tempfile.TemporaryDirectory(prefix="motionmatch-mediapipe-") as download_dir:
            wheel = _download_wheel(Path(download_dir))
            for name in POSE_MODELS:
                _extract(wheel, name, _cached_path(name))
                print_fn(f"  wrote {_cached_path(name)} (sha256 verified)")
    return {name: _cached_path(name) for name in POSE_MODELS}


def _download_wheel(download_dir: Path) -> Path:
    """``pip download --no-deps mediapipe==VERSION`` for this interpreter's platform; the wheel's path."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               f"mediapipe=={MEDIAPIPE_VERSION}", "-d", str(download_dir)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as error:
        raise WeightsUnavailableError(f"`{' '.join(command[2:])}` did not finish within {PIP_TIMEOUT_S:.0f} s. "
                                      + manual_steps()) from error
    wheels = sorted(download_dir.glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise WeightsUnavailableError(f"could not fetch the BlazePose models: `pip download --no-deps "
                                      f"mediapipe=={MEDIAPIPE_VERSION}` failed (exit {done.returncode}: "
                                      f"{' | '.join(tail) or 'no output'}). " + manual_steps())
    return wheels[0]


def _extract(wheel: Path, name: str, target: Path) -> None:
    """Copy model ``name`` out of ``wheel`` into ``target`` atomically; WeightsUnavailableError when it mismatches."""
    member, size, sha256 = POSE_MODELS[name]
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as source, open(partial, "wb") as out:
            for block in iter(lambda: source.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
        if partial.stat().st_size != size or digest.hexdigest() != sha256:
            raise WeightsUnavailableError(f"{member} in {wheel.name} does not match the recorded size/sha256 "
                                          f"({partial.stat().st_size} bytes, sha256 {digest.hexdigest()}); the "
                                          f"download is damaged or not mediapipe {MEDIAPIPE_VERSION}. "
                                          + manual_steps())
        os.replace(partial, target)
    except (KeyError, zipfile.BadZipFile) as error:
        raise WeightsUnavailableError(f"{wheel.name} has no readable {member} ({error}). " + manual_steps()) from error
    except OSError as error:
        raise WeightsUnavailableError(f"cannot write {target} ({error}); free some space or set MOTIONMATCH_CACHE_DIR "
                                      f"to a writable folder. " + manual_steps()) from error
    finally:
        partial.unlink(missing_ok=True)
