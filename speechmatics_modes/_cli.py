"""The ``speechmatics-modes`` command line: a thin layer over the public API.

Help texts of transcription options come from the models' field descriptions, so an option is
described once. Exit statuses are part of the interface (scripts branch on them) and are listed
in :data:`EXIT_CODES` and ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import glob
import logging
import shutil
import signal
import sys
import time
import traceback
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TextIO

import anyio
from pydantic import BaseModel, ValidationError

from . import __version__
from ._api import stream, transcribe
from ._batch import BatchClient, BatchJob
from ._bulk import BulkResult, transcribe_many
from ._config import AudioFormat, BatchOptions, TranscriptionOptions
from ._endpoint import endpoint
from ._exceptions import (
    AudioSourceError,
    AuthenticationError,
    ConfigurationError,
    SpeechmaticsModesError,
)
from ._models import EndOfUtterance, Final, Partial, Transcript
from ._settings import Settings

__all__ = ["EXIT_CODES", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_AUTH = 4
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "everything asked for was done",
    EXIT_FAILED: "a transcription failed (service error, rejected job, lost connection, timeout)",
    EXIT_USAGE: "the command line or the options are wrong; nothing was sent",
    EXIT_INPUT: "an input could not be used (missing, unreadable, empty, not audio)",
    EXIT_AUTH: "the service refused the API key",
    EXIT_INTERRUPTED: "interrupted (Ctrl+C); a bulk run resumes from its journal",
}
"""Exit statuses. When several inputs fail differently, the highest status wins."""

PROG = "speechmatics-modes"
FORMATS = ("text", "json", "srt", "vtt")
_EXTENSIONS = {"text": ".txt", "json": ".json", "srt": ".srt", "vtt": ".vtt"}
AUDIO_SUFFIXES = frozenset(
    {".wav", ".wave", ".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".wma"}
    | {".webm", ".amr", ".aif", ".aiff", ".mka", ".mkv", ".mov", ".3gp"}
)
"""What a directory is searched for: the containers the batch service accepts."""
JOURNAL_NAME = ".speechmatics-modes-journal.sqlite"
_STDIN_BLOCK = 64 * 1024

logger = logging.getLogger("speechmatics_modes")


class UsageError(Exception):
    """The command line cannot work as given (exit status 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = _parser().parse_args(argv)
    _configure_logging(args)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        _say(args, "interrupted")
        return EXIT_INTERRUPTED
    except (UsageError, SpeechmaticsModesError, OSError) as exc:
        if args.verbose:
            traceback.print_exc()
        _error(str(exc) if not isinstance(exc, OSError) else _os_error(exc))
        return _exit_code(exc)


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, (UsageError, ConfigurationError)):
        return EXIT_USAGE
    if isinstance(exc, AuthenticationError):
        return EXIT_AUTH
    if isinstance(exc, AudioSourceError):
        return EXIT_INPUT
    return EXIT_FAILED


def _os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


def _say(args: argparse.Namespace, message: str) -> None:
    """A notice on stderr, unless ``--quiet``."""
    if not args.quiet:
        print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.INFO if args.verbose else logging.ERROR if args.quiet else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


# --- the parser ------------------------------------------------------------------------------


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
    _add_transcribe(commands, common)
    _add_listen(commands, common)
    _add_serve(commands, common)
    _add_jobs(commands, common)
    options = commands.add_parser(
        "options",
        parents=[common],
        help="List every transcription option, what it does and where it applies.",
    )
    options.set_defaults(handler=_show_options)
    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="Transcribe a sample through batch, then real-time (local server without a key).",
    )
    demo.add_argument(
        "audio", nargs="?", type=Path, default=_SAMPLE, help="WAV file (default: %(default)s)"
    )
    demo.add_argument("--local", action="store_true", help=_LOCAL_HELP)
    demo.set_defaults(handler=_demo)
    return parser


_Commands = Any  # argparse's _SubParsersAction is private
_LOCAL_HELP = "Use the embedded offline server even when an API key is set."
_SAMPLE = Path("examples/sample.wav")


