"""One call, two modes: a file goes through batch, a stream of chunks through real-time.

python examples/auto_mode.py
"""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from speechmatics_modes import AudioFormat, Settings, transcribe

SAMPLE = Path(__file__).parent / "sample.wav"


async def chunks_of(path: Path, chunk_ms: int = 100) -> AsyncIterator[bytes]:
    """Stand-in for live audio (a phone call, a WebRTC track): raw PCM in small chunks."""
    with wave.open(str(path), "rb") as wav:
        frames = wav.getframerate() * chunk_ms // 1000
        while chunk := wav.readframes(frames):
            yield chunk


async def main() -> None:
    settings = Settings()
    if settings.api_key is None:
        print("No SPEECHMATICS_API_KEY: using the embedded offline server.\n")
        settings = Settings(backend="local")

    from_file = await transcribe(SAMPLE, settings=settings)  # a finished file: batch
    print(f"{from_file.mode.value:>8}: {from_file.text}")

    live = chunks_of(SAMPLE)  # an async iterator: real-time
    from_stream = await transcribe(
        live, audio_format=AudioFormat(sample_rate=16_000), settings=settings
    )
    print(f"{from_stream.mode.value:>8}: {from_stream.text}")


if __name__ == "__main__":
    anyio.run(main)
