"""The ``speechmatics-modes`` command line: a thin layer over the public API.

Help texts come from the models' field descriptions, so an option is described once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import BaseModel

from . import __version__
from ._config import BatchOptions, TranscriptionOptions
from ._exceptions import SpeechmaticsModesError

__all__ = ["main"]

EXIT_OK = 0
EXIT_ERROR = 1
"""A transcription failed (the message says why)."""
EXIT_USAGE = 2
"""The command line itself was wrong (argparse's own convention)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except SpeechmaticsModesError as exc:
        print(f"speechmatics-modes: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speechmatics-modes",
        description="Transcribe speech with Speechmatics: batch for files, real-time for streams.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    options = commands.add_parser(
        "options", help="List every transcription option, what it does and where it applies."
    )
    options.set_defaults(handler=_show_options)
    return parser


def _show_options(args: argparse.Namespace) -> int:
    del args
    for title, model in (
        ("Transcription options (TranscriptionOptions)", TranscriptionOptions),
        ("Batch job options (BatchOptions)", BatchOptions),
    ):
        print(title)
        _print_fields(model)
        print()
    return EXIT_OK


def _print_fields(model: type[BaseModel]) -> None:
    width = max(len(name) for name in model.model_fields)
    for name, field in model.model_fields.items():
        print(f"  {name:<{width}}  {field.description}")
