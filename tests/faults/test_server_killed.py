"""The server dies (``kill -9``) and comes back, mid-call: batch polling, streaming, bulk.

The server is a real ``speechmatics-modes serve`` process. Every assertion is about what the
caller is told and what a rerun achieves, never about how long anything took.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import anyio
import pytest
from pydantic import SecretStr

from speechmatics_modes import (
    BulkResult,
    Final,
    JobFailedError,
    RetryPolicy,
    RolloverPolicy,
    Settings,
    SpeechmaticsModesError,
    TransportError,
    stream,
    transcribe,
    transcribe_many,
)
from speechmatics_modes._bulk import UNREACHABLE_IN_A_ROW
from tests._serve_process import ServeProcess, serve_process
from tests.conftest import SYNTHETIC_AUDIO
from tests.local.conftest import pcm_bytes

pytestmark = pytest.mark.anyio

HELLO = SYNTHETIC_AUDIO / "espeak-hello-world.wav"
GUARD = 60.0
"""The most any call here may take; the server's and client's own bounds are far shorter."""
QUICK = RetryPolicy(max_failures=3, backoff_initial=0.05, backoff_max=0.2)
"""Gives up on a dead server within a second."""
PATIENT = RetryPolicy(max_failures=200, backoff_initial=0.1, backoff_max=0.3)
"""Rides out a restart (a new process needs a few seconds)."""


def settings_for(server: ServeProcess) -> Settings:
    return Settings(
        api_key=SecretStr("any-key"),
        batch_url=server.batch_url,
        rt_url=server.rt_url,
        backend="cloud",
    )


@pytest.fixture
def server() -> Iterator[ServeProcess]:
    with serve_process("--job-seconds", "2") as running:
        yield running


async def first_job_id(server: ServeProcess) -> str:
    """Wait until the server lists a job; its id."""
    async with aiohttp.ClientSession() as http:
        with anyio.fail_after(GUARD):
            while True:
                async with http.get(f"{server.batch_url}/jobs") as response:
                    jobs = (await response.json())["jobs"]
                if jobs:
                    return str(jobs[0]["id"])
                await anyio.sleep(0.05)


async def batch_job_hit_by(
    server: ServeProcess, retry: RetryPolicy, *, restart: bool
) -> tuple[SpeechmaticsModesError, str]:
    """Transcribe in batch, kill -9 the server once the job exists (and maybe restart it).

    Returns:
        The error the call ended with, and the id of the job the server had.
    """
    settings = settings_for(server)
    outcome: list[SpeechmaticsModesError] = []

    async def run() -> None:
        try:
            await transcribe(HELLO, "batch", settings=settings, retry=retry)
        except SpeechmaticsModesError as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as group:
        group.start_soon(run)
        job_id = await first_job_id(server)
        server.kill()
        if restart:
            await anyio.to_thread.run_sync(server.start)
    assert len(outcome) == 1, "the call succeeded"
    return outcome[0], job_id


async def test_polling_a_killed_server_fails_with_the_job_id(server: ServeProcess) -> None:
    error, job_id = await batch_job_hit_by(server, QUICK, restart=False)
    assert isinstance(error, TransportError)
    assert error.retryable
    assert error.job_id == job_id


async def test_polling_across_a_restart_names_the_job_the_new_server_lost(
    server: ServeProcess,
) -> None:
    error, job_id = await batch_job_hit_by(server, PATIENT, restart=True)
    assert isinstance(error, JobFailedError)
    assert error.job_id == job_id
    assert "404" in str(error)


async def _endless_speech() -> AsyncIterator[bytes]:
    while True:
        yield pcm_bytes(0.2)
        await anyio.sleep(0.02)


async def test_a_rolling_stream_survives_a_kill_and_restart(server: ServeProcess) -> None:
    settings = settings_for(server)
    policy = RolloverPolicy(backoff_initial=0.1, backoff_max=0.5, max_attempts=100)
    finals_before = finals_after = 0
    with anyio.fail_after(GUARD):
        async with stream(_endless_speech(), settings=settings, rollover=policy) as events:
            async for event in events:
                if not isinstance(event, Final):
                    continue
                if server.process is not None and finals_before < 2:
                    finals_before += 1
                    if finals_before == 2:
                        server.kill()
                        await anyio.to_thread.run_sync(server.start)
                    continue
                finals_after += 1
                if finals_after == 2:
                    break
    assert (finals_before, finals_after) == (2, 2)


async def test_a_stream_without_rollover_ends_with_a_retryable_transport_error(
    server: ServeProcess,
) -> None:
    with anyio.fail_after(GUARD), pytest.raises(TransportError) as caught:
        await _stream_killing_at_the_first_final(server)
    assert caught.value.retryable


async def _stream_killing_at_the_first_final(server: ServeProcess) -> None:
    async with stream(_endless_speech(), settings=settings_for(server)) as events:
        async for event in events:
            if isinstance(event, Final):
                server.kill()


async def test_a_bulk_run_stops_promptly_when_the_server_dies_and_a_rerun_finishes(
    server: ServeProcess, tmp_path: Path
) -> None:
    clips = []
    for number in range(12):
        clips.append(tmp_path / f"clip-{number}.wav")
        shutil.copy(HELLO, clips[-1])
    journal = tmp_path / "journal.sqlite"
    concurrency = 2
    results: list[BulkResult] = []
    run = transcribe_many(
        clips, concurrency=concurrency, settings=settings_for(server), journal=journal, retry=QUICK
    )
    with anyio.fail_after(GUARD), pytest.raises(TransportError, match="stopped the run"):
        await _collect_killing_after(run, results, server, count=2)
    after_kill = results[2:]
    assert all(isinstance(result.error, TransportError) for result in after_kill)
    assert len(after_kill) <= UNREACHABLE_IN_A_ROW + concurrency - 1  # not one per input
    await anyio.to_thread.run_sync(server.start)
    with anyio.fail_after(GUARD):
        rerun = [
            result
            async for result in transcribe_many(
                clips, concurrency=concurrency, settings=settings_for(server), journal=journal
            )
        ]
    assert sorted(str(result.source) for result in rerun) == sorted(map(str, clips))
    assert all(result.ok for result in rerun)
    assert sum(result.skipped for result in rerun) == 2


async def _collect_killing_after(
    run: AsyncIterator[BulkResult], results: list[BulkResult], server: ServeProcess, count: int
) -> None:
    async for result in run:
        results.append(result)
        if len(results) == count:
            server.kill()
