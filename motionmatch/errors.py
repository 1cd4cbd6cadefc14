"""Errors a user can act on: each says what failed, on which file, and what to do."""
from __future__ import annotations

from pathlib import Path


class MotionMatchError(Exception):
    """Base class for every error MotionMatch raises on purpose."""


class ParameterError(MotionMatchError, ValueError):
    """A parameter is out of range or unknown. Raised before any work starts."""


class VideoError(MotionMatchError):
    """A video could not be read. Carries the file and the reason."""

    def __init__(self, path: str | Path, reason: str, hint: str = "check the file plays, re-encode it (ffmpeg -i IN -c:v libx264 OUT.mp4), or remove it"):
        self.path = str(path)
        self.reason = reason
        self.hint = hint
        super().__init__(f"{self.path}: {reason} — {hint}")


class WeightsUnavailableError(MotionMatchError):
    """Model weights could not be loaded (offline, wrong id, missing folder)."""


class EncoderMismatchError(MotionMatchError):
    """A query or insert was embedded differently from what the collection records."""


class StoreError(MotionMatchError):
    """Milvus could not be reached or refused an operation."""


class MissingPackageError(MotionMatchError, ImportError):
    """An optional package a method needs is not installed; the message names the pip package to install."""
