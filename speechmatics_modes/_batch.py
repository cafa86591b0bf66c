"""The batch backend: the only module that imports ``speechmatics.batch``.

Everything batch-specific that touches the SDK lives here: translating our options into the
SDK's dataclasses, running a job (submit, poll, fetch the transcript), and translating the
SDK's exceptions into ours (:data:`BATCH_ERRORS`).

Three things have no public way in the SDK, so this module uses its internals, each in one
place, each with a tripwire against the local server in ``tests/test_sdk_internals.py``:
the unexported job-config classes of ``speechmatics.batch._models`` (imported below),
``AsyncClient._transport.get`` for the json-v2 document (:func:`_transcript_json`), and
``Transport._handle_response`` for ``Retry-After`` (:class:`_RetryAfter`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

import aiohttp
import anyio
import speechmatics.batch as sm
from speechmatics.batch._models import (
    AudioEventsConfig,
    LanguageIdentificationConfig,
    TrackingConfig,
)

from speechmatics_modes._config import BatchOptions, FetchData, TranscriptionOptions
from speechmatics_modes._exceptions import (
    AuthenticationError,
    ConfigurationError,
    ErrorFactory,
    JobFailedError,
    ServerError,
    SpeechmaticsModesError,
    TranscriptionTimeout,
    TransportError,
    describe,
    translate_sdk_error,
    translated,
)
from speechmatics_modes._lifetime import StackOwner
from speechmatics_modes._models import Transcript
from speechmatics_modes._retry import Backoff, RetryPolicy
from speechmatics_modes._sdk_logging import tend_sdk_loggers
from speechmatics_modes._settings import Settings
from speechmatics_modes._sources import Upload

__all__ = [
    "BATCH_ERRORS",
    "BatchClient",
    "BatchJob",
    "RateLimitHook",
    "batch_job_config",
    "batch_transcription_config",
    "run_batch_job",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

RateLimitHook = Callable[[float], Awaitable[None]]
"""Told the seconds of quiet the service asked for when it answers 429 or 503."""


def batch_transcription_config(options: TranscriptionOptions) -> sm.TranscriptionConfig:
    """Build the batch SDK's ``TranscriptionConfig`` from options already checked for batch."""
    wire = options.to_wire()
    kwargs: dict[str, Any] = dict(wire)
    if "model" in wire:
        kwargs["model"] = sm.Model(wire["model"])
    if "transcript_filtering_config" in wire:
        kwargs["transcript_filtering_config"] = sm.TranscriptFilteringConfig(
            **wire["transcript_filtering_config"]
        )
    if "audio_filtering_config" in wire:
        kwargs["audio_filtering_config"] = sm.AudioFilteringConfig(**wire["audio_filtering_config"])
    return sm.TranscriptionConfig(**kwargs)


def batch_job_config(options: TranscriptionOptions, job: BatchOptions) -> sm.JobConfig:
    """Build the batch SDK's ``JobConfig`` from transcription options and job features."""
    return sm.JobConfig(
        type=sm.JobType.TRANSCRIPTION,
        transcription_config=batch_transcription_config(options),
        fetch_data=_optional(sm.FetchData, job.fetch_data),
        notification_config=(
            None
            if job.notification_config is None
            else [sm.NotificationConfig(**n.to_wire()) for n in job.notification_config]
        ),
        tracking=_optional(TrackingConfig, job.tracking),
        translation_config=_optional(sm.TranslationConfig, job.translation_config),
        language_identification_config=_optional(
            LanguageIdentificationConfig, job.language_identification_config
        ),
        summarization_config=_optional(sm.SummarizationConfig, job.summarization_config),
        sentiment_analysis_config=(
            None
            if job.sentiment_analysis is None
            else sm.SentimentAnalysisConfig(enable_sentiment=job.sentiment_analysis)
        ),
        topic_detection_config=_optional(sm.TopicDetectionConfig, job.topic_detection_config),
        auto_chapters_config=(
            None
            if job.auto_chapters is None
            else sm.AutoChaptersConfig(enable_chapters=job.auto_chapters)
        ),
        audio_events_config=(
            None
            if job.audio_event_types is None
            else AudioEventsConfig(types=list(job.audio_event_types) or None)
        ),
        output_config=_output_config(job),
    )


def _optional(factory: Any, value: Any) -> Any:
    """``factory(**value.to_wire())``, or ``None`` for an unset section."""
    return None if value is None else factory(**value.to_wire())


