"""``serve``: the embedded Speechmatics-compatible server, until Ctrl+C."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path
from typing import Any

import anyio

from speechmatics_modes._cli._console import say
from speechmatics_modes._cli._exits import EXIT_OK, UsageError
from speechmatics_modes._cli._options import Commands

__all__ = ["add_serve_command"]

SCRIPTED = "scripted"
"""The testing aid's name: not an engine the server knows, but a script the command writes."""

KEY_VARIABLE = "SPEECHMATICS_MODES_SERVE_API_KEY"
"""Where ``serve`` reads its key when neither ``--api-key-file`` nor ``--api-key`` is given."""

_SCRIPT = " ".join(["hello world."] * 400)
"""What ``serve --engine scripted`` "hears": two words every 1.9 s for about 12 minutes."""


def add_serve_command(commands: Commands, common: argparse.ArgumentParser) -> None:
    """``serve``: the embedded server on a host and port."""
    command = commands.add_parser(
        "serve",
        parents=[common],
        help="Run the embedded server (Speechmatics batch + real-time APIs) until Ctrl+C.",
    )
    command.add_argument("--host", default="127.0.0.1", help="Interface (default: %(default)s).")
    command.add_argument(
        "--port", type=int, default=8080, help="TCP port; 0 picks one (default: %(default)s)."
    )
    keys = command.add_mutually_exclusive_group()
    keys.add_argument(
        "--api-key-file",
        type=Path,
        help="File holding the key clients must present (needed off loopback, 16+ characters). "
        f"Or set {KEY_VARIABLE}. Without either, any key is accepted.",
    )
    keys.add_argument(
        "--api-key",
        help="The key itself: other users of this machine can read it in the process list; "
        "prefer --api-key-file or the environment variable.",
    )
    command.add_argument(
        "--allow-fetch",
        action="append",
        default=[],
        metavar="NETWORK",
        help="Let fetch_data URLs reach this network (e.g. 10.0.0.0/8 or 127.0.0.1); repeat for "
        "more. By default only public addresses are fetched from.",
    )
    command.add_argument(
        "--max-upload-mb",
        type=float,
        default=1024.0,
        help="Largest upload or fetched file in MiB (default: %(default)g, the service's limit).",
    )
    command.add_argument(
        "--engine",
        choices=("default", *_engine_names(), SCRIPTED),
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


def _engine_names() -> tuple[str, ...]:
    """The server's engine names, as the server defines them; none without the local extra."""
    try:
        from speechmatics_modes.local._server import ENGINE_NAMES
    except ModuleNotFoundError:  # serve then fails, naming the missing package
        return ()
    return ENGINE_NAMES


def _serve(args: argparse.Namespace) -> int:
    from speechmatics_modes.local import Faults, LocalServer, ScriptedEngine

    engine: Any = None if args.engine == "default" else args.engine  # LocalServer takes names
    if args.engine == SCRIPTED:
        engine = ScriptedEngine.from_text(_SCRIPT)
    if args.max_upload_mb <= 0:
        raise UsageError("--max-upload-mb must be positive")
    server = LocalServer(
        host=args.host,
        port=args.port,
        api_key=_api_key(args),
        engine=engine,
        max_session_seconds=args.max_session_seconds,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        allow_fetch_from=args.allow_fetch,
        faults=Faults(job_seconds=args.job_seconds),
    )
    anyio.run(_serve_until_signalled, server, args)
    return EXIT_OK


def _api_key(args: argparse.Namespace) -> str | None:
    """The key from ``--api-key-file``, ``--api-key`` or the environment, in that order."""
    if args.api_key_file is not None:
        key = args.api_key_file.read_text(encoding="utf-8").strip()
        if not key:
            raise UsageError(f"{args.api_key_file} holds no key")
        return str(key)
    if args.api_key is not None:
        return str(args.api_key)
    return os.environ.get(KEY_VARIABLE) or None


async def _serve_until_signalled(server: Any, args: argparse.Namespace) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with server:
            print(f"SPEECHMATICS_BATCH_URL={server.batch_url}", flush=True)
            print(f"SPEECHMATICS_RT_URL={server.rt_url}", flush=True)
            say(args, f"serving on port {server.port}; Ctrl+C stops")
            async for _ in signals:
                break