def _add_transcribe(commands: _Commands, common: argparse.ArgumentParser) -> None:
    command = commands.add_parser(
        "transcribe",
        parents=[common],
        help="Transcribe files, directories, globs or stdin.",
        description="Transcribe audio files. One input prints to stdout; with --out each input "
        "gets its own file, and a journal in that folder makes re-runs resume.",
    )
    command.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="Audio files, directories (searched for audio), globs, or - for stdin.",
    )
    command.add_argument(
        "--mode",
        choices=("auto", "batch", "realtime"),
        default="auto",
        help="auto: batch for files, real-time for raw stdin; or force one (default: auto).",
    )
    command.add_argument("--format", choices=FORMATS, default="text", help="Output format.")
    command.add_argument(
        "--out", type=Path, help="Folder for one output per input (needed for several inputs)."
    )
    command.add_argument(
        "--journal",
        type=Path,
        help=f"Progress journal (SQLite) for resuming; default: OUT/{JOURNAL_NAME}.",
    )
    command.add_argument(
        "--concurrency", type=int, default=4, help="Files in flight at once (default: 4)."
    )
    command.add_argument(
        "--sample-rate",
        type=int,
        help="stdin holds raw 16-bit mono PCM at this rate (without it, stdin is a WAV file).",
    )
    command.add_argument("--local", action="store_true", help=_LOCAL_HELP)
    _add_model_options(command, TranscriptionOptions, skip=_REALTIME_ONLY)
    command.set_defaults(handler=_transcribe)


def _add_listen(commands: _Commands, common: argparse.ArgumentParser) -> None:
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
    command.add_argument("--local", action="store_true", help=_LOCAL_HELP)
    _add_model_options(command, TranscriptionOptions, skip=_BATCH_ONLY | {"enable_partials"})
    command.set_defaults(handler=_listen)


def _add_serve(commands: _Commands, common: argparse.ArgumentParser) -> None:
    command = commands.add_parser(
        "serve",
        parents=[common],
        help="Run the embedded server (Speechmatics batch + real-time APIs) until Ctrl+C.",
    )
    command.add_argument("--host", default="127.0.0.1", help="Interface (default: %(default)s).")
    command.add_argument(
        "--port", type=int, default=8080, help="TCP port; 0 picks one (default: %(default)s)."
    )
    command.add_argument(
        "--api-key", help="Key clients must present (needed off loopback); any key by default."
    )
    command.add_argument(
        "--engine",
        choices=("default", "whisper", "pocketsphinx", "scripted"),
        default="default",
        help="Speech engine: whisper (the default when installed), pocketsphinx (lighter, less "
        "accurate), or scripted (a testing aid: fixed words, instantly).",
    )
    command.add_argument(
        "--max-session-seconds",
        type=float,
        default=48 * 3600.0,
        help="Real-time session limit, with the service's warnings before it (default: 48 h); "
        "shorten it to test rollover.",
    )
    command.add_argument(
        "--job-seconds",
        type=float,
        default=0.0,
        help="Testing aid: extra seconds every batch job spends running.",
    )
    command.set_defaults(handler=_serve)


def _add_jobs(commands: _Commands, common: argparse.ArgumentParser) -> None:
    jobs = commands.add_parser("jobs", parents=[common], help="List, show or delete batch jobs.")
    actions = jobs.add_subparsers(title="actions", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="The most recent jobs.")
    listing.add_argument("--limit", type=int, default=100, help="At most this many (1-100).")
    listing.set_defaults(handler=_jobs_list)
    for name, handler, text in (
        ("show", _jobs_show, "One job's details."),
        ("delete", _jobs_delete, "Delete a job (stopping it if it runs)."),
    ):
        action = actions.add_parser(name, parents=[common], help=text)
        action.add_argument("job_id", metavar="JOB_ID")
        action.set_defaults(handler=handler)


_REALTIME_ONLY = frozenset(
    {"enable_partials", "max_delay", "max_delay_mode", "streaming_mode", "ctrl"}
)
_BATCH_ONLY = frozenset({"model"})


def _add_model_options(
    parser: argparse.ArgumentParser, model: type[BaseModel], *, skip: frozenset[str]
) -> None:
    """One ``--option`` per scalar field of ``model``, its help being the field's description."""
    group = parser.add_argument_group("transcription options")
    for name, field in model.model_fields.items():
        kind = _scalar_kind(field.annotation)
        if name in skip or kind is None:
            continue
        flag = "--" + name.replace("_", "-")
        help_text = (field.description or "").replace("%", "%%")
        if kind is bool:
            group.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, help=help_text
            )
        elif isinstance(kind, tuple):
            group.add_argument(flag, dest=name, choices=kind, help=help_text)
        else:
            group.add_argument(flag, dest=name, type=kind, help=help_text)