def _output_config(job: BatchOptions) -> sm.OutputConfig | None:
    output = job.output_config
    if output is None:
        return None
    srt = {
        key: value
        for key, value in (
            ("max_line_length", output.srt_max_line_length),
            ("max_lines", output.srt_max_lines),
        )
        if value is not None
    }
    return sm.OutputConfig(generate_lattice=output.generate_lattice, srt_overrides=srt or None)


def _from_transport_error(exc: BaseException) -> SpeechmaticsModesError:
    """A failed HTTP exchange: what it means depends on the status the service answered."""
    status: int | None = getattr(exc, "status_code", None)
    text = describe(exc)
    if status is None:
        return TransportError(text)
    if status in (401, 403):
        return AuthenticationError(_AUTH_HINT)
    return ServerError(text, status=status, retryable=status in _RETRYABLE_STATUSES)


def _through_wrapper(fallback: ErrorFactory) -> ErrorFactory:
    """Translate the failed HTTP exchange the SDK wrapped, if it wrapped one.

    ``submit_job`` re-raises every failure as ``BatchError``, ``get_job_info`` and
    ``delete_job`` as ``JobError``: read at face value, a refused connection or a 429/503 would
    be a bare server error or a failed job, neither retryable, and a submit that never reached
    the service could not be told from one that may have created a job.
    """

    def translate(exc: BaseException) -> SpeechmaticsModesError:
        cause = exc.__cause__
        if isinstance(cause, (sm.ConnectionError, sm.TransportError)):
            translated = translate_sdk_error(cause, BATCH_ERRORS)
            if translated is not None:
                return translated
        return fallback(exc)

    return translate


def _from_job_error(exc: BaseException) -> SpeechmaticsModesError:
    return JobFailedError(describe(exc))


_RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""The statuses the SDK's own poller treats as transient; we agree."""

_AUTH_HINT = (
    "the batch service refused the API key (HTTP 401/403): check SPEECHMATICS_API_KEY, and that "
    "the key belongs to the region of the batch URL"
)

BATCH_ERRORS: dict[type[BaseException], ErrorFactory] = {
    sm.AuthenticationError: lambda exc: AuthenticationError(_AUTH_HINT),
    sm.BatchError: _through_wrapper(lambda exc: ServerError(describe(exc))),
    sm.ConfigurationError: lambda exc: ConfigurationError(describe(exc)),
    sm.ConnectionError: lambda exc: TransportError(describe(exc)),
    sm.JobError: _through_wrapper(_from_job_error),
    sm.JobExpiredError: lambda exc: ServerError(
        describe(exc), error_type="Job Expired", status=410
    ),
    sm.TimeoutError: lambda exc: TranscriptionTimeout(describe(exc)),
    sm.TranscriptNotReadyError: lambda exc: ServerError(
        describe(exc), error_type="Transcription not ready", status=404, retryable=True
    ),
    sm.TransportError: _from_transport_error,
}
"""Every exception class ``speechmatics.batch`` exports, and the error of ours it becomes."""


async def run_batch_job(
    upload: Upload,
    *,
    options: TranscriptionOptions,
    batch_options: BatchOptions,
    settings: Settings,
    retry: RetryPolicy | None = None,
) -> Transcript:
    """Submit one job, wait for it, and return its transcript.

    The audio is handed to the SDK as an open file, which aiohttp streams in blocks: the SDK
    would read a *path* whole into memory. If this task is cancelled (by the caller or by a
    timeout) while the job exists, the job is deleted on the server before the cancellation
    goes on, so nothing keeps running (or billing) for a result nobody will read. The caller
    checked ``options`` for batch at its public door, before anything was opened.

    Raises:
        JobFailedError: the service rejected or deleted the job; ``reasons`` says why.
        AuthenticationError, ServerError, TransportError: see ``BATCH_ERRORS``.
    """
    async with BatchClient(settings, retry=retry) as client:
        job_ids: list[str] = []
        try:
            await _submit_through_cancellation(client, job_ids, upload, options, batch_options)
            return await client.transcript(job_ids[0])
        except anyio.get_cancelled_exc_class():
            if job_ids:
                with anyio.CancelScope(shield=True), anyio.move_on_after(_DELETE_SECONDS):
                    await client.delete_quietly(job_ids[0])
            raise


