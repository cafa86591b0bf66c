"""``transcribe_many()``: many inputs, a bounded number at a time, resumable through a journal.

Inputs go through one batch connection (:class:`~speechmatics_modes._batch.BatchClient`), so a
rate limit met by one job slows the whole pool. With a journal, each input's job id is stored
as soon as the job exists; a later run skips inputs already done, re-attaches to jobs already
submitted (their audio is never uploaded twice) and tries again only what failed. With a
PostgreSQL journal, any number of processes on any number of machines share one run: see
:mod:`._postgres_journal`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from speechmatics_modes._api import OptionsLike, TranscriptStream, _validated, run_to_end
from speechmatics_modes._batch import BatchClient
from speechmatics_modes._config import BatchOptions, Tracking, TranscriptionOptions
from speechmatics_modes._endpoint import endpoint
from speechmatics_modes._exceptions import (
    ConfigurationError,
    JobFailedError,
    ServerError,
    SpeechmaticsModesError,
    TransportError,
)
from speechmatics_modes._inputs import BulkInput, inputs_of
from speechmatics_modes._journal import Entry, Journal, is_postgres_url
from speechmatics_modes._models import Transcript
from speechmatics_modes._postgres_journal import open_postgres_journal
from speechmatics_modes._retry import RetryPolicy
from speechmatics_modes._settings import Settings
from speechmatics_modes._sources import classify, open_upload
from speechmatics_modes._sqlite_journal import SqliteJournal

__all__ = ["UNREACHABLE_IN_A_ROW", "BulkResult", "StatusCallback", "transcribe_many"]

StatusCallback = Callable[[Path | str, str], None]
"""Told each step of each input: ``uploading``, ``running``, ``re-attaching``..."""

BulkMode = Literal["auto", "batch", "realtime"]


@dataclass(frozen=True)
class BulkResult:
    """How one input of :func:`transcribe_many` ended."""

    source: Path | str
    """The input: its path, or its URL (a string)."""
    transcript: Transcript | None = None
    """The transcript; ``None`` when the input failed or was done in an earlier run."""
    error: SpeechmaticsModesError | None = None
    """Why the input failed; the other inputs went on."""
    job_id: str | None = None
    """The batch job that transcribed it, when there was one."""
    skipped: bool = False
    """Done in an earlier run according to the journal: not transcribed again."""
    id: str = ""
    """The input's key in the journal: its absolute path, its URL, or its manifest id."""

    @property
    def ok(self) -> bool:
        """The input is transcribed (now or in an earlier run)."""
        return self.error is None


