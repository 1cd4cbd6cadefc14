"""argparse types shared by the CLI modules: numbers are checked before any work starts."""
from __future__ import annotations

import argparse
from typing import Callable

from . import config

DEFAULT_EMBEDDINGS_DIR = config.INTERIM_DIR / "embeddings"


def _number(name: str, kind: type, minimum: float, inclusive: bool) -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"{name} must be {'>=' if inclusive else '>'} {minimum:g}, got {value}")
        return value
    return parse


def positive_int(name: str) -> Callable[[str], int]:
    return _number(name, int, 0, inclusive=False)


def non_negative_int(name: str) -> Callable[[str], int]:
    return _number(name, int, 0, inclusive=True)


def positive_float(name: str) -> Callable[[str], float]:
    return _number(name, float, 0.0, inclusive=False)


def decode_workers_value(value) -> int | None:
    """A ``workers`` setting from a notebook or config: "auto" -> None (the package's default), else an int >= 0."""
    from .errors import ParameterError

    if value is None or str(value).strip().lower() == "auto":
        return None
    try:
        workers = int(str(value).strip())
    except ValueError:
        workers = -1
    if workers < 0:
        raise ParameterError(f"workers must be \"auto\" or a whole number >= 0 (0 decodes inline), got {value!r}")
    return workers
