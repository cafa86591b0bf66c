"""The shape of the configs clients send: a batch job config and ``StartRecognition``.

These models only *check* what arrives (unknown keys, values out of range, a missing
language), the way the service rejects a bad config before any audio is looked at. The server
keeps the client's own JSON and echoes it back untouched: the batch SDK parses job configs
strictly, so an added default or ``null`` would break it.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

from speechmatics_modes._config import Model, NotificationContent, RealtimeModel
from speechmatics_modes._frozen import FrozenModel

__all__ = [
    "BatchJobConfig",
    "ConfigProblem",
    "RealtimeTranscriptionConfig",
    "StartRecognition",
    "check",
    "describe_validation_error",
]


class ConfigProblem(ValueError):
    """A config the service would reject; the message says which field and why."""


class _VocabWord(FrozenModel):
    content: str = Field(min_length=1)
    sounds_like: list[str] | None = None


class _Speaker(FrozenModel):
    label: str
    speaker_identifiers: list[str] = Field(max_length=50)


class _SpeakerDiarization(FrozenModel):
    max_speakers: int | None = Field(default=None, ge=2)
    speaker_sensitivity: float | None = Field(default=None, ge=0, le=1)
    prefer_current_speaker: bool | None = None
    get_speakers: bool | None = None
    speakers: list[_Speaker] | None = None


class _PunctuationOverrides(FrozenModel):
    permitted_marks: list[str] | None = None
    sensitivity: float | None = Field(default=None, ge=0, le=1)


class _AudioFiltering(FrozenModel):
    volume_threshold: float | None = Field(default=None, ge=0, le=100)


class _Replacement(FrozenModel):
    from_: str = Field(alias="from")
    to: str


class _TranscriptFiltering(FrozenModel):
    remove_disfluencies: bool | None = None
    replacements: list[_Replacement] | None = None


class _Conversation(FrozenModel):
    end_of_utterance_silence_trigger: float | None = Field(default=None, ge=0, le=2)


ModelT = TypeVar("ModelT", bound=BaseModel)


class _TranscriptionConfig(FrozenModel):
    """Fields both APIs accept in ``transcription_config``."""

    language: str = Field(min_length=2)
    model: Model | None = None
    operating_point: Model | None = None
    domain: str | None = None
    output_locale: str | None = None
    additional_vocab: list[str | _VocabWord] | None = None
    diarization: Literal["none", "speaker", "channel", "channel_and_speaker"] | None = None
    speaker_diarization_config: _SpeakerDiarization | None = None
    channel_diarization_labels: list[str] | None = None
    enable_entities: bool | None = None
    punctuation_overrides: _PunctuationOverrides | None = None
    audio_filtering_config: _AudioFiltering | None = None
    transcript_filtering_config: _TranscriptFiltering | None = None
    language_hints: list[str] | None = None
    language_hints_strict: bool | None = None
    max_delay_mode: Literal["flexible", "fixed"] | None = None
    enable_partials: bool | None = None
    max_delay: float | None = Field(default=None, ge=0.7, le=4)


class RealtimeTranscriptionConfig(_TranscriptionConfig):
    """``transcription_config`` of ``StartRecognition``: adds the real-time-only fields."""

    model: RealtimeModel | None = None
    operating_point: RealtimeModel | None = None
    conversation_config: _Conversation | None = None
    streaming_mode: bool | None = None
    ctrl: dict[str, Any] | None = None


class _RawAudio(FrozenModel):
    type: Literal["raw"]
    encoding: Literal["pcm_s16le", "pcm_f32le", "mulaw"]
    sample_rate: int = Field(ge=8000, le=192_000)


class _FileAudio(FrozenModel):
    type: Literal["file"]


class _Translation(FrozenModel):
    target_languages: list[str] = Field(max_length=5)
    enable_partials: bool | None = None


class _AudioEvents(FrozenModel):
    types: list[str] | None = None


class StartRecognition(FrozenModel):
    """The first message of a real-time session."""

    message: Literal["StartRecognition"]
    audio_format: _RawAudio | _FileAudio = Field(discriminator="type")
    transcription_config: RealtimeTranscriptionConfig
    translation_config: _Translation | None = None
    audio_events_config: _AudioEvents | None = None


class _FetchData(FrozenModel):
    url: str = Field(pattern=r"^https?://")
    auth_headers: list[str] | None = None


class _Notification(FrozenModel):
    url: str
    contents: list[NotificationContent] | None = None
    method: Literal["post", "put"] | None = None
    auth_headers: list[str] | None = None


class _Tracking(FrozenModel):
    title: str | None = None
    reference: str | None = None
    tags: list[str] | None = None
    details: dict[str, Any] | None = None


class _SrtOverrides(FrozenModel):
    max_line_length: int | None = Field(default=None, ge=1)
    max_lines: int | None = Field(default=None, ge=1)


class _Output(FrozenModel):
    srt_overrides: _SrtOverrides | None = None
    generate_lattice: bool | None = None


class _LanguageIdentification(FrozenModel):
    expected_languages: list[str] | None = None
    low_confidence_action: Literal["allow", "reject", "use_default_language"] | None = None
    default_language: str | None = None


class _Summarization(FrozenModel):
    content_type: Literal["auto", "informative", "conversational"] | None = None
    summary_length: Literal["brief", "detailed"] | None = None
    summary_type: Literal["paragraphs", "bullets"] | None = None


class BatchJobConfig(FrozenModel):
    """The ``config`` part of ``POST /v2/jobs``."""

    type: Literal["transcription", "alignment"]
    transcription_config: _TranscriptionConfig | None = None
    alignment_config: dict[str, Any] | None = None
    fetch_data: _FetchData | None = None
    notification_config: list[_Notification] | None = None
    tracking: _Tracking | None = None
    output_config: _Output | None = None
    translation_config: _Translation | None = None
    language_identification_config: _LanguageIdentification | None = None
    summarization_config: _Summarization | None = None
    sentiment_analysis_config: dict[str, Any] | None = None
    topic_detection_config: dict[str, Any] | None = None
    auto_chapters_config: dict[str, Any] | None = None
    audio_events_config: _AudioEvents | None = None


def check(model: type[ModelT], data: Any) -> ModelT:
    """Validate ``data`` against ``model``.

    Raises:
        ConfigProblem: What is wrong, in one line a client can show its user.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigProblem(describe_validation_error(exc)) from exc


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming every offending field, like ``transcription_config.max_delay: ...``."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(step) for step in error["loc"]) or "config"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
