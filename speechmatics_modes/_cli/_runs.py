"""``runs status|retry-failed``: a shared bulk run, seen from any machine.

A run is the ``postgresql://`` journal its workers share (``transcribe --journal URL``); these
commands read or change it there, so they work while the workers run, from anywhere.
"""

from __future__ import annotations

import argparse

import anyio

from speechmatics_modes._cli._console import say
from speechmatics_modes._cli._exits import EXIT_OK, UsageError
from speechmatics_modes._cli._options import Commands
from speechmatics_modes._journal import is_postgres_url
from speechmatics_modes._postgres_journal import RunStatus, retry_failed, run_status

__all__ = ["add_runs_command", "describe_status"]


def add_runs_command(commands: Commands, common: argparse.ArgumentParser) -> None:
    """``runs``: the progress of a shared bulk run, and putting its failures back to work."""
    runs = commands.add_parser(
        "runs", parents=[common], help="Progress of a bulk run shared through PostgreSQL."
    )
    actions = runs.add_subparsers(title="actions", required=True, metavar="ACTION")
    for name, handler, text in (
        ("status", _status, "Done, running, failed and remaining inputs; throughput and ETA."),
        ("retry-failed", _retry_failed, "Put the failed inputs back to work for the workers."),
    ):
        action = actions.add_parser(name, parents=[common], help=text)
        action.add_argument("url", metavar="URL", help="The run's postgresql:// journal.")
        action.set_defaults(handler=handler)


def _checked(url: str) -> str:
    if not is_postgres_url(url):
        raise UsageError(f"runs needs a postgresql:// journal URL, got {url!r}")
    return url


def _status(args: argparse.Namespace) -> int:
    status = anyio.run(run_status, _checked(args.url))
    print(describe_status(status))
    return EXIT_OK


def describe_status(status: RunStatus) -> str:
    """The status as lines of ``name: value``, for people and for ``grep``."""
    eta = status.eta_seconds
    lines = [
        f"done: {status.done}/{status.total}",
        f"running: {status.running} ({status.in_flight} jobs in flight, {status.workers} workers)",
        f"failed: {status.failed}",
        f"remaining: {status.remaining}",
        f"throughput: {status.done_per_minute:.1f}/min",
        "eta: " + ("-" if eta is None else f"{int(eta) // 60}:{int(eta) % 60:02d}"),
        f"limit: {status.slot_limit:.1f} of {status.ceiling}"
        + (
            f" (paused {status.paused_seconds:.0f} s: rate limited)"
            if status.paused_seconds
            else ""
        ),
    ]
    return "\n".join(lines)


def _retry_failed(args: argparse.Namespace) -> int:
    count = anyio.run(retry_failed, _checked(args.url))
    say(args, f"{count} failed input(s) put back to work")
    print(count)
    return EXIT_OK
