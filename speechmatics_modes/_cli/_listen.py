"""``listen``: live captions from the microphone, and the whole transcript after Ctrl+C."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
from typing import TextIO

import anyio

from speechmatics_modes._api import TranscriptStream, stream
from speechmatics_modes._cli._console import FORMATS, render
from speechmatics_modes._cli._exits import EXIT_OK
from speechmatics_modes._cli._options import (
    LOCAL_HELP,
    Commands,
    add_transcription_flags,
    settings_for_cli,
    transcription_options,
)
from speechmatics_modes._microphone import Microphone, list_input_devices
from speechmatics_modes._models import EndOfUtterance, Final, Partial, Transcript

__all__ = ["add_listen_command"]


def add_listen_command(commands: Commands, common: argparse.ArgumentParser) -> None:
    """``listen``: captions until Ctrl+C, then the transcript on stdout."""
    command = commands.add_parser(
        "listen",
        parents=[common],
        help="Live captions from the microphone; Ctrl+C prints the full transcript.",
    )
    command.add_argument("--device", help="Input device: index, name or part of its name.")
    command.add_argument("--list-devices", action="store_true", help="List input devices and exit.")
    command.add_argument(
        "--format", choices=FORMATS, default="text", help="Format of the final transcript."
    )
    command.add_argument("--local", action="store_true", help=LOCAL_HELP)
    add_transcription_flags(command, "realtime", fixed=frozenset({"enable_partials"}))
    command.set_defaults(handler=_listen)


def _listen(args: argparse.Namespace) -> int:
    if args.list_devices:
        for found in list_input_devices():
            mark = "*" if found.is_default else " "
            print(f"{mark} {found.index:3d}  {found.name}")
        return EXIT_OK
    options = transcription_options(args, enable_partials=True)
    device: int | str | None = args.device
    if isinstance(device, str) and device.isdigit():
        device = int(device)
    settings = settings_for_cli(args)
    captions = _Captions(quiet=args.quiet)
    microphone = Microphone(device=device)
    # Built before the microphone opens, so that options the real-time API lacks (--model
    # oak-1) are reported as such, whatever the state of the microphone.
    events = stream(microphone, options=options, settings=settings)
    transcript = anyio.run(_listen_until_interrupted, microphone, events, captions)
    sys.stdout.write(render(transcript, args.format))
    sys.stdout.flush()
    return EXIT_OK


async def _listen_until_interrupted(
    microphone: Microphone, events: TranscriptStream, captions: _Captions
) -> Transcript:
    """Caption until Ctrl+C (or SIGTERM), then return the transcript.

    The first signal stops the microphone and lets the service finish the words it heard; a
    second one abandons them.
    """
    async with anyio.create_task_group() as group:
        group.start_soon(_stop_on_signals, microphone, group.cancel_scope)
        async with microphone, events:
            async for event in events:
                captions.show(event)
        group.cancel_scope.cancel()
    captions.close()
    return events.transcript


async def _stop_on_signals(microphone: Microphone, scope: anyio.CancelScope) -> None:
    stopping = False
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            if stopping:
                scope.cancel()
                return
            stopping = True
            await microphone.aclose()


class _Captions:
    """Partials redrawn in place and finals committed on a terminal; finals as lines otherwise."""

    def __init__(self, *, quiet: bool, out: TextIO | None = None) -> None:
        self._out = out or sys.stderr
        self._quiet = quiet
        self._live = not quiet and self._out.isatty()
        self._line = ""

    def show(self, event: object) -> None:
        if self._quiet:
            return
        if isinstance(event, Final) and event.text:
            self._commit(event.text)
        elif isinstance(event, Partial) and self._live:
            self._draw(event.text)
        elif isinstance(event, EndOfUtterance) and self._live and self._line:
            self._newline()

    def close(self) -> None:
        if self._live and self._line:
            self._newline()

    def _commit(self, text: str) -> None:
        if not self._live:
            print(text, file=self._out, flush=True)
            return
        self._line = f"{self._line} {text}".strip()
        if len(self._line) > shutil.get_terminal_size().columns - 20:
            self._draw("")
            self._newline()
        else:
            self._draw("")

    def _draw(self, partial: str) -> None:
        width = shutil.get_terminal_size().columns
        shown = f"{self._line} \x1b[2m{partial}\x1b[0m" if partial else self._line
        self._out.write("\r\x1b[K" + shown[-(width + 8) :])
        self._out.flush()

    def _newline(self) -> None:
        self._out.write("\n")
        self._out.flush()
        self._line = ""
