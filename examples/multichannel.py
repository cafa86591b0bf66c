"""A call with one channel per speaker: both sources in one session, every word tagged.

    python examples/multichannel.py

The agent's audio and the caller's are separate sources (as a phone system records them);
``stream({"agent": ..., "caller": ...})`` sends them as two channels of one real-time session
and gives one transcript whose words say which channel they came from. Here both read the
sample, the caller starting four seconds later. Then the same two sources go through batch,
uploaded as one two-channel file.

With SPEECHMATICS_API_KEY set this uses Speechmatics; without it, the embedded offline server.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import anyio

from speechmatics_modes import Final, Settings, stream, transcribe

SAMPLE = Path(__file__).parent / "sample.wav"
CHUNK_FRAMES = 1_600  # 0.1 s at 16 kHz


def sample_after(seconds: float) -> Iterator[bytes]:
    """The sample (16 kHz mono 16-bit), after ``seconds`` of silence, in 0.1 s chunks."""
    with wave.open(str(SAMPLE), "rb") as sample:
        pcm = b"\x00\x00" * int(seconds * sample.getframerate()) + sample.readframes(-1)
    for start in range(0, len(pcm), CHUNK_FRAMES * 2):
        yield pcm[start : start + CHUNK_FRAMES * 2]


async def main() -> None:
    settings = Settings()
    if settings.api_key is None:
        print("No SPEECHMATICS_API_KEY: using the embedded offline server.\n")
        settings = Settings(backend="local")
    call = {"agent": sample_after(0.0), "caller": sample_after(4.0)}
    async with stream(call, settings=settings) as events:
        async for event in events:
            if isinstance(event, Final) and event.text:
                print(f"[{event.channel}] {event.text}")
    print("\nThe call, turn by turn:")
    print(events.transcript.to_text())

    # The same two sources as a batch job: uploaded as one two-channel WAV.
    call = {"agent": sample_after(0.0), "caller": sample_after(4.0)}
    batch = await transcribe(call, "batch", settings=settings)
    print("\nThe same call through batch:")
    print(batch.to_text())


if __name__ == "__main__":
    anyio.run(main)
