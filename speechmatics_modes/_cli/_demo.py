"""``demo``: one sample through batch, then through real-time, as a first run."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import anyio

from speechmatics_modes._api import stream, transcribe
from speechmatics_modes._cli._exits import EXIT_OK
from speechmatics_modes._cli._options import LOCAL_HELP, Commands, settings_for_cli
from speechmatics_modes._config import TranscriptionOptions
from speechmatics_modes._models import Final, Partial
from speechmatics_modes._sample import sample_audio
from speechmatics_modes._settings import Settings

__all__ = ["add_demo_command"]

_SAMPLE = sample_audio()


def add_demo_command(commands: Commands, common: argparse.ArgumentParser) -> None:
    """``demo``: transcribe a sample in both modes."""
    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="Transcribe a sample through batch, then real-time (local server without a key).",
    )
    demo.add_argument(
        "audio", nargs="?", type=Path, default=_SAMPLE, help="WAV file (default: %(default)s)"
    )
    demo.add_argument("--local", action="store_true", help=LOCAL_HELP)
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    audio: Path = args.audio
    settings = settings_for_cli(args)
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
