"""A local server in its own process, so a benchmark's client measures only itself.

``python -m benchmarks._server [scripted|default]`` prints ``PORT <n>`` once listening and runs
until its standard input closes (the benchmark holds the pipe, so the server cannot outlive it).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import anyio

from speechmatics_modes.local import LocalServer, ScriptedEngine
from speechmatics_modes.local._engine import Engine


def _engine(kind: str) -> Engine | None:
    if kind == "scripted":
        return ScriptedEngine.from_text("hello world. how are you", word_seconds=0.4)
    return None


async def _serve(kind: str) -> None:
    async with LocalServer(engine=_engine(kind), max_upload_bytes=4 * 1024**3) as server:
        print(f"PORT {server.port}", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)


@contextmanager
def server_process(kind: str) -> Iterator[tuple[str, str]]:
    """Start a server process; yield its (batch_url, rt_url); stop it on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._server", kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the server did not start: {line!r}")
        port = int(line.split()[1])
        yield f"http://127.0.0.1:{port}/v2", f"ws://127.0.0.1:{port}/v2"
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


if __name__ == "__main__":
    anyio.run(_serve, sys.argv[1] if len(sys.argv) > 1 else "default")
