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
evaluation_dir      MOTIONMATCH_EVALUATION_DIR   data/processed/evaluation
milvus_server_dir   MOTIONMATCH_MILVUS_SERVER_DIR  data/interim/milvus_standalone (`motionmatch milvus-server`)
==================  ===========================  ==========================================
"""
from __future__ import annotations

import os
from pathlib import Path

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

# name -> (environment variable, built-in default)
SETTINGS: dict[str, tuple[str, str]] = {
    "model_id": ("MOTIONMATCH_MODEL", HUB_MODEL_ID),
    "clip_model_id": ("MOTIONMATCH_CLIP_MODEL", HUB_CLIP_MODEL_ID),
    "milvus_uri": ("MOTIONMATCH_MILVUS_URI", str(INTERIM_DIR / "motionmatch.db")),
    "collection": ("MOTIONMATCH_COLLECTION", "motionmatch_clips"),
    "hybrid_collection": ("MOTIONMATCH_HYBRID_COLLECTION", "motionmatch_beyond_hybrid"),
    "embeddings_dir": ("MOTIONMATCH_EMBEDDINGS_DIR", str(INTERIM_DIR / "embeddings")),
    "sample_dir": ("MOTIONMATCH_SAMPLE_DIR", str(SAMPLE_VIDEOS_DIR)),
    "long_sample_dir": ("MOTIONMATCH_LONG_SAMPLE_DIR", str(RAW_DIR / "sample_long")),
    "long_embeddings_dir": ("MOTIONMATCH_LONG_EMBEDDINGS_DIR", str(INTERIM_DIR / "embeddings_long")),
    "long_collection": ("MOTIONMATCH_LONG_COLLECTION", "motionmatch_windows"),
    "evaluation_dir": ("MOTIONMATCH_EVALUATION_DIR", str(PROCESSED_DIR / "evaluation")),
    "milvus_server_dir": ("MOTIONMATCH_MILVUS_SERVER_DIR", str(INTERIM_DIR / "milvus_standalone")),
}


def setting(name: str, value: str | os.PathLike | None = "") -> str:
    """``value`` when the caller gave one, else the environment variable of ``name``, else its default."""
    if name not in SETTINGS:
        raise ParameterError(f"unknown setting {name!r}; settings: {', '.join(sorted(SETTINGS))}")
    if value is not None and str(value) != "":
        return str(value)
    variable, default = SETTINGS[name]
    return os.environ.get(variable) or default


# No module-level copies of these settings: a value read at import would miss an environment variable set later
# (in a notebook, or by a test). Call setting() where the value is used.

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