def _scalar_kind(annotation: Any) -> type | tuple[str, ...] | None:
    """``str``, ``float``, ``bool``, a ``Literal``'s choices, or ``None`` for anything else."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) != 1:
            return None
        annotation = members[0]
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(str(choice) for choice in typing.get_args(annotation))
    return annotation if annotation in (str, int, float, bool) else None


def _model_options(args: argparse.Namespace, **fixed: Any) -> TranscriptionOptions:
    given = {
        name: getattr(args, name)
        for name in TranscriptionOptions.model_fields
        if getattr(args, name, None) is not None
    }
    try:
        return TranscriptionOptions(**{**given, **fixed})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "options"
        raise UsageError(f"{where}: {first['msg']}") from exc


def _settings_for_cli(args: argparse.Namespace) -> Settings:
    """The user's settings; the embedded server with ``--local``, or when there is no key."""
    settings = Settings()
    if getattr(args, "local", False):
        return Settings(backend="local")
    if settings.api_key is None and settings.backend == "cloud":
        _say(args, "no SPEECHMATICS_API_KEY: using the embedded offline server (lower accuracy)")
        return Settings(backend="local")
    return settings


# --- transcribe -------------------------------------------------------------------------------


def _transcribe(args: argparse.Namespace) -> int:
    options = _model_options(args)
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if "-" in args.paths:
        if len(args.paths) > 1:
            raise UsageError("- (stdin) cannot be mixed with other inputs")
        return _transcribe_stdin(args, options)
    inputs = _expand(args, args.paths)
    if len(inputs) > 1 and args.out is None:
        raise UsageError(f"{len(inputs)} inputs: give --out DIR to write one output per input")
    journal = args.journal
    if journal is None and args.out is not None:
        journal = args.out / JOURNAL_NAME
    settings = _settings_for_cli(args)
    return anyio.run(_transcribe_files, args, inputs, options, settings, journal)


async def _transcribe_files(
    args: argparse.Namespace,
    inputs: list[Path],
    options: TranscriptionOptions,
    settings: Settings,
    journal: Path | None,
) -> int:
    names = _output_names(inputs, _EXTENSIONS[args.format])
    progress = _Progress(len(inputs), quiet=args.quiet)
    status = EXIT_OK
    results = transcribe_many(
        inputs,
        concurrency=args.concurrency,
        mode=args.mode,
        options=options,
        settings=settings,
        journal=journal,
        on_status=progress.step,
    )
    async for result in results:
        if result.error is not None:
            status = max(status, _exit_code(result.error))
            if args.verbose:
                traceback.print_exception(result.error)
            progress.failed(result.source, _describe_failure(result))
            continue
        written = _deliver(result, names[result.source], args)
        progress.done(result, written)
    progress.close()
    return status


def _describe_failure(result: BulkResult) -> str:
    message = str(result.error)
    return message if str(result.source) in message else f"{result.source}: {message}"


def _deliver(result: BulkResult, name: str, args: argparse.Namespace) -> Path | None:
    """Write the transcript to ``--out`` (atomically) or stdout; ``None`` when not written."""
    if result.transcript is None:
        return None
    text = _render(result.transcript, args.format)
    if args.out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return None
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    target = out / name
    partial = target.with_name(target.name + ".part")
    partial.write_text(text, encoding="utf-8")
    partial.replace(target)
    return target


def _render(transcript: Transcript, output_format: str) -> str:
    renderers: dict[str, Callable[[], str]] = {
        "text": transcript.to_text,
        "json": transcript.to_json,
        "srt": transcript.to_srt,
        "vtt": transcript.to_vtt,
    }
    text = renderers[output_format]()
    return text if text.endswith("\n") else text + "\n"


def _expand(args: argparse.Namespace, patterns: Sequence[str]) -> list[Path]:
    """Files from paths, directories (their audio files, recursively) and quoted globs.

    A path that does not exist is kept as given: it fails as that input, with the others
    transcribed. Files in directories that are not audio are skipped, and counted on stderr.
    """
    inputs: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        globbed = (
            glob.glob(pattern, recursive=True) if _is_glob(pattern) and not path.exists() else []
        )
        matches = [Path(match) for match in sorted(globbed)]
        for candidate in matches or [path]:
            if candidate.is_dir():
                inputs.extend(_audio_in(args, candidate))
            else:
                inputs.append(candidate)
    return list(dict.fromkeys(inputs))


