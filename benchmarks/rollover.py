"""A long stream through many rollovers, and the official SDK under the same dropped connections.

``python -m benchmarks.rollover`` prints a table and writes ``bench-results/rollover.json``:

1. **Flat memory**: two hours of audio at 60 times real time through ``stream(rollover=...)``
   against a server (in another process) that ends every session after 2 s of wall time
   (two minutes of audio), so the stream hands over about 60 times. The client's resident
   memory is read every ten minutes of audio: the last reading must match the first, however
   long the stream runs.
2. **Drops, ours vs the SDK**: ten minutes of audio at the same pace against a server that
   drops every session 2 s in. A plain ``speechmatics.rt`` session stops at the first drop;
   ours reconnects, replays and carries on. Words out of each, against the words in the audio.

Session limits and drops are wall-clock times (as at the service), hence the pace. The server
runs the scripted engine (two words every 1.9 s of audio), so the numbers measure the client,
not recognition.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

from benchmarks._server import server_process

RESULTS = Path("bench-results") / "rollover.json"
SAMPLE_RATE = 16_000
CHUNK = 3_200  # 100 ms
HOURS = float(os.environ.get("BENCH_ROLLOVER_HOURS", "2"))
KEY = "bench"
PACE = 60.0
"""Audio seconds sent per wall-clock second."""
WORDS_PER_SECOND = 2 / 1.9


def _trimmed_rss_mb() -> float:
    """RSS once garbage is collected and glibc has returned freed memory: what is in use."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return _rss_mb()


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _audio(
    seconds: float, readings: list[tuple[float, float, float]]
) -> AsyncIterator[bytes]:
    """Quiet noise (a pause everywhere, so handovers need not wait), with RSS read as it goes."""
    chunk = bytes(range(4)) * (CHUNK // 4)  # tiny, non-zero samples
    started = anyio.current_time()
    for index in range(int(seconds * 10)):
        if index % 6_000 == 0:  # every ten minutes of audio
            readings.append((index / 10, _rss_mb(), _trimmed_rss_mb()))
        if index % 10 == 0:
            await _keep_pace(started, index / 10)
        yield chunk
    readings.append((seconds, _rss_mb(), _trimmed_rss_mb()))


async def _keep_pace(started: float, audio_seconds: float) -> None:
    ahead = audio_seconds / PACE - (anyio.current_time() - started)
    if ahead > 0:
        await anyio.sleep(ahead)


async def _ours(seconds: float, rt_url: str, batch_url: str, max_session: float) -> dict[str, Any]:
    from speechmatics_modes import AudioFormat, RolloverPolicy, Settings, stream

    settings = Settings(api_key=KEY, batch_url=batch_url, rt_url=rt_url)
    policy = RolloverPolicy(
        max_session=max_session,
        pause_wait=0.5,
        idle_after=None,
        keep_transcript=False,
        backoff_initial=0.05,
        backoff_max=0.5,
        max_attempts=None,
    )
    readings: list[tuple[float, float, float]] = []
    words = 0
    started = anyio.current_time()
    async with stream(
        _audio(seconds, readings),
        audio_format=AudioFormat(chunk_size=CHUNK),
        settings=settings,
        rollover=policy,
    ) as events:
        async for event in events:
            if event.kind == "final":
                words += sum(not word.is_punctuation for word in event.words)
    metrics = events.metrics
    return {
        "audio_seconds": seconds,
        "wall_seconds": anyio.current_time() - started,
        "words": words,
        "rss_mb_by_audio_second": readings,
        "metrics": metrics.__dict__ if metrics is not None else None,
    }


async def _sdk(seconds: float, rt_url: str) -> dict[str, Any]:
    import speechmatics.rt as sm

    finals: list[dict[str, Any]] = []
    client = sm.AsyncClient(api_key=KEY, url=rt_url)
    client.on(sm.ServerMessageType.ADD_TRANSCRIPT, finals.append)
    audio_format = sm.AudioFormat(
        encoding=sm.AudioEncoding.PCM_S16LE, sample_rate=SAMPLE_RATE, chunk_size=CHUNK
    )
    await client.start_session(
        transcription_config=sm.TranscriptionConfig(), audio_format=audio_format
    )
    sent = 0.0
    stopped_by = "end of audio"
    chunk = bytes(range(4)) * (CHUNK // 4)
    started = anyio.current_time()
    try:
        while sent < seconds:
            await _keep_pace(started, sent)
            await client.send_audio(chunk)
            sent += 0.1
        await client.stop_session()
    except Exception as exc:
        stopped_by = f"{type(exc).__name__}: {exc}"
    finally:
        await client.close()
    words = sum(
        1 for message in finals for result in message["results"] if result["type"] == "word"
    )
    return {"audio_seconds_sent": sent, "words": words, "stopped_by": stopped_by}


def main() -> None:
    results: dict[str, Any] = {}
    long_seconds = HOURS * 3600
    with server_process("scripted", max_session_seconds=2) as (batch_url, rt_url):
        results["long"] = anyio.run(_ours, long_seconds, rt_url, batch_url, 1.5)
    drop_seconds = 600.0
    with server_process("scripted", drop_after_seconds=2) as (batch_url, rt_url):
        # No planned handovers here: every session ends by being dropped.
        results["drops_ours"] = anyio.run(_ours, drop_seconds, rt_url, batch_url, 3600.0)
        results["drops_sdk"] = anyio.run(_sdk, drop_seconds, rt_url)
    results["drops_expected_words"] = drop_seconds * WORDS_PER_SECOND
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    _print_table(results)


def _print_table(results: dict[str, Any]) -> None:
    long = results["long"]
    readings = long["rss_mb_by_audio_second"]
    metrics = long["metrics"] or {}
    print(
        f"{long['audio_seconds'] / 3600:.1f} h of audio at {PACE:g}x in "
        f"{long['wall_seconds']:.0f} s, "
        f"{metrics.get('sessions')} sessions, {metrics.get('rollovers')} rollovers, "
        f"{long['words']} words"
    )
    print("  client RSS in MB by minutes of audio (after malloc_trim in brackets):")
    print("  " + ", ".join(f"{s / 60:.0f}: {mb:.1f} ({trim:.1f})" for s, mb, trim in readings))
    ours, sdk = results["drops_ours"], results["drops_sdk"]
    expected = results["drops_expected_words"]
    print(f"10 min of audio, every session dropped 2 s in ({expected:.0f} words in the audio):")
    print(
        f"  stream(rollover=...): {ours['words']} words, "
        f"{(ours['metrics'] or {}).get('reconnects')} reconnects"
    )
    print(
        f"  speechmatics.rt:      {sdk['words']} words, then stopped after "
        f"{sdk['audio_seconds_sent']:.0f} s of audio ({sdk['stopped_by']})"
    )


if __name__ == "__main__":
    sys.exit(main())
