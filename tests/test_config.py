"""Configuration flows one way: every setting has a kind, and one rule makes values absolute by their kind."""
from __future__ import annotations

from pathlib import Path

import pytest

from motionmatch import config
from motionmatch.errors import ParameterError


def test_every_setting_has_a_kind_and_a_motionmatch_variable():
    for name, entry in config.SETTINGS.items():
        assert entry.kind in config.KINDS, name
        assert entry.variable.startswith("MOTIONMATCH_"), name
    names = {name for name, entry in config.SETTINGS.items() if entry.kind == config.NAME}
    assert names == {"collection", "hybrid_collection", "long_collection", "pose_collection"}


def test_a_collection_name_is_never_made_a_path(tmp_path, monkeypatch):
    """Issue 18 bug 2: MOTIONMATCH_LONG_COLLECTION=my_windows became an absolute path before notebook 07 ran."""
    monkeypatch.chdir(tmp_path)
    environ = {"MOTIONMATCH_LONG_COLLECTION": "my_windows", "MOTIONMATCH_HYBRID_COLLECTION": "hybrid",
               "MOTIONMATCH_COLLECTION": "clips", "MOTIONMATCH_LONG_SAMPLE_DIR": "long",
               "MOTIONMATCH_MILVUS_URI": "data/x.db", "MOTIONMATCH_CACHE_DIR": "cache"}
    assert config.absolute_environment(environ) == {
        "MOTIONMATCH_LONG_SAMPLE_DIR": str(tmp_path / "long"), "MOTIONMATCH_MILVUS_URI": str(tmp_path / "data/x.db"),
        "MOTIONMATCH_CACHE_DIR": str(tmp_path / "cache")}


def test_absolute_follows_the_kind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights").mkdir()
    assert config.absolute("model_id", "weights") == str(tmp_path / "weights")  # an existing folder
    assert config.absolute("model_id", "facebook/vjepa2-vitl-fpc64-256") == "facebook/vjepa2-vitl-fpc64-256"  # hub id
    assert config.absolute("milvus_uri", "http://127.0.0.1:19530") == "http://127.0.0.1:19530"
    assert config.absolute("milvus_uri", "x.db") == str(tmp_path / "x.db")
    assert config.absolute("embeddings_dir", str(tmp_path / "e")) == str(tmp_path / "e")  # already absolute
    assert config.absolute("long_collection", "w") == "w"
    assert config.absolute("sample_dir", "") == ""
    with pytest.raises(ParameterError, match="unknown setting"):
        config.absolute("colection", "x")


def test_settings_are_read_when_used(monkeypatch):
    monkeypatch.setenv("MOTIONMATCH_LONG_COLLECTION", "later")
    assert config.setting("long_collection") == "later"
    assert config.setting("long_collection", "given") == "given"
    monkeypatch.delenv("MOTIONMATCH_LONG_COLLECTION")
    assert config.setting("long_collection") == config.SETTINGS["long_collection"].default
    assert Path(config.setting("cache_dir")).is_absolute()
