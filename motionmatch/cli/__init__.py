"""``motionmatch``: the same steps as the notebooks, from a terminal, one module per command group.

Every parameter is checked before any work starts; bad input files are reported and skipped, never fatal.
Each command is a class with ``setup(parser)`` and ``execute(args)`` (:mod:`motionmatch.cli.args`), registered
here; ``python -m motionmatch.cli`` and the ``motionmatch`` script both run :func:`main`.

=========================  ========================================================================
:mod:`~.data`              generate-sample
:mod:`~.extract`           extract
:mod:`~.index`             index
:mod:`~.search`            search, evaluate
:mod:`~.report`            report
:mod:`~.beyond`            calibrate, train-head, hybrid-index
:mod:`~.server`            milvus-server
:mod:`~.models`            models (fetch / status of the pose channel's model files)
=========================  ========================================================================
"""
from __future__ import annotations

import argparse
import os
import sys

if not sys.stderr.isatty():  # a log file, CI: redraw progress bars every 10 s, not many times a second
    os.environ.setdefault("TQDM_MININTERVAL", "10")

from ..errors import MotionMatchError  # noqa: E402
from .args import register  # noqa: E402
from .beyond import BEYOND_COMMANDS  # noqa: E402
from .data import DATA_COMMANDS  # noqa: E402
from .extract import EXTRACT_COMMANDS  # noqa: E402
from .index import INDEX_COMMANDS  # noqa: E402
from .models import MODELS_COMMANDS  # noqa: E402
from .report import REPORT_COMMANDS  # noqa: E402
from .search import SEARCH_COMMANDS  # noqa: E402
from .server import SERVER_COMMANDS  # noqa: E402

ALL_COMMANDS = [*DATA_COMMANDS, *EXTRACT_COMMANDS, *INDEX_COMMANDS, *SEARCH_COMMANDS, *REPORT_COMMANDS,
                *BEYOND_COMMANDS, *SERVER_COMMANDS, *MODELS_COMMANDS]


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    """The ``motionmatch`` parser and its name -> execute table."""
    parser = argparse.ArgumentParser(prog="motionmatch",
                                     description="find footage whose motion is like a query's, and say where")
    commands = register(parser.add_subparsers(dest="command", required=True), ALL_COMMANDS)
    return parser, commands


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    try:
        return commands[args.command](args)
    except MotionMatchError as err:
        print(f"motionmatch {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished videos are saved; run the same command again to resume", file=sys.stderr)
        return 130


__all__ = ["ALL_COMMANDS", "build_parser", "main"]
