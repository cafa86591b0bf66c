"""Steer a stream that hands over from session to session: the controls follow it.

    python examples/rolling_controls.py

The sample twice (a pause between), sent at real time as a live feed would come, is
transcribed with rollover: a session may run only 6 seconds before the stream opens the next
one and hands over at a pause (the service's limit is 48 hours; the short budget shows a
handover in seconds). Speaker diarization is on.

- At the first partial, ``update()`` lowers max_delay: for the session running now, and for
  every later one (also one being opened at that very moment).
- After the handover, ``force_end_of_utterance()`` finalises what the new session has heard,
  and ``get_speakers()`` returns the speakers of both sessions, each with the session that heard
  them: the service labels speakers afresh in every session.

With SPEECHMATICS_API_KEY set this uses Speechmatics; without it, the embedded offline server.
"""

from __future__ import annotations

import io
import wave
from pathlib import Path

import anyio

from speechmatics_modes import (
    Final,
    Partial,
    RolloverPolicy,
    SessionRollover,
    Settings,
    TranscriptionOptions,
    stream,
)

SAMPLE = Path(__file__).parent / "sample.wav"


def two_takes() -> bytes:
    """The sample, a second of silence, the sample again and two seconds of silence: a WAV."""
    with wave.open(str(SAMPLE), "rb") as sample:  # 16 kHz mono 16-bit
        params = sample.getparams()
        speech = sample.readframes(-1)
    second = b"\x00\x00" * params.framerate
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setparams(params)
        writer.writeframes(speech + second + speech + 2 * second)
    return out.getvalue()


async def main() -> None:
    settings = Settings()
    if settings.api_key is None:
        print("No SPEECHMATICS_API_KEY: using the embedded offline server.\n")
        settings = Settings(backend="local")
    options = TranscriptionOptions(enable_partials=True, max_delay=4.0, diarization="speaker")
    policy = RolloverPolicy(max_session=6.0, min_pause=0.2)
    updated = rolled = forced = False
    async with stream(
        two_takes(), options=options, settings=settings, rollover=policy, pace=1.0
    ) as events:
        async for event in events:
            if isinstance(event, SessionRollover):
                rolled = True
                print(f"-- handed over to a new session at {event.offset:.1f} s ({event.reason})")
            elif isinstance(event, Final) and (event.text or event.forced):
                print(f"[final{', forced' if event.forced else ''}] {event.text}")
            elif isinstance(event, Partial) and event.words and not updated:
                await events.update({"max_delay": 2.0})
                updated = True
                print("max_delay is now 2 s, for this session and every later one")
            elif isinstance(event, Partial) and event.words and rolled and not forced:
                forced = True
                speakers = await events.get_speakers(timeout=60.0)
                for speaker in speakers.speakers:
                    print(f"  speaker {speaker.label} of session {speaker.session_id}")
                await events.force_end_of_utterance()
    print(f"\n{events.metrics.sessions if events.metrics else 1} sessions; full transcript:")
    print(events.transcript.text)


if __name__ == "__main__":
    anyio.run(main)
