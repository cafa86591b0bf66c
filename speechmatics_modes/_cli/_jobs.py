"""``jobs list|show|delete``: the batch jobs a service holds."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from typing import Any

import anyio

from speechmatics_modes._batch import BatchClient, BatchJob
from speechmatics_modes._cli._console import say
from speechmatics_modes._cli._exits import EXIT_OK, UsageError
from speechmatics_modes._cli._options import Commands
from speechmatics_modes._endpoint import endpoint
from speechmatics_modes._settings import Settings

__all__ = ["add_jobs_command"]


def add_jobs_command(commands: Commands, common: argparse.ArgumentParser) -> None:
    """``jobs``: list, show or delete batch jobs."""
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


def _jobs_list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 100:
        raise UsageError("--limit must be between 1 and 100")
    jobs = anyio.run(_with_batch_client, lambda client: client.jobs(args.limit))
    for job in jobs:
        duration = f"{job.duration:.0f}s" if job.duration is not None else "-"
        print(f"{job.id}\t{job.status}\t{job.created_at}\t{duration}\t{job.data_name}")
    return EXIT_OK


def _jobs_show(args: argparse.Namespace) -> int:
    job: BatchJob = anyio.run(_with_batch_client, lambda client: client.job(args.job_id))
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
    anyio.run(_with_batch_client, lambda client: client.delete(args.job_id))
    say(args, f"deleted job {args.job_id}")
    return EXIT_OK


async def _with_batch_client(call: Callable[[BatchClient], Any]) -> Any:
    async with endpoint(_service_with_jobs()) as settings, BatchClient(settings) as client:
        return await call(client)


def _service_with_jobs() -> Settings:
    """The service whose jobs to manage: never an embedded server started for one command.

    Such a server would be brand new, so ``jobs list`` would always print nothing and ``show``
    would never find a job; saying so beats an empty answer that looks like a fact.
    """
    settings = Settings()
    if settings.backend == "local" or settings.api_key is None:
        raise UsageError(
            "jobs needs a service that keeps jobs: set SPEECHMATICS_API_KEY (and, for a server "
            "started with 'speechmatics-modes serve', SPEECHMATICS_BATCH_URL); an embedded "
            "server started for this command would have none"
        )
    return settings
