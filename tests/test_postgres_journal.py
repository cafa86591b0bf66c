"""The PostgreSQL journal: claims, the shared limit, take-over after a crash, rate limits.

Every test runs against a real PostgreSQL server started for the session (tests/_postgres.py)
and the real local server; the multi-worker tests run each worker as its own process.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from aiohttp import web

from speechmatics_modes import (
    BatchClient,
    BatchOptions,
    BulkResult,
    ConfigurationError,
    Tracking,
    read_manifest,
)
from speechmatics_modes._inputs import inputs_of
from speechmatics_modes._postgres_journal import (
    PostgresJournal,
    _connected,
    migrate,
    open_postgres_journal,
    retry_failed,
    run_status,
)
from speechmatics_modes.local import Faults, HttpFailure, LocalServer, ScriptedEngine
from tests.conftest import eventually
from tests.security._origin import origin
from tests.test_bulk import HELLO, collect, copies, submit
from tests.test_cli import CLI, served

psycopg = pytest.importorskip("psycopg", reason="the postgres extra is not installed")
pytestmark = pytest.mark.anyio

WORKER_SECONDS = 120


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer(engine=ScriptedEngine.from_text("hello world")) as running:
        yield running


async def sql(url: str, query: str, params: object = None) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        cursor = await connection.execute(query, params)  # type: ignore[arg-type]
        return await cursor.fetchall() if cursor.description else []


async def prepare_run(url: str, *, concurrency: int, lease_seconds: float) -> None:
    """Create the run before its workers start, with a lease short enough for a test."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await migrate(connection)
        await connection.execute(
            "INSERT INTO speechmatics_modes_run (ceiling, slot_limit, lease_seconds) "
            "VALUES (%s, %s, %s)",
            (concurrency, concurrency, lease_seconds),
        )


async def test_the_schema_is_created_once_and_migrating_again_changes_nothing(
    postgres_url: str,
) -> None:
    async def migrate_once() -> None:
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            await migrate(conn)

    async with anyio.create_task_group() as group:
        for _ in range(4):  # workers starting together
            group.start_soon(migrate_once)
    await migrate_once()
    versions = await sql(postgres_url, "SELECT version FROM speechmatics_modes_schema_version")
    assert versions == [(1,)]


async def test_a_run_transcribes_everything_once_and_a_second_run_finds_nothing_to_do(
    server: LocalServer, postgres_url: str, tmp_path: Path
) -> None:
    clips = copies(tmp_path, 5)
    first = await collect(sources=clips, settings=server.settings(), journal=postgres_url)
    assert sorted(result.source for result in first) == clips
    assert all(result.transcript is not None for result in first)
    again = await collect(sources=clips, settings=server.settings(), journal=postgres_url)
    assert again == []
    assert server.stats.jobs_submitted == len(clips)
    status = await run_status(postgres_url)
    assert (status.done, status.remaining, status.failed, status.in_flight) == (5, 0, 0, 0)
    assert status.eta_seconds == 0.0


async def test_two_workers_in_one_process_share_the_inputs_and_the_limit(
    server: LocalServer, postgres_url: str, tmp_path: Path
) -> None:
    server.faults = Faults(job_seconds=0.3)
    clips = copies(tmp_path, 8)
    results: list[list[BulkResult]] = [[], []]

    async def worker(number: int) -> None:
        results[number] = await collect(
            sources=clips, concurrency=2, settings=server.settings(), journal=postgres_url
        )

    async with anyio.create_task_group() as group:
        group.start_soon(worker, 0)
        group.start_soon(worker, 1)
    done = [result.id for batch in results for result in batch]
    assert sorted(done) == sorted(str(clip) for clip in clips)
    assert server.stats.jobs_submitted == len(clips)
    assert server.stats.peak_jobs_running <= 2


