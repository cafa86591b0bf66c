"""The batch backend: the only module that imports ``speechmatics.batch``.

Everything batch-specific that touches the SDK lives here: translating our options into the
SDK's dataclasses, and translating the SDK's exceptions into ours (:data:`BATCH_ERRORS`).
"""

from __future__ import annotations

from typing import Any

import speechmatics.batch as sm
from speechmatics.batch._models import (
    AudioEventsConfig,
    LanguageIdentificationConfig,
    TrackingConfig,
)

from ._config import BatchOptions, TranscriptionOptions
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
)

__all__ = ["BATCH_ERRORS", "batch_job_config", "batch_transcription_config"]


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