async def transcribe_many(
    sources: Iterable[str | os.PathLike[str] | BulkInput],
    *,
    concurrency: int = 4,
    mode: BulkMode = "auto",
    options: OptionsLike = None,
    batch_options: BatchOptions | Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    journal: str | os.PathLike[str] | None = None,
    store_transcripts: bool = False,
    on_status: StatusCallback | None = None,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[BulkResult]:
    """Transcribe inputs ``concurrency`` at a time, yielding each result as it finishes.

    Use it as ``async for result in transcribe_many(paths): ...``. One input failing does not
    stop the others: its :class:`BulkResult` carries the error. A service that cannot be
    reached does: once three inputs in a row failed with a
    :class:`TransportError` (each after riding out ``retry``), no further input is started, the
    ones in flight are cut off (they left no result: the journal keeps them for the next run),
    and a :class:`TransportError` ends the iteration. To stop early,
    close the iterator (``contextlib.aclosing``). Either way the unfinished batch jobs are left
    running, so that a later run with the same journal re-attaches to them.

    Args:
        sources: Paths of audio files, ``http(s)://`` URLs (the service fetches them: no audio
            passes through this process), or the inputs of :func:`read_manifest`.
        concurrency: How many inputs are in flight at once; with a PostgreSQL journal, over
            every worker of the run together.
        mode: ``"auto"`` and ``"batch"`` submit batch jobs; ``"realtime"`` streams each file.
        options: How to transcribe, as for :func:`transcribe`.
        batch_options: Job features, as for :func:`transcribe`.
        settings: Where to connect; with ``backend="local"`` one embedded server serves all.
        journal: Where progress is recorded: a SQLite file, or a ``postgresql://`` URL that
            any number of workers running the same inputs share (each input is done by one
            of them). An input is marked done once its result was handed to the caller, so a
            run interrupted while the caller was saving a transcript does that input again.
        store_transcripts: Keep each transcript in the PostgreSQL journal too, by input id.
        on_status: Called (in the event loop) as each input moves from step to step.
        retry: How batch requests are retried and jobs polled; shared by every input, as the
            service's rate limits are.

    Raises:
        ConfigurationError: invalid options or ``concurrency``, one path instead of a list,
            a journal that cannot be opened, before anything is sent; ``store_transcripts``
            without a PostgreSQL journal; psycopg missing.
        AuthenticationError: no key for the cloud backend.
        TransportError: the PostgreSQL journal cannot be reached; or the service could not be
            reached for several inputs in a row, after the results so far were yielded (run
            again with the same journal to continue).
    """
    if isinstance(sources, (str, bytes, os.PathLike)):
        raise ConfigurationError(
            f"sources must be a list of paths or URLs, not one {type(sources).__name__}: "
            f"write transcribe_many([{str(sources)!r}])"
        )
    if concurrency < 1:
        raise ConfigurationError(f"concurrency must be at least 1, got {concurrency}")
    if mode not in ("auto", "batch", "realtime"):
        raise ConfigurationError(f"mode must be 'auto', 'batch' or 'realtime', got {mode!r}")
    transcription = _validated(options, TranscriptionOptions, "options")
    transcription.check_mode("realtime" if mode == "realtime" else "batch")
    job = _validated(batch_options, BatchOptions, "batch_options")
    inputs = inputs_of(sources)
    async with (
        _open_journal(journal, store_transcripts) as book,
        endpoint(settings) as resolved,
        BatchClient(resolved, retry=retry, on_rate_limit=book.rate_limited) as client,
    ):
        await book.begin(inputs, concurrency=concurrency, pause=client.pause)
        pool = _Pool(client, resolved, transcription, job, mode, book, on_status)
        async for result, entry in pool.run(concurrency):
            yield result
            if entry is not None:
                await book.record(entry, "done", job_id=result.job_id, transcript=result.transcript)
        if pool.breaker.tripped_by is not None:
            raise TransportError(
                f"stopped the run: {UNREACHABLE_IN_A_ROW} inputs in a row could not reach the "
                f"service ({pool.breaker.tripped_by}). The inputs not done are left for the "
                "next run with the same journal."
            ) from pool.breaker.tripped_by


@asynccontextmanager
async def _open_journal(
    target: str | os.PathLike[str] | None, store_transcripts: bool
) -> AsyncIterator[Journal]:
    """The journal ``target`` names (decided here, once); ``None`` keeps one in memory."""
    if is_postgres_url(target):
        async with open_postgres_journal(
            str(target), store_transcripts=store_transcripts
        ) as journal:
            yield journal
        return
    if store_transcripts:
        raise ConfigurationError("store_transcripts needs a postgresql:// journal")
    try:
        sqlite = SqliteJournal(":memory:" if target is None else target)
    except sqlite3.Error as exc:
        raise ConfigurationError(
            f"journal {target}: cannot open it as a SQLite file ({exc}); name a file in a "
            "directory you can write to"
        ) from exc
    try:
        yield sqlite
    finally:
        sqlite.close()


UNREACHABLE_IN_A_ROW = 3
"""Inputs failing in a row with a :class:`TransportError` that stop a :func:`transcribe_many` run.

More than one, so that a single upload cut off mid-way (which is not retried, as the job may
exist) does not stop a run; few, so that a dead service costs one retry window, not one per
input."""


class _Breaker:
    """Shared by every worker of a run: trips when the service stays out of reach.

    Each request already rides out a short outage (the :class:`RetryPolicy`); an input that
    still fails with a :class:`TransportError` met a service that stayed away. Without a
    breaker every remaining input would wait out the same retries on its own (38 inputs took
    80 s to give up).
    """

    def __init__(self) -> None:
        self._in_a_row = 0
        self.tripped_by: TransportError | None = None
        """The failure that tripped it; no input is started after it."""
        self._workers: list[anyio.CancelScope] = []

    def record(self, result: BulkResult) -> None:
        """Count an attempted input's outcome."""
        if not isinstance(result.error, TransportError):
            self._in_a_row = 0
            return
        self._in_a_row += 1
        if self._in_a_row >= UNREACHABLE_IN_A_ROW and self.tripped_by is None:
            self.tripped_by = result.error
            for scope in self._workers:
                scope.cancel()

    @contextmanager
    def cuts_off(self) -> Iterator[None]:
        """A worker's block, cancelled when the breaker trips.

        The inputs in flight then are waiting out the same retries against the same absent
        service.
        """
        with anyio.CancelScope() as scope:
            self._workers.append(scope)
            if self.tripped_by is not None:
                scope.cancel()
            yield


_Finished = tuple[BulkResult, Entry | None]
"""A result, and the journal row to mark done once the caller has taken it."""


class _Pool:
    """The workers of one :func:`transcribe_many` call and what they share."""

    def __init__(
        self,
        client: BatchClient,
        settings: Settings,
        options: TranscriptionOptions,
        batch_options: BatchOptions,
        mode: BulkMode,
        journal: Journal,
        on_status: StatusCallback | None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._options = options
        self._batch_options = batch_options
        self._mode = mode
        self._journal = journal
        self._on_status = on_status
        self.breaker = _Breaker()

    async def run(self, concurrency: int) -> AsyncIterator[_Finished]:
        send, receive = anyio.create_memory_object_stream[_Finished](concurrency)
        async with anyio.create_task_group() as group:
            for _ in range(concurrency):
                group.start_soon(self._work_until_tripped, send.clone())
            send.close()
            async with receive:
                async for finished in receive:
                    yield finished

    async def _work_until_tripped(self, send: MemoryObjectSendStream[_Finished]) -> None:
        """Work until the inputs run out or the breaker trips.

        Inputs the breaker cuts off stay in the journal as they were, for the next run.
        """
        async with send:
            with self.breaker.cuts_off():
                await self._work(send)

    async def _work(self, send: MemoryObjectSendStream[_Finished]) -> None:
        while self.breaker.tripped_by is None:
            entry = await self._journal.claim()
            if entry is None:
                return
            try:
                finished = await self._one(entry)
            except _TakenOver:
                continue  # another worker does this input now
            await send.send(finished)
            if not finished[0].skipped:
                self.breaker.record(finished[0])

    async def _one(self, entry: Entry) -> _Finished:
        source = entry.input.origin()
        if entry.state == "done":
            return BulkResult(source, job_id=entry.job_id, skipped=True, id=entry.id), None
        if self._mode == "realtime":
            result = await self._stream(source, entry)
        else:
            result = await self._batch(source, entry)
        self._status(source, "done" if result.ok else "failed")
        if not result.ok:
            return result, None
        await self._journal.release(entry)
        return result, entry

    async def _stream(self, source: Path | str, entry: Entry) -> BulkResult:
        self._status(source, "streaming")
        try:
            transcript = await run_to_end(  # the options were checked at the door
                TranscriptStream(
                    classify(source),
                    options=self._options,
                    audio_format=None,
                    settings=self._settings,
                    timeout=None,
                    pace=None,
                )
            )
        except SpeechmaticsModesError as exc:
            return await self._failed(source, entry, exc, job_id=None)
        return BulkResult(source, transcript=transcript, id=entry.id)

    async def _batch(self, source: Path | str, entry: Entry) -> BulkResult:
        job_id: str | None = None
        try:
            job_id = await self._known_job(entry)
            if job_id is not None:
                self._status(source, "re-attaching")
                try:
                    transcript = await self._client.transcript(job_id)
                    return BulkResult(source, transcript=transcript, job_id=job_id, id=entry.id)
                except ServerError as exc:
                    if not _job_is_gone(exc):
                        raise
            self._status(source, "uploading")
            if not await self._journal.record(entry, "submitting"):
                raise _TakenOver  # submitting now could create a second job
            async with open_upload(classify(entry.source), None) as upload:
                job_id = await self._client._submit_checked(  # checked at the door
                    upload, self._options, self._tagged(entry)
                )
            await self._journal.record(entry, "submitted", job_id=job_id)
            self._status(source, "running")
            transcript = await self._client.transcript(job_id)
        except SpeechmaticsModesError as exc:
            # A job that failed is finished with; any other error leaves it to re-attach to.
            alive = None if isinstance(exc, JobFailedError) else job_id
            return await self._failed(source, entry, exc, job_id=alive)
        return BulkResult(source, transcript=transcript, job_id=job_id, id=entry.id)

    async def _known_job(self, entry: Entry) -> str | None:
        """The job an earlier run created for this input, if it got that far."""
        if entry.job_id is not None or entry.state not in _MAY_HAVE_SUBMITTED:
            return entry.job_id
        # Interrupted or failed while submitting: the job may exist without its id recorded.
        for job in await self._client.jobs():
            if job.reference == entry.reference and job.status not in ("rejected", "deleted"):
                return job.id
        return None

    async def _failed(
        self, source: Path | str, entry: Entry, exc: SpeechmaticsModesError, *, job_id: str | None
    ) -> BulkResult:
        await self._journal.record(entry, "failed", job_id=job_id, error=str(exc))
        return BulkResult(source, error=exc, job_id=job_id, id=entry.id)

    def _tagged(self, entry: Entry) -> BatchOptions:
        """Batch options whose tracking reference identifies this input's job."""
        tracking = self._batch_options.tracking
        if tracking is not None and tracking.reference is not None:
            return self._batch_options
        tagged = (tracking or Tracking()).model_copy(update={"reference": entry.reference})
        return self._batch_options.model_copy(update={"tracking": tagged})

    def _status(self, source: Path | str, status: str) -> None:
        if self._on_status is not None:
            self._on_status(source, status)


class _TakenOver(Exception):
    """The claim on an input lapsed: another worker holds it now."""


_MAY_HAVE_SUBMITTED = ("submitting", "failed")


def _job_is_gone(exc: ServerError) -> bool:
    """The job cannot give a transcript any more (failed, unknown, expired): submit anew."""
    return isinstance(exc, JobFailedError) or exc.status in (404, 410)
