"""The BlazePose model files: fetched from the mediapipe wheel with pip, verified by sha256, re-fetched when corrupt,
and an unreachable package index gives WeightsUnavailableError with the manual steps.

The first test downloads the 35 MB wheel once into the shared cache (``MOTIONMATCH_CACHE_DIR`` or
~/.cache/motionmatch); the corrupt-cache test fetches again into a temporary cache (pip serves it from its own HTTP
cache when it has one). "Unreachable" is real: pip is pointed at a closed port on loopback.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import socket

import pytest

from motionmatch.encoders import pose_models
from motionmatch.encoders.pose_models import MEDIAPIPE_VERSION, POSE_MODELS, pose_model_paths
from motionmatch.errors import WeightsUnavailableError


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def cached_models():
    """The model files in the shared cache (downloaded once per machine)."""
    return pose_model_paths()


def _cache_in(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONMATCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "pose" / f"mediapipe-{MEDIAPIPE_VERSION}"


def test_the_fetched_files_match_their_recorded_size_and_sha256(cached_models):
    assert set(cached_models) == {"pose_detection", "pose_landmark_full"}
    for name, path in cached_models.items():
        member, size, sha256 = POSE_MODELS[name]
        assert path.name == member.rsplit("/", 1)[1]
        assert path.parent.name == f"mediapipe-{MEDIAPIPE_VERSION}" and path.parent.parent.name == "pose"
        assert path.stat().st_size == size
        assert _sha256(path) == sha256
    assert not list(path.parent.glob("*.partial"))  # atomic writes leave nothing behind


def test_a_corrupt_cache_is_reported_removed_and_fetched_again(cached_models, tmp_path, monkeypatch):
    folder = _cache_in(tmp_path, monkeypatch)
    folder.mkdir(parents=True)
    for path in cached_models.values():
        shutil.copy(path, folder / path.name)
    with open(folder / "pose_detection.tflite", "r+b") as truncated:  # a partial copy
        truncated.truncate(1000)
    size = POSE_MODELS["pose_landmark_full"][1]
    (folder / "pose_landmark_full.tflite").write_bytes(b"\x00garbage" * (size // 8))  # right size, wrong bytes
    messages: list[str] = []
    paths = pose_model_paths(print_fn=messages.append)
    text = "\n".join(messages)
    assert "pose_detection.tflite is corrupt (1000 bytes instead of 2959046)" in text
    assert "pose_landmark_full.tflite is corrupt (sha256 mismatch)" in text
    assert f"fetching mediapipe=={MEDIAPIPE_VERSION} from PyPI (35 MB)" in text
    for name, path in paths.items():
        assert path.parent == folder
        assert _sha256(path) == POSE_MODELS[name][2]
    assert pose_model_paths(print_fn=messages.append) == paths  # now verified without fetching
    assert text == "\n".join(messages)


def test_without_fetching_a_corrupt_file_is_removed_and_the_error_says_what_to_do(tmp_path, monkeypatch):
    folder = _cache_in(tmp_path, monkeypatch)
    folder.mkdir(parents=True)
    (folder / "pose_detection.tflite").write_bytes(b"not a model")
    messages: list[str] = []
    with pytest.raises(WeightsUnavailableError) as caught:
        pose_model_paths(fetch=False, print_fn=messages.append)
    assert not (folder / "pose_detection.tflite").exists()
    assert "corrupt (11 bytes instead of 2959046)" in messages[0] and "fetching it again" not in messages[0]
    message = str(caught.value)
    assert "fetching is off" in message and "pose_landmark_full: missing" in message
    assert f"pip download --no-deps mediapipe=={MEDIAPIPE_VERSION}" in message


def _closed_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends: connections are refused


def test_an_unreachable_index_gives_the_manual_steps(tmp_path, monkeypatch):
    folder = _cache_in(tmp_path, monkeypatch)
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{_closed_loopback_port()}/simple")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no extra indexes or local wheel folders from pip.conf
    for variable in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    with pytest.raises(WeightsUnavailableError) as caught:
        pose_model_paths(print_fn=lambda message: None)
    message = str(caught.value)
    assert "pip download --no-deps mediapipe==0.10.21` failed" in message
    assert "python -m pip download --no-deps mediapipe==0.10.21 -d mediapipe_wheel" in message
    assert "unzip -j mediapipe_wheel/mediapipe-0.10.21-*.whl" in message
    for member, _, _ in POSE_MODELS.values():
        assert member in message
    assert f"-d {folder}" in message and "model_paths=" in message
    assert not list(folder.glob("*.tflite"))


def test_the_manual_steps_name_the_cache_folder_the_user_chose(tmp_path, monkeypatch):
    folder = _cache_in(tmp_path, monkeypatch)
    assert pose_models.pose_models_dir() == folder
    assert str(folder) in pose_models.manual_steps()
