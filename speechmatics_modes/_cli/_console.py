"""What the command line writes: notices and errors on stderr, transcripts in each format."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from speechmatics_modes._models import Transcript

__all__ = ["EXTENSIONS", "FORMATS", "PROG", "error", "os_error", "render", "say"]

PROG = "speechmatics-modes"
FORMATS = ("text", "json", "srt", "vtt")
EXTENSIONS = {"text": ".txt", "json": ".json", "srt": ".srt", "vtt": ".vtt"}
"""The file name extension of each output format."""


def error(message: str) -> None:
    """An error on stderr, in the form argparse uses."""
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


def say(args: argparse.Namespace, message: str) -> None:
    """A notice on stderr, unless ``--quiet``."""
    if not args.quiet:
        print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def os_error(exc: OSError) -> str:
    """An operating-system error as one line: the file, then what went wrong."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def render(transcript: Transcript, output_format: str) -> str:
    """The transcript in one of :data:`FORMATS`, ending with a newline."""
    renderers: dict[str, Callable[[], str]] = {
        "text": transcript.to_text,
        "json": transcript.to_json,
        "srt": transcript.to_srt,
        "vtt": transcript.to_vtt,
    }
    text = renderers[output_format]()
    return text if text.endswith("\n") else text + "\n"
