"""A long stream through many rollovers, and the official SDK under the same dropped connections.

``python -m benchmarks.rollover`` prints a table and writes ``bench-results/rollover.json`` and
(with matplotlib) ``bench-results/rollover-rss.png``:

1. **Flat memory**: two hours of audio at 60 times real time through ``stream(rollover=...)``
   with ``keep_transcript=False`` against a server (in another process) that ends every session
   after 2 s of wall time (two minutes of audio), so the stream hands over about 60 times. The
   client's resident memory is read every minute of audio, with no explicit garbage collection:
   the last reading must match the first, however long the stream runs. The raw SDK does the
   same work the only way it can, one ``AsyncClient`` session after another, for comparison.
2. **Drops, ours vs the SDK**: ten minutes of audio at the same pace against a server that
   drops every session 2 s in. A plain ``speechmatics.rt`` session stops at the first drop;
   ours reconnects, replays and carries on. Words out of each, against the words in the audio.

Session limits and drops are wall-clock times (as at the service), hence the pace. The server
runs the scripted engine (two words every 1.9 s of audio), so the numbers measure the client,
not recognition.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

from benchmarks._report import Row, plot_lines, write_markdown
from benchmarks._server import server_process

RESULTS = Path("bench-results") / "rollover.json"
SAMPLE_RATE = 16_000
CHUNK = 3_200  # 100 ms
HOURS = float(os.environ.get("BENCH_ROLLOVER_HOURS", "2"))
KEY = "bench"
PACE = 60.0
"""Audio seconds sent per wall-clock second."""
WORDS_PER_SECOND = 2 / 1.9


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _audio(seconds: float, readings: list[tuple[float, float]]) -> AsyncIterator[bytes]:
    """Quiet noise (a pause everywhere, so handovers need not wait), with RSS read as it goes."""
    chunk = bytes(range(4)) * (CHUNK // 4)  # tiny, non-zero samples
    started = anyio.current_time()
    for index in range(int(seconds * 10)):
        if index % 600 == 0:  # every minute of audio
            readings.append((index / 10, _rss_mb()))
        if index % 10 == 0:
            await _keep_pace(started, index / 10)
        yield chunk
    readings.append((seconds, _rss_mb()))


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
    readings: list[tuple[float, float]] = []
    full_collections = gc.get_stats()[2]["collections"]
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
        "full_collections": gc.get_stats()[2]["collections"] - full_collections,
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


async def _sdk_sessions(seconds: float, rt_url: str) -> dict[str, Any]:
    """The same long stream with the raw SDK: a new session each time the server ends one."""
    import speechmatics.rt as sm

    audio_format = sm.AudioFormat(
        encoding=sm.AudioEncoding.PCM_S16LE, sample_rate=SAMPLE_RATE, chunk_size=CHUNK
    )
    readings: list[tuple[float, float]] = []
    sessions = 0
    chunks = _audio(seconds, readings)
    async for first in chunks:
        client = sm.AsyncClient(api_key=KEY, url=rt_url)
        sessions += 1
        await client.start_session(
            transcription_config=sm.TranscriptionConfig(), audio_format=audio_format
        )
        try:
            await client.send_audio(first)
            async for chunk in chunks:
                await client.send_audio(chunk)
        except sm.TransportError:
            continue  # the server ended the session: open the next one
        finally:
            await client.close()
    return {"audio_seconds": seconds, "sessions": sessions, "rss_mb_by_audio_second": readings}


DROP_SECONDS = 600.0
RUNS = {
    "long": lambda urls: _ours(HOURS * 3600, *urls, 1.5),
    "long_sdk": lambda urls: _sdk_sessions(HOURS * 3600, urls[0]),
    # No planned handovers here: every session ends by being dropped.
    "drops_ours": lambda urls: _ours(DROP_SECONDS, *urls, 3600.0),
    "drops_sdk": lambda urls: _sdk(DROP_SECONDS, urls[0]),
}
"""Each run, given (rt_url, batch_url); each in a process of its own, so RSS is its own."""


def _child(name: str, urls: tuple[str, str]) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.rollover", "--child", name, *urls],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    results: dict[str, Any] = {}
    with server_process("scripted", max_session_seconds=2) as (batch_url, rt_url):
        for name in ("long", "long_sdk"):
            results[name] = _child(name, (rt_url, batch_url))
    with server_process("scripted", drop_after_seconds=2) as (batch_url, rt_url):
        for name in ("drops_ours", "drops_sdk"):
            results[name] = _child(name, (rt_url, batch_url))
    results["drops_expected_words"] = DROP_SECONDS * WORDS_PER_SECOND
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    _report(results)
    _print_table(results)


def _report(results: dict[str, Any]) -> None:
    ours, sdk = (
        results["long"]["rss_mb_by_audio_second"],
        results["long_sdk"]["rss_mb_by_audio_second"],
    )
    write_markdown(
        [
            Row("client RSS at the first minute of audio (MB)", ours[1][1], sdk[1][1], "{:.1f}"),
            Row(f"client RSS after {HOURS:g} h of audio (MB)", ours[-1][1], sdk[-1][1], "{:.1f}"),
            Row(
                "RSS growth from the first minute to the end (MB)",
                ours[-1][1] - ours[1][1],
                sdk[-1][1] - sdk[1][1],
                "{:+.1f}",
                ratio_means_something=False,
            ),
        ],
        RESULTS.with_suffix(".md"),
    )
    plot_lines(
        {
            "stream(rollover=...)": [(s / 60, mb) for s, mb in ours],
            "rt SDK, a session after another": [(s / 60, mb) for s, mb in sdk],
        },
        "minutes of audio (60x real time)",
        "client RSS (MB)",
        RESULTS.parent / "rollover-rss.png",
    )


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
    print(f"  {long['full_collections']} full collections ran on their own; none was asked for")
    print("  client RSS in MB by minutes of audio, every ten minutes:")
    print("  " + ", ".join(f"{s / 60:.0f}: {mb:.1f}" for s, mb in readings[::10]))
    print(RESULTS.with_suffix(".md").read_text())
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
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        run = RUNS[sys.argv[2]]
        print(json.dumps(anyio.run(run, (sys.argv[3], sys.argv[4]))))
    else:
        main()
