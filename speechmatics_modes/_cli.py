"""The ``speechmatics-modes`` command line: a thin layer over the public API.

Help texts come from the models' field descriptions, so an option is described once.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import anyio
from pydantic import BaseModel

from . import __version__
from ._api import stream, transcribe
from ._config import BatchOptions, TranscriptionOptions
from ._exceptions import SpeechmaticsModesError
from ._models import Final, Partial
from ._settings import Settings

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

    demo = commands.add_parser(
        "demo",
        help="Transcribe a sample through batch, then real-time (local server without a key).",
    )
    demo.add_argument(
        "audio", nargs="?", type=Path, default=_SAMPLE, help="WAV file (default: %(default)s)"
    )
    demo.set_defaults(handler=_demo)
    return parser


_SAMPLE = Path("examples/sample.wav")


def _settings_for_cli() -> Settings:
    """The user's settings, or the embedded server when there is no key (said on stderr)."""
    settings = Settings()
    if settings.api_key is None and settings.backend == "cloud":
        print(
            "speechmatics-modes: no SPEECHMATICS_API_KEY: using the embedded offline server "
            "(lower accuracy)",
            file=sys.stderr,
        )
        return Settings(backend="local")
    return settings


def _demo(args: argparse.Namespace) -> int:
    audio: Path = args.audio
    settings = _settings_for_cli()
    print(f"Processing file: {audio} ({audio.stat().st_size / 1_048_576:.1f} MB)\n")
    anyio.run(_demo_both_modes, audio, settings)
    return EXIT_OK


async def _demo_both_modes(audio: Path, settings: Settings) -> None:
    started = time.monotonic()
    batch = await transcribe(audio, settings=settings)
    print(f"[batch] done in {time.monotonic() - started:.1f} s (job {batch.job_id})")
    print(f'[batch] "{batch.text}"\n')

    started = time.monotonic()
    options = TranscriptionOptions(enable_partials=True, max_delay=2.0)
    async with stream(audio, options=options, settings=settings, pace=1.0) as events:
        async for event in events:
            if isinstance(event, Partial) and event.text:
                print(f"[partial]: {event.text}")
            elif isinstance(event, Final) and event.text:
                print(f"[final]:   {event.text}")
    print(f"[real-time] done in {time.monotonic() - started:.1f} s (audio played at real time)")
    print(f'[real-time] "{events.transcript.text}"')


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
