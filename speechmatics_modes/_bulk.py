"""``transcribe_many()``: many files, a bounded number at a time, resumable through a journal.

Files go through one batch connection (:class:`~speechmatics_modes._batch.BatchClient`), so a
rate limit met by one job slows the whole pool. With a journal, each input's job id is stored
as soon as the job exists; a later run skips inputs already done, re-attaches to jobs already
submitted (their audio is never uploaded twice) and tries again only what failed.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from speechmatics_modes._api import OptionsLike, _validated, transcribe
from speechmatics_modes._batch import BatchClient
from speechmatics_modes._config import BatchOptions, Tracking, TranscriptionOptions
from speechmatics_modes._endpoint import endpoint
from speechmatics_modes._exceptions import (
    ConfigurationError,
    JobFailedError,
    ServerError,
    SpeechmaticsModesError,
)
from speechmatics_modes._journal import Entry, Journal, State
from speechmatics_modes._models import Transcript
from speechmatics_modes._retry import RetryPolicy
from speechmatics_modes._settings import Settings
from speechmatics_modes._sources import Source, open_upload

__all__ = ["BulkResult", "StatusCallback", "transcribe_many"]

StatusCallback = Callable[[Path, str], None]
"""Told each step of each input: ``uploading``, ``running``, ``re-attaching``..."""

BulkMode = Literal["auto", "batch", "realtime"]


@dataclass(frozen=True)
class BulkResult:
    """How one input of :func:`transcribe_many` ended."""

    source: Path
    """The input, as given."""
    transcript: Transcript | None = None
    """The transcript; ``None`` when the input failed or was done in an earlier run."""
    error: SpeechmaticsModesError | None = None
    """Why the input failed; the other inputs went on."""
    job_id: str | None = None
    """The batch job that transcribed it, when there was one."""
    skipped: bool = False
    """Done in an earlier run according to the journal: not transcribed again."""

    @property
    def ok(self) -> bool:
        """The input is transcribed (now or in an earlier run)."""
        return self.error is None


async def transcribe_many(
    sources: Iterable[str | os.PathLike[str]],
    *,
    concurrency: int = 4,
    mode: BulkMode = "auto",
    options: OptionsLike = None,
    batch_options: BatchOptions | Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    journal: str | os.PathLike[str] | None = None,
    on_status: StatusCallback | None = None,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[BulkResult]:
    """Transcribe files ``concurrency`` at a time, yielding each result as it finishes.

    Use it as ``async for result in transcribe_many(paths): ...``. One file failing does not
    stop the others: its :class:`BulkResult` carries the error. To stop early, close the
    iterator (``contextlib.aclosing``); the unfinished batch jobs are left running so that a
    later run with the same journal re-attaches to them.

    Args:
        sources: Paths of audio files.
        concurrency: How many files are in flight at once.
        mode: ``"auto"`` and ``"batch"`` submit batch jobs; ``"realtime"`` streams each file.
        options: How to transcribe, as for :func:`transcribe`.
        batch_options: Job features, as for :func:`transcribe`.
        settings: Where to connect; with ``backend="local"`` one embedded server serves all.
        journal: SQLite file recording progress. An input is marked done once its result was
            handed to the caller, so a run interrupted while the caller was saving a transcript
            does that input again.
        on_status: Called (in the event loop) as each input moves from step to step.
        retry: How batch requests are retried and jobs polled; shared by every input, as the
            service's rate limits are.

    Raises:
        ConfigurationError: invalid options or ``concurrency``, before anything is sent.
        AuthenticationError: no key for the cloud backend.
    """
    if concurrency < 1:
        raise ConfigurationError(f"concurrency must be at least 1, got {concurrency}")
    if mode not in ("auto", "batch", "realtime"):
        raise ConfigurationError(f"mode must be 'auto', 'batch' or 'realtime', got {mode!r}")
    transcription = _validated(options, TranscriptionOptions, "options")
    transcription.check_mode("realtime" if mode == "realtime" else "batch")
    job = _validated(batch_options, BatchOptions, "batch_options")
    paths = [Path(source) for source in sources]
    book = Journal(journal) if journal is not None else None
    try:
        async with endpoint(settings) as resolved, BatchClient(resolved, retry=retry) as client:
            pool = _Pool(client, resolved, transcription, job, mode, book, on_status)
            async for result, entry in pool.run(paths, concurrency):
                yield result
                if book is not None and entry is not None:
                    book.record(entry, "done", job_id=result.job_id)
    finally:
        if book is not None:
            book.close()


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
        journal: Journal | None,
        on_status: StatusCallback | None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._options = options
        self._batch_options = batch_options
        self._mode = mode
        self._journal = journal
        self._on_status = on_status

    async def run(self, paths: list[Path], concurrency: int) -> AsyncIterator[_Finished]:
        send, receive = anyio.create_memory_object_stream[_Finished](concurrency)
        work = iter(paths)
        async with anyio.create_task_group() as group:
            for _ in range(min(concurrency, len(paths))):
                group.start_soon(self._work, work, send.clone())
            send.close()
            async with receive:
                async for finished in receive:
                    yield finished

    async def _work(self, work: Iterator[Path], send: MemoryObjectSendStream[_Finished]) -> None:
        async with send:
            for path in work:
                await send.send(await self._one(path))

    async def _one(self, path: Path) -> _Finished:
        entry = self._journal.entry(path) if self._journal is not None else None
        if entry is not None and entry.state == "done":
            return BulkResult(path, job_id=entry.job_id, skipped=True), None
        if self._mode == "realtime":
            result = await self._stream(path, entry)
        else:
            result = await self._batch(path, entry)
        self._status(path, "done" if result.ok else "failed")
        return result, entry if result.ok else None

    async def _stream(self, path: Path, entry: Entry | None) -> BulkResult:
        self._status(path, "streaming")
        try:
            transcript = await transcribe(
                path, "realtime", options=self._options, settings=self._settings
            )
        except SpeechmaticsModesError as exc:
            return self._failed(path, entry, exc, job_id=None)
        return BulkResult(path, transcript=transcript)

    async def _batch(self, path: Path, entry: Entry | None) -> BulkResult:
        job_id: str | None = None
        try:
            job_id = await self._known_job(entry)
            if job_id is not None:
                self._status(path, "re-attaching")
                try:
                    transcript = await self._client.transcript(job_id)
                    return BulkResult(path, transcript=transcript, job_id=job_id)
                except ServerError as exc:
                    if not _job_is_gone(exc):
                        raise
            self._status(path, "uploading")
            self._record(entry, "submitting")
            async with open_upload(Source("path", path), None) as upload:
                job_id = await self._client.submit(
                    upload, options=self._options, batch_options=self._tagged(entry)
                )
            self._record(entry, "submitted", job_id=job_id)
            self._status(path, "running")
            transcript = await self._client.transcript(job_id)
        except SpeechmaticsModesError as exc:
            # A job that failed is finished with; any other error leaves it to re-attach to.
            alive = None if isinstance(exc, JobFailedError) else job_id
            return self._failed(path, entry, exc, job_id=alive)
        return BulkResult(path, transcript=transcript, job_id=job_id)

    async def _known_job(self, entry: Entry | None) -> str | None:
        """The job an earlier run created for this input, if it got that far."""
        if entry is None or entry.job_id is not None or entry.state not in _MAY_HAVE_SUBMITTED:
            return entry.job_id if entry is not None else None
        # Interrupted or failed while submitting: the job may exist without its id recorded.
        for job in await self._client.jobs():
            if job.reference == entry.reference and job.status not in ("rejected", "deleted"):
                return job.id
        return None

    def _failed(
        self, path: Path, entry: Entry | None, exc: SpeechmaticsModesError, *, job_id: str | None
    ) -> BulkResult:
        self._record(entry, "failed", job_id=job_id, error=str(exc))
        return BulkResult(path, error=exc, job_id=job_id)

    def _record(self, entry: Entry | None, state: State, **fields: str | None) -> None:
        if self._journal is not None and entry is not None:
            self._journal.record(entry, state, **fields)

    def _tagged(self, entry: Entry | None) -> BatchOptions:
        """Batch options whose tracking reference identifies this input's job."""
        tracking = self._batch_options.tracking
        if entry is None or (tracking is not None and tracking.reference is not None):
            return self._batch_options
        tagged = (tracking or Tracking()).model_copy(update={"reference": entry.reference})
        return self._batch_options.model_copy(update={"tracking": tagged})

    def _status(self, path: Path, status: str) -> None:
        if self._on_status is not None:
            self._on_status(path, status)


_MAY_HAVE_SUBMITTED = ("submitting", "failed")


def _job_is_gone(exc: ServerError) -> bool:
    """The job cannot give a transcript any more (failed, unknown, expired): submit anew."""
    return isinstance(exc, JobFailedError) or exc.status in (404, 410)