async def left_by_a_dead_worker(
    url: str, clip: Path, state: str, reference: str, *, job_id: str | None = None
) -> None:
    """The row of a worker that died holding ``clip``: lease run out, its slot still held."""
    await sql(
        url,
        "INSERT INTO speechmatics_modes_inputs "
        "(id, source, state, reference, job_id, worker, lease_until, holds_slot) "
        "VALUES (%s, %s, %s, %s, %s, 'dead', now() - interval '1 second', true)",
        (str(clip), str(clip), state, reference, job_id),
    )


async def test_a_dead_workers_submitted_job_is_re_attached_to(
    server: LocalServer, postgres_url: str, tmp_path: Path
) -> None:
    [clip] = copies(tmp_path, 1)
    await prepare_run(postgres_url, concurrency=1, lease_seconds=60)
    job_id = await submit(server, clip)
    # A worker claimed it, submitted the job, wrote the id down, and died.
    await left_by_a_dead_worker(
        postgres_url, clip, "submitted", "speechmatics-modes:dead", job_id=job_id
    )
    [result] = await collect(sources=[clip], settings=server.settings(), journal=postgres_url)
    assert result.job_id == job_id
    assert result.transcript is not None
    assert server.stats.jobs_submitted == 1


async def test_a_job_a_dead_worker_created_without_its_id_is_found_by_reference(
    server: LocalServer, postgres_url: str, tmp_path: Path
) -> None:
    [clip] = copies(tmp_path, 1)
    await prepare_run(postgres_url, concurrency=1, lease_seconds=60)
    reference = "speechmatics-modes:killed-mid-upload"
    tagged = BatchOptions(tracking=Tracking(reference=reference))
    job_id = await submit(server, clip, tagged)
    await left_by_a_dead_worker(postgres_url, clip, "submitting", reference)
    [result] = await collect(sources=[clip], settings=server.settings(), journal=postgres_url)
    assert result.job_id == job_id
    assert server.stats.jobs_submitted == 1


async def test_a_live_workers_claim_is_not_taken(
    server: LocalServer, postgres_url: str, tmp_path: Path
) -> None:
    clips = copies(tmp_path, 2)
    await prepare_run(postgres_url, concurrency=2, lease_seconds=60)
    await sql(
        postgres_url,
        "INSERT INTO speechmatics_modes_inputs (id, source, reference, worker, lease_until) "
        "VALUES (%s, %s, 'speechmatics-modes:held', 'alive', now() + interval '1 hour')",
        (str(clips[0]), str(clips[0])),
    )
    with anyio.move_on_after(3):  # the worker waits for the live claim to end: it does not
        await collect(sources=clips, settings=server.settings(), journal=postgres_url)
    assert server.stats.jobs_submitted == 1
    [(state,)] = await sql(
        postgres_url, "SELECT state FROM speechmatics_modes_inputs WHERE id = %s", (str(clips[0]),)
    )
    assert state == "pending"


async def test_a_worker_whose_claim_was_taken_over_is_told_to_drop_the_input(
    postgres_url: str, tmp_path: Path
) -> None:
    [item] = inputs_of(copies(tmp_path, 1))
    async with open_postgres_journal(postgres_url) as journal:
        await journal.begin([item], concurrency=1, pause=lambda seconds: None)
        entry = await journal.claim()
        assert entry is not None
        assert await journal.record(entry, "submitting")
        await sql(  # this worker stalled past its lease and another one took the input
            postgres_url,
            "UPDATE speechmatics_modes_inputs SET worker = 'other' WHERE id = %s",
            (item.id,),
        )
        assert not await journal.record(entry, "submitted", job_id="would-be-second")
    [(state, job_id)] = await sql(
        postgres_url, "SELECT state, job_id FROM speechmatics_modes_inputs"
    )
    assert (state, job_id) == ("submitting", None)


