"""transcribe_many(): bounded concurrency, per-file errors, the journal, the pool-wide backoff."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from speechmatics_modes import (
    AudioSourceError,
    BatchClient,
    BatchOptions,
    BulkResult,
    ConfigurationError,
    Tracking,
    TranscriptionOptions,
    transcribe_many,
)
from speechmatics_modes._inputs import inputs_of
from speechmatics_modes._sources import classify, open_upload
from speechmatics_modes._sqlite_journal import SqliteJournal
from speechmatics_modes.local import Faults, HttpFailure, LocalServer, ScriptedEngine
from tests.conftest import SYNTHETIC_AUDIO

pytestmark = pytest.mark.anyio

HELLO = SYNTHETIC_AUDIO / "espeak-hello-world.wav"


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer(engine=ScriptedEngine.from_text("hello world")) as running:
        yield running


def copies(directory: Path, count: int) -> list[Path]:
    """``count`` copies of the spoken "hello world" clip in ``directory``: clip-00.wav, ..."""
    paths = []
    for number in range(count):
        path = directory / f"clip-{number:02d}.wav"
        shutil.copy(HELLO, path)
        paths.append(path)
    return paths


@pytest.fixture
def clips(tmp_path: Path) -> list[Path]:
    return copies(tmp_path, 6)


async def submit(server: LocalServer, clip: Path, batch_options: BatchOptions | None = None) -> str:
    """Create a batch job for ``clip`` outside any run (as a worker did before it died)."""
    async with (
        BatchClient(server.settings()) as client,
        open_upload(classify(clip), None) as upload,
    ):
        return await client.submit(
            upload, options=TranscriptionOptions(), batch_options=batch_options or BatchOptions()
        )


async def collect(**kwargs: object) -> list[BulkResult]:
    return [result async for result in transcribe_many(**kwargs)]  # type: ignore[arg-type]


async def test_results_come_back_for_every_file_and_one_failure_stops_nothing(
    server: LocalServer, clips: list[Path], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.wav"
    results = await collect(sources=[*clips, missing], settings=server.settings())
    by_path = {result.source: result for result in results}
    assert set(by_path) == {*clips, missing}
    assert all(by_path[clip].transcript.text == "Hello world." for clip in clips)  # type: ignore[union-attr]
    assert isinstance(by_path[missing].error, AudioSourceError)
    assert server.stats.jobs_submitted == len(clips)


async def test_no_more_than_concurrency_files_are_in_flight(
    server: LocalServer, clips: list[Path]
) -> None:
    server.faults = Faults(job_seconds=0.3)
    in_flight: set[Path] = set()
    most = 0

    def on_status(path: Path, status: str) -> None:
        nonlocal most
        if status in ("done", "failed"):
            in_flight.discard(path)
        else:
            in_flight.add(path)
        most = max(most, len(in_flight))

    results = await collect(
        sources=clips, concurrency=2, settings=server.settings(), on_status=on_status
    )
    assert all(result.ok for result in results)
    assert most == 2


async def test_a_second_run_skips_what_is_done(
    server: LocalServer, clips: list[Path], tmp_path: Path
) -> None:
    journal = tmp_path / "journal.sqlite"
    await collect(sources=clips, settings=server.settings(), journal=journal)
    again = await collect(sources=clips, settings=server.settings(), journal=journal)
    assert all(result.skipped and result.ok for result in again)
    assert server.stats.jobs_submitted == len(clips)


async def test_a_submitted_job_is_re_attached_to_not_submitted_again(
    server: LocalServer, clips: list[Path], tmp_path: Path
) -> None:
    book = SqliteJournal(tmp_path / "journal.sqlite")
    [entry] = [book.entry(item) for item in inputs_of(clips[:1])]
    job_id = await submit(server, clips[0])
    await book.record(entry, "submitted", job_id=job_id)
    book.close()
    [result] = await collect(
        sources=clips[:1], settings=server.settings(), journal=tmp_path / "journal.sqlite"
    )
    assert result.job_id == job_id
    assert result.transcript is not None
    assert server.stats.jobs_submitted == 1


async def test_batch_client_refuses_a_realtime_option_before_any_request(
    server: LocalServer, clips: list[Path]
) -> None:
    async with (
        BatchClient(server.settings()) as client,
        open_upload(classify(clips[0]), None) as upload,
    ):
        with pytest.raises(ConfigurationError, match="enable_partials"):
            await client.submit(
                upload,
                options=TranscriptionOptions(enable_partials=True),
                batch_options=BatchOptions(),
            )
    assert server.stats.http_requests == 0


async def test_a_job_created_just_before_a_crash_is_found_by_its_reference(
    server: LocalServer, clips: list[Path], tmp_path: Path
) -> None:
    book = SqliteJournal(tmp_path / "journal.sqlite")
    [entry] = [book.entry(item) for item in inputs_of(clips[:1])]
    await book.record(entry, "submitting")  # killed before the job id could be written down
    book.close()
    tagged = BatchOptions(tracking=Tracking(reference=entry.reference))
    job_id = await submit(server, clips[0], tagged)
    [result] = await collect(
        sources=clips[:1], settings=server.settings(), journal=tmp_path / "journal.sqlite"
    )
    assert result.job_id == job_id
    assert server.stats.jobs_submitted == 1


async def test_only_what_failed_is_tried_again(
    server: LocalServer, clips: list[Path], tmp_path: Path
) -> None:
    journal = tmp_path / "journal.sqlite"
    server.faults = Faults(
        http_failure=HttpFailure(count=1, status=400, method="POST", path_prefix="/v2/jobs")
    )
    first = await collect(sources=clips, concurrency=1, settings=server.settings(), journal=journal)
    failed = [result.source for result in first if not result.ok]
    assert len(failed) == 1
    again = await collect(sources=clips, settings=server.settings(), journal=journal)
    assert [result.source for result in again if not result.skipped] == failed
    assert all(result.ok for result in again)
    assert server.stats.jobs_submitted == len(clips)


async def test_a_rate_limit_met_by_one_job_pauses_the_whole_pool(
    server: LocalServer, clips: list[Path]
) -> None:
    server.faults = Faults(
        job_seconds=5.0,
        http_failure=HttpFailure(count=1, status=429, retry_after=3, path_prefix="/v2/jobs/"),
    )
    quiet_requests: list[int] = []

    async def watch() -> None:
        with anyio.fail_after(30):
            while not server.stats.http_failures_injected:  # noqa: ASYNC110 (a counter, no event)
                await anyio.sleep(0.01)
        await anyio.sleep(0.3)  # requests already on the wire when the 429 came back
        before = server.stats.http_requests
        await anyio.sleep(1.5)  # without a shared pause, 6 jobs poll every 0.5-0.8 s
        quiet_requests.append(server.stats.http_requests - before)

    async with anyio.create_task_group() as group:
        group.start_soon(watch)
        results = await collect(sources=clips, concurrency=6, settings=server.settings())
    assert all(result.ok for result in results)
    assert quiet_requests == [0]


async def test_concurrency_below_one_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="concurrency"):
        await collect(sources=[HELLO], concurrency=0)