def _is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


def _audio_in(args: argparse.Namespace, directory: Path) -> list[Path]:
    files = sorted(path for path in directory.rglob("*") if path.is_file())
    audio = [path for path in files if path.suffix.lower() in AUDIO_SUFFIXES]
    others = [path for path in files if path.suffix.lower() not in AUDIO_SUFFIXES]
    if others:
        shown = ", ".join(path.name for path in others[:3]) + (", ..." if len(others) > 3 else "")
        _say(args, f"{directory}: skipped {len(others)} file(s) that are not audio ({shown})")
    if not audio:
        raise AudioSourceError(f"{directory}: no audio files in this directory")
    return audio


def _output_names(inputs: list[Path], extension: str) -> dict[Path, str]:
    """Output file name per input: its stem plus the format's extension, numbered on clashes."""
    names: dict[Path, str] = {}
    taken: set[str] = set()
    for path in inputs:
        name, number = path.stem + extension, 1
        while name in taken:
            number += 1
            name = f"{path.stem}-{number}{extension}"
        taken.add(name)
        names[path] = name
    return names


def _transcribe_stdin(args: argparse.Namespace, options: TranscriptionOptions) -> int:
    raw = args.sample_rate is not None
    if not raw and args.mode == "realtime":
        raise UsageError("real-time from stdin needs raw PCM: give --sample-rate")
    audio_format = AudioFormat(sample_rate=args.sample_rate) if raw else None
    mode: Literal["auto", "batch", "realtime"] = args.mode if raw else "batch"
    settings = _settings_for_cli(args)
    transcript = anyio.run(_transcribe_chunks, mode, options, audio_format, settings)
    result = BulkResult(Path("stdin"), transcript=transcript, job_id=transcript.job_id)
    _deliver(result, "stdin" + _EXTENSIONS[args.format], args)
    return EXIT_OK


async def _transcribe_chunks(
    mode: Literal["auto", "batch", "realtime"],
    options: TranscriptionOptions,
    audio_format: AudioFormat | None,
    settings: Settings,
) -> Transcript:
    chunks = iter(lambda: sys.stdin.buffer.read(_STDIN_BLOCK), b"")
    return await transcribe(
        chunks, mode, options=options, audio_format=audio_format, settings=settings
    )


class _Progress:
    """Files done/total with an ETA, redrawn in place on a terminal; plain lines otherwise."""

    def __init__(self, total: int, *, quiet: bool, out: TextIO | None = None) -> None:
        self._out = out or sys.stderr
        self._total = total
        self._quiet = quiet
        self._live = not quiet and self._out.isatty()
        self._finished = 0
        self._failed = 0
        self._transcribed = 0
        self._started = time.monotonic()
        self._steps: dict[Path, str] = {}

    def step(self, path: Path, status: str) -> None:
        self._steps[path] = status
        self._redraw()

    def done(self, result: BulkResult, written: Path | None) -> None:
        self._finished += 1
        self._steps.pop(result.source, None)
        if result.skipped:
            self._line(f"skipped {result.source} (done in an earlier run)")
            return
        self._transcribed += 1
        if written is not None:
            self._line(f"done {result.source} -> {written}")

    def failed(self, path: Path, message: str) -> None:
        self._finished += 1
        self._failed += 1
        self._steps.pop(path, None)
        self._clear()
        _error(message)
        self._redraw()

    def close(self) -> None:
        self._clear()
        if not self._quiet and self._total > 1:
            print(
                f"{PROG}: {self._finished - self._failed}/{self._total} done, "
                f"{self._failed} failed in {time.monotonic() - self._started:.1f} s",
                file=self._out,
                flush=True,
            )

    def _line(self, text: str) -> None:
        if self._quiet:
            return
        self._clear()
        print(f"{PROG}: {text}", file=self._out, flush=True)
        self._redraw()

    def _clear(self) -> None:
        if self._live:
            self._out.write("\r\x1b[K")

    def _redraw(self) -> None:
        if not self._live:
            return
        width = shutil.get_terminal_size().columns
        current = ", ".join(f"{path.name} {step}" for path, step in list(self._steps.items())[:3])
        line = f"[{self._finished}/{self._total}] {self._eta()} {current}"
        self._out.write("\r\x1b[K" + line[: width - 1])
        self._out.flush()

    def _eta(self) -> str:
        if not self._transcribed:
            return "ETA --:--"
        per_file = (time.monotonic() - self._started) / self._transcribed
        seconds = int(per_file * (self._total - self._finished))
        return f"ETA {seconds // 60}:{seconds % 60:02d}"


