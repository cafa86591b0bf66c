"""The extras end to end: the scripted engine reports them, the local server sends them over
the real protocols, and the façade gives them back typed (or the server refuses them)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from speechmatics_modes import (
    AudioEvent,
    AudioEventEnded,
    AudioEventStarted,
    Chapter,
    FinalTranslation,
    PartialTranslation,
    RolloverPolicy,
    Sentiment,
    SentimentCounts,
    SentimentSegment,
    ServerError,
    SessionRollover,
    Topics,
    TopicSegment,
    TranslatedSentence,
    stream,
    transcribe,
)
from speechmatics_modes.local import EngineInsights, LocalServer, ScriptedEngine
from tests.local.conftest import pcm_bytes, wav_bytes

pytestmark = pytest.mark.anyio

SCRIPT = "hello world. how are you"
"""Words at 0.5-0.9, 1.0-1.4, then (after a pause) 2.4-2.8, 2.9-3.3, 3.4-3.8 s."""

INSIGHTS = EngineInsights(
    translations={
        "de": (
            TranslatedSentence(content="Hallo Welt.", start=0.5, end=1.4),
            TranslatedSentence(content="Wie geht es dir?", start=2.4, end=3.8),
        )
    },
    summary="Someone says hello.",
    sentiment=Sentiment(
        segments=(SentimentSegment(text="Hello world.", start=0.5, end=1.4, sentiment="positive"),),
        overall=SentimentCounts(positive=1),
    ),
    topics=Topics(
        segments=(TopicSegment(text="Hello world.", start=0.5, end=1.4, topics=("Greetings",)),),
        overall={"Greetings": 1},
    ),
    chapters=(Chapter(title="Greeting", summary="Hello.", start=0.0, end=3.8),),
    audio_events=(
        AudioEvent(type="music", start=0.2, end=1.2, confidence=0.8),
        AudioEvent(type="laughter", start=1.5, end=2.0, confidence=0.6),
        AudioEvent(type="music", start=3.0, end=60.0, confidence=0.7),
    ),
)


def chunks(seconds: float) -> list[bytes]:
    """Silent PCM as a list of 0.1 s chunks: a chunked source goes through real time."""
    return [pcm_bytes(0.1)] * round(seconds * 10)


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer(engine=ScriptedEngine.from_text(SCRIPT, insights=INSIGHTS)) as running:
        yield running


@pytest.fixture
async def plain_server() -> AsyncIterator[LocalServer]:
    async with LocalServer(engine=ScriptedEngine.from_text(SCRIPT)) as running:
        yield running


async def test_batch_returns_every_scripted_extra_typed(server: LocalServer) -> None:
    transcript = await transcribe(
        wav_bytes(5.0),
        settings=server.settings(),
        batch_options={
            "translation_config": {"target_languages": ["de"]},
            "summarization_config": {},
            "sentiment_analysis": True,
            "topic_detection_config": {},
            "auto_chapters": True,
            "audio_event_types": ["music"],
        },
    )
    assert transcript.translations == {"de": tuple(INSIGHTS.translations["de"])}  # type: ignore[index]
    assert transcript.summary == INSIGHTS.summary
    assert transcript.sentiment == INSIGHTS.sentiment
    assert transcript.topics == INSIGHTS.topics
    assert transcript.chapters == INSIGHTS.chapters
    assert transcript.audio_events == (INSIGHTS.audio_events[0],)  # type: ignore[index]
    assert "Wie geht es dir?" in transcript.to_srt(language="de")


async def test_batch_gives_only_what_was_asked(server: LocalServer) -> None:
    transcript = await transcribe(wav_bytes(5.0), settings=server.settings())
    assert (transcript.translations, transcript.summary, transcript.audio_events) == ({}, None, ())


@pytest.mark.parametrize(
    ("batch_options", "feature"),
    [
        ({"translation_config": {"target_languages": ["fr"]}}, "translation into fr"),
        ({"summarization_config": {}}, "summarization"),
        ({"sentiment_analysis": True}, "sentiment analysis"),
        ({"topic_detection_config": {}}, "topic detection"),
        ({"auto_chapters": True}, "chapters"),
        ({"audio_event_types": []}, "audio event detection"),
    ],
)
async def test_batch_refuses_what_no_offline_engine_computes(
    plain_server: LocalServer, batch_options: dict[str, object], feature: str
) -> None:
    with pytest.raises(ServerError, match=f"{feature} needs the Speechmatics service"):
        await transcribe(
            wav_bytes(2.0), settings=plain_server.settings(), batch_options=batch_options
        )
    assert plain_server.stats.jobs_submitted == 0


async def test_realtime_translations_and_audio_events_are_typed_events(
    server: LocalServer,
) -> None:
    features = {
        "translation_config": {"target_languages": ["de"], "enable_partials": True},
        "audio_event_types": ["music", "laughter"],
    }
    async with stream(chunks(5.0), settings=server.settings(), realtime_options=features) as events:
        received = [event async for event in events]
    finals = [e for e in received if isinstance(e, FinalTranslation)]
    assert [s.content for e in finals for s in e.sentences] == ["Hallo Welt.", "Wie geht es dir?"]
    assert all(e.language == "de" for e in finals)
    assert any(isinstance(e, PartialTranslation) for e in received)
    started = [e for e in received if isinstance(e, AudioEventStarted)]
    ended = [e for e in received if isinstance(e, AudioEventEnded)]
    assert [(e.type, e.start) for e in started] == [
        ("music", 0.2),
        ("laughter", 1.5),
        ("music", 3.0),
    ]
    assert [(e.type, e.end) for e in ended] == [("music", 1.2), ("laughter", 2.0), ("music", 5.0)]
    transcript = events.transcript
    assert transcript.translations["de"] == INSIGHTS.translations["de"]  # type: ignore[index]
    assert [(a.type, a.start, a.end) for a in transcript.audio_events] == [
        ("music", 0.2, 1.2),
        ("laughter", 1.5, 2.0),
        ("music", 3.0, 5.0),
    ]


async def test_realtime_extras_carry_over_rollovers_on_the_stream_clock(
    server: LocalServer,
) -> None:
    # lead_in 0: the scripted engine translates 0.5 s into every session, its own audio or not
    policy = RolloverPolicy(max_session=2.0, min_pause=0.1, pause_wait=0.5, lead_in=0.0)
    features = {"translation_config": {"target_languages": ["de"]}}

    async def paced() -> AsyncIterator[bytes]:
        for _ in range(60):
            yield pcm_bytes(0.1)
            await anyio.sleep(0.05)

    async with stream(
        paced(), settings=server.settings(), realtime_options=features, rollover=policy
    ) as events:
        received = [event async for event in events]
    rollovers = [e for e in received if isinstance(e, SessionRollover)]
    assert rollovers
    translations = [e for e in received if isinstance(e, FinalTranslation)]
    second = [e for e in translations if e.sentences[0].start >= rollovers[0].offset]
    assert second, "the session after the rollover translated too"
    assert second[0].sentences[0].start == pytest.approx(rollovers[0].offset + 0.5, abs=0.01)


@pytest.mark.parametrize(
    ("features", "feature"),
    [
        ({"translation_config": {"target_languages": ["de"]}}, "translation into de"),
        ({"audio_event_types": []}, "audio event detection"),
    ],
)
async def test_realtime_refuses_what_no_offline_engine_computes(
    plain_server: LocalServer, features: dict[str, object], feature: str
) -> None:
    with pytest.raises(ServerError, match=f"{feature} needs the Speechmatics service") as caught:
        await transcribe(chunks(2.0), settings=plain_server.settings(), realtime_options=features)
    assert caught.value.error_type == "invalid_config"
    assert not caught.value.retryable
    assert plain_server.stats.sessions_started == 0
