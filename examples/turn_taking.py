"""Take turns with a speaker, as a voice agent does: act as soon as they stop talking.

    python examples/turn_taking.py

The sample is fed at real time as a live feed, then silence. The session asks for an
EndOfUtterance 0.25 s after speech stops (``end_of_utterance_silence_trigger``). At each one
the example prints the turn's words and how long after its last word the turn ended, counted
in audio sent, so decoding time is included: that is how long an agent would wait to reply.

A short trigger costs some accuracy on the embedded engine, which then closes utterances at
pauses that short (docs/engines.md).

With SPEECHMATICS_API_KEY set this uses Speechmatics; without it, the embedded offline server.
"""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from speechmatics_modes import (
    Conversation,
    EndOfUtterance,
    Final,
    Settings,
    TranscriptionOptions,
    stream,
)

SAMPLE = Path(__file__).parent / "sample.wav"
CHUNK_SECONDS = 0.1
TRIGGER_SECONDS = 0.25
TRAILING_SILENCE_SECONDS = 2.0


class LiveFeed:
    """The sample at real time, then a little silence; counts the audio sent so far."""

    def __init__(self) -> None:
        self.sent = 0.0

    async def chunks(self) -> AsyncIterator[bytes]:
        with wave.open(str(SAMPLE), "rb") as sample:  # 16 kHz mono 16-bit
            frames = int(sample.getframerate() * CHUNK_SECONDS)
            chunks = iter(lambda: sample.readframes(frames), b"")
            silence = [b"\x00\x00" * frames] * round(TRAILING_SILENCE_SECONDS / CHUNK_SECONDS)
            for chunk in [*chunks, *silence]:
                yield chunk
                self.sent += len(chunk) / (2 * sample.getframerate())
                await anyio.sleep(CHUNK_SECONDS)


async def main() -> None:
    options = TranscriptionOptions(
        conversation_config=Conversation(end_of_utterance_silence_trigger=TRIGGER_SECONDS)
    )
    settings = Settings()
    if settings.api_key is None:
        print("No SPEECHMATICS_API_KEY: using the embedded offline server.\n")
        settings = Settings(backend="local")
    feed = LiveFeed()
    turn: list[Final] = []
    async with stream(feed.chunks(), options=options, settings=settings) as events:
        async for event in events:
            if isinstance(event, Final) and event.words:
                turn.append(event)
            elif isinstance(event, EndOfUtterance) and turn:
                said = " ".join(final.text for final in turn)
                waited = feed.sent - turn[-1].words[-1].end
                print(f"[turn ended {waited:.2f} s after its last word] {said}")
                turn.clear()
    if turn:
        print(f"[no EndOfUtterance before the end] {' '.join(final.text for final in turn)}")


if __name__ == "__main__":
    anyio.run(main)