async def test_the_heartbeat_renews_a_lease_shorter_than_the_default_in_time(
    postgres_url: str, tmp_path: Path
) -> None:
    """The heartbeat keeps time by the run's lease (3 s: a beat a second), not the default's
    (60 s: the first beat 20 s in, long after a 3 s lease lapsed)."""
    await prepare_run(postgres_url, concurrency=1, lease_seconds=3)
    lease_until = "SELECT lease_until FROM speechmatics_modes_inputs"
    async with open_postgres_journal(postgres_url) as journal:
        await journal.begin(inputs_of(copies(tmp_path, 1)), concurrency=1, pause=lambda _: None)
        assert await journal.claim() is not None
        claimed = await sql(postgres_url, lease_until)
        with anyio.fail_after(10):
            while await sql(postgres_url, lease_until) == claimed:  # noqa: ASYNC110
                await anyio.sleep(0.1)


async def test_a_lost_database_connection_does_not_end_the_run_from_the_background(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The server cuts both of a worker's connections: the heartbeat (beat after beat) and the
    pause listener log it, a rate limit that cannot be told to the others is logged too, and
    none of them ends the run (the worker's own next request would raise TransportError)."""
    caplog.set_level(logging.WARNING, logger="speechmatics_modes")
    await prepare_run(postgres_url, concurrency=1, lease_seconds=0.3)
    async with open_postgres_journal(postgres_url) as journal:
        await journal.begin(inputs_of(copies(tmp_path, 1)), concurrency=1, pause=lambda _: None)
        await sql(
            postgres_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        await journal.rate_limited(1.0)
        assert await eventually(
            lambda: caplog.text.count("could not renew") >= 2 and "no longer hearing" in caplog.text
        )
    assert "could not tell the other workers about a rate limit" in caplog.text


async def test_a_database_error_that_is_not_transient_is_raised_by_the_background_tasks(
    postgres_url: str, tmp_path: Path
) -> None:
    """A table missing (the schema changed under the run; a bug in our SQL looks the same)
    is not logged away as a blip: the heartbeat and the rate-limit broadcast raise it."""
    await prepare_run(postgres_url, concurrency=1, lease_seconds=0.3)
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as connection:
        journal = PostgresJournal(connection, "worker", store_transcripts=False)
        await journal.begin(inputs_of(copies(tmp_path, 1)), concurrency=1, pause=lambda _: None)
        for table in ("inputs", "run"):
            await connection.execute(
                f"ALTER TABLE speechmatics_modes_{table} RENAME TO renamed_{table}"
            )
        with anyio.fail_after(10), pytest.raises(psycopg.errors.UndefinedTable):
            await journal.heartbeat()
        with pytest.raises(psycopg.errors.UndefinedTable):
            await journal.rate_limited(1.0)


async def test_a_connection_is_closed_when_a_cancellation_ends_its_block(
    postgres_url: str,
) -> None:
    """A worker cancelled after being busy (not yielding) for longer than psycopg's few
    milliseconds: psycopg's own ``async with`` exit then yields once, before it closes, and
    the cancellation delivered again there left the connection open for the garbage collector
    (a ResourceWarning in whichever later test collected it)."""
    with anyio.CancelScope() as scope:
        async with _connected(postgres_url) as connection:
            scope.cancel()
            time.sleep(0.01)  # noqa: ASYNC251 - busy, as a worker on a loaded machine is
            await anyio.sleep(1)  # the cancellation is delivered here at once
    assert connection.closed


async def test_failed_inputs_wait_for_retry_failed(
    server: LocalServer, postgres_url: str, tmp_path: Path
) -> None:
    clips = copies(tmp_path, 3)
    server.faults = Faults(
        http_failure=HttpFailure(count=1, status=400, method="POST", path_prefix="/v2/jobs")
    )
    first = await collect(
        sources=clips, concurrency=1, settings=server.settings(), journal=postgres_url
    )
    assert sum(not result.ok for result in first) == 1
    assert await collect(sources=clips, settings=server.settings(), journal=postgres_url) == []
    assert (await run_status(postgres_url)).failed == 1
    assert await retry_failed(postgres_url) == 1
    again = await collect(sources=clips, settings=server.settings(), journal=postgres_url)
    assert [result.ok for result in again] == [True]
    assert server.stats.jobs_submitted == len(clips)


async def test_transcripts_can_be_kept_in_the_database_by_input_id(
    server: LocalServer, postgres_url: str, tmp_path: Path
) -> None:
    copies(tmp_path, 2)
    manifest = tmp_path / "calls.csv"
    manifest.write_text("id,path\ncall-1,clip-00.wav\ncall-2,clip-01.wav\n")
    await collect(
        sources=read_manifest(manifest),
        settings=server.settings(),
        journal=postgres_url,
        store_transcripts=True,
    )
    rows = await sql(
        postgres_url,
        "SELECT id, transcript_text, transcript->>'mode' FROM speechmatics_modes_inputs "
        "ORDER BY id",
    )
    assert rows == [("call-1", "Hello world.", "batch"), ("call-2", "Hello world.", "batch")]


async def test_storing_transcripts_needs_postgres(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="postgresql"):
        await collect(sources=[HELLO], journal=tmp_path / "j.sqlite", store_transcripts=True)


async def test_a_url_input_is_fetched_by_the_service_not_uploaded(postgres_url: str) -> None:
    fetches: list[str] = []

    async def audio(request: web.Request) -> web.StreamResponse:
        fetches.append(request.headers.get("User-Agent", ""))
        return web.FileResponse(HELLO)

    engine = ScriptedEngine.from_text("hello world")
    async with (
        origin({"/bucket/call.wav": audio}) as bucket,
        LocalServer(engine=engine, allow_fetch_from=["127.0.0.1/32"]) as server,
    ):
        url = bucket.url("/bucket/call.wav") + "?X-Amz-Signature=abc"
        [result] = await collect(sources=[url], settings=server.settings(), journal=postgres_url)
    assert result.source == url
    assert result.transcript is not None
    assert result.transcript.text == "Hello world."
    assert fetches == ["Speechmatics-API/2.0"]  # the service fetched it, once


def start_worker(
    url: str, server: LocalServer, concurrency: int, manifest: Path, out: Path
) -> subprocess.Popen[bytes]:
    """A worker process; what it prints goes to ``out/../worker-<n>.log``."""
    logs = sorted(out.parent.glob("worker-*.log"))
    with (out.parent / f"worker-{len(logs)}.log").open("wb") as log:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "tests._bulk_worker", url, server.batch_url),
                *(str(concurrency), str(manifest), str(out)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).parents[1],
        )


def logs_of(directory: Path) -> str:
    return "\n".join(path.read_text() for path in sorted(directory.glob("worker-*.log")))


async def wait_for(processes: list[subprocess.Popen[bytes]]) -> None:
    with anyio.fail_after(WORKER_SECONDS):
        while any(process.poll() is None for process in processes):  # noqa: ASYNC110
            await anyio.sleep(0.1)


def manifest_of(directory: Path, count: int) -> Path:
    copies(directory, count)
    manifest = directory / "inputs.csv"
    lines = [f"input-{number:02d},clip-{number:02d}.wav" for number in range(count)]
    manifest.write_text("id,path\n" + "\n".join(lines) + "\n")
    return manifest


@pytest.mark.timeout(WORKER_SECONDS + 30)
async def test_three_workers_one_killed_and_restarted_submit_every_input_exactly_once(
    postgres_url: str, tmp_path: Path
) -> None:
    count, limit = 60, 4
    manifest = manifest_of(tmp_path, count)
    out = tmp_path / "out"
    out.mkdir()
    await prepare_run(postgres_url, concurrency=limit, lease_seconds=3)
    engine = ScriptedEngine.from_text("hello world")
    async with LocalServer(engine=engine, faults=Faults(job_seconds=0.4)) as server:
        workers = [start_worker(postgres_url, server, limit, manifest, out) for _ in range(3)]
        victim, held = await _a_worker_holding_submitted_jobs(
            postgres_url, server, workers, after_submissions=count // 4
        )
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        survivors = [worker for worker in workers if worker is not victim]
        survivors.append(start_worker(postgres_url, server, limit, manifest, out))
        await wait_for(survivors)
        jobs = await _all_jobs(server)
    assert [worker.returncode for worker in survivors] == [0, 0, 0], logs_of(tmp_path)
    assert server.stats.jobs_submitted == count
    rows = await sql(
        postgres_url, "SELECT state, job_id, reference, attempts, id FROM speechmatics_modes_inputs"
    )
    assert {row[0] for row in rows} == {"done"}
    assert sorted(str(row[1]) for row in rows) == sorted(job.id for job in jobs)
    assert sorted(str(row[2]) for row in rows) == sorted(str(job.reference) for job in jobs)
    taken_over = {row[4]: row[3] for row in rows if (row[4],) in held}
    assert taken_over
    assert all(int(attempts) >= 2 for attempts in taken_over.values())  # type: ignore[call-overload]
    outputs = sorted(path.name for path in out.glob("*.txt"))
    assert outputs == [f"input-{number:02d}.txt" for number in range(count)]
    assert {path.read_text() for path in out.glob("*.txt")} == {"Hello world."}
    assert 2 <= server.stats.peak_jobs_running <= limit


async def _a_worker_holding_submitted_jobs(
    url: str,
    server: LocalServer,
    workers: list[subprocess.Popen[bytes]],
    *,
    after_submissions: int,
) -> tuple[subprocess.Popen[bytes], list[tuple[object, ...]]]:
    """Whichever worker holds submitted jobs once the run is under way, stopped (SIGSTOP), and
    those inputs.

    Which worker wins the free slots is the scheduler's business, not this test's: waiting for
    one chosen worker to hold a job could wait for a run that finishes without it. The worker
    is stopped before its inputs are read, so it cannot finish one of them between the read
    and the kill (it did once, and that input was never taken over).
    """
    by_pid = {worker.pid: worker for worker in workers}
    query = "SELECT id, worker FROM speechmatics_modes_inputs WHERE state = 'submitted'"
    with anyio.fail_after(WORKER_SECONDS):
        while True:
            await anyio.sleep(0.05)
            if server.stats.jobs_submitted < after_submissions:
                continue
            for _, worker in await sql(url, query):
                pid = int(str(worker).split(":")[-2])
                if pid not in by_pid:
                    continue
                by_pid[pid].send_signal(signal.SIGSTOP)
                held = [(row[0],) for row in await sql(url, query) if row[1] == worker]
                if held:
                    return by_pid[pid], held
                by_pid[pid].send_signal(signal.SIGCONT)


async def _all_jobs(server: LocalServer) -> list[object]:
    async with BatchClient(server.settings()) as client:
        return list(await client.jobs(limit=100))


@pytest.mark.timeout(WORKER_SECONDS + 30)
async def test_a_rate_limit_met_by_one_worker_pauses_every_worker(
    postgres_url: str, tmp_path: Path
) -> None:
    """Every worker holds jobs when the 429 comes, and none submits until the pause ends.

    Each worker runs two tasks in a run whose limit is then raised to six (by hand, once all
    three began: each begin() sets the limit to its own concurrency), so the six slots can
    only be full when all three hold some. Each worker's manifest has one input of its own
    beside the shared ones: its row says that worker has begun.
    """
    count, per_worker, limit, retry_after = 48, 2, 6, 3
    shared = manifest_of(tmp_path, count)
    out = tmp_path / "out"
    out.mkdir()
    await prepare_run(postgres_url, concurrency=limit, lease_seconds=10)
    await sql(postgres_url, "UPDATE speechmatics_modes_run SET paused_until = 'infinity'")
    engine = ScriptedEngine.from_text("hello world")
    # The jobs under way when the 429 comes run on well into the pause: their status polls
    # must wait for it too.
    async with LocalServer(engine=engine, faults=Faults(job_seconds=2.0)) as server:
        workers = []
        for number in range(3):
            manifest = tmp_path / f"inputs-{number}.csv"
            manifest.write_text(shared.read_text() + f"worker-{number},clip-00.wav\n")
            workers.append(start_worker(postgres_url, server, per_worker, manifest, out))
        await _wait_for_rows(
            postgres_url, "SELECT count(*) FROM speechmatics_modes_inputs WHERE id LIKE 'worker-%'"
        )
        await sql(
            postgres_url,
            "UPDATE speechmatics_modes_run "
            "SET ceiling = %s, slot_limit = %s, paused_until = '-infinity'",
            (limit, limit),
        )
        await _wait_for_rows(
            postgres_url,
            "SELECT count(DISTINCT worker) FROM speechmatics_modes_inputs WHERE holds_slot",
        )
        server.faults = Faults(
            job_seconds=0.2,
            http_failure=HttpFailure(
                count=1, status=429, retry_after=retry_after, method="POST", path_prefix="/v2/jobs"
            ),
        )
        await wait_for(workers)
    assert [worker.returncode for worker in workers] == [0, 0, 0], logs_of(tmp_path)
    storm = server.stats.http_failures_at[0]
    # Requests already on the wire when the 429 went out may still land in the first moment.
    # Any request counts, status polls of the jobs every worker holds included: claims wait
    # for the run's pause in the database, but a worker's requests under way wait only for
    # the NOTIFY.
    quiet = [t for t in server.stats.http_requests_at if storm + 0.5 < t < storm + retry_after]
    assert quiet == []
    assert server.stats.jobs_submitted == count + len(workers)
    assert len(list(out.glob("*.txt"))) == count + len(workers)


async def _wait_for_rows(url: str, count_query: str, expected: int = 3) -> None:
    """Wait (failing after a while) until ``count_query`` counts ``expected``."""
    found = 0
    with anyio.fail_after(WORKER_SECONDS):
        while found != expected:
            await anyio.sleep(0.02)
            [(found,)] = await sql(url, count_query)  # type: ignore[misc]


def test_the_command_line_shares_a_run_and_reports_it(postgres_url: str, tmp_path: Path) -> None:
    manifest = manifest_of(tmp_path, 6)
    out = tmp_path / "out"
    command = [*CLI, "transcribe", "--manifest", str(manifest), "--journal", postgres_url]
    with served() as local:
        workers = [
            subprocess.Popen(
                [*command, "--out", str(out), "--store-transcripts", "--concurrency", "2"],
                env=local.env(),
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        errors = [worker.communicate(timeout=WORKER_SECONDS)[1] for worker in workers]
        submitted = local.server.stats.jobs_submitted
    assert [worker.returncode for worker in workers] == [0, 0], errors
    assert submitted == 6
    assert sorted(path.name for path in out.iterdir()) == [f"input-{n:02d}.txt" for n in range(6)]
    status = subprocess.run(
        [*CLI, "runs", "status", postgres_url], capture_output=True, text=True, check=True
    )
    assert "done: 6/6" in status.stdout
    assert "remaining: 0" in status.stdout
    retried = subprocess.run(
        [*CLI, "runs", "retry-failed", postgres_url], capture_output=True, text=True, check=True
    )
    assert retried.stdout.strip() == "0"
    with psycopg.connect(postgres_url) as connection:
        stored = connection.execute(
            "SELECT transcript_text FROM speechmatics_modes_inputs WHERE id = 'input-03'"
        ).fetchall()
    assert stored == [("Hello world.",)]


def test_runs_refuses_a_journal_that_is_not_postgresql(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "runs", "status", str(tmp_path / "j.sqlite")], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "postgresql://" in result.stderr
