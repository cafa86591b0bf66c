"""What to transcribe and how: one set of models for both modes, validated once.

:class:`TranscriptionOptions` covers every field of both SDKs' ``TranscriptionConfig``.
Most fields mean the same in both modes; a few exist in only one. Rather than drop such a field
silently when the other mode runs, :meth:`TranscriptionOptions.check_mode` raises a
:class:`~speechmatics_modes.ConfigurationError` naming the field and the mode, before anything is
sent. Batch-only job features (translation, summaries, webhooks, ...) live apart, in
:class:`BatchOptions`, because the service configures them per job, not per transcription.

The models here describe what the caller wants and know nothing of the SDKs or the backends:
translation into SDK objects happens in the backend modules (``_batch.py``, ``_realtime.py``),
the only places that may. The ``to_*`` methods that once handed SDK objects out are deprecated
shims kept for callers until 0.2 (``tests/test_import_graph.py`` lets them, and only them, reach
a backend).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator
from typing_extensions import deprecated

from speechmatics_modes._exceptions import ConfigurationError
from speechmatics_modes._frozen import FrozenModel

if TYPE_CHECKING:  # the SDK types only name the deprecated shims' return values
    import speechmatics.batch as sm_batch  # noqa: TID251
    import speechmatics.rt as sm_rt  # noqa: TID251

__all__ = [
    "CHANNEL_DIARIZATION",
    "LARGEST_MESSAGE",
    "SETTABLE_MID_SESSION",
    "AudioEncoding",
    "AudioFiltering",
    "AudioFormat",
    "BatchOptions",
    "Conversation",
    "FetchData",
    "LanguageIdentification",
    "Notification",
    "OutputOptions",
    "PunctuationOverrides",
    "RealtimeOptions",
    "SpeakerDiarization",
    "SpeakerIdentifier",
    "Summarization",
    "TopicDetection",
    "Tracking",
    "TranscriptFiltering",
    "TranscriptionOptions",
    "Translation",
    "VocabEntry",
    "WordReplacement",
    "fields_missing_in",
]

RealtimeModel = Literal["standard", "enhanced", "melia-1"]
"""The models real-time transcription offers."""
Model = Literal[RealtimeModel, "oak-1"]
"""Every model; ``oak-1`` is batch only."""
Diarization = Literal["none", "speaker", "channel", "channel_and_speaker"]
CHANNEL_DIARIZATION: tuple[Diarization, ...] = ("channel", "channel_and_speaker")
"""The diarization values that transcribe channels apart (in both modes, on both sides)."""
NotificationContent = Literal[
    "jobinfo",
    "transcript",
    "transcript.json-v2",
    "transcript.txt",
    "transcript.srt",
    "data",
    "text",
]
"""What a batch job's webhook may carry (the service's ``notification_config.contents``)."""
AudioEncoding = Literal["pcm_s16le", "pcm_f32le", "mulaw"]
"""Raw audio encodings the real-time API accepts."""

_LANGUAGE = r"^[a-z]{2,3}([-_][A-Za-z0-9]+)*$|^multi$|^auto$"
_CHANNEL_LABEL = r"^[A-Za-z0-9._]+$"
_RESERVED_SPEAKER_LABEL = re.compile(r"^(S\d+|UU)$")


class _Value(FrozenModel):
    """Base of every option model: a frozen value, with the JSON the service expects."""

    def to_wire(self) -> dict[str, Any]:
        """The JSON the service expects: field names as on the wire, unset fields left out."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


class VocabEntry(_Value):
    """A word or phrase to add to the vocabulary, with optional pronunciations."""

    content: str = Field(min_length=1, description="The word or phrase as it should be written.")
    sounds_like: tuple[str, ...] | None = Field(
        default=None, description="How it sounds, spelled phonetically; helps unusual names."
    )


