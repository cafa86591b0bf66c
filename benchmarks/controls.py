"""How fast a forced end of utterance comes back: ``stream().force_end_of_utterance()`` against
the rt SDK's ``force_end_of_utterance()``, on the same server process, in one run.

``python -m benchmarks.controls`` prints a table and writes ``bench-results/controls.json`` and
``.md``. A clip plays as a live feed (real time, then silence); at the first partial with words
the client forces the end of the utterance and times the forced final. On the embedded engines
that time is the server's backlog: it handles the request after the audio already in its
socket, so it measures how far the engine runs behind the feed as much as the client.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio

from benchmarks import AUDIO, read_pcm
from benchmarks._report import Row, publish, write_markdown
from benchmarks._server import server_process
from speechmatics_modes import Final, Partial, Settings, stream

RESULTS = Path("bench-results/controls.json")
CLIP = AUDIO / "librispeech-1988-24833-0003.wav"
KEY = "local-benchmark"
RUNS = 3
CHUNK = 3_200  # 0.1 s of 16 kHz 16-bit mono
_LIMIT_SECONDS = 60.0


async def _live(stop: anyio.Event) -> AsyncIterator[bytes]:
    """The clip at real time, then silence until ``stop`` (at most a minute)."""
    pcm = read_pcm(CLIP)
    with anyio.move_on_after(_LIMIT_SECONDS):
        for start in range(0, len(pcm), CHUNK):
            yield pcm[start : start + CHUNK]
            await anyio.sleep(0.1)
        while not stop.is_set():
            yield b"\x00\x00" * (CHUNK // 2)
            await anyio.sleep(0.1)


async def ours(rt_url: str, batch_url: str) -> float:
    """Seconds from ``force_end_of_utterance()`` to the forced ``Final``, through the façade."""
    stop = anyio.Event()
    forced_at = 0.0
    latency = float("nan")
    settings = Settings(api_key=KEY, rt_url=rt_url, batch_url=batch_url)
    options = {"enable_partials": True, "max_delay": 4.0}
    async with stream(_live(stop), options=options, settings=settings) as events:
        async for event in events:
            if isinstance(event, Partial) and event.words and not forced_at:
                forced_at = time.perf_counter()
                await events.force_end_of_utterance()
            elif isinstance(event, Final) and event.forced and not stop.is_set():
                latency = time.perf_counter() - forced_at
                stop.set()
    return latency


async def raw_sdk(rt_url: str, batch_url: str) -> float:
    """The same with ``speechmatics.rt.AsyncClient`` and its handlers."""
    import speechmatics.rt as sm

    stop = anyio.Event()
    marks: dict[str, float] = {}
    tasks: list[asyncio.Task[None]] = []
    client = sm.AsyncClient(api_key=KEY, url=rt_url)

    def on_partial(message: dict[str, Any]) -> None:
        if message["results"] and "forced_at" not in marks:
            marks["forced_at"] = time.perf_counter()
            # Handlers are synchronous: the request goes out from a task of its own.
            tasks.append(asyncio.get_running_loop().create_task(client.force_end_of_utterance()))

    def on_final(message: dict[str, Any]) -> None:
        if message.get("forced") and "final_at" not in marks:
            marks["final_at"] = time.perf_counter()
            stop.set()

    client.on(sm.ServerMessageType.ADD_PARTIAL_TRANSCRIPT, on_partial)
    client.on(sm.ServerMessageType.ADD_TRANSCRIPT, on_final)
    await client.start_session(
        transcription_config=sm.TranscriptionConfig(enable_partials=True, max_delay=4.0),
        audio_format=sm.AudioFormat(encoding=sm.AudioEncoding.PCM_S16LE, sample_rate=16_000),
    )
    async for chunk in _live(stop):
        await client.send_audio(chunk)
    await asyncio.gather(*tasks)
    await client.stop_session()
    await client.close()
    return marks.get("final_at", float("nan")) - marks.get("forced_at", 0.0)


async def _measure(kind: str) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"ours": [], "raw": []}
    with server_process(kind) as (batch_url, rt_url):
        for _ in range(RUNS):
            results["ours"].append(await ours(rt_url, batch_url))
            results["raw"].append(await raw_sdk(rt_url, batch_url))
    return results


def main() -> None:
    results = {kind: anyio.run(_measure, kind) for kind in ("scripted", "default")}
    names = {"scripted": "scripted engine", "default": "embedded Whisper"}
    every_run = (
        f"{names[kind]}: ours {times['ours']}, raw SDK {times['raw']}"
        for kind, times in results.items()
    )
    publish(RESULTS, results, "\n".join(every_run))
    table = RESULTS.with_suffix(".md")
    write_markdown(
        [
            Row(
                f"forced final after force_end_of_utterance(), {names[kind]}, median of {RUNS} (s)",
                statistics.median(times["ours"]),
                statistics.median(times["raw"]),
                "{:.3f}",
            )
            for kind, times in results.items()
        ],
        table,
    )
    print(table.read_text())


if __name__ == "__main__":
    main()
