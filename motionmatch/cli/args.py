"""What every CLI module shares: the command pattern, argparse number types, and options read at run time.

Each command is a class with ``name``, ``help``, ``setup(parser)`` and ``execute(args) -> int``
(the pattern of ``fiftyone/core/cli.py``); :func:`register` adds a list of them to sub-parsers.
Defaults that come from :mod:`motionmatch.config` (model, Milvus URI, collection, folders) are
resolved when a command runs, not when this module is imported, so environment variables set
later still count.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Sequence

from .. import config
from ..errors import ParameterError
from ..validation import check_scalar


class Command:
    """One ``motionmatch`` sub-command."""

    name = ""
    help = ""

    @staticmethod
    def setup(parser: argparse.ArgumentParser) -> None:
        """Add the command's arguments."""

    @staticmethod
    def execute(args: argparse.Namespace) -> int:
        """Run the command; return the exit code (errors a user can act on raise MotionMatchError -> exit 2)."""
        raise NotImplementedError


def register(subparsers, commands: Sequence[type[Command]]) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add each command's sub-parser; returns name -> execute."""
    for command in commands:
        parser = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.setup(parser)
    return {command.name: command.execute for command in commands}


# ----------------------------------------------------------------------------- number types
def _number(name: str, kind: type, minimum: float, inclusive: bool) -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        try:
            return check_scalar(value, name, kind, min_value=minimum, include_min=inclusive)
        except ParameterError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return parse


def positive_int(name: str) -> Callable[[str], int]:
    return _number(name, int, 0, inclusive=False)


def non_negative_int(name: str) -> Callable[[str], int]:
    return _number(name, int, 0, inclusive=True)


def positive_float(name: str) -> Callable[[str], float]:
    return _number(name, float, 0.0, inclusive=False)


def workers_type(name: str = "--workers") -> Callable[[str], int | None]:
    """``--workers auto`` or a whole number >= 0, parsed by :func:`motionmatch.extract.parse_workers` (the rule
    notebook 01's ``workers`` parameter follows too)."""
    def parse(text: str) -> int | None:
        from ..extract.workers import parse_workers

        try:
            return parse_workers(text)
        except ParameterError as err:
            raise argparse.ArgumentTypeError(str(err).replace("workers", name, 1)) from None
    return parse


# ----------------------------------------------------------------------------- options resolved at run time
def _default_help(name: str) -> str:
    entry = config.SETTINGS[name]
    return f"default: ${entry.variable}, else {entry.default}"


def add_store_args(parser: argparse.ArgumentParser, collection_setting: str = "collection") -> None:
    """--milvus-uri and --collection; empty means "ask motionmatch.config when the command runs"."""
    parser.add_argument("--milvus-uri", default="",
                        help=f"Milvus Lite .db file or http://host:19530 ({_default_help('milvus_uri')})")
    parser.add_argument("--collection", default="", help=f"collection name ({_default_help(collection_setting)})")


def add_embeddings_arg(parser: argparse.ArgumentParser, flag: str = "--embeddings") -> None:
    parser.add_argument(flag, default="", help=f"embeddings folder ({_default_help('embeddings_dir')})")


def add_encoder_args(parser: argparse.ArgumentParser) -> None:
    from ..encoders.auto import ENCODER_CHOICES

    parser.add_argument("--encoder", default="auto", choices=ENCODER_CHOICES,
                        help="auto = V-JEPA 2 if its weights load, else FlowEncoder; vjepa2 never falls back "
                             "(default: %(default)s)")
    parser.add_argument("--model", default="", help=f"hub id or local folder of the checkpoint ({_default_help('model_id')})")
    parser.add_argument("--device", default=None, choices=[None, "cpu", "cuda"], help="default: CUDA when present")


def embeddings_dir(args: argparse.Namespace, attribute: str = "embeddings") -> Path:
    """The embeddings folder the user gave, else the configured one."""
    return Path(config.setting("embeddings_dir", getattr(args, attribute, "")))


def parse_pairs(pairs: Sequence[str], flag: str, what: str = "NAME=VALUE") -> list[tuple[str, str]]:
    """``["a=1", "b=2"]`` -> ``[("a", "1"), ("b", "2")]``; a pair without '=' or a name is an error naming ``flag``."""
    out = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ParameterError(f"{flag} expects {what}, got {pair!r}")
        out.append((name.strip(), value))
    return out
