"""``serve``: the embedded Speechmatics-compatible server, until Ctrl+C."""

from __future__ import annotations

import argparse
import signal
from typing import Any

import anyio

from speechmatics_modes._cli._console import say
from speechmatics_modes._cli._exits import EXIT_OK
from speechmatics_modes._cli._options import Commands

__all__ = ["add_serve_command"]

SCRIPTED = "scripted"
"""The testing aid's name: not an engine the server knows, but a script the command writes."""

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
    command.add_argument(
        "--api-key", help="Key clients must present (needed off loopback); any key by default."
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


async def _serve_until_signalled(server: Any, args: argparse.Namespace) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with server:
            print(f"SPEECHMATICS_BATCH_URL={server.batch_url}", flush=True)
            print(f"SPEECHMATICS_RT_URL={server.rt_url}", flush=True)
            say(args, f"serving on port {server.port}; Ctrl+C stops")
            async for _ in signals:
                break
