"""Paths and defaults in one place (cookiecutter-data-science layout)."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJECT_ROOT / "data"
RAW_DIR = DATA_DIR / "raw"  # never edited
INTERIM_DIR = DATA_DIR / "interim"  # embeddings tables, the Milvus Lite file
PROCESSED_DIR = DATA_DIR / "processed"  # evaluation tables
REPORTS_DIR = PROJECT_ROOT / "reports"  # executed notebooks and HTML (git-ignored)
SAMPLE_VIDEOS_DIR = RAW_DIR / "sample"

DEFAULT_MODEL_ID = os.environ.get("MOTIONMATCH_MODEL", "facebook/vjepa2-vitl-fpc64-256")
DEFAULT_CLIP_MODEL_ID = os.environ.get("MOTIONMATCH_CLIP_MODEL", "openai/clip-vit-base-patch32")
DEFAULT_MILVUS_URI = os.environ.get("MOTIONMATCH_MILVUS_URI", str(INTERIM_DIR / "motionmatch.db"))
DEFAULT_COLLECTION = "motionmatch_clips"

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
