"""Transcribe a finished recording through the batch API (the tutorial's batch_example.py).

    python examples/batch_example.py [AUDIO]

With SPEECHMATICS_API_KEY set this uses Speechmatics; without it, the embedded offline server.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import anyio

from speechmatics_modes import AuthenticationError, Settings, TranscriptionOptions, transcribe

SAMPLE = Path(__file__).parent / "sample.wav"


async def main(audio: Path, size_bytes: int) -> None:
    settings = Settings()
    if settings.api_key is None:
        print("No SPEECHMATICS_API_KEY: using the embedded offline server.\n")
        settings = Settings(backend="local")
    print(f"Processing file: {audio.name}")
    print(f"File size: {size_bytes / (1024 * 1024):.1f} MB\n")
    started = time.monotonic()
    try:
        transcript = await transcribe(
            audio, options=TranscriptionOptions(language="en"), settings=settings
        )
    except AuthenticationError as exc:
        print(f"Authentication error: {exc}")
        return
    minutes, seconds = divmod(int(time.monotonic() - started), 60)
    print(f"Complete! Processing time: {minutes}m {seconds}s (job {transcript.job_id})\n")
    print("Full transcript:")
    print(f'"{transcript.to_text()}"')


if __name__ == "__main__":
    audio = Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE
    anyio.run(main, audio, audio.stat().st_size)
