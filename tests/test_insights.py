"""Translations, summaries, sentiment, topics, chapters, audio events and speakers, typed.

Payloads are shaped as the protocol documents them (the json-v2 sections of a batch transcript,
and the real-time ``AddTranslation``/``AudioEvent*``/``SpeakersResult`` messages).
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from speechmatics_modes import (
    AudioEvent,
    AudioEventEnded,
    AudioEventStarted,
    Chapter,
    ConfigurationError,
    FinalTranslation,
    IdentifiedSpeaker,
    PartialTranslation,
    SentimentCounts,
    ServerError,
    SpeakersResult,
    StreamEvent,
    Transcript,
    TranslatedSentence,
)
from speechmatics_modes._models import stream_event
from speechmatics_modes._stream._ledger import Leg, WordLedger

JSON_V2: dict[str, Any] = {
    "format": "2.9",
    "job": {"id": "650krlru2e", "created_at": "2025-06-30T11:43:54.135Z", "data_name": "a.wav"},
    "metadata": {
        "created_at": "2025-06-30T11:44:08.133526Z",
        "type": "transcription",
        "transcription_config": {"language": "en"},
        "translation_errors": [{"type": "unsupported_translation_pair", "message": "en>xx"}],
    },
    "results": [
        {
            "type": "word",
            "start_time": 0.5,
            "end_time": 0.9,
            "alternatives": [{"content": "Hello", "confidence": 1.0, "language": "en"}],
        }
    ],
    "speakers": [{"label": "S1", "speaker_identifiers": ["opaque-1"]}],
    "translations": {
        "de": [
            {"start_time": 0.5, "end_time": 1.3, "content": "Hallo Welt.", "speaker": "S1"},
            {
                "start_time": 2.0,
                "end_time": 4.0,
                "content": "Wie geht es dir heute?",
                "speaker": "S2",
                "channel": "left",
            },
        ]
    },
    "summary": {"content": "A greeting."},
    "sentiment_analysis": {
        "sentiment_analysis": {
            "segments": [
                {
                    "text": "Hello world.",
                    "start_time": 0.5,
                    "end_time": 1.3,
                    "sentiment": "positive",
                    "speaker": "S1",
                    "confidence": 0.8,
                }
            ],
            "summary": {
                "overall": {"positive_count": 1, "negative_count": 0, "neutral_count": 2},
                "speakers": [
                    {"speaker": "S1", "positive_count": 1, "negative_count": 0, "neutral_count": 0}
                ],
                "channels": [],
            },
        }
    },
    "topics": {
        "segments": [
            {
                "text": "Hello world.",
                "start_time": 0.5,
                "end_time": 1.3,
                "topics": [{"topic": "Greetings"}, {"topic": "Travel"}],
            }
        ],
        "summary": {"overall": {"Greetings": 1, "Travel": 1}},
    },
    "chapters": [{"title": "Hello", "summary": "…", "start_time": 0.0, "end_time": 5.0}],
    "audio_events": [
        {"type": "music", "start_time": 0, "end_time": 3, "confidence": 0.9, "channel": "left"}
    ],
    "audio_event_summary": {"overall": {"music": {"total_duration": 3, "count": 1}}},
}


def test_batch_sections_become_typed_fields() -> None:
    transcript = Transcript.from_batch_json(JSON_V2)
    assert transcript.translations["de"][0] == TranslatedSentence(
        content="Hallo Welt.", start=0.5, end=1.3, speaker="S1"
    )
    assert transcript.translations["de"][1].channel == "left"
    assert transcript.summary == "A greeting."
    assert transcript.sentiment is not None
    assert transcript.sentiment.segments[0].sentiment == "positive"
    assert transcript.sentiment.segments[0].confidence == 0.8
    assert transcript.sentiment.overall == SentimentCounts(positive=1, neutral=2)
    assert transcript.sentiment.speakers == {"S1": SentimentCounts(positive=1)}
    assert transcript.topics is not None
    assert transcript.topics.segments[0].topics == ("Greetings", "Travel")
    assert transcript.topics.overall == {"Greetings": 1, "Travel": 1}
    assert transcript.chapters == (Chapter(title="Hello", summary="…", start=0.0, end=5.0),)
    assert transcript.audio_events == (
        AudioEvent(type="music", start=0, end=3, confidence=0.9, channel="left"),
    )
    assert transcript.speakers == (
        IdentifiedSpeaker(label="S1", speaker_identifiers=("opaque-1",)),
    )


def test_typed_sections_leave_metadata_and_the_rest_stays() -> None:
    metadata = Transcript.from_batch_json(JSON_V2).metadata
    for typed in ("translations", "summary", "sentiment_analysis", "topics", "chapters"):
        assert typed not in metadata
    assert metadata["audio_event_summary"]["overall"]["music"]["count"] == 1
    assert metadata["metadata"]["translation_errors"][0]["type"] == "unsupported_translation_pair"


def test_a_plain_transcript_has_empty_extras() -> None:
    plain = {key: value for key, value in JSON_V2.items() if key in ("format", "job", "results")}
    transcript = Transcript.from_batch_json(plain)
    assert transcript.translations == {}
    assert transcript.summary is None
    assert transcript.sentiment is None
    assert transcript.topics is None
    assert transcript.chapters == ()
    assert transcript.audio_events == ()


def test_extras_survive_the_json_round_trip() -> None:
    transcript = Transcript.from_batch_json(JSON_V2)
    assert Transcript.model_validate_json(transcript.to_json()) == transcript


def test_speakers_of_a_rolling_stream_keep_their_sessions_through_json() -> None:
    speakers = (
        IdentifiedSpeaker(label="S1", speaker_identifiers=("a",), session_id="first"),
        IdentifiedSpeaker(label="S1", speaker_identifiers=("b",), session_id="second"),
    )
    result = SpeakersResult(speakers=speakers)
    adapter: TypeAdapter[StreamEvent] = TypeAdapter(StreamEvent)
    assert adapter.validate_json(adapter.dump_json(result)) == result
    transcript = Transcript.from_realtime_messages([]).model_copy(update={"speakers": speakers})
    assert Transcript.model_validate_json(transcript.to_json()).speakers == speakers


def test_malformed_section_is_a_server_error() -> None:
    broken = {**JSON_V2, "chapters": [{"title": "no times"}]}
    with pytest.raises(ServerError):
        Transcript.from_batch_json(broken)


def test_translation_track_as_subtitles() -> None:
    srt = Transcript.from_batch_json(JSON_V2).to_srt(language="de")
    cues = srt.strip().split("\n\n")
    assert cues[0].splitlines() == ["1", "00:00:00,500 --> 00:00:01,300", "Hallo Welt."]
    assert " ".join(cues[1].splitlines()[2:]) == "Wie geht es dir heute?"
    assert "<v S2>" in Transcript.from_batch_json(JSON_V2).to_vtt(language="de")


def test_translated_subtitles_break_long_sentences_between_words() -> None:
    sentence = {"start_time": 0.0, "end_time": 8.0, "content": " ".join(["Wort"] * 30)}
    transcript = Transcript.from_batch_json({**JSON_V2, "translations": {"de": [sentence]}})
    cues = transcript.to_srt(language="de", max_line_length=20).strip().split("\n\n")
    assert len(cues) > 1
    assert all(len(line) <= 20 for cue in cues for line in cue.splitlines()[2:])


def test_subtitles_in_a_missing_language_name_the_ones_there_are() -> None:
    with pytest.raises(ConfigurationError, match=r"'fr'.*de"):
        Transcript.from_batch_json(JSON_V2).to_srt(language="fr")


# --- real-time messages ------------------------------------------------------------------------

ADD_TRANSLATION = {
    "message": "AddTranslation",
    "format": "2.9",
    "language": "fr",
    "results": [
        {"content": "Bonjour.", "start_time": 0.5, "end_time": 0.9, "speaker": "S1"},
    ],
}
ADD_PARTIAL_TRANSLATION = {**ADD_TRANSLATION, "message": "AddPartialTranslation"}
STARTED = {
    "message": "AudioEventStarted",
    "event": {"type": "applause", "start_time": 1.0, "confidence": 0.7},
}
ENDED = {"message": "AudioEventEnded", "event": {"type": "applause", "end_time": 2.5}}
SPEAKERS = {
    "message": "SpeakersResult",
    "speakers": [{"label": "S1", "speaker_identifiers": ["a", "b"]}],
}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            ADD_TRANSLATION,
            FinalTranslation(
                language="fr",
                sentences=(
                    TranslatedSentence(content="Bonjour.", start=0.5, end=0.9, speaker="S1"),
                ),
            ),
        ),
        (
            ADD_PARTIAL_TRANSLATION,
            PartialTranslation(
                language="fr",
                sentences=(
                    TranslatedSentence(content="Bonjour.", start=0.5, end=0.9, speaker="S1"),
                ),
            ),
        ),
        (STARTED, AudioEventStarted(type="applause", start=1.0, confidence=0.7)),
        ({**ENDED, "channel": "right"}, AudioEventEnded(type="applause", end=2.5, channel="right")),
        (
            SPEAKERS,
            SpeakersResult(
                speakers=(IdentifiedSpeaker(label="S1", speaker_identifiers=("a", "b")),)
            ),
        ),
    ],
)
def test_realtime_messages_become_typed_events(message: dict[str, Any], expected: Any) -> None:
    event = stream_event(message)
    assert event == expected
    adapter: TypeAdapter[StreamEvent] = TypeAdapter(StreamEvent)
    assert adapter.validate_json(adapter.dump_json(event)) == event


@pytest.mark.parametrize(
    "message",
    [
        {"message": "AddTranslation", "language": "fr"},
        {"message": "AudioEventStarted", "event": {"type": "music"}},
        {"message": "SpeakersResult", "speakers": [{"label": "S1"}]},
    ],
)
def test_malformed_realtime_extras_are_server_errors(message: dict[str, Any]) -> None:
    with pytest.raises(ServerError):
        stream_event(message)


def test_realtime_transcript_collects_translations_events_and_speakers() -> None:
    later = {**ADD_TRANSLATION, "results": [{"content": "Ça va?", "start_time": 3, "end_time": 4}]}
    transcript = Transcript.from_realtime_messages(
        [ADD_PARTIAL_TRANSLATION, ADD_TRANSLATION, STARTED, later, ENDED, SPEAKERS]
    )
    assert [s.content for s in transcript.translations["fr"]] == ["Bonjour.", "Ça va?"]
    assert transcript.audio_events == (
        AudioEvent(type="applause", start=1.0, end=2.5, confidence=0.7),
    )
    assert transcript.speakers[0].speaker_identifiers == ("a", "b")


def test_an_audio_event_that_never_ended_is_not_in_the_transcript() -> None:
    assert Transcript.from_realtime_messages([STARTED]).audio_events == ()


def test_rolling_streams_shift_extras_onto_the_stream_clock() -> None:
    ledger = WordLedger()
    leg = Leg(bytes_per_second=32000, sample_width=2)
    leg.commit(32000 * 10)
    translation = ledger.rebase(stream_event(ADD_TRANSLATION), leg)  # type: ignore[arg-type]
    assert isinstance(translation, FinalTranslation)
    assert (translation.sentences[0].start, translation.sentences[0].end) == (10.5, 10.9)
    started = ledger.rebase(stream_event(STARTED), leg)  # type: ignore[arg-type]
    assert isinstance(started, AudioEventStarted)
    assert started.start == 11.0
    ended = ledger.rebase(stream_event(ENDED), leg)  # type: ignore[arg-type]
    assert isinstance(ended, AudioEventEnded)
    assert ended.end == 12.5
