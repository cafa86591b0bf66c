"""Rollover on the default engine: a minute of real speech through handovers and drops.

Run from the repository root: ``python -m benchmarks.rollover_speech``. Writes
``bench-results/rollover_speech.json`` and prints the table kept in ``docs/streaming.md``.

The same minute of speech (the test clips joined with 1 s pauses), sent at twice real time,
three times through a Whisper ``LocalServer``: in one unbroken session; with server sessions
limited to 48 s of audio, whose first warning at 12 s starts a handover at the next pause
(planned handovers); and with every connection dropped (1011) once it has received 10 s of
audio (reconnections with replay). Limits and drops count audio, not wall time, as in
tests/test_rolling_stream_speech.py: where sessions end does not depend on how fast the
machine runs, only how long the run takes does. Reported per run: WER against
the clips' references and against the unbroken run, audio gaps, duplicated words (the same
word twice, overlapping in time) and words that start before the previous one. The rolling
stream's log (reconnections, sessions cut while draining, gaps and their causes) goes to
stderr.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from itertools import pairwise
from pathlib import Path
from typing import Any

from benchmarks import joined_speech
from benchmarks._report import publish
from benchmarks._wer import word_error_rate
from benchmarks.engine_accuracy import load_clips
from speechmatics_modes import (
    AudioFormat,
    AudioGap,
    Reconnected,
    RolloverPolicy,
    SessionRollover,
    stream,
)
from speechmatics_modes.local import Faults, LocalServer, SocketFault

RESULTS = Path("bench-results") / "rollover_speech.json"
RATE = 16_000
FORMAT = AudioFormat(encoding="pcm_s16le", sample_rate=RATE, chunk_size=3200)
PACE = 2.0
SPEECH_SECONDS = 60.0
SESSION_SECONDS = 48.0
"""The server's session limit, in seconds of audio received; it first warns a quarter of the
way in, and the stream hands over at the pause after that warning."""
DROP_AFTER_SECONDS = 10.0
"""The server drops every connection once it has received this much audio: more than the
longest wait for a final (a 1 s pause, then up to ``max_delay`` of speech), or a session could
end before its first final, and every one after it replay the same audio and end the same way."""
POLICY = RolloverPolicy(backoff_initial=0.1, backoff_max=0.5, healthy_after=1.0, max_attempts=20)


async def run(server: LocalServer, pcm: bytes, policy: RolloverPolicy | None) -> dict[str, Any]:
    counts = {SessionRollover: 0, Reconnected: 0, AudioGap: 0}
    async with stream(
        pcm, settings=server.settings(), audio_format=FORMAT, rollover=policy, pace=PACE
    ) as feed:
        async for event in feed:
            if type(event) in counts:
                counts[type(event)] += 1
    words = [word for word in feed.transcript.words if not word.is_punctuation]
    metrics = feed.metrics
    pairs = list(pairwise(words))
    return {
        "text": " ".join(word.content.lower() for word in words),
        "words": len(words),
        "rollovers": counts[SessionRollover],
        "reconnects": counts[Reconnected],
        "audio_gaps": counts[AudioGap],
        "duplicated": sum(1 for a, b in pairs if a.content == b.content and b.start < a.end),
        "backwards": sum(1 for a, b in pairs if b.start < a.start),
        "replayed_seconds": metrics.replayed_seconds if metrics else 0.0,
        "deduplicated_words": metrics.deduplicated_words if metrics else 0,
    }


async def measure(pcm: bytes, reference: str) -> dict[str, Any]:
    async with LocalServer(engine="whisper") as server:
        unbroken = await run(server, pcm, None)
    limited = LocalServer(
        engine="whisper", max_session_seconds=SESSION_SECONDS, session_clock="audio"
    )
    async with limited as server:
        handovers = await run(server, pcm, POLICY)
    fault = SocketFault(after_audio_seconds=DROP_AFTER_SECONDS, close_code=1011, sessions=None)
    async with LocalServer(engine="whisper", faults=Faults(socket=fault)) as server:
        drops = await run(server, pcm, POLICY)
    results = {"unbroken": unbroken, "handovers": handovers, "drops": drops}
    for row in results.values():
        row["wer"] = word_error_rate([reference], [row["text"]])
        row["wer_vs_unbroken"] = word_error_rate([unbroken["text"]], [row["text"]])
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        "| run | switches | WER | vs unbroken | audio gaps | duplicated | out of order |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in results.items():
        switches = row["rollovers"] + row["reconnects"]
        lines.append(
            f"| {name} | {switches} | {row['wer']:.3f} | {row['wer_vs_unbroken']:.3f} | "
            f"{row['audio_gaps']} | {row['duplicated']} | {row['backwards']} |"
        )
    return "\n".join(lines)


def main() -> None:
    log = logging.getLogger("speechmatics_modes._stream")
    log.setLevel(logging.INFO)
    log.addHandler(logging.StreamHandler())
    with tempfile.TemporaryDirectory() as workdir:
        clips = sorted(load_clips(Path(workdir)), key=lambda clip: clip.name)
    pcm, used = joined_speech(clips, SPEECH_SECONDS)
    results = asyncio.run(measure(pcm, " ".join(clip.reference for clip in used)))
    publish(RESULTS, results, table(results))


if __name__ == "__main__":
    main()
