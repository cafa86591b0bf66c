"""``transcribe``: files, directories, globs or stdin, one output per input.

Files go through :func:`~speechmatics_modes.transcribe_many`, so with ``--out`` a journal makes
a re-run resume; stdin goes through :func:`~speechmatics_modes.transcribe`.
"""

from __future__ import annotations

import argparse
import glob
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, TextIO

import anyio

from speechmatics_modes._api import transcribe
from speechmatics_modes._bulk import BulkResult, transcribe_many
from speechmatics_modes._cli._console import EXTENSIONS, FORMATS, PROG, error, render, say
from speechmatics_modes._cli._exits import EXIT_OK, UsageError, exit_code
from speechmatics_modes._cli._options import (
    LOCAL_HELP,
    Commands,
    add_transcription_flags,
    settings_for_cli,
    transcription_options,
)
from speechmatics_modes._config import AudioFormat, TranscriptionOptions
from speechmatics_modes._exceptions import AudioSourceError
from speechmatics_modes._inputs import BulkInput, inputs_of, is_url, read_manifest
from speechmatics_modes._journal import is_postgres_url
from speechmatics_modes._models import Transcript
from speechmatics_modes._settings import Settings
from speechmatics_modes._sqlite_journal import SqliteJournal

__all__ = ["AUDIO_SUFFIXES", "JOURNAL_NAME", "add_transcribe_command"]

AUDIO_SUFFIXES = frozenset(
    {".wav", ".wave", ".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".wma"}
    | {".webm", ".amr", ".aif", ".aiff", ".mka", ".mkv", ".mov", ".3gp"}
)
"""What a directory is searched for: the containers the batch service accepts."""
JOURNAL_NAME = ".speechmatics-modes-journal.sqlite"
_STDIN_BLOCK = 64 * 1024


def add_transcribe_command(commands: Commands, common: argparse.ArgumentParser) -> None:
    """``transcribe``: files, directories, globs or stdin."""
    command = commands.add_parser(
        "transcribe",
        parents=[common],
        help="Transcribe files, directories, globs or stdin.",
        description="Transcribe audio files. One input prints to stdout; with --out each input "
        "gets its own file, and a journal in that folder makes re-runs resume.",
    )
    command.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="Audio files, https:// URLs (fetched by the service), directories (searched for "
        "audio), globs, or - for stdin.",
    )
    command.add_argument(
        "--manifest",
        type=Path,
        help="A file listing the inputs: one path or URL per line, or CSV with id and "
        "source (or path/url) columns; outputs are named by id.",
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
        help=f"Progress journal for resuming: a SQLite file (default: OUT/{JOURNAL_NAME}), "
        "or a postgresql:// URL that workers on many machines share (see docs/archive.md).",
    )
    command.add_argument(
        "--store-transcripts",
        action="store_true",
        help="Also keep each transcript in the postgresql:// journal, by input id.",
    )
    command.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="Inputs in flight at once (default: 4); with a postgresql:// journal, over "
        "every worker of the run.",
    )
    command.add_argument(
        "--sample-rate",
        type=int,
        help="stdin holds raw 16-bit mono PCM at this rate (without it, stdin is a WAV file).",
    )
    command.add_argument("--local", action="store_true", help=LOCAL_HELP)
    add_transcription_flags(command, "batch")
    command.set_defaults(handler=_transcribe)


def _transcribe(args: argparse.Namespace) -> int:
    options = transcription_options(args)
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if "-" in args.paths:
        if len(args.paths) > 1 or args.manifest is not None:
            raise UsageError("- (stdin) cannot be mixed with other inputs")
        return _transcribe_stdin(args, options)
    if not args.paths and args.manifest is None:
        raise UsageError("give the inputs: PATH ... or --manifest FILE")
    inputs = inputs_of(_expand(args, args.paths))
    if args.manifest is not None:
        inputs += read_manifest(args.manifest)
    if len(inputs) > 1 and args.out is None:
        raise UsageError(f"{len(inputs)} inputs: give --out DIR to write one output per input")
    journal: str | Path | None = args.journal
    if journal is None and args.out is not None:
        journal = args.out / JOURNAL_NAME
    names = _output_names(inputs, EXTENSIONS[args.format])
    if journal is not None and not is_postgres_url(journal) and args.out is not None:
        _reopen_missing_outputs(Path(journal), {item: args.out / names[item.id] for item in inputs})
    settings = settings_for_cli(args)
    return anyio.run(_transcribe_files, args, inputs, names, options, settings, journal)


