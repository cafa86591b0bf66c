"""A local server in its own process, so a benchmark's client measures only itself.

``python -m benchmarks._server [scripted|default] [JSON]`` prints ``PORT <n>`` once listening and
runs until its standard input closes (the benchmark holds the pipe, so the server cannot outlive
it). JSON holds ``LocalServer`` keyword arguments, plus ``drop_after_seconds`` for a
``SocketFault`` that drops every session after that long.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from speechmatics_modes.local import Engine, Faults, LocalServer, ScriptedEngine, SocketFault


def _engine(kind: str) -> Engine | None:
    if kind == "scripted":  # two words every 1.9 s, for 190 s of each session
        return ScriptedEngine.from_text(" ".join(["hello world."] * 100), word_seconds=0.4)
    return None


async def _serve(kind: str, options: dict[str, Any]) -> None:
    drop_after = options.pop("drop_after_seconds", None)
    if drop_after is not None:
        options["faults"] = Faults(socket=SocketFault(after_seconds=drop_after))
    options.setdefault("max_upload_bytes", 4 * 1024**3)
    async with LocalServer(engine=_engine(kind), **options) as server:
        print(f"PORT {server.port}", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)


@dataclass(frozen=True)
class Server:
    """A running server process: where to reach it, and what it has cost so far."""

    batch_url: str
    rt_url: str
    pid: int

    def __iter__(self) -> Iterator[str]:
        return iter((self.batch_url, self.rt_url))

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server process has used (Linux ``/proc``)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server_process(kind: str, **options: Any) -> Iterator[Server]:
    """Start a server process; yield it (it unpacks as ``batch_url, rt_url``); stop it on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._server", kind, json.dumps(options)],
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
        yield Server(f"http://127.0.0.1:{port}/v2", f"ws://127.0.0.1:{port}/v2", process.pid)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else "default"
    anyio.run(_serve, kind, json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
