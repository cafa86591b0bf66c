"""The batch backend: the only module that imports ``speechmatics.batch``.

Everything batch-specific that touches the SDK lives here: translating our options into the
SDK's dataclasses, running a job (submit, poll, fetch the transcript), and translating the
SDK's exceptions into ours (:data:`BATCH_ERRORS`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import aiohttp
import anyio
import speechmatics.batch as sm
from speechmatics.batch._models import (
    AudioEventsConfig,
    LanguageIdentificationConfig,
    TrackingConfig,
)

from ._config import BatchOptions, FetchData, TranscriptionOptions
from ._exceptions import (
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
)
from ._models import Transcript
from ._settings import Settings
from ._sources import Upload

__all__ = ["BATCH_ERRORS", "batch_job_config", "batch_transcription_config", "run_batch_job"]

logger = logging.getLogger("speechmatics_modes")
T = TypeVar("T")


def batch_transcription_config(options: TranscriptionOptions) -> sm.TranscriptionConfig:
    """Build the batch SDK's ``TranscriptionConfig``; real-time-only fields are an error."""
    options.check_mode("batch")
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
    sm.BatchError: lambda exc: ServerError(describe(exc)),
    sm.ConfigurationError: lambda exc: ConfigurationError(describe(exc)),
    sm.ConnectionError: lambda exc: TransportError(describe(exc)),
    sm.JobError: _from_job_error,
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
) -> Transcript:
    """Submit one job, wait for it, and return its transcript.

    The audio is handed to the SDK as an open file, which aiohttp streams in blocks: the SDK
    would read a *path* whole into memory. If this task is cancelled (by the caller or by a
    timeout) while the job exists, the job is deleted on the server before the cancellation
    goes on, so nothing keeps running (or billing) for a result nobody will read.

    Raises:
        JobFailedError: the service rejected or deleted the job; ``reasons`` says why.
        AuthenticationError, ServerError, TransportError: see ``BATCH_ERRORS``.
    """
    if upload.url is not None:
        batch_options = batch_options.model_copy(update={"fetch_data": FetchData(url=upload.url)})
    job_config = batch_options.to_job_config(options)
    api_key = settings.api_key.get_secret_value() if settings.api_key is not None else None
    async with sm.AsyncClient(api_key=api_key, url=settings.batch_url) as client:
        retry_after = _RetryAfter(client)
        job_id = await _submit(client, upload, job_config, retry_after)
        logger.info("batch job %s submitted (%s)", job_id, upload.filename)
        try:
            await _wait_until_done(client, job_id, retry_after)
            document = await _with_retries(
                lambda: _transcript_json(client, job_id), retry_after, what="transcript"
            )
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True), anyio.move_on_after(_DELETE_SECONDS):
                await _delete_quietly(client, job_id)
            raise
    return Transcript.from_batch_json(document)


_DELETE_SECONDS = 10.0
_MAX_TRANSIENT_FAILURES = 5
_FIRST_POLL_SECONDS = 0.5
_POLL_GROWTH = 1.6
_MAX_POLL_SECONDS = 5.0


@contextmanager
def _sdk_errors() -> Iterator[None]:
    """Raise our error for any batch SDK error inside the block."""
    try:
        yield
    except Exception as exc:
        ours = translate_sdk_error(exc, BATCH_ERRORS)
        if ours is None:
            raise
        raise ours from exc


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
    failures = 0
    while True:
        try:
            with _sdk_errors():
                job = await client.submit_job(upload.file, config=job_config)
            return str(job.id)
        except (TransportError, ServerError) as exc:
            failures += 1
            if not _submit_never_reached(exc) or failures > _MAX_TRANSIENT_FAILURES:
                raise
            await anyio.sleep(retry_after.take() or _backoff(failures))
            if upload.file is not None:
                upload.file.seek(start)


def _submit_never_reached(exc: BaseException) -> bool:
    if isinstance(exc, ServerError):
        return exc.status in (429, 503)
    cause = exc.__cause__.__cause__ if exc.__cause__ is not None else None
    return isinstance(cause, aiohttp.ClientConnectorError)


async def _wait_until_done(client: sm.AsyncClient, job_id: str, retry_after: _RetryAfter) -> None:
    """Poll the job's status with growing, jittered gaps until it is done or has failed."""
    polls = 0
    while True:
        info = await _with_retries(
            lambda: client.get_job_info(job_id), retry_after, what="job status"
        )
        status = info.status.value
        if status == "done":
            return
        if status in ("rejected", "deleted"):
            reasons = tuple(error.message for error in info.errors or ())
            detail = "; ".join(reasons) or "the service gave no reason"
            raise JobFailedError(
                f"job {job_id} was {status}: {detail}", job_id=job_id, reasons=reasons
            )
        polls += 1
        await anyio.sleep(_backoff(polls))


def _backoff(attempt: int) -> float:
    """0.5 s, 0.8 s, 1.28 s... capped at 5 s, each +-20 %: polls from many jobs spread out."""
    base = min(_MAX_POLL_SECONDS, _FIRST_POLL_SECONDS * _POLL_GROWTH ** (attempt - 1))
    return float(base * random.uniform(0.8, 1.2))


async def _with_retries(
    call: Callable[[], Awaitable[T]], retry_after: _RetryAfter, *, what: str
) -> T:
    """Run a read-only request, retrying transient failures; reads are safe to repeat."""
    failures = 0
    while True:
        try:
            with _sdk_errors():
                return await call()
        except SpeechmaticsModesError as exc:
            failures += 1
            if not exc.retryable or failures > _MAX_TRANSIENT_FAILURES:
                raise
            delay = retry_after.take() or _backoff(failures)
            logger.info("reading the %s failed (%s); retrying in %.1f s", what, exc, delay)
            await anyio.sleep(delay)


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
    """Remembers the ``Retry-After`` of the last 429/503 answer.

    The SDK drops response headers when it raises, so the one response hook it has is wrapped:
    this is the only place that touches the SDK's transport internals, and the rate-limit
    tests against the local server fail if that hook ever moves.
    """

    def __init__(self, client: sm.AsyncClient) -> None:
        self._seconds: float | None = None
        transport = client._transport
        original = transport._handle_response

        async def remembering(response: aiohttp.ClientResponse) -> dict[str, Any]:
            if response.status in (429, 503):
                self._seconds = _seconds(response.headers.get("Retry-After"))
            return await original(response)

        transport._handle_response = remembering  # type: ignore[method-assign]

    def take(self) -> float | None:
        """The delay the service asked for, once; ``None`` if it asked for none."""
        seconds, self._seconds = self._seconds, None
        return seconds


def _seconds(header: str | None) -> float | None:
    try:
        return max(0.0, float(header)) if header is not None else None
    except ValueError:
        return None  # an HTTP date: rare from this service; fall back to our own backoff
