"""What the service says about the audio besides its words, typed.

Batch jobs can add translations, a summary, sentiment, topics, chapters and audio events to the
json-v2 document; real-time sessions can send translations (``AddTranslation``,
``AddPartialTranslation``), audio events (``AudioEventStarted``/``Ended``) and the speakers'
identifiers (``SpeakersResult``). This module holds those values, the stream events among them,
and how each is read from the wire. Like ``_stream/_policy.py`` it imports nothing of ours but
the frozen base, so its events can join the ``StreamEvent`` union of ``_models.py``.

Reading is forward compatible, as it is for words: keys the protocol does not document are
ignored (the service adds fields over time), while a documented key with the wrong type is an
error the caller turns into a :class:`~speechmatics_modes.ServerError`. Times are ``start`` and
``end`` in seconds, as on :class:`~speechmatics_modes.Word`, whatever the wire calls them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import Field

from speechmatics_modes._frozen import FrozenModel

__all__ = [
    "AudioEvent",
    "AudioEventEnded",
    "AudioEventStarted",
    "Chapter",
    "FinalTranslation",
    "IdentifiedSpeaker",
    "PartialTranslation",
    "Sentiment",
    "SentimentCounts",
    "SentimentSegment",
    "SpeakersResult",
    "TopicSegment",
    "Topics",
    "TranslatedSentence",
    "audio_event_ended",
    "audio_event_started",
    "audio_events_of",
    "chapters_of",
    "sentence_of",
    "sentiment_of",
    "speakers_of",
    "topics_of",
    "translation_event",
    "translations_of",
]


class TranslatedSentence(FrozenModel):
    """One sentence of a translation, timed like the words it translates."""

    content: str = Field(description="The translated text.")
    start: float = Field(description="Start of the source speech, in seconds.")
    end: float = Field(description="End of the source speech, in seconds.")
    speaker: str | None = Field(default=None, description="Who said it, with diarization.")
    channel: str | None = Field(default=None, description="The channel, with channel diarization.")


class SentimentCounts(FrozenModel):
    """How many segments were positive, negative and neutral."""

    positive: int = Field(default=0, ge=0, description="Positive segments.")
    negative: int = Field(default=0, ge=0, description="Negative segments.")
    neutral: int = Field(default=0, ge=0, description="Neutral segments.")


class SentimentSegment(FrozenModel):
    """A stretch of speech and the sentiment the service read in it."""

    text: str = Field(description="What was said.")
    start: float = Field(description="Start, in seconds.")
    end: float = Field(description="End, in seconds.")
    sentiment: str = Field(description="'positive', 'negative' or 'neutral'.")
    confidence: float | None = Field(default=None, description="The service's confidence.")
    speaker: str | None = Field(default=None, description="Who said it, with diarization.")
    channel: str | None = Field(default=None, description="The channel, with channel diarization.")


class Sentiment(FrozenModel):
    """Sentiment analysis of a batch job (``sentiment_analysis=True``)."""

    segments: tuple[SentimentSegment, ...] = Field(default=(), description="Per segment.")
    overall: SentimentCounts | None = Field(default=None, description="Counts over everything.")
    speakers: dict[str, SentimentCounts] = Field(
        default_factory=dict, description="Counts per speaker label."
    )
    channels: dict[str, SentimentCounts] = Field(
        default_factory=dict, description="Counts per channel label."
    )


class TopicSegment(FrozenModel):
    """A stretch of speech and the topics it is about."""

    text: str = Field(description="What was said.")
    start: float = Field(description="Start, in seconds.")
    end: float = Field(description="End, in seconds.")
    topics: tuple[str, ...] = Field(default=(), description="The topics, by name.")


class Topics(FrozenModel):
    """Topic detection of a batch job (``topic_detection_config``)."""

    segments: tuple[TopicSegment, ...] = Field(default=(), description="Per segment.")
    overall: dict[str, int] = Field(
        default_factory=dict, description="How many segments mention each topic."
    )


class Chapter(FrozenModel):
    """A titled part of the recording (``auto_chapters=True``)."""

    title: str = Field(description="The chapter's title.")
    summary: str = Field(default="", description="What the chapter is about.")
    start: float = Field(description="Start, in seconds.")
    end: float = Field(description="End, in seconds.")


class AudioEvent(FrozenModel):
    """A sound that is not speech (music, laughter, applause), with its span."""

    type: str = Field(description="What was heard, e.g. 'music'.")
    start: float = Field(description="Start, in seconds.")
    end: float = Field(description="End, in seconds.")
    confidence: float | None = Field(default=None, description="The service's confidence.")
    channel: str | None = Field(default=None, description="The channel, in multichannel audio.")


class _TranslationEvent(FrozenModel):
    language: str = Field(description="The language translated into.")
    sentences: tuple[TranslatedSentence, ...] = Field(description="The translated sentences.")


class PartialTranslation(_TranslationEvent):
    """A provisional translation (``AddPartialTranslation``); a later final replaces it."""

    kind: Literal["partial_translation"] = "partial_translation"


class FinalTranslation(_TranslationEvent):
    """A translation that will not change (``AddTranslation``)."""

    kind: Literal["final_translation"] = "final_translation"


class AudioEventStarted(FrozenModel):
    """A sound that is not speech began (``AudioEventStarted``)."""

    kind: Literal["audio_event_started"] = "audio_event_started"
    type: str = Field(description="What is heard, e.g. 'music'.")
    start: float = Field(description="When it began, in seconds.")
    confidence: float | None = Field(default=None, description="The service's confidence.")
    channel: str | None = Field(default=None, description="The channel, in multichannel sessions.")


class AudioEventEnded(FrozenModel):
    """A sound that is not speech ended (``AudioEventEnded``)."""

    kind: Literal["audio_event_ended"] = "audio_event_ended"
    type: str = Field(description="What was heard, e.g. 'music'.")
    end: float = Field(description="When it ended, in seconds.")
    channel: str | None = Field(default=None, description="The channel, in multichannel sessions.")


class IdentifiedSpeaker(FrozenModel):
    """A speaker the service heard, with the identifiers that recognise them again.

    To enrol them in a later session, give them a name:
    ``SpeakerIdentifier(label="Alice", speaker_identifiers=s.speaker_identifiers)`` (the
    service's own labels, ``S1``, are reserved and cannot be enrolled as they are).
    """

    label: str = Field(description="The label the words carry, e.g. 'S1'.")
    speaker_identifiers: tuple[str, ...] = Field(description="Opaque voice identifiers.")
    session_id: str | None = Field(
        default=None,
        description="With rollover, the real-time session that heard them: labels start "
        "afresh in each session, so S1 of two sessions may be two people.",
    )


class SpeakersResult(FrozenModel):
    """The speakers heard so far and their identifiers (``SpeakersResult``)."""

    kind: Literal["speakers"] = "speakers"
    speakers: tuple[IdentifiedSpeaker, ...] = Field(description="One per speaker heard.")


def translations_of(data: Mapping[str, Any]) -> dict[str, tuple[TranslatedSentence, ...]]:
    """The json-v2 ``translations`` section: sentences by target language."""
    return {language: _sentences(items) for language, items in data.items()}


def sentence_of(item: Mapping[str, Any]) -> TranslatedSentence:
    """One translated sentence from the wire (batch or real-time)."""
    return TranslatedSentence(
        content=item["content"],
        start=item["start_time"],
        end=item["end_time"],
        speaker=item.get("speaker"),
        channel=item.get("channel"),
    )


def _sentences(items: Iterable[Mapping[str, Any]]) -> tuple[TranslatedSentence, ...]:
    return tuple(sentence_of(item) for item in items)


def translation_event(message: Mapping[str, Any]) -> PartialTranslation | FinalTranslation:
    """``AddTranslation`` or ``AddPartialTranslation`` as its event."""
    fields = {"language": message["language"], "sentences": _sentences(message["results"])}
    if message["message"] == "AddPartialTranslation":
        return PartialTranslation(**fields)
    return FinalTranslation(**fields)


def sentiment_of(data: Mapping[str, Any]) -> Sentiment:
    """The json-v2 ``sentiment_analysis`` section (it nests a second ``sentiment_analysis``)."""
    inner = data.get("sentiment_analysis") or {}
    summary = inner.get("summary") or {}
    overall = summary.get("overall")
    return Sentiment(
        segments=tuple(
            SentimentSegment(
                text=item["text"],
                start=item["start_time"],
                end=item["end_time"],
                sentiment=item["sentiment"],
                confidence=item.get("confidence"),
                speaker=item.get("speaker"),
                channel=item.get("channel"),
            )
            for item in inner.get("segments") or ()
        ),
        overall=None if overall is None else _counts(overall),
        speakers={item["speaker"]: _counts(item) for item in summary.get("speakers") or ()},
        channels={item["channel"]: _counts(item) for item in summary.get("channels") or ()},
    )


def _counts(item: Mapping[str, Any]) -> SentimentCounts:
    return SentimentCounts(
        positive=item.get("positive_count", 0),
        negative=item.get("negative_count", 0),
        neutral=item.get("neutral_count", 0),
    )


def topics_of(data: Mapping[str, Any]) -> Topics:
    """The json-v2 ``topics`` section."""
    return Topics(
        segments=tuple(
            TopicSegment(
                text=item["text"],
                start=item["start_time"],
                end=item["end_time"],
                topics=tuple(topic["topic"] for topic in item.get("topics") or ()),
            )
            for item in data.get("segments") or ()
        ),
        overall=dict((data.get("summary") or {}).get("overall") or {}),
    )


def chapters_of(items: Iterable[Mapping[str, Any]]) -> tuple[Chapter, ...]:
    """The json-v2 ``chapters`` section."""
    return tuple(
        Chapter(
            title=item["title"],
            summary=item.get("summary", ""),
            start=item["start_time"],
            end=item["end_time"],
        )
        for item in items
    )


def audio_events_of(items: Iterable[Mapping[str, Any]]) -> tuple[AudioEvent, ...]:
    """The json-v2 ``audio_events`` section."""
    return tuple(
        AudioEvent(
            type=item["type"],
            start=item["start_time"],
            end=item["end_time"],
            confidence=item.get("confidence"),
            channel=item.get("channel"),
        )
        for item in items
    )


def audio_event_started(message: Mapping[str, Any]) -> AudioEventStarted:
    """``AudioEventStarted`` as its event."""
    event = message["event"]
    return AudioEventStarted(
        type=event["type"],
        start=event["start_time"],
        confidence=event.get("confidence"),
        channel=message.get("channel"),
    )


def audio_event_ended(message: Mapping[str, Any]) -> AudioEventEnded:
    """``AudioEventEnded`` as its event."""
    event = message["event"]
    return AudioEventEnded(
        type=event["type"], end=event["end_time"], channel=message.get("channel")
    )


def speakers_of(message: Mapping[str, Any]) -> SpeakersResult:
    """``SpeakersResult`` as its event."""
    return SpeakersResult(
        speakers=tuple(
            IdentifiedSpeaker(
                label=item["label"], speaker_identifiers=tuple(item["speaker_identifiers"])
            )
            for item in message["speakers"]
        )
    )