class PunctuationOverrides(_Value):
    """Which punctuation marks to use and how eagerly."""

    permitted_marks: tuple[str, ...] | None = Field(
        default=None,
        description='Marks the transcript may contain, e.g. [".", ","]; ["all"] allows every mark.',
    )
    sensitivity: float | None = Field(
        default=None, ge=0, le=1, description="0 to 1: higher adds punctuation more readily."
    )


class SpeakerIdentifier(_Value):
    """A known speaker, from identifiers returned by an earlier session or job."""

    label: str = Field(
        min_length=1, description="The name to give this speaker; must not look like S1 or UU."
    )
    speaker_identifiers: tuple[str, ...] = Field(
        min_length=1, max_length=50, description="Opaque identifiers from earlier output (<= 50)."
    )

    @field_validator("label")
    @classmethod
    def _label_is_not_reserved(cls, value: str) -> str:
        if _RESERVED_SPEAKER_LABEL.match(value):
            raise ValueError(f"speaker label {value!r} is reserved for automatic labels (S1, UU)")
        return value


class SpeakerDiarization(_Value):
    """Tuning of speaker diarization (used with ``diarization="speaker"``)."""

    max_speakers: int | None = Field(
        default=None, ge=2, le=100, description="Most speakers to tell apart (real-time only)."
    )
    speaker_sensitivity: float | None = Field(
        default=None, ge=0, le=1, description="0 to 1: higher finds more distinct speakers."
    )
    prefer_current_speaker: bool | None = Field(
        default=None, description="Stay with the current speaker when voices are close."
    )
    get_speakers: bool | None = Field(
        default=None,
        description="Return speaker identifiers for use in later jobs (batch only).",
    )
    speakers: tuple[SpeakerIdentifier, ...] | None = Field(
        default=None, description="Known speakers to recognise by name."
    )


class WordReplacement(_Value):
    """Replace a word or pattern in the transcript."""

    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from", min_length=1, description="Word or /regex/ to replace.")
    to: str = Field(description="What to write instead.")


class TranscriptFiltering(_Value):
    """Clean-up applied to the transcript text."""

    remove_disfluencies: bool | None = Field(
        default=None, description='Drop hesitations such as "um" and "uh" (English).'
    )
    replacements: tuple[WordReplacement, ...] | None = Field(
        default=None, description="Words or patterns to replace."
    )


class AudioFiltering(_Value):
    """Ignore quiet audio, such as background speech."""

    volume_threshold: float = Field(
        ge=0, le=100, description="0 to 100: audio quieter than this is not transcribed."
    )


class Conversation(_Value):
    """End-of-utterance detection for conversational (turn-taking) applications."""

    end_of_utterance_silence_trigger: float = Field(
        ge=0, le=2, description="Seconds of silence (0 to 2) that end an utterance; 0 turns it off."
    )


