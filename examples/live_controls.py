"""Steer a live stream: ask who is speaking, change settings, force the end of an utterance.

    python examples/live_controls.py

A live feed (the sample at real time, then silence, as a microphone would go on) is
transcribed. At the first partial the example asks for the speakers heard so far, changes
max_delay mid-stream and forces the end of the utterance, as a push-to-talk button would; it
prints how long the forced final took, then ends the feed.

With SPEECHMATICS_API_KEY set this uses Speechmatics; without it, the embedded offline server.
"""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from speechmatics_modes import Final, Partial, Settings, TranscriptionOptions, stream

SAMPLE = Path(__file__).parent / "sample.wav"
CHUNK_SECONDS = 0.1


async def live_feed(stop: anyio.Event, limit: float = 120.0) -> AsyncIterator[bytes]:
    """The sample at real time, then silence until ``stop`` (or ``limit`` seconds)."""
    with wave.open(str(SAMPLE), "rb") as sample:  # 16 kHz mono 16-bit
        frames = int(sample.getframerate() * CHUNK_SECONDS)
        chunks = iter(lambda: sample.readframes(frames), b"")
        with anyio.move_on_after(limit):
            for chunk in chunks:
                yield chunk
                await anyio.sleep(CHUNK_SECONDS)
            while not stop.is_set():
                yield b"\x00\x00" * frames
                await anyio.sleep(CHUNK_SECONDS)


async def main() -> None:
    settings = Settings()
    if settings.api_key is None:
        print("No SPEECHMATICS_API_KEY: using the embedded offline server.\n")
        settings = Settings(backend="local")
    options = TranscriptionOptions(enable_partials=True, max_delay=4.0, diarization="speaker")
    stop = anyio.Event()
    forced_at: float | None = None
    async with stream(live_feed(stop), options=options, settings=settings) as events:
        async for event in events:
            if isinstance(event, Partial) and event.words and forced_at is None:
                print(f"[partial] {event.text}")
                speakers = await events.get_speakers(timeout=60.0)
                print(f"  speakers so far: {[s.label for s in speakers.speakers]}")
                await events.update({"max_delay": 2.0})
                print("  max_delay is now 2 s; force_end_of_utterance()")
                forced_at = anyio.current_time()
                await events.force_end_of_utterance()
            elif isinstance(event, Final) and event.text:
                print(f"[final{', forced' if event.forced else ''}] {event.text}")
                if event.forced and forced_at is not None:
                    print(f"  (forced final after {anyio.current_time() - forced_at:.2f} s)")
                    stop.set()
    print(f"\nFull transcript: {events.transcript.text}")


if __name__ == "__main__":
    anyio.run(main)
