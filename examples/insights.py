"""More than words: translation, summary, sentiment, topics, chapters and audio events.

    python examples/insights.py

Batch gives each as a typed field of the transcript (and German subtitles from the
translation); real time gives translations and audio events as stream events.

With SPEECHMATICS_API_KEY set this asks Speechmatics. Without it, no offline engine can
translate or summarise, so the embedded server runs a scripted engine that reports made-up
results over the real protocols: the code path is the one you would run against the service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from speechmatics_modes import (
    AudioEvent,
    AudioEventStarted,
    Chapter,
    FinalTranslation,
    Settings,
    TranslatedSentence,
    stream,
    transcribe,
)
from speechmatics_modes.local import EngineInsights, LocalServer, ScriptedEngine

SAMPLE = Path(__file__).parent / "sample.wav"

SCRIPTED = EngineInsights(
    translations={
        "de": (
            TranslatedSentence(
                content="Die zwei streunenden Kätzchen leben sich allmählich ein.",
                start=0.3,
                end=3.2,
            ),
            TranslatedSentence(content="Wann wirst du diese Katzen los?", start=3.9, end=5.6),
        )
    },
    summary="Two stray kittens settle in, and someone wants them gone.",
    chapters=(Chapter(title="The kittens", summary="Stray kittens at home.", start=0.0, end=8.9),),
    audio_events=(AudioEvent(type="music", start=0.0, end=0.4, confidence=0.9),),
)


@asynccontextmanager
async def service() -> AsyncIterator[Settings]:
    settings = Settings()
    if settings.api_key is not None:
        yield settings
        return
    print("No SPEECHMATICS_API_KEY: a scripted engine on the embedded server.\n")
    engine = ScriptedEngine.from_text(
        "the two stray kittens gradually make themselves at home.", insights=SCRIPTED
    )
    async with LocalServer(engine=engine) as server:
        yield server.settings()


async def main() -> None:
    async with service() as settings:
        transcript = await transcribe(
            SAMPLE,
            settings=settings,
            batch_options={
                "translation_config": {"target_languages": ["de"]},
                "summarization_config": {},
                "auto_chapters": True,
                "audio_event_types": ["music"],
            },
        )
        print(f"Summary: {transcript.summary}")
        for chapter in transcript.chapters:
            print(f"Chapter at {chapter.start:.1f} s: {chapter.title}")
        for event in transcript.audio_events:
            print(f"Heard {event.type} from {event.start:.1f} to {event.end:.1f} s")
        print("\nGerman subtitles:\n" + transcript.to_srt(language="de"))

        features = {
            "translation_config": {"target_languages": ["de"]},
            "audio_event_types": ["music"],
        }
        async with stream(SAMPLE, settings=settings, realtime_options=features) as events:
            async for event in events:
                if isinstance(event, FinalTranslation):
                    print(f"[{event.language}] " + " ".join(s.content for s in event.sentences))
                elif isinstance(event, AudioEventStarted):
                    print(f"[{event.type} started at {event.start:.1f} s]")


if __name__ == "__main__":
    anyio.run(main)