class TranscriptionOptions(_Value):
    """How to transcribe: every field of both SDKs' ``TranscriptionConfig``, validated once.

    Fields marked *real-time only* or *batch only* raise :class:`ConfigurationError` when set and
    used with the other mode. ``operating_point``, the SDKs' deprecated alias of ``model``, is not
    repeated here: set ``model``, which puts the same value on the wire.
    """

    language: str = Field(
        default="en",
        pattern=_LANGUAGE,
        description='Language code such as "en", "de" or "cmn"; "multi" with language_hints.',
    )
    model: Model | None = Field(
        default=None,
        description='Model: "standard", "enhanced" (the SDKs\' default), "melia-1" or '
        '"oak-1" (batch only).',
    )
    output_locale: str | None = Field(
        default=None,
        pattern=r"^[a-z]{2,3}-[A-Z]{2}$",
        description='Spelling locale of the output, e.g. "en-GB" or "en-US".',
    )
    domain: str | None = Field(
        default=None, min_length=1, description='Domain-tuned language pack, e.g. "finance".'
    )
    additional_vocab: tuple[VocabEntry, ...] | None = Field(
        default=None, description="Extra words and phrases; plain strings are accepted."
    )
    punctuation_overrides: PunctuationOverrides | None = Field(
        default=None, description="Which punctuation marks to use and how eagerly."
    )
    enable_entities: bool | None = Field(
        default=None, description="Format entities (dates, numbers, money) in written form."
    )
    diarization: Diarization | None = Field(
        default=None,
        description='Label who speaks: "none", "speaker", "channel", or (real-time only) '
        '"channel_and_speaker".',
    )
    speaker_diarization_config: SpeakerDiarization | None = Field(
        default=None, description='Tuning of speaker diarization; needs diarization="speaker".'
    )
    channel_diarization_labels: tuple[Annotated[str, Field(pattern=_CHANNEL_LABEL)], ...] | None = (
        Field(default=None, description="Names of the channels, in order, for channel diarization.")
    )
    language_hints: tuple[str, ...] | None = Field(
        default=None, description="Languages likely to appear (next-generation models)."
    )
    language_hints_strict: bool | None = Field(
        default=None, description="Only output the hinted languages (next-generation models)."
    )
    transcript_filtering_config: TranscriptFiltering | None = Field(
        default=None, description="Clean-up of the transcript text (disfluencies, replacements)."
    )
    audio_filtering_config: AudioFiltering | None = Field(
        default=None, description="Ignore audio quieter than a threshold."
    )
    enable_partials: bool | None = Field(
        default=None, description="Send partial (not yet final) results (real-time only)."
    )
    max_delay: float | None = Field(
        default=None,
        ge=0.7,
        le=4.0,
        description="Seconds (0.7 to 4) before a word must be final (real-time only).",
    )
    max_delay_mode: Literal["flexible", "fixed"] | None = Field(
        default=None,
        description='"flexible" may wait longer to finish an entity; "fixed" never does '
        "(real-time only).",
    )
    conversation_config: Conversation | None = Field(
        default=None, description="End-of-utterance detection (real-time only)."
    )
    streaming_mode: bool | None = Field(
        default=None, description="Undocumented real-time SDK field, passed through as given."
    )
    ctrl: dict[str, Any] | None = Field(
        default=None, description="Undocumented real-time SDK field, passed through as given."
    )

    @field_validator("additional_vocab", mode="before")
    @classmethod
    def _plain_strings_are_vocab(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return tuple({"content": item} if isinstance(item, str) else item for item in value)
        return value

    @property
    def identifies_speakers(self) -> bool:
        """Whether words get speaker labels (``speaker`` or ``channel_and_speaker``)."""
        return self.diarization in ("speaker", "channel_and_speaker")

    @model_validator(mode="after")
    def _diarization_settings_need_diarization(self) -> TranscriptionOptions:
        if self.speaker_diarization_config is not None and not self.identifies_speakers:
            raise ValueError(
                "speaker_diarization_config has no effect unless diarization is 'speaker' "
                "(or 'channel_and_speaker'); set diarization='speaker'"
            )
        if (
            self.channel_diarization_labels is not None
            and self.diarization not in CHANNEL_DIARIZATION
        ):
            raise ValueError(
                "channel_diarization_labels has no effect unless diarization is 'channel' "
                "(or 'channel_and_speaker'); set diarization='channel'"
            )
        return self

    def check_mode(self, mode: Literal["batch", "realtime"]) -> None:
        """Raise :class:`ConfigurationError` if a field set here does not exist in ``mode``.

        Every field that one mode lacks is listed in one table, so the rule is visible in one place
        and a test can walk it.
        """
        for name, offending in _MODE_ONLY_VALUES.items():
            value = getattr(self, name)
            if value is None:
                continue
            other, allowed = offending
            if other == mode and (allowed is None or value not in allowed):
                raise ConfigurationError(_wrong_mode_message(name, value, mode))
        speakers = self.speaker_diarization_config
        if speakers is None:
            return
        # The batch API has no max_speakers; the real-time SDK's model has no get_speakers (send
        # a GetSpeakers message instead).
        if mode == "batch" and speakers.max_speakers is not None:
            raise ConfigurationError(
                _wrong_mode_message("speaker_diarization_config.max_speakers", None, mode)
            )
        if mode == "realtime" and speakers.get_speakers is not None:
            raise ConfigurationError(
                _wrong_mode_message("speaker_diarization_config.get_speakers", None, mode)
            )

    def updated_mid_session(self, changes: Mapping[str, Any]) -> TranscriptionOptions:
        """These options with ``changes`` applied, as ``SetRecognitionConfig`` allows.

        Only the fields in :data:`SETTABLE_MID_SESSION` can change while a session runs (the
        language only to itself); the service refuses any other.

        Raises:
            ConfigurationError: A field that cannot change mid-session, or an invalid value.
        """
        fixed = sorted(set(changes) - SETTABLE_MID_SESSION)
        if fixed:
            raise ConfigurationError(
                f"{', '.join(fixed)} cannot change while a session runs; only "
                f"{', '.join(sorted(SETTABLE_MID_SESSION - {'language'}))} can"
            )
        if changes.get("language", self.language) != self.language:
            raise ConfigurationError(
                "the language cannot change while a session runs: start a new stream"
            )
        try:
            updated = TranscriptionOptions.model_validate({**self.to_wire(), **changes})
        except ValidationError as exc:
            raise ConfigurationError(f"invalid update: {exc}") from exc
        updated.check_mode("realtime")
        return updated

    @deprecated(
        "TranscriptionOptions.to_batch() hands out an SDK type and will be removed in 0.2: pass "
        "the options to transcribe(), or use to_wire() for the JSON the service receives"
    )
    def to_batch(self) -> sm_batch.TranscriptionConfig:
        """Deprecated: the batch SDK's ``TranscriptionConfig`` for these options.

        Raises:
            ConfigurationError: a real-time-only field is set.
        """
        from speechmatics_modes._batch import batch_transcription_config

        self.check_mode("batch")
        return batch_transcription_config(self)

    @deprecated(
        "TranscriptionOptions.to_realtime() hands out an SDK type and will be removed in 0.2: "
        "pass the options to stream(), or use to_wire() for the JSON the service receives"
    )
    def to_realtime(self) -> sm_rt.TranscriptionConfig:
        """Deprecated: the real-time SDK's ``TranscriptionConfig`` for these options.

        Raises:
            ConfigurationError: a batch-only field (or value) is set.
        """
        from speechmatics_modes._realtime import realtime_transcription_config

        self.check_mode("realtime")
        return realtime_transcription_config(self)


SETTABLE_MID_SESSION = frozenset(
    {
        "language",
        "max_delay",
        "max_delay_mode",
        "audio_filtering_config",
        "enable_partials",
        "conversation_config",
    }
)
"""The transcription fields a ``SetRecognitionConfig`` may carry (``language`` unchanged)."""

_MODE_ONLY_VALUES: dict[str, tuple[str, tuple[Any, ...] | None]] = {
    # field name: (the mode that lacks it, values that are fine there; None: none are)
    "enable_partials": ("batch", None),
    "max_delay": ("batch", None),
    "max_delay_mode": ("batch", None),
    "conversation_config": ("batch", None),
    "streaming_mode": ("batch", None),
    "ctrl": ("batch", None),
    "diarization": ("batch", ("none", "speaker", "channel")),
    "model": ("realtime", get_args(RealtimeModel)),
}
"""Fields (or some of their values) that exist in only one mode; checked by ``check_mode``."""


def fields_missing_in(mode: Literal["batch", "realtime"]) -> frozenset[str]:
    """The fields that ``mode`` lacks whatever their value (not those it lacks some values of).

    The command line offers no flag for these on a command that runs only in ``mode``.
    """
    return frozenset(
        name
        for name, (lacking, allowed) in _MODE_ONLY_VALUES.items()
        if lacking == mode and allowed is None
    )


def _wrong_mode_message(name: str, value: Any, mode: str) -> str:
    label = {"batch": "batch", "realtime": "real-time"}
    other = "realtime" if mode == "batch" else "batch"
    shown = name if value is None else f"{name}={value!r}"
    return (
        f"{shown} is not available in {label[mode]} transcription (it is a {label[other]} "
        f"option): remove it, or use mode={other!r}"
    )


LARGEST_MESSAGE = 512 * 1024
"""The most audio one real-time message carries: the service closes the connection on
messages of 1 MiB and more, so a bigger chunk from a caller is sent as several. A multiple of
every sample width."""


class AudioFormat(_Value):
    """The format of raw audio sent to the real-time API (WAV files describe themselves)."""

    encoding: AudioEncoding = Field(
        default="pcm_s16le",
        description="Sample encoding: pcm_s16le (16-bit), pcm_f32le (32-bit float) or mulaw.",
    )
    sample_rate: int = Field(
        default=16_000, ge=8_000, le=192_000, description="Samples per second, 8000 to 192000."
    )
    chunk_size: int = Field(
        default=4096,
        ge=256,
        le=LARGEST_MESSAGE,
        description="Bytes per audio message (256 B to 512 KiB), a multiple of the sample size.",
    )

    @model_validator(mode="after")
    def _chunks_hold_whole_samples(self) -> AudioFormat:
        if self.chunk_size % self.bytes_per_sample:
            raise ValueError(
                f"chunk_size {self.chunk_size} is not a multiple of the "
                f"{self.bytes_per_sample}-byte sample size of {self.encoding}"
            )
        return self

    @property
    def bytes_per_sample(self) -> int:
        """Bytes per (mono) sample of this encoding."""
        return _BYTES_PER_SAMPLE[self.encoding]

    @property
    def bytes_per_second(self) -> int:
        """Bytes of mono audio per second: converts byte counts into the stream's clock."""
        return self.bytes_per_sample * self.sample_rate

    @deprecated(
        "AudioFormat.to_realtime() hands out an SDK type and will be removed in 0.2: pass the "
        "format to stream()"
    )
    def to_realtime(self) -> sm_rt.AudioFormat:
        """Deprecated: the real-time SDK's ``AudioFormat``."""
        from speechmatics_modes._realtime import realtime_audio_format

        return realtime_audio_format(self)


_BYTES_PER_SAMPLE: dict[str, int] = {"pcm_s16le": 2, "pcm_f32le": 4, "mulaw": 1}


class FetchData(_Value):
    """Have the service download the audio itself instead of uploading it."""

    url: str = Field(pattern=r"^https?://", description="http(s) URL the service can reach.")
    auth_headers: tuple[str, ...] | None = Field(
        default=None, description='Headers for the download, e.g. ["Authorization: Bearer ..."].'
    )


class Notification(_Value):
    """A webhook called when the job finishes."""

    url: str = Field(pattern=r"^https?://", description="Where to send the notification.")
    contents: tuple[NotificationContent, ...] | None = Field(
        default=None, description="What to attach; nothing means job info only."
    )
    method: Literal["post", "put"] | None = Field(default=None, description="HTTP method.")
    auth_headers: tuple[str, ...] | None = Field(
        default=None, description="Headers the service adds to the callback."
    )


class Tracking(_Value):
    """Your own labels on the job, returned with it."""

    title: str | None = Field(default=None, description="A title for the job.")
    reference: str | None = Field(default=None, description="Your reference, e.g. an order id.")
    tags: tuple[str, ...] | None = Field(default=None, description="Tags to filter jobs by.")


class Translation(_Value):
    """Translate the transcript (batch and real-time)."""

    target_languages: tuple[str, ...] = Field(
        min_length=1, max_length=5, description="Up to 5 language codes to translate into."
    )
    enable_partials: bool | None = Field(
        default=None,
        description="Also send provisional translations as they form (real-time; "
        "batch ignores it).",
    )


class LanguageIdentification(_Value):
    """Detect the spoken language instead of assuming one (set language="auto")."""

    expected_languages: tuple[str, ...] | None = Field(
        default=None, description="Languages to choose from; all supported ones when unset."
    )


class Summarization(_Value):
    """A summary of the transcript."""

    content_type: Literal["auto", "informative", "conversational"] | None = Field(
        default=None, description="What kind of content it is; auto-detected when unset."
    )
    summary_length: Literal["brief", "detailed"] | None = Field(
        default=None, description="brief (default) or detailed."
    )
    summary_type: Literal["paragraphs", "bullets"] | None = Field(
        default=None, description="paragraphs or bullets."
    )


class TopicDetection(_Value):
    """Find the topics discussed."""

    topics: tuple[str, ...] | None = Field(
        default=None, description="Topics to look for; detected freely when unset."
    )


class OutputOptions(_Value):
    """Shape of the service's own outputs (SRT line lengths, lattice)."""

    srt_max_line_length: int | None = Field(
        default=None, ge=1, description="Characters per SRT line (service default 37)."
    )
    srt_max_lines: int | None = Field(
        default=None, ge=1, description="Lines per SRT cue (service default 2)."
    )
    generate_lattice: bool | None = Field(default=None, description="Also produce a word lattice.")


class BatchOptions(_Value):
    """Job features that only batch offers: they configure the job, not the transcription."""

    fetch_data: FetchData | None = Field(
        default=None, description="Let the service download the audio from a URL."
    )
    notification_config: tuple[Notification, ...] | None = Field(
        default=None, description="Webhooks called when the job finishes."
    )
    tracking: Tracking | None = Field(default=None, description="Your own labels on the job.")
    translation_config: Translation | None = Field(
        default=None, description="Translate the transcript."
    )
    language_identification_config: LanguageIdentification | None = Field(
        default=None, description="Detect the spoken language."
    )
    summarization_config: Summarization | None = Field(
        default=None, description="Summarise the transcript."
    )
    sentiment_analysis: bool | None = Field(
        default=None, description="Add sentiment per segment and overall."
    )
    topic_detection_config: TopicDetection | None = Field(
        default=None, description="Find the topics discussed."
    )
    auto_chapters: bool | None = Field(default=None, description="Split into titled chapters.")
    audio_event_types: tuple[str, ...] | None = Field(
        default=None,
        description='Detect audio events such as "music", "laughter", "applause"; () for all.',
    )
    output_config: OutputOptions | None = Field(
        default=None, description="Shape of the service's SRT output."
    )

    @deprecated(
        "BatchOptions.to_job_config() hands out an SDK type and will be removed in 0.2: pass "
        "the options to transcribe(), or use to_wire() for the JSON the service receives"
    )
    def to_job_config(self, options: TranscriptionOptions | None = None) -> sm_batch.JobConfig:
        """Deprecated: the batch SDK's ``JobConfig`` for these and the transcription options.

        Raises:
            ConfigurationError: a real-time-only transcription field is set.
        """
        from speechmatics_modes._batch import batch_job_config

        transcription = options or TranscriptionOptions()
        transcription.check_mode("batch")
        return batch_job_config(transcription, self)


class RealtimeOptions(_Value):
    """Session features only real-time offers beside the transcription, sent at the start.

    Like :class:`BatchOptions`, they sit beside ``transcription_config`` on the wire
    (``translation_config`` and ``audio_events_config`` of ``StartRecognition``).
    """

    translation_config: Translation | None = Field(
        default=None,
        description="Translate while transcribing: FinalTranslation (and, with "
        "enable_partials, PartialTranslation) events.",
    )
    audio_event_types: tuple[str, ...] | None = Field(
        default=None,
        description='Report sounds such as "music", "laughter", "applause" as '
        "AudioEventStarted/Ended events; () for all.",
    )
