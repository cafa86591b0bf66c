"""The ``speechmatics-modes`` command line: a thin layer over the public API.

One module per command (``_transcribe``, ``_listen``, ``_serve``, ``_jobs``, ``_runs``,
``_demo``, and ``options`` in ``_options``, which also turns transcription options into
flags); this one puts the parser together and turns errors into one line and an exit status
(:data:`EXIT_CODES`, listed again in ``docs/cli.md``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence

from speechmatics_modes import __version__
from speechmatics_modes._cli._console import PROG, error, os_error, say
from speechmatics_modes._cli._demo import add_demo_command
from speechmatics_modes._cli._exits import (
    EXIT_CODES,
    EXIT_INTERRUPTED,
    UsageError,
    exit_code,
)
from speechmatics_modes._cli._jobs import add_jobs_command
from speechmatics_modes._cli._listen import add_listen_command
from speechmatics_modes._cli._options import add_options_command
from speechmatics_modes._cli._runs import add_runs_command
from speechmatics_modes._cli._serve import add_serve_command
from speechmatics_modes._cli._transcribe import add_transcribe_command
from speechmatics_modes._exceptions import SpeechmaticsModesError, innermost

__all__ = ["EXIT_CODES", "main"]

package_logger = logging.getLogger("speechmatics_modes")
"""Every module logs to a child of this one (``getLogger(__name__)``); the CLI sets it up."""

_EXPECTED = (UsageError, SpeechmaticsModesError, OSError)
"""Errors that end a command with one line on stderr; anything else is a bug, with a traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = _parser().parse_args(argv)
    _configure_logging(args)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        say(args, "interrupted")
        return EXIT_INTERRUPTED
    except Exception as raised:
        exc = innermost(raised)
        if not isinstance(exc, _EXPECTED):
            raise
        if args.verbose:
            traceback.print_exception(raised)
        error(os_error(exc) if isinstance(exc, OSError) else str(exc))
        return exit_code(exc)


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.INFO if args.verbose else logging.ERROR if args.quiet else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
    package_logger.addHandler(handler)
    package_logger.setLevel(level)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    noise = common.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", help="Print only results and errors.")
    noise.add_argument(
        "-v", "--verbose", action="store_true", help="Log each step; tracebacks on errors."
    )
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Transcribe speech with Speechmatics: batch for files, real-time for streams.",
        epilog="Exit statuses: "
        + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()),
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for add in (
        add_transcribe_command,
        add_listen_command,
        add_serve_command,
        add_jobs_command,
        add_runs_command,
        add_options_command,
        add_demo_command,
    ):
        add(commands, common)
    return parser