async def _submit_through_cancellation(
    client: BatchClient,
    job_ids: list[str],
    upload: Upload,
    options: TranscriptionOptions,
    batch_options: BatchOptions,
) -> None:
    """Submit the job and put its id in ``job_ids``, even if the caller is cancelled meanwhile.

    The service may create the job the moment the upload has arrived, before its answer (the
    id) is back: a submit cancelled then would leave a job running, and billing, that nobody
    can delete. So a cancellation during the submit waits up to :data:`_DELETE_SECONDS` more
    for the answer (an upload still under way is abandoned then, and no job exists), and the
    caller deletes the job whose id came back.
    """
    request = anyio.CancelScope(shield=True)
    answered = anyio.Event()
    failed: list[Exception] = []

    async def submit() -> None:
        with request:
            try:
                job_ids.append(await client._submit_checked(upload, options, batch_options))
            except Exception as exc:  # raised below as itself, not in a task group's group
                failed.append(exc)
            finally:
                answered.set()

    async with anyio.create_task_group() as group:
        group.start_soon(submit)
        try:
            await answered.wait()
        except anyio.get_cancelled_exc_class():
            request.deadline = anyio.current_time() + _DELETE_SECONDS
            raise
    if failed:
        raise failed[0]


@dataclass(frozen=True)
class BatchJob:
    """What the service says about one batch job (``GET /jobs``, ``GET /jobs/{id}``)."""

    id: str
    status: str
    """``running``, ``done``, ``rejected``, ``deleted`` or ``expired``."""
    created_at: str
    data_name: str
    """The audio's file name as submitted."""
    duration: float | None = None
    """Seconds of audio, once known."""
    reference: str | None = None
    """The job's ``tracking.reference``: lets a client find a job it submitted but lost."""
    errors: tuple[str, ...] = ()
    """The service's messages for a rejected job."""