# --- listen -----------------------------------------------------------------------------------


def _listen(args: argparse.Namespace) -> int:
    from ._microphone import Microphone, list_input_devices

    if args.list_devices:
        for found in list_input_devices():
            mark = "*" if found.is_default else " "
            print(f"{mark} {found.index:3d}  {found.name}")
        return EXIT_OK
    options = _model_options(args, enable_partials=True)
    device: int | str | None = args.device
    if isinstance(device, str) and device.isdigit():
        device = int(device)
    settings = _settings_for_cli(args)
    captions = _Captions(quiet=args.quiet)
    microphone = Microphone(device=device)
    transcript = anyio.run(_listen_until_interrupted, microphone, options, settings, captions)
    sys.stdout.write(_render(transcript, args.format))
    sys.stdout.flush()
    return EXIT_OK


async def _listen_until_interrupted(
    microphone: Any, options: TranscriptionOptions, settings: Settings, captions: _Captions
) -> Transcript:
    """Caption until Ctrl+C (or SIGTERM), then return the transcript.

    The first signal stops the microphone and lets the service finish the words it heard; a
    second one abandons them.
    """
    async with anyio.create_task_group() as group:
        group.start_soon(_stop_on_signals, microphone, group.cancel_scope)
        async with microphone, stream(microphone, options=options, settings=settings) as events:
            async for event in events:
                captions.show(event)
        group.cancel_scope.cancel()
    captions.close()
    return events.transcript


async def _stop_on_signals(microphone: Any, scope: anyio.CancelScope) -> None:
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


# --- serve and jobs ---------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from .local import Faults, LocalServer, ScriptedEngine

    engine: Any = None if args.engine == "default" else args.engine  # LocalServer takes names
    if args.engine == "scripted":
        engine = ScriptedEngine.from_text(_SCRIPT)
    server = LocalServer(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        engine=engine,
        max_session_seconds=args.max_session_seconds,
        faults=Faults(job_seconds=args.job_seconds),
    )
    anyio.run(_serve_until_signalled, server, args)
    return EXIT_OK


_SCRIPT = " ".join(["hello world."] * 400)
"""What ``serve --engine scripted`` "hears": two words every 1.9 s for about 12 minutes."""


async def _serve_until_signalled(server: Any, args: argparse.Namespace) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with server:
            print(f"SPEECHMATICS_BATCH_URL={server.batch_url}", flush=True)
            print(f"SPEECHMATICS_RT_URL={server.rt_url}", flush=True)
            _say(args, f"serving on port {server.port}; Ctrl+C stops")
            async for _ in signals:
                break


def _jobs_list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 100:
        raise UsageError("--limit must be between 1 and 100")
    jobs = anyio.run(_with_batch_client, args, lambda client: client.jobs(args.limit))
    for job in jobs:
        duration = f"{job.duration:.0f}s" if job.duration is not None else "-"
        print(f"{job.id}\t{job.status}\t{job.created_at}\t{duration}\t{job.data_name}")
    return EXIT_OK


def _jobs_show(args: argparse.Namespace) -> int:
    job: BatchJob = anyio.run(_with_batch_client, args, lambda client: client.job(args.job_id))
    for key, value in _job_fields(job):
        print(f"{key}: {value}")
    return EXIT_OK


def _job_fields(job: BatchJob) -> Iterator[tuple[str, object]]:
    for key in ("id", "status", "created_at", "data_name", "duration", "reference"):
        value = getattr(job, key)
        if value is not None:
            yield key, value
    for error in job.errors:
        yield "error", error


def _jobs_delete(args: argparse.Namespace) -> int:
    anyio.run(_with_batch_client, args, lambda client: client.delete(args.job_id))
    _say(args, f"deleted job {args.job_id}")
    return EXIT_OK


async def _with_batch_client(args: argparse.Namespace, call: Callable[[BatchClient], Any]) -> Any:
    async with endpoint(_settings_for_cli(args)) as settings, BatchClient(settings) as client:
        return await call(client)


# --- options and demo -------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    audio: Path = args.audio
    settings = _settings_for_cli(args)
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
