"""Whisper against pocketsphinx, batch and real-time, on the test clips.

Run from the repository root: ``python -m benchmarks.engines``. Writes
``bench-results/engines.json`` and prints the markdown table kept in ``docs/engines.md``.

* **WER** over every clip, pooled (``benchmarks._wer``).
* **RTF**: processing seconds over audio seconds, feeding as fast as the engine takes audio.
* **last final**: seconds from the end of the audio (``flush()``) to the last final word.
* **partials/s**: how often the partial hypothesis changes, per second of audio.
* **peak RSS**: MB, of this process for Whisper (run first); not measured for pocketsphinx.
* **streams**: concurrent real-time streams (100 ms chunks, paced at real time) that all finish
  within 1.5 s of their audio ending.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._wer import word_error_rate
from benchmarks.engine_accuracy import CHUNK_BYTES, Clip, load_clips, text
from speechmatics_modes.local import Engine, EngineWord
from speechmatics_modes.local._pocketsphinx import PocketsphinxEngine
from speechmatics_modes.local._whisper import WhisperEngine

RESULTS = Path("bench-results") / "engines.json"
MAX_STREAMS = 5
KEEP_UP_SECONDS = 1.5


async def batch(engine: Engine, clips: list[Clip]) -> dict[str, float]:
    await engine.recognize_file(clips[0].pcm_path)  # warm up
    started = time.perf_counter()
    hypotheses = [text(await engine.recognize_file(clip.pcm_path)) for clip in clips]
    seconds = time.perf_counter() - started
    audio = sum(clip.duration for clip in clips)
    wer = word_error_rate([clip.reference for clip in clips], hypotheses)
    return {"wer": wer, "rtf": seconds / audio}


async def realtime(engine: Engine, clips: list[Clip]) -> dict[str, float]:
    hypotheses, seconds, latencies, partial_changes = [], 0.0, [], 0
    for clip in clips:
        pcm = clip.pcm_path.read_bytes()
        stream = await engine.open_stream(max_delay=4.0)
        words: list[EngineWord] = []
        previous: tuple[EngineWord, ...] = ()
        started = time.perf_counter()
        for offset in range(0, len(pcm), CHUNK_BYTES):
            update = await stream.feed(pcm[offset : offset + CHUNK_BYTES])
            words.extend(update.finals)
            partial_changes += update.partial != previous
            previous = update.partial
        flushed = time.perf_counter()
        words.extend((await stream.flush()).finals)
        latencies.append(time.perf_counter() - flushed)
        seconds += time.perf_counter() - started
        await stream.aclose()
        hypotheses.append(text(words))
    audio = sum(clip.duration for clip in clips)
    return {
        "wer": word_error_rate([c.reference for c in clips], hypotheses),
        "rtf": seconds / audio,
        "last_final_s": sum(latencies) / len(latencies),
        "partials_per_s": partial_changes / audio,
    }


async def paced_stream(engine: Engine, pcm: bytes) -> float:
    """Feed ``pcm`` at real time; return how late the last final came after the audio ended."""
    stream = await engine.open_stream(max_delay=4.0)
    began = time.perf_counter()
    for index, offset in enumerate(range(0, len(pcm), CHUNK_BYTES)):
        await asyncio.sleep(max(0.0, began + index * 0.1 - time.perf_counter()))
        await stream.feed(pcm[offset : offset + CHUNK_BYTES])
    await stream.flush()
    await stream.aclose()
    return time.perf_counter() - began - len(pcm) / 32_000


async def capacity(engine: Engine, clips: list[Clip]) -> int:
    pcm = b"".join(clip.pcm_path.read_bytes() for clip in clips[:3])
    sustained = 0
    for count in range(1, MAX_STREAMS + 1):
        lags = await asyncio.gather(*(paced_stream(engine, pcm) for _ in range(count)))
        if max(lags) > KEEP_UP_SECONDS:
            break
        sustained = count
    return sustained


def peak_rss_mb(engine: Engine) -> float | None:
    """Whisper decodes in this process (measured first); pocketsphinx's forkserver workers are
    not our children, so getrusage cannot see them."""
    if engine.name != "whisper":
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure(engine: Engine, clips: list[Clip]) -> dict[str, Any]:
    async with engine:
        return {
            "batch": await batch(engine, clips),
            "realtime": await realtime(engine, clips),
            "concurrent_streams": await capacity(engine, clips),
        }


def table(results: dict[str, Any]) -> str:
    lines = [
        "| engine | mode | WER | RTF | last final (s) | partials/s | streams | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in results["engines"].items():
        for mode in ("batch", "realtime"):
            numbers = row[mode]
            realtime_only = (
                f"{numbers['last_final_s']:.2f} | {numbers['partials_per_s']:.2f} | "
                f"{row['concurrent_streams']}"
                if mode == "realtime"
                else "- | - | -"
            )
            rss = "-" if row["peak_rss_mb"] is None else f"{row['peak_rss_mb']:.0f}"
            lines.append(
                f"| {name} | {mode} | {numbers['wer']:.3f} | {numbers['rtf']:.3f} | "
                f"{realtime_only} | {rss} |"
            )
    return "\n".join(lines)


def main() -> None:
    results: dict[str, Any] = {"cpus": os.cpu_count(), "engines": {}}
    with tempfile.TemporaryDirectory() as workdir:
        clips = load_clips(Path(workdir))
        for engine in (WhisperEngine(), PocketsphinxEngine()):
            row = asyncio.run(measure(engine, clips))
            results["engines"][engine.name] = {**row, "peak_rss_mb": peak_rss_mb(engine)}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
