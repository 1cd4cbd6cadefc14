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
