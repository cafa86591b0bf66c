"""What the local server says besides words, and what it refuses because it cannot say it.

The service translates, summarises, reads sentiment, finds topics and chapters and hears audio
events; no offline engine does. A config asking for one of those is refused with a clear
reason naming the feature (``invalid_config`` in real time, ``400 Job rejected`` in batch)
instead of being accepted and silently ignored, unless the engine *scripts* it:
:class:`~speechmatics_modes.local.ScriptedEngine` can carry :class:`EngineInsights`, so the
whole client path (typed fields, stream events, subtitles of a translation) is tested over the
real protocol.

In batch the scripted sections go into the json-v2 document; in real time
:class:`RealtimeInsights` (no I/O, driven by ``RealtimeProtocol``) sends a translation once the
finals cover its sentence, and audio events as the audio reaches their start and end.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from speechmatics_modes._insights import (
    AudioEvent,
    Chapter,
    Sentiment,
    SentimentCounts,
    Topics,
    TranslatedSentence,
)

__all__ = ["EngineInsights", "RealtimeInsights", "batch_sections", "engine_insights", "refusal"]

_JSON_FORMAT = "2.9"


@dataclass(frozen=True)
class EngineInsights:
    """What an engine can report besides words; ``None`` (or absent) means it cannot.

    Every file and session of the engine gets the same insights, filtered to what the config
    asked for (the translation languages, the audio event types) and to the audio's length.
    """

    translations: Mapping[str, Sequence[TranslatedSentence]] | None = None
    """Sentences by target language; a language missing here cannot be translated into."""
    summary: str | None = None
    sentiment: Sentiment | None = None
    topics: Topics | None = None
    chapters: Sequence[Chapter] | None = None
    audio_events: Sequence[AudioEvent] | None = None


def engine_insights(engine: object) -> EngineInsights:
    """The engine's ``insights`` attribute; engines without one report nothing beyond words."""
    insights = getattr(engine, "insights", None)
    return insights if isinstance(insights, EngineInsights) else EngineInsights()


_FEATURES = {
    "summarization_config": ("summarization", "summary"),
    "sentiment_analysis_config": ("sentiment analysis", "sentiment"),
    "topic_detection_config": ("topic detection", "topics"),
    "auto_chapters_config": ("chapters", "chapters"),
    "audio_events_config": ("audio event detection", "audio_events"),
}
"""Config section -> (the feature's name in a refusal, the :class:`EngineInsights` field)."""


def refusal(config: Mapping[str, Any], insights: EngineInsights, engine_name: str) -> str | None:
    """Why the engine cannot honour ``config`` (a job config or ``StartRecognition``), if so."""
    translation = config.get("translation_config")
    if translation is not None:
        available = insights.translations or {}
        missing = [code for code in translation["target_languages"] if code not in available]
        if missing:
            return _needs_service(f"translation into {', '.join(missing)}", engine_name)
    for section, (feature, attribute) in _FEATURES.items():
        if config.get(section) is not None and getattr(insights, attribute) is None:
            return _needs_service(feature, engine_name)
    return None


def _needs_service(feature: str, engine_name: str) -> str:
    return (
        f"{feature} needs the Speechmatics service: the local {engine_name!r} engine only "
        "transcribes (remove the option, or point the client at the service)"
    )


def batch_sections(
    config: Mapping[str, Any], insights: EngineInsights, duration: float
) -> dict[str, Any]:
    """The json-v2 sections ``config`` asked for, from what the engine scripted."""
    sections: dict[str, Any] = {}
    translation = config.get("translation_config")
    if translation is not None and insights.translations is not None:
        sections["translations"] = {
            code: [_sentence(s) for s in insights.translations[code] if s.end <= duration]
            for code in translation["target_languages"]
        }
    if config.get("summarization_config") is not None and insights.summary is not None:
        sections["summary"] = {"content": insights.summary}
    if config.get("sentiment_analysis_config") is not None and insights.sentiment is not None:
        sections["sentiment_analysis"] = {"sentiment_analysis": _sentiment(insights.sentiment)}
    if config.get("topic_detection_config") is not None and insights.topics is not None:
        sections["topics"] = _topics(insights.topics)
    if config.get("auto_chapters_config") is not None and insights.chapters is not None:
        sections["chapters"] = [_chapter(c) for c in insights.chapters if c.end <= duration]
    events = config.get("audio_events_config")
    if events is not None and insights.audio_events is not None:
        wanted = _wanted(events)
        sections["audio_events"] = [
            _audio_event(e) for e in insights.audio_events if e.end <= duration and wanted(e.type)
        ]
    return sections


