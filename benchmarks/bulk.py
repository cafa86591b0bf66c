"""Bulk throughput: 100 short files against the local server with injected per-job latency.

``transcribe_many`` at concurrency 1, 8 and 32 is compared with the baseline a user would
write without this library: the raw batch SDK's ``transcribe()`` in a sequential loop. The
server runs the scripted engine, so the time measured is protocol, polling and the injected
job latency, not speech recognition.

Run: ``python -m benchmarks.bulk [--files 100] [--job-seconds 1.0]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import anyio
import speechmatics.batch as sm

from benchmarks import AUDIO
from speechmatics_modes import transcribe_many
from speechmatics_modes.local import Faults, LocalServer, ScriptedEngine

CLIP = AUDIO / "synthetic" / "espeak-hello-world.wav"


async def _bulk(server: LocalServer, files: list[Path], concurrency: int) -> float:
    started = time.perf_counter()
    async for result in transcribe_many(files, concurrency=concurrency, settings=server.settings()):
        assert result.ok, result.error
    return time.perf_counter() - started


async def _raw_sdk_loop(server: LocalServer, files: list[Path]) -> float:
    started = time.perf_counter()
    async with sm.AsyncClient(api_key="any", url=server.batch_url) as client:
        for path in files:
            await client.transcribe(str(path), polling_interval=0.5)
    return time.perf_counter() - started


async def _main(count: int, job_seconds: float) -> None:
    with tempfile.TemporaryDirectory() as directory:
        files = []
        for number in range(count):
            path = Path(directory) / f"clip-{number:03d}.wav"
            shutil.copy(CLIP, path)
            files.append(path)
        engine = ScriptedEngine.from_text("hello world")
        async with LocalServer(engine=engine, faults=Faults(job_seconds=job_seconds)) as server:
            baseline = await _raw_sdk_loop(server, files)
            print(f"{count} files, {job_seconds:g} s injected per job")
            print(f"  raw SDK, sequential loop   {baseline:7.1f} s   1.0x")
            for concurrency in (1, 8, 32):
                seconds = await _bulk(server, files, concurrency)
                print(
                    f"  transcribe_many, conc {concurrency:<3}  {seconds:7.1f} s "
                    f"{baseline / seconds:5.1f}x"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--job-seconds", type=float, default=1.0)
    args = parser.parse_args()
    anyio.run(_main, args.files, args.job_seconds)


if __name__ == "__main__":
    main()
