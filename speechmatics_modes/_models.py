"""The transcript model both modes return, and the events a real-time stream yields.

Everything here is built from the raw JSON of the wire protocol (a batch json-v2 document, or
real-time ``AddTranscript`` messages), never from SDK objects, so the same words give the same
:class:`Transcript` whichever mode produced them.

Entities: with ``enable_entities`` the service replaces the words of a formatted entity
("$1 million") by one ``entity`` result whose ``written_form`` lists the same text split into
timed words. We keep entities, expanded into those written-form words tagged with
``entity_class``: the text is then identical to what the service returns without
``enable_entities``, each :class:`Word` stays one token with its own timing (subtitles can break
between them), and the entity class is not lost. An entity without a ``written_form`` becomes
one word holding its whole content.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from enum import Enum
from itertools import groupby
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from typing_extensions import Self

from speechmatics_modes._exceptions import ConfigurationError, ServerError
from speechmatics_modes._frozen import FrozenModel
from speechmatics_modes._insights import (
    AudioEvent,
    AudioEventEnded,
    AudioEventStarted,
    Chapter,
    FinalTranslation,
    IdentifiedSpeaker,
    PartialTranslation,
    Sentiment,
    SpeakersResult,
    Topics,
    TranslatedSentence,
    audio_event_ended,
    audio_event_started,
    audio_events_of,
    chapters_of,
    sentiment_of,
    speakers_of,
    topics_of,
    translation_event,
    translations_of,
)
from speechmatics_modes._stream._policy import AudioGap, Reconnected, SessionRollover
from speechmatics_modes._subtitles import (
    DEFAULT_MAX_DURATION,
    DEFAULT_MAX_LINE_LENGTH,
    DEFAULT_MAX_LINES,
    DEFAULT_MIN_DURATION,
    CueLayout,
    Unit,
    build_cues,
    render_srt,
    render_vtt,
)

__all__ = [
    "UNKNOWN_SPEAKER",
    "EndOfUtterance",
    "ExtrasCollector",
    "Final",
    "Mode",
    "Partial",
    "Segment",
    "ServerWarning",
    "SessionInfo",
    "StreamEvent",
    "Transcript",
    "Word",
    "stream_event",
]

UNKNOWN_SPEAKER = "UU"
"""The label the service gives a word whose speaker it could not tell (or did not try to)."""


class Mode(str, Enum):
    """How audio reaches Speechmatics."""

    AUTO = "auto"
    """Let the library choose: batch for finished audio, real-time for live audio."""
    BATCH = "batch"
    """Upload a finished recording as a batch job over REST; best accuracy, result at the end."""
    REALTIME = "realtime"
    """Stream audio over the real-time WebSocket; words arrive while the audio plays."""


class Word(FrozenModel):
    """One recognised word or punctuation mark, with its timing and who said it."""

    content: str = Field(description="The text as the service wrote it (a word or a mark).")
    start: float = Field(ge=0, description="Start in seconds from the beginning of the audio.")
    end: float = Field(ge=0, description="End in seconds from the beginning of the audio.")
    confidence: float = Field(
        ge=0, le=1, description="The service's confidence in this word, from 0 to 1."
    )
    speaker: str | None = Field(
        default=None,
        description="Speaker label (S1, S2, an enrolled name, or 'UU' for unknown); "
        "None when the service sent none.",
    )
    channel: str | None = Field(
        default=None, description="The audio channel label, with channel diarization."
    )
    language: str | None = Field(default=None, description="Language code of this word.")
    is_punctuation: bool = Field(
        default=False, description="True for punctuation marks, which attach to words."
    )
    attaches_to: Literal["previous", "next", "both", "none"] | None = Field(
        default=None,
        description="Which neighbour a punctuation mark is written against; None on words "
        "(and on marks from services that omit it, which attach to the previous word).",
    )
    is_eos: bool = Field(default=False, description="True for a mark that ends a sentence.")
    tags: tuple[str, ...] = Field(
        default=(), description="The service's tags, such as 'disfluency' or 'profanity'."
    )
    entity_class: str | None = Field(
        default=None,
        description="The entity this word belongs to (e.g. 'money'), with enable_entities.",
    )

    @model_validator(mode="after")
    def _end_not_before_start(self) -> Self:
        if self.end < self.start:
            raise ValueError(f"word {self.content!r} ends ({self.end}) before it starts")
        return self

    @property
    def joins_previous(self) -> bool:
        """Whether this is a mark written against the word before it (``,`` ``.`` ``-``)."""
        return self.is_punctuation and self.attaches_to in ("previous", "both", None)

    @property
    def joins_next(self) -> bool:
        """Whether this is a mark written against the word after it (``(`` ``¿`` ``-``)."""
        return self.is_punctuation and self.attaches_to in ("next", "both")


class Segment(FrozenModel):
    """Consecutive words of one speaker on one channel: a turn in a conversation."""

    words: tuple[Word, ...] = Field(min_length=1, description="The words, in time order.")
    speaker: str | None = Field(description="The speaker of the words ('UU' for unknown).")
    channel: str | None = Field(description="The channel of the words, if any.")
    word_delimiter: str = Field(default=" ", description="What separates two words in text.")

    @property
    def start(self) -> float:
        """When the first word starts, in seconds."""
        return self.words[0].start

    @property
    def end(self) -> float:
        """When the last word ends, in seconds."""
        return self.words[-1].end

    @property
    def text(self) -> str:
        """The words as text, punctuation attached."""
        return _join(self.words, self.word_delimiter)

    @property
    def label(self) -> str:
        """``SPEAKER S1`` / ``CHANNEL left`` prefix for labelled text; empty when unknown."""
        parts = []
        if self.channel is not None:
            parts.append(f"CHANNEL {self.channel}")
        if _known(self.speaker):
            parts.append(f"SPEAKER {self.speaker}")
        return " ".join(parts)


class Transcript(FrozenModel):
    """A finished transcript: the same model whether it came from batch or real-time."""

    words: tuple[Word, ...] = Field(default=(), description="Every word and mark, in order.")
    mode: Literal[Mode.BATCH, Mode.REALTIME] = Field(
        description="Which API produced the transcript."
    )
    language: str | None = Field(default=None, description="The transcript's language code.")
    duration: float | None = Field(
        default=None,
        ge=0,
        description="Seconds of audio: the batch job's duration, or (real-time) the end of "
        "the last final.",
    )
    job_id: str | None = Field(default=None, description="The batch job's id.")
    session_ids: tuple[str, ...] = Field(
        default=(), description="The real-time session ids, one per connection, in order."
    )
    word_delimiter: str = Field(
        default=" ",
        description="What separates words in text: ' ' for most languages, '' for some "
        "(e.g. Japanese); from the service's language_pack_info.",
    )
    translations: dict[str, tuple[TranslatedSentence, ...]] = Field(
        default_factory=dict,
        description="Translated sentences by language code, with translation_config "
        "(batch), or the final translations of a real-time session.",
    )
    summary: str | None = Field(
        default=None, description="The summary, with summarization_config (batch)."
    )
    sentiment: Sentiment | None = Field(
        default=None, description="Sentiment per segment and counts, with sentiment_analysis."
    )
    topics: Topics | None = Field(
        default=None, description="Topics per segment and counts, with topic_detection_config."
    )
    chapters: tuple[Chapter, ...] = Field(
        default=(), description="Titled chapters, with auto_chapters (batch)."
    )
    audio_events: tuple[AudioEvent, ...] = Field(
        default=(),
        description="Music, laughter, applause...: from the batch job's audio_event_types, or "
        "each AudioEventStarted/Ended pair of a real-time session.",
    )
    speakers: tuple[IdentifiedSpeaker, ...] = Field(
        default=(),
        description="The speakers' identifiers, with speaker_diarization_config.get_speakers "
        "(or a real-time get_speakers()).",
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Everything else the service said, untouched: for batch the json-v2 "
        "document without the sections typed above; for real-time the RecognitionStarted "
        "messages.",
    )

    @classmethod
    def from_batch_json(
        cls, data: Mapping[str, Any], *, word_delimiter: str | None = None
    ) -> Transcript:
        """Build a transcript from a batch json-v2 document.

        Args:
            data: The parsed json-v2 transcript (``GET /jobs/{id}/transcript``).
            word_delimiter: Overrides the delimiter read from
                ``metadata.language_pack_info.word_delimiter`` (default ``" "``).

        Raises:
            ServerError: The document is not a json-v2 transcript.
        """
        try:
            words = tuple(_words_of_results(data["results"], channel=None))
            recognition = data.get("metadata") or {}
            job = data.get("job") or {}
            language = (recognition.get("transcription_config") or {}).get("language")
            return cls(
                words=words,
                mode=Mode.BATCH,
                language=language or _first_language(words),
                duration=job.get("duration"),
                job_id=job.get("id"),
                word_delimiter=_delimiter(word_delimiter, recognition),
                **_batch_sections(data),
                metadata={key: value for key, value in data.items() if key not in _TYPED_SECTIONS},
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise _malformed("batch json-v2 transcript", exc) from exc

    @classmethod
    def from_realtime_messages(
        cls,
        messages: Iterable[Mapping[str, Any]],
        *,
        language: str | None = None,
        word_delimiter: str | None = None,
        session_ids: Sequence[str] | None = None,
        duration: float | None = None,
    ) -> Transcript:
        """Build a transcript from the messages of a real-time session.

        Only ``AddTranscript`` (finals) contribute words: partials are provisional and are
        superseded by finals. In a multichannel session the finals of the channels are put in
        time order (by their start), so the turns of a conversation alternate as spoken.
        ``RecognitionStarted`` messages, when included, provide the session ids and word
        delimiter; ``AddTranslation`` the translations, each
        ``AudioEventStarted``/``Ended`` pair an audio event, the last ``SpeakersResult`` the
        speakers. Everything else is ignored, so the whole message log can be passed as is.
        Times are taken as given: a caller joining several sessions shifts them first.

        Args:
            messages: Server messages as parsed JSON, in the order received.
            language: The session's language; by default the first word's.
            word_delimiter: Overrides ``language_pack_info.word_delimiter`` (default ``" "``).
            session_ids: Overrides the ids read from ``RecognitionStarted``.
            duration: Seconds of audio sent; by default the end time of the last final.

        Raises:
            ServerError: A message is not shaped like the protocol says.
        """
        events: list[StreamEvent] = []
        started: list[dict[str, Any]] = []
        for message in messages:
            event = stream_event(message)
            if event is not None:
                events.append(event)
            if isinstance(event, SessionInfo):
                started.append(dict(message))
        return cls._from_realtime_events(
            events,
            recognition_started=started,
            language=language,
            word_delimiter=word_delimiter,
            session_ids=session_ids,
            duration=duration,
        )

    @classmethod
    def _from_realtime_events(
        cls,
        events: Iterable[StreamEvent],
        *,
        recognition_started: Sequence[dict[str, Any]] = (),
        language: str | None = None,
        word_delimiter: str | None = None,
        session_ids: Sequence[str] | None = None,
        duration: float | None = None,
    ) -> Transcript:
        """:meth:`from_realtime_messages` for messages already turned into events.

        A live session keeps the events it parsed for its caller, so that each final is
        validated once, not again when the transcript is built.
        """
        finals: list[Final] = []
        sessions: list[SessionInfo] = []
        started = list(recognition_started)
        extras = ExtrasCollector()
        for event in events:
            if isinstance(event, Final):
                finals.append(event)
            elif isinstance(event, SessionInfo):
                sessions.append(event)
            else:
                extras.add(event)
        if len({final.channel for final in finals}) > 1:  # channels arrive interleaved
            finals.sort(key=lambda final: final.start)
        words = [word for final in finals for word in final.words]
        final_ends = [final.end for final in finals]
        if word_delimiter is None:
            word_delimiter = sessions[-1].word_delimiter if sessions else " "
        if session_ids is None:
            session_ids = [s.session_id for s in sessions if s.session_id is not None]
        return cls(
            words=tuple(words),
            mode=Mode.REALTIME,
            language=language or _first_language(words),
            duration=max(final_ends, default=None) if duration is None else duration,
            session_ids=tuple(session_ids),
            word_delimiter=word_delimiter,
            **extras.fields(),
            metadata={"recognition_started": started} if started else {},
        )

    @property
    def text(self) -> str:
        """All words as one line of text, punctuation attached, no speaker labels."""
        return _join(self.words, self.word_delimiter)

    def segments(self) -> tuple[Segment, ...]:
        """Split the words into turns: a new segment at each change of speaker or channel.

        A punctuation mark stays with the word it attaches to, even when the service labelled
        it with another speaker.
        """
        return tuple(
            Segment(
                words=tuple(word for unit in units for word in unit),
                speaker=voice[0],
                channel=voice[1],
                word_delimiter=self.word_delimiter,
            )
            for voice, units in groupby(_units(self.words), key=_voice)
        )

    def to_text(self, speakers: bool = True) -> str:
        """Render as text, one line per turn, labelled like the batch SDK's ``transcript_text``.

        Lines read ``SPEAKER S1: Hello.``; turns of an unknown speaker (``UU``) are left
        unlabelled, and with channel diarization lines start ``CHANNEL left:``.

        Args:
            speakers: Label turns and put each on its own line; ``False`` gives :attr:`text`.
        """
        if not speakers:
            return self.text
        lines = (
            f"{segment.label}: {segment.text}" if segment.label else segment.text
            for segment in self.segments()
        )
        return "\n".join(lines)

    def to_srt(
        self,
        *,
        language: str | None = None,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
        max_lines: int = DEFAULT_MAX_LINES,
        max_duration: float = DEFAULT_MAX_DURATION,
        min_duration: float = DEFAULT_MIN_DURATION,
    ) -> str:
        """Render as SubRip subtitles; see :mod:`speechmatics_modes._subtitles` for the rules.

        Args:
            language: A translation to render (a key of :attr:`translations`) instead of the
                words. A translated sentence has one time span, so its words share it out in
                proportion to their length, and cues break between them as between words.
            max_line_length: Characters per line (a longer single word keeps its own line).
            max_lines: Lines per cue.
            max_duration: Seconds a cue may last.
            min_duration: Seconds a cue is held at least, when the next cue leaves room.

        Raises:
            ConfigurationError: The limits are impossible (zero lines, negative durations), or
                there is no translation into ``language``.
        """
        layout = CueLayout(max_line_length, max_lines, max_duration, min_duration)
        return render_srt(build_cues(self._subtitle_units(language), self.word_delimiter, layout))

    def to_vtt(
        self,
        *,
        language: str | None = None,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
        max_lines: int = DEFAULT_MAX_LINES,
        max_duration: float = DEFAULT_MAX_DURATION,
        min_duration: float = DEFAULT_MIN_DURATION,
    ) -> str:
        """Render as WebVTT, cues as in :meth:`to_srt`, known speakers as ``<v S1>`` voices.

        Raises:
            ConfigurationError: The limits are impossible (zero lines, negative durations), or
                there is no translation into ``language``.
        """
        layout = CueLayout(max_line_length, max_lines, max_duration, min_duration)
        return render_vtt(build_cues(self._subtitle_units(language), self.word_delimiter, layout))

    def to_json(self) -> str:
        """Serialise losslessly: ``Transcript.model_validate_json(t.to_json()) == t``."""
        return self.model_dump_json()

    def _subtitle_units(self, language: str | None) -> list[Unit]:
        if language is None:
            return [_subtitle_unit(unit) for unit in _units(self.words)]
        sentences = self.translations.get(language)
        if sentences is None:
            available = ", ".join(sorted(self.translations)) or "none"
            raise ConfigurationError(
                f"this transcript has no translation into {language!r} (translations: "
                f"{available}); ask for it with translation_config"
            )
        return [unit for sentence in sentences for unit in _translated_units(sentence)]


class _TranscriptEvent(FrozenModel):
    """What partials and finals share: the words of one ``Add(Partial)Transcript`` message."""

    words: tuple[Word, ...] = Field(description="The words of this message, in order.")
    text: str = Field(description="The service's own text for these words (metadata.transcript).")
    start: float = Field(description="Start of the audio this message covers, in seconds.")
    end: float = Field(description="End of the audio this message covers, in seconds.")
    channel: str | None = Field(default=None, description="The channel, in multichannel sessions.")


class Partial(_TranscriptEvent):
    """Provisional words that a later :class:`Final` will replace; for live display only."""

    kind: Literal["partial"] = "partial"


class Final(_TranscriptEvent):
    """Words the service will not change: these make up the transcript."""

    kind: Literal["final"] = "final"
    forced: bool = Field(
        default=False, description="True when produced by a ForceEndOfUtterance request."
    )


class EndOfUtterance(FrozenModel):
    """The speaker paused long enough to end a turn (``end_of_utterance_silence_trigger``)."""

    kind: Literal["end_of_utterance"] = "end_of_utterance"
    time: float = Field(description="Where in the audio the utterance ended, in seconds.")
    channel: str | None = Field(default=None, description="The channel, in multichannel sessions.")
    forced: bool = Field(
        default=False, description="True when produced by a ForceEndOfUtterance request."
    )


class ServerWarning(FrozenModel):
    """A ``Warning`` from the service; the session goes on (e.g. ``session_timeout`` ahead)."""

    kind: Literal["warning"] = "warning"
    type: str = Field(description="The service's warning type, e.g. 'idle_timeout'.")
    reason: str = Field(description="The service's human-readable explanation.")


class SessionInfo(FrozenModel):
    """A real-time session started (``RecognitionStarted``); one per connection."""

    kind: Literal["session"] = "session"
    session_id: str | None = Field(description="The service's id of the session, if it gave one.")
    word_delimiter: str = Field(default=" ", description="What separates words in text.")


StreamEvent = Annotated[
    Partial
    | Final
    | EndOfUtterance
    | ServerWarning
    | SessionInfo
    | PartialTranslation
    | FinalTranslation
    | AudioEventStarted
    | AudioEventEnded
    | SpeakersResult
    | SessionRollover
    | Reconnected
    | AudioGap,
    Field(discriminator="kind"),
]
"""Anything a real-time stream yields; switch on ``event.kind``."""


def stream_event(message: Mapping[str, Any]) -> StreamEvent | None:
    """Return the typed event for one real-time server message.

    Bookkeeping messages (``AudioAdded``, ``Info``, ``EndOfTranscript``, ...) and ``Error``
    give ``None``: acknowledgements and errors are the session's business, not the caller's.

    Raises:
        ServerError: The message is not shaped like the protocol says.
    """
    kind = message.get("message")
    build = _EVENT_BUILDERS.get(kind) if isinstance(kind, str) else None
    if build is None:
        return None
    try:
        return build(message)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise _malformed(f"{kind} message", exc) from exc


def _transcript_fields(message: Mapping[str, Any]) -> dict[str, Any]:
    channel = message.get("channel")
    metadata = message["metadata"]
    return {
        "words": tuple(_words_of_results(message["results"], channel)),
        "text": metadata["transcript"],
        "start": metadata["start_time"],
        "end": metadata["end_time"],
        "channel": channel,
    }


_EVENT_BUILDERS: dict[str, Callable[[Mapping[str, Any]], StreamEvent]] = {
    "AddPartialTranscript": lambda m: Partial(**_transcript_fields(m)),
    "AddTranscript": lambda m: Final(**_transcript_fields(m), forced=bool(m.get("forced"))),
    "EndOfUtterance": lambda m: EndOfUtterance(
        time=m["metadata"]["end_time"], channel=m.get("channel"), forced=bool(m.get("forced"))
    ),
    "Warning": lambda m: ServerWarning(type=m["type"], reason=m["reason"]),
    "RecognitionStarted": lambda m: SessionInfo(
        session_id=m.get("id"), word_delimiter=_delimiter(None, m)
    ),
    "AddTranslation": translation_event,
    "AddPartialTranslation": translation_event,
    "AudioEventStarted": audio_event_started,
    "AudioEventEnded": audio_event_ended,
    "SpeakersResult": speakers_of,
}
"""How each message the caller cares about becomes an event, by its ``message`` name."""


def _words_of_results(results: Iterable[Mapping[str, Any]], channel: str | None) -> Iterator[Word]:
    """Turn wire ``results[]`` into words; unknown result types are skipped (forward compatible).

    ``channel`` is the message-level channel of a real-time multichannel message; a result's
    own ``channel`` (batch channel diarization) takes precedence.
    """
    for result in results:
        kind = result["type"]
        if kind == "entity" and result.get("written_form"):
            entity_class = result.get("entity_class")
            inherited = _first_alternative(result)
            for part in result["written_form"]:
                yield _word(part, result.get("channel", channel), entity_class, inherited)
        elif kind in ("word", "punctuation", "entity") and result.get("alternatives"):
            yield _word(result, result.get("channel", channel), result.get("entity_class"), {})


def _word(
    result: Mapping[str, Any],
    channel: str | None,
    entity_class: str | None,
    inherited: Mapping[str, Any],
) -> Word:
    """One word from one result; ``inherited`` fills speaker/language an entity part lacks."""
    alternative = _first_alternative(result)
    is_punctuation = result["type"] == "punctuation"
    return Word(
        content=alternative["content"],
        start=result["start_time"],
        end=result["end_time"],
        confidence=alternative.get("confidence", inherited.get("confidence", 1.0)),
        speaker=alternative.get("speaker", inherited.get("speaker")),
        channel=channel,
        language=alternative.get("language", inherited.get("language")),
        is_punctuation=is_punctuation,
        attaches_to=result.get("attaches_to") if is_punctuation else None,
        is_eos=bool(result.get("is_eos", False)),
        tags=tuple(alternative.get("tags") or ()),
        entity_class=entity_class,
    )


def _first_alternative(result: Mapping[str, Any]) -> Mapping[str, Any]:
    alternatives = result.get("alternatives") or [{}]
    first: Mapping[str, Any] = alternatives[0]
    return first


def _units(words: Iterable[Word]) -> list[tuple[Word, ...]]:
    """Group words with the punctuation attached to them; a unit is never split apart."""
    units: list[list[Word]] = []
    for word in words:
        if not word.content:
            continue
        if units and (units[-1][-1].joins_next or word.joins_previous):
            units[-1].append(word)
        else:
            units.append([word])
    return [tuple(unit) for unit in units]


def _voice(unit: Sequence[Word]) -> tuple[str | None, str | None]:
    """(speaker, channel) of a unit: its first real word's, not its punctuation's."""
    speaking = next((word for word in unit if not word.is_punctuation), unit[0])
    return speaking.speaker, speaking.channel


def _subtitle_unit(unit: Sequence[Word]) -> Unit:
    voice = _voice(unit)
    return Unit(
        text="".join(word.content for word in unit),
        start=unit[0].start,
        end=unit[-1].end,
        voice=voice,
        label=voice[0] if _known(voice[0]) else None,
        ends_sentence=any(word.is_eos for word in unit),
    )


def _join(words: Iterable[Word], word_delimiter: str) -> str:
    return word_delimiter.join("".join(word.content for word in unit) for unit in _units(words))


def _known(speaker: str | None) -> bool:
    return speaker is not None and speaker != UNKNOWN_SPEAKER


def _first_language(words: Iterable[Word]) -> str | None:
    return next((word.language for word in words if word.language), None)


def _delimiter(override: str | None, recognition: Mapping[str, Any]) -> str:
    if override is not None:
        return override
    pack = recognition.get("language_pack_info") or {}
    delimiter: str = pack.get("word_delimiter", " ")
    return delimiter


def _malformed(what: str, exc: BaseException) -> ServerError:
    return ServerError(f"not a valid {what}: {exc!r}", error_type="malformed_transcript")


_TYPED_SECTIONS = frozenset(
    (
        "results",
        "translations",
        "summary",
        "sentiment_analysis",
        "topics",
        "chapters",
        "audio_events",
        "speakers",
    )
)
"""The json-v2 sections :class:`Transcript` types; the rest stays in ``metadata``."""


def _batch_sections(data: Mapping[str, Any]) -> dict[str, Any]:
    """The typed fields of :class:`Transcript` read from a json-v2 document's sections."""
    sentiment = data.get("sentiment_analysis")
    topics = data.get("topics")
    summary = data.get("summary")
    return {
        "translations": translations_of(data.get("translations") or {}),
        "summary": None if summary is None else summary.get("content"),
        "sentiment": None if sentiment is None else sentiment_of(sentiment),
        "topics": None if topics is None else topics_of(topics),
        "chapters": chapters_of(data.get("chapters") or ()),
        "audio_events": audio_events_of(data.get("audio_events") or ()),
        "speakers": speakers_of({"speakers": data.get("speakers") or ()}).speakers,
    }


class ExtrasCollector:
    """Gathers what a real-time session said besides words into :class:`Transcript` fields.

    Final translations accumulate per language; an ``AudioEventEnded`` closes the earliest open
    event of its type and channel; the last ``SpeakersResult`` wins.
    """

    def __init__(self) -> None:
        self._translations: dict[str, list[TranslatedSentence]] = {}
        self._open: list[AudioEventStarted] = []
        self._events: list[AudioEvent] = []
        self._speakers: tuple[IdentifiedSpeaker, ...] = ()

    def add(self, event: StreamEvent) -> None:
        """Take note of one (already rebased) event; words and bookkeeping are ignored."""
        if isinstance(event, FinalTranslation):
            self._translations.setdefault(event.language, []).extend(event.sentences)
        elif isinstance(event, AudioEventStarted):
            self._open.append(event)
        elif isinstance(event, AudioEventEnded):
            self._close(event)
        elif isinstance(event, SpeakersResult):
            self._speakers = event.speakers

    def _close(self, ended: AudioEventEnded) -> None:
        for started in self._open:
            if (started.type, started.channel) == (ended.type, ended.channel):
                self._open.remove(started)
                self._events.append(
                    AudioEvent(
                        type=started.type,
                        start=started.start,
                        end=max(ended.end, started.start),
                        confidence=started.confidence,
                        channel=started.channel,
                    )
                )
                return

    def fields(self) -> dict[str, Any]:
        """``translations``, ``audio_events`` and ``speakers`` for a :class:`Transcript`."""
        return {
            "translations": {
                language: tuple(sentences) for language, sentences in self._translations.items()
            },
            "audio_events": tuple(sorted(self._events, key=lambda event: event.start)),
            "speakers": self._speakers,
        }


def _translated_units(sentence: TranslatedSentence) -> list[Unit]:
    """Subtitle units for a translated sentence: its span shared out by word length."""
    tokens = sentence.content.split()
    total = sum(len(token) for token in tokens) or 1
    span = sentence.end - sentence.start
    voice = (sentence.speaker, sentence.channel)
    label = sentence.speaker if _known(sentence.speaker) else None
    units: list[Unit] = []
    clock = sentence.start
    for index, token in enumerate(tokens):
        end = clock + span * len(token) / total
        last = index == len(tokens) - 1
        units.append(Unit(token, clock, sentence.end if last else end, voice, label, last))
        clock = end
    return units
