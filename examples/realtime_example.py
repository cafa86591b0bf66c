"""Live transcription with partials and finals (the tutorial's realtime_example.py).

    python examples/realtime_example.py        # a simulated live feed: the sample at real time
    python examples/realtime_example.py --mic  # your microphone ("mic" extra); Ctrl+C ends

With SPEECHMATICS_API_KEY set this uses Speechmatics; without it, the embedded offline server.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import anyio

from speechmatics_modes import (
    AudioSourceError,
    Final,
    Microphone,
    Partial,
    Settings,
    TranscriptionOptions,
    stream,
)

SAMPLE = Path(__file__).parent / "sample.wav"


async def main(use_microphone: bool) -> None:
    settings = Settings()
    if settings.api_key is None:
        print("No SPEECHMATICS_API_KEY: using the embedded offline server.\n")
        settings = Settings(backend="local")
    options = TranscriptionOptions(language="en", enable_partials=True, max_delay=2.0)
    source = Microphone(sample_rate=16_000) if use_microphone else SAMPLE
    print("Connected! Start speaking (Ctrl+C to stop)...\n" if use_microphone else "Streaming...\n")
    try:
        async with stream(source, options=options, settings=settings, pace=1.0) as events:
            async for event in events:
                if isinstance(event, Partial) and event.text:
                    print(f"[partial]: {event.text}")
                elif isinstance(event, Final) and event.text:
                    print(f"[final]: {event.text}")
    except AudioSourceError as exc:  # no PyAudio, or no capture device
        print(f"Cannot capture audio: {exc}")
        return
    print(f"\nFull transcript: {events.transcript.text}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(main, "--mic" in sys.argv[1:])
