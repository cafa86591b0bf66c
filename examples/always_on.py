"""A 24/7 feed: one stream that survives session limits, silences and dropped connections.

    python examples/always_on.py          # the sample, looped a few times as a live feed
    python examples/always_on.py --mic    # your microphone, until Ctrl+C

Sessions are handed over before the service's 48-hour limit, closed while the room is quiet,
and reopened or reconnected as needed; times stay on one clock and no word is duplicated.
With SPEECHMATICS_API_KEY set this uses Speechmatics; without it, the embedded offline server.
"""

from __future__ import annotations

import contextlib
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import anyio

from speechmatics_modes import (
    AudioGap,
    Final,
    Microphone,
    Reconnected,
    RolloverPolicy,
    SessionRollover,
    Settings,
    stream,
)

SAMPLE = Path(__file__).parent / "sample.wav"
POLICY = RolloverPolicy(
    max_attempts=None,  # a feed that must never give up
    keep_transcript=False,  # memory stays flat however long it runs
    idle_after=20 * 60,  # close after 20 quiet minutes; reopen when speech returns
)


def looped_sample(times: int) -> Iterator[bytes]:
    """The sample's PCM, several times over: a stand-in for a feed that never ends."""
    with wave.open(str(SAMPLE)) as audio:
        pcm = audio.readframes(audio.getnframes())
    for _ in range(times):
        yield from (pcm[i : i + 3200] for i in range(0, len(pcm), 3200))


async def main(use_microphone: bool) -> None:
    settings = Settings()
    if settings.api_key is None:
        settings = Settings(backend="local")
    source = Microphone(sample_rate=16_000) if use_microphone else looped_sample(3)
    async with stream(source, settings=settings, rollover=POLICY) as events:
        async for event in events:
            if isinstance(event, Final):
                print(f"[{event.start:8.2f}] {event.text}")
            elif isinstance(event, SessionRollover | Reconnected | AudioGap):
                print(f"           -- {event.kind}: {event.model_dump(exclude={'kind'})}")
        print(f"\n{events.metrics}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(main, "--mic" in sys.argv)