def _reopen_missing_outputs(journal: Path, outputs: dict[BulkInput, Path]) -> None:
    """Make inputs the journal calls done due again when their output file is not there.

    The journal records that a transcript was handed over, not what became of it: a re-run in
    another ``--format``, or after an output was deleted, would otherwise skip every input and
    write nothing. Such an input re-attaches to its batch job (no second upload) or, if the
    service no longer has it, is transcribed afresh.
    """
    if not journal.exists():
        return
    book = SqliteJournal(journal)
    try:
        for item, output in outputs.items():
            if not output.exists():
                book.reopen(item)
    finally:
        book.close()


async def _transcribe_files(
    args: argparse.Namespace,
    inputs: list[BulkInput],
    names: dict[str, str],
    options: TranscriptionOptions,
    settings: Settings,
    journal: str | Path | None,
) -> int:
    progress = _Progress(len(inputs), quiet=args.quiet)
    status = EXIT_OK
    results = transcribe_many(
        inputs,
        concurrency=args.concurrency,
        mode=args.mode,
        options=options,
        settings=settings,
        journal=journal,
        store_transcripts=args.store_transcripts,
        on_status=progress.step,
    )
    try:
        async for result in results:
            if result.error is not None:
                status = max(status, exit_code(result.error))
                if args.verbose:
                    traceback.print_exception(result.error)
                progress.failed(result.source, _describe_failure(result))
                continue
            written = _deliver(result, names[result.id], args)
            progress.done(result, written)
    finally:  # the run itself can fail too (the service stayed out of reach)
        progress.close()
    return status


def _describe_failure(result: BulkResult) -> str:
    message = str(result.error)
    return message if str(result.source) in message else f"{result.source}: {message}"


def _deliver(result: BulkResult, name: str, args: argparse.Namespace) -> Path | None:
    """Write the transcript to ``--out`` (atomically) or stdout; ``None`` when not written."""
    if result.transcript is None:
        return None
    text = render(result.transcript, args.format)
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


def _expand(args: argparse.Namespace, patterns: Sequence[str]) -> list[Path | str]:
    """Files from paths, directories (their audio files, recursively) and quoted globs; URLs.

    A path that does not exist is kept as given: it fails as that input, with the others
    transcribed. Files in directories that are not audio are skipped, and counted on stderr.
    """
    inputs: list[Path | str] = []
    for pattern in patterns:
        if is_url(pattern):
            inputs.append(pattern)
            continue
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
        say(args, f"{directory}: skipped {len(others)} file(s) that are not audio ({shown})")
    if not audio:
        raise AudioSourceError(f"{directory}: no audio files in this directory")
    return audio


def _output_names(inputs: list[BulkInput], extension: str) -> dict[str, str]:
    """Output file name per input id, numbered on clashes.

    A path or URL gives its stem; a manifest id (anything else) is the name itself.
    """
    names: dict[str, str] = {}
    taken: set[str] = set()
    for item in inputs:
        stem = _stem(item)
        name, number = stem + extension, 1
        while name in taken:
            number += 1
            name = f"{stem}-{number}{extension}"
        taken.add(name)
        names[item.id] = name
    return names


def _stem(item: BulkInput) -> str:
    if item.id != item.source:
        return item.id.replace("/", "_")
    if is_url(item.source):
        return Path(item.source.split("?", 1)[0].rstrip("/")).stem or "audio"
    return Path(item.source).stem


def _transcribe_stdin(args: argparse.Namespace, options: TranscriptionOptions) -> int:
    raw = args.sample_rate is not None
    if not raw and args.mode == "realtime":
        raise UsageError("real-time from stdin needs raw PCM: give --sample-rate")
    audio_format = AudioFormat(sample_rate=args.sample_rate) if raw else None
    mode: Literal["auto", "batch", "realtime"] = args.mode if raw else "batch"
    settings = settings_for_cli(args)
    transcript = anyio.run(_transcribe_chunks, mode, options, audio_format, settings)
    result = BulkResult(Path("stdin"), transcript=transcript, job_id=transcript.job_id)
    _deliver(result, "stdin" + EXTENSIONS[args.format], args)
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
        self._steps: dict[Path | str, str] = {}

    def step(self, path: Path | str, status: str) -> None:
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

    def failed(self, path: Path | str, message: str) -> None:
        self._finished += 1
        self._failed += 1
        self._steps.pop(path, None)
        self._clear()
        error(message)
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
        steps = list(self._steps.items())[:3]
        current = ", ".join(f"{str(path).rsplit('/', 1)[-1]} {step}" for path, step in steps)
        line = f"[{self._finished}/{self._total}] {self._eta()} {current}"
        self._out.write("\r\x1b[K" + line[: width - 1])
        self._out.flush()

    def _eta(self) -> str:
        if not self._transcribed:
            return "ETA --:--"
        per_file = (time.monotonic() - self._started) / self._transcribed
        seconds = int(per_file * (self._total - self._finished))
        return f"ETA {seconds // 60}:{seconds % 60:02d}"
