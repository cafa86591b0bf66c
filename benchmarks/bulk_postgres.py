"""A shared run: 1, 2 and 4 worker processes on one PostgreSQL journal, against the ceiling.

Every worker is the real command (``speechmatics-modes transcribe --manifest ... --journal
postgresql://...``) in its own process; the local server runs the scripted engine with a fixed
job time, so what is measured is coordination, polling and the job time, not recognition. The
run-wide limit is the same for every configuration, so more workers cannot beat it: the ceiling
is ``limit / job seconds`` inputs per second. The baseline is the single-machine runner, the
same command with a SQLite journal, at the same concurrency.

Needs PostgreSQL's server binaries (Debian: ``apt-get install postgresql``); the benchmark
starts its own server in a temporary directory, as the tests do.

Run: ``python -m benchmarks.bulk_postgres [--inputs 400] [--job-seconds 1.0] [--limit 16]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import anyio
import psycopg

from benchmarks import AUDIO
from speechmatics_modes.local import Faults, LocalServer, ScriptedEngine
from tests._postgres import fresh_database, missing_reason, running_server

CLIP = AUDIO / "synthetic" / "espeak-hello-world.wav"
RESULTS = Path("bench-results") / "bulk_postgres.json"
WORKERS = (1, 2, 4)


async def _run(
    server: LocalServer, journal: str, workers: int, limit: int, folder: Path, *, expect: int = -1
) -> float:
    """Seconds until every worker has finished the run (``expect`` outputs; -1: every input)."""
    out = folder / f"out-{workers}-{time.monotonic_ns()}"
    command = [
        *(sys.executable, "-m", "speechmatics_modes", "transcribe", "-q"),
        *("--manifest", str(folder / "inputs.csv"), "--journal", journal),
        *("--out", str(out), "--concurrency", str(limit)),
    ]
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SPEECHMATICS_")},
        "SPEECHMATICS_API_KEY": "bench",
        "SPEECHMATICS_BATCH_URL": server.batch_url,
    }
    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(workers):
            group.start_soon(_worker, command, environment)
    seconds = time.perf_counter() - started
    written = len(list(out.glob("*.txt")))
    expected = _count(folder) if expect < 0 else expect
    if written != expected:
        raise RuntimeError(f"{written} outputs, expected {expected}")
    return seconds


async def _worker(command: list[str], environment: dict[str, str]) -> None:
    await anyio.run_process(command, env=environment, stdout=None, stderr=None)


def _count(folder: Path) -> int:
    return len((folder / "inputs.csv").read_text().splitlines()) - 1


def _manifest(folder: Path, count: int) -> None:
    rows = ["id,path"]
    for number in range(count):
        shutil.copy(CLIP, folder / f"clip-{number:04d}.wav")
        rows.append(f"input-{number:04d},clip-{number:04d}.wav")
    (folder / "inputs.csv").write_text("\n".join(rows) + "\n")


async def _main(count: int, job_seconds: float, limit: int, server_url: str) -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        _manifest(folder, count)
        engine = ScriptedEngine.from_text("hello world")
        async with LocalServer(engine=engine, faults=Faults(job_seconds=job_seconds)) as server:
            sqlite = str(folder / "single.sqlite")
            results["single machine (SQLite)"] = await _run(server, sqlite, 1, limit, folder)
            peaks = {}
            for workers in WORKERS:
                server.stats.peak_jobs_running = 0
                journal = fresh_database(server_url, f"bench_{workers}_{time.monotonic_ns()}")
                results[f"{workers} worker(s) (PostgreSQL)"] = await _run(
                    server, journal, workers, limit, folder
                )
                peaks[workers] = server.stats.peak_jobs_running
            # What starting those workers costs by itself: the same run again, all done.
            startup = await _run(server, journal, WORKERS[-1], limit, folder, expect=0)
    ceiling = limit / job_seconds
    print(f"{count} inputs, {job_seconds:g} s per job, limit {limit} for the whole run")
    print(f"  ceiling (limit / job time)      {ceiling:6.1f} inputs/s")
    for name, seconds in results.items():
        rate = count / seconds
        print(
            f"  {name:<31} {rate:6.1f} inputs/s  {seconds:6.1f} s  {rate / ceiling:5.0%} of ceiling"
        )
    print(f"  peak jobs running at the server: {peaks} (never above {limit})")
    print(f"  {WORKERS[-1]} workers starting on a finished run (fixed cost): {startup:.1f} s")
    rates = {name: count / seconds for name, seconds in results.items()}
    return rates | {"ceiling": ceiling, "startup_seconds": startup}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=400)
    parser.add_argument("--job-seconds", type=float, default=1.0)
    parser.add_argument("--limit", type=int, default=16)
    args = parser.parse_args()
    reason = missing_reason()
    if reason is not None:
        print(f"skipped: {reason}")
        return
    with running_server() as server_url:
        psycopg.connect(server_url).close()
        rates = anyio.run(_main, args.inputs, args.job_seconds, args.limit, server_url)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"inputs_per_second": rates, **vars(args)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