@dataclass
class RealtimeInsights:
    """The extras of one real-time session: which to send, and when (no I/O, no clock).

    Args:
        start: The ``StartRecognition`` message (its ``translation_config`` and
            ``audio_events_config`` say what was asked).
        insights: What the engine scripted.
    """

    start: Mapping[str, Any]
    insights: EngineInsights
    _translated: dict[str, int] = field(default_factory=dict)
    _started: int = 0
    _ended: int = 0

    def __post_init__(self) -> None:
        translation = self.start.get("translation_config")
        translations = self.insights.translations or {}
        self._languages = {
            code: tuple(translations[code])
            for code in (translation["target_languages"] if translation else ())
        }
        self._partials = bool(translation and translation.get("enable_partials"))
        events = self.start.get("audio_events_config")
        scripted = self.insights.audio_events if events is not None else None
        wanted = _wanted(events or {})
        self._events = tuple(e for e in scripted or () if wanted(e.type))

    def after_finals(self, final_end: float, heard: float) -> list[dict[str, Any]]:
        """Translations of the sentences the finals now cover, then partial ones in progress."""
        messages = []
        for code, sentences in self._languages.items():
            done = self._translated.get(code, 0)
            ready = done
            while ready < len(sentences) and sentences[ready].end <= final_end:
                ready += 1
            if ready > done:
                messages.append(_translation("AddTranslation", code, sentences[done:ready]))
                self._translated[code] = ready
            pending = [s for s in sentences[ready:] if s.start < heard]
            if self._partials and pending:
                messages.append(_translation("AddPartialTranslation", code, pending))
        return messages

    def heard(self, seconds: float) -> list[dict[str, Any]]:
        """Audio events whose start or end the audio (``seconds`` of it so far) has reached."""
        messages = []
        while self._started < len(self._events) and self._events[self._started].start <= seconds:
            messages.append(_event_started(self._events[self._started]))
            self._started += 1
        while self._ended < self._started and self._events[self._ended].end <= seconds:
            messages.append(_event_ended(self._events[self._ended], self._events[self._ended].end))
            self._ended += 1
        return messages

    def finish(self, seconds: float) -> list[dict[str, Any]]:
        """At the end of the stream: every translation left, and the end of open events."""
        messages = self.after_finals(seconds, seconds)
        messages = [m for m in messages if m["message"] == "AddTranslation"]
        while self._ended < self._started:
            event = self._events[self._ended]
            messages.append(_event_ended(event, min(event.end, seconds)))
            self._ended += 1
        return messages


def _wanted(config: Mapping[str, Any]) -> Callable[[str], bool]:
    types = config.get("types")
    return lambda kind: not types or kind in types


def _translation(kind: str, code: str, sentences: Sequence[TranslatedSentence]) -> dict[str, Any]:
    results = []
    for sentence in sentences:
        result = _sentence(sentence)
        result.pop("channel", None)  # real-time translations never carry a channel
        results.append(result)
    return {"message": kind, "format": _JSON_FORMAT, "language": code, "results": results}


def _event_started(event: AudioEvent) -> dict[str, Any]:
    body = {"type": event.type, "start_time": event.start, "confidence": event.confidence or 1.0}
    return _with_channel({"message": "AudioEventStarted", "event": body}, event.channel)


def _event_ended(event: AudioEvent, end: float) -> dict[str, Any]:
    body = {"type": event.type, "end_time": end}
    return _with_channel({"message": "AudioEventEnded", "event": body}, event.channel)


def _with_channel(message: dict[str, Any], channel: str | None) -> dict[str, Any]:
    return message if channel is None else {**message, "channel": channel}


def _sentence(sentence: TranslatedSentence) -> dict[str, Any]:
    result = {"content": sentence.content, "start_time": sentence.start, "end_time": sentence.end}
    return _optional(result, speaker=sentence.speaker, channel=sentence.channel)


def _chapter(chapter: Chapter) -> dict[str, Any]:
    return {
        "title": chapter.title,
        "summary": chapter.summary,
        "start_time": chapter.start,
        "end_time": chapter.end,
    }


def _audio_event(event: AudioEvent) -> dict[str, Any]:
    result = {"type": event.type, "start_time": event.start, "end_time": event.end}
    return _optional(result, confidence=event.confidence, channel=event.channel)


def _sentiment(sentiment: Sentiment) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "speakers": [{"speaker": k, **_counts(v)} for k, v in sentiment.speakers.items()],
        "channels": [{"channel": k, **_counts(v)} for k, v in sentiment.channels.items()],
    }
    if sentiment.overall is not None:
        summary["overall"] = _counts(sentiment.overall)
    segments = [
        _optional(
            {
                "text": segment.text,
                "start_time": segment.start,
                "end_time": segment.end,
                "sentiment": segment.sentiment,
            },
            confidence=segment.confidence,
            speaker=segment.speaker,
            channel=segment.channel,
        )
        for segment in sentiment.segments
    ]
    return {"segments": segments, "summary": summary}


def _counts(counts: SentimentCounts) -> dict[str, int]:
    return {
        "positive_count": counts.positive,
        "negative_count": counts.negative,
        "neutral_count": counts.neutral,
    }


def _topics(topics: Topics) -> dict[str, Any]:
    return {
        "segments": [
            {
                "text": segment.text,
                "start_time": segment.start,
                "end_time": segment.end,
                "topics": [{"topic": topic} for topic in segment.topics],
            }
            for segment in topics.segments
        ],
        "summary": {"overall": dict(topics.overall)},
    }


def _optional(result: dict[str, Any], **optional: Any) -> dict[str, Any]:
    return result | {key: value for key, value in optional.items() if value is not None}