class BatchClient(StackOwner):
    """One connection to the batch API, shared by any number of concurrent jobs.

    The parts of a job are separate calls (:meth:`submit`, then :meth:`transcript`), so a
    caller can record the job id in between and re-attach to the job after a crash instead of
    submitting the audio again. Every request through one client shares its rate limit: when
    the service answers 429 or 503 to any of them, all requests wait (for the ``Retry-After``
    the service gave, else the backoff of ``retry``), so a pool of jobs slows down as one.

    Args:
        settings: Where to connect, with which key.
        retry: How requests are retried and jobs polled; :class:`RetryPolicy` defaults if
            omitted.
        on_rate_limit: Awaited with the pause (seconds) whenever the service answers 429 or
            503, so that other processes sharing the account can hold back too.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        retry: RetryPolicy | None = None,
        on_rate_limit: RateLimitHook | None = None,
    ) -> None:
        self._settings = settings
        self._retry = retry or RetryPolicy()
        self._on_rate_limit = on_rate_limit
        self._client: sm.AsyncClient | None = None
        self._retry_after: _RetryAfter | None = None

    async def _acquire(self, stack: AsyncExitStack) -> None:
        key = self._settings.api_key
        api_key = key.get_secret_value() if key is not None else None
        client = await stack.enter_async_context(
            sm.AsyncClient(api_key=api_key, url=self._settings.batch_url)
        )
        tend_sdk_loggers("speechmatics.batch")
        self._client = client
        self._retry_after = _RetryAfter(client, self._retry, self._on_rate_limit)

    def pause(self, seconds: float) -> None:
        """Hold every request of this client back for ``seconds`` (a rate limit met elsewhere)."""
        _, retry_after = self._open
        retry_after.hold(seconds)

    @property
    def _open(self) -> tuple[sm.AsyncClient, _RetryAfter]:
        if self._client is None or self._retry_after is None:
            raise RuntimeError("use 'async with BatchClient(settings) as client'")
        return self._client, self._retry_after

    async def submit(
        self, upload: Upload, *, options: TranscriptionOptions, batch_options: BatchOptions
    ) -> str:
        """Create a job for ``upload`` and return its id (see :func:`_submit` for retries).

        Raises:
            ConfigurationError: ``options`` sets a real-time-only field.
        """
        options.check_mode("batch")
        return await self._submit_checked(upload, options, batch_options)

    async def _submit_checked(
        self, upload: Upload, options: TranscriptionOptions, batch_options: BatchOptions
    ) -> str:
        """:meth:`submit` for options the public door already checked for batch."""
        client, retry_after = self._open
        if upload.url is not None:
            batch_options = batch_options.model_copy(
                update={"fetch_data": FetchData(url=upload.url)}
            )
        job_config = batch_job_config(options, batch_options)
        job_id = await _submit(client, upload, job_config, retry_after)
        logger.info("batch job %s submitted (%s)", job_id, upload.filename)
        return job_id

    async def transcript(self, job_id: str) -> Transcript:
        """Wait until job ``job_id`` is done and return its transcript; submits nothing.

        Raises:
            JobFailedError: the job was rejected, deleted, or is unknown to the service.
        """
        client, retry_after = self._open
        try:
            await _wait_until_done(client, job_id, retry_after)
            document = await _with_retries(
                lambda: _transcript_json(client, job_id), retry_after, what="transcript"
            )
        except SpeechmaticsModesError as exc:
            exc.job_id = exc.job_id or job_id
            raise
        return Transcript.from_batch_json(document)

    async def jobs(self, limit: int = 100) -> list[BatchJob]:
        """The most recent jobs (at most ``limit``, the service's maximum being 100)."""
        client, retry_after = self._open
        listed = await _with_retries(
            lambda: client.list_jobs(limit=limit), retry_after, what="job list"
        )
        return [_batch_job(details) for details in listed]

    async def job(self, job_id: str) -> BatchJob:
        """What the service says about one job."""
        client, retry_after = self._open
        details = await _with_retries(
            lambda: client.get_job_info(job_id), retry_after, what="job status"
        )
        return _batch_job(details)

    async def delete(self, job_id: str) -> None:
        """Delete a job, stopping it if it still runs."""
        client, _ = self._open
        with translated(BATCH_ERRORS):
            await client.delete_job(job_id, force=True)

    async def delete_quietly(self, job_id: str) -> None:
        """Delete a job, logging (not raising) a failure: for clean-up after cancellation."""
        client, _ = self._open
        await _delete_quietly(client, job_id)


def _batch_job(details: sm.JobDetails) -> BatchJob:
    tracking = details.config.tracking if details.config is not None else None
    return BatchJob(
        id=details.id,
        status=details.status.value,
        created_at=details.created_at,
        data_name=details.data_name,
        duration=details.duration,
        reference=tracking.reference if tracking is not None else None,
        errors=tuple(error.message for error in details.errors or ()),
    )


_DELETE_SECONDS = 10.0


async def _submit(
    client: sm.AsyncClient, upload: Upload, job_config: sm.JobConfig, retry_after: _RetryAfter
) -> str:
    """Create the job, retrying only where the service cannot have created it already.

    The rule: a submit is retried when the request never reached the service (the TCP
    connection could not be made) or the service answered 429 or 503, which refuse the request
    before a job exists. Anything else (a timeout, a dropped connection mid-upload, another
    5xx) may have created the job, and retrying could transcribe, and bill, the audio twice;
    those errors surface at once.
    """
    start = upload.file.tell() if upload.file is not None else 0
    backoff = retry_after.backoff()
    while True:
        await retry_after.wait()
        try:
            with translated(BATCH_ERRORS), _file_for_attempt(upload) as file:
                job = await client.submit_job(file, config=job_config)
            return str(job.id)
        except (TransportError, ServerError) as exc:
            if not _submit_never_reached(exc) or retry_after.exhausted(backoff):
                raise
            ours = backoff.next_delay()  # counts the failure even when the service says when
            await retry_after.back_off(exc, retry_after.take() or ours)
            if upload.file is not None:
                upload.file.seek(start)


@contextmanager
def _file_for_attempt(upload: Upload) -> Iterator[BinaryIO | None]:
    """The file one submit attempt hands the SDK, named as the upload.

    aiohttp closes a file once it has sent it (or failed to), which would leave nothing to
    retry with, and would close a caller's own file object; so a file with a descriptor goes
    out through a duplicate of it, which shares its position and is closed in its place.
    In-memory files (``BytesIO``) are left open by aiohttp and go as they are.
    """
    file = upload.file
    try:
        descriptor = file.fileno() if file is not None else None
    except (AttributeError, OSError):  # io.UnsupportedOperation is an OSError
        descriptor = None
    if descriptor is None:
        yield file
        return
    with os.fdopen(os.dup(descriptor), "rb") as duplicate:
        duplicate.raw.name = upload.filename  # type: ignore[attr-defined]
        yield duplicate


def _submit_never_reached(exc: BaseException) -> bool:
    if isinstance(exc, ServerError):
        return exc.status in (429, 503)
    link: BaseException | None = exc
    while link is not None:
        if isinstance(link, aiohttp.ClientConnectorError):
            return True
        link = link.__cause__
    return False


async def _wait_until_done(client: sm.AsyncClient, job_id: str, retry_after: _RetryAfter) -> None:
    """Poll the job's status with growing, jittered gaps until it is done or has failed."""
    polls = retry_after.backoff()
    while True:
        try:
            info = await _with_retries(
                lambda: client.get_job_info(job_id), retry_after, what="job status"
            )
        except ServerError as exc:
            if exc.status not in (404, 410):
                raise
            # A restarted local server, a job deleted by someone else, or one past retention.
            raise JobFailedError(
                f"job {job_id} is gone: the service answered {exc.status} ({exc}) while it "
                "was being waited for",
                job_id=job_id,
                reasons=(str(exc),),
            ) from exc
        status = info.status.value
        if status == "done":
            return
        if status in ("rejected", "deleted"):
            reasons = tuple(error.message for error in info.errors or ())
            detail = "; ".join(reasons) or "the service gave no reason"
            raise JobFailedError(
                f"job {job_id} was {status}: {detail}", job_id=job_id, reasons=reasons
            )
        await anyio.sleep(polls.next_delay())


async def _with_retries(
    call: Callable[[], Awaitable[T]], retry_after: _RetryAfter, *, what: str
) -> T:
    """Run a read-only request, retrying transient failures; reads are safe to repeat."""
    backoff = retry_after.backoff()
    while True:
        await retry_after.wait()
        try:
            with translated(BATCH_ERRORS):
                return await call()
        except SpeechmaticsModesError as exc:
            if not exc.retryable or retry_after.exhausted(backoff):
                raise
            ours = backoff.next_delay()
            delay = retry_after.take() or ours
            logger.info("reading the %s failed (%s); retrying in %.1f s", what, exc, delay)
            await retry_after.back_off(exc, delay)


async def _transcript_json(client: sm.AsyncClient, job_id: str) -> Mapping[str, Any]:
    """The json-v2 document itself: the SDK's public call returns its own parsed model."""
    document: Mapping[str, Any] = await client._transport.get(
        f"/jobs/{job_id}/transcript", params={"format": "json-v2"}
    )
    return document


async def _delete_quietly(client: sm.AsyncClient, job_id: str) -> None:
    try:
        await client.delete_job(job_id, force=True)
        logger.info("batch job %s deleted (cancelled)", job_id)
    except Exception as exc:  # the caller's cancellation matters more than this clean-up
        logger.warning("could not delete batch job %s after cancellation: %s", job_id, exc)


class _RetryAfter:
    """A client's retry state: its policy, and the ``Retry-After`` that holds every request back.

    It remembers the ``Retry-After`` of the last 429/503 answer. The SDK drops response headers
    when it raises, so the one response hook it has is wrapped (a tripwire test fails if that
    hook ever moves). One instance serves one client, so when jobs share a client, a rate limit
    met by one pauses them all.
    """

    def __init__(
        self,
        client: sm.AsyncClient,
        policy: RetryPolicy,
        on_rate_limit: RateLimitHook | None = None,
    ) -> None:
        self._policy = policy
        self._on_rate_limit = on_rate_limit
        self._seconds: float | None = None
        self._resume_at = 0.0
        transport = client._transport
        original = transport._handle_response

        async def remembering(response: aiohttp.ClientResponse) -> dict[str, Any]:
            if response.status in (429, 503):
                self._seconds = _seconds(response.headers.get("Retry-After"))
            return await original(response)

        transport._handle_response = remembering  # type: ignore[method-assign]

    def backoff(self) -> Backoff:
        """A fresh backoff on the policy's curve, for one request or one job's polls."""
        return Backoff.following(self._policy)

    def exhausted(self, backoff: Backoff) -> bool:
        """Whether the request has failed as often as the policy tolerates."""
        return backoff.failures >= self._policy.max_failures

    def take(self) -> float | None:
        """The delay the service asked for, once; ``None`` if it asked for none."""
        seconds, self._seconds = self._seconds, None
        return seconds

    async def back_off(self, exc: SpeechmaticsModesError, delay: float) -> None:
        """Wait ``delay`` before a retry; a rate limit (429/503) makes every request wait."""
        if isinstance(exc, ServerError) and exc.status in (429, 503):
            self.hold(delay)
            if self._on_rate_limit is not None:
                await self._on_rate_limit(delay)
            await self.wait()
        else:
            await anyio.sleep(delay)

    def hold(self, seconds: float) -> None:
        """Make every request wait at least ``seconds`` from now."""
        self._resume_at = max(self._resume_at, anyio.current_time() + seconds)

    async def wait(self) -> None:
        """Return once no rate limit holds requests back (at once, usually)."""
        remaining = self._resume_at - anyio.current_time()
        while remaining > 0:  # another request may extend the pause while we sleep
            await anyio.sleep(remaining)
            remaining = self._resume_at - anyio.current_time()


def _seconds(header: str | None) -> float | None:
    try:
        return max(0.0, float(header)) if header is not None else None
    except ValueError:
        return None  # an HTTP date: rare from this service; fall back to our own backoff
