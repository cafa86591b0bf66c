"""``speechmatics-modes serve`` as a separate process, to signal, kill -9 and restart."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STARTUP_SECONDS = 60.0
"""Importing the package and binding the port; generous, as the machine is shared."""


class ServeProcess:
    """One ``serve`` process with the scripted engine; ``start()`` again restarts it on its port."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, port: int = 0) -> None:
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.port = port
        self.process: subprocess.Popen[str] | None = None
        self._pump: threading.Thread | None = None
        self.batch_url = ""
        self.rt_url = ""
        self.stderr = ""

    def start(self) -> ServeProcess:
        """Start it and wait until it prints its URLs."""
        self.close()
        command = [sys.executable, "-m", "speechmatics_modes", "serve", "--engine", "scripted"]
        command += ["--port", str(self.port), *self.args]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self.env,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        self._pump = threading.Thread(target=_pump, args=(self.process, lines), daemon=True)
        self._pump.start()
        found: dict[str, str] = {}
        while len(found) < 2:
            try:
                line = lines.get(timeout=STARTUP_SECONDS)
            except queue.Empty:
                self.kill()
                raise AssertionError("serve did not print its URLs in time") from None
            if line is None:
                raise AssertionError(f"serve exited early: {self.wait(5)}; {self.stderr}")
            name, _, value = line.strip().partition("=")
            if name in ("SPEECHMATICS_BATCH_URL", "SPEECHMATICS_RT_URL"):
                found[name] = value
        self.batch_url = found["SPEECHMATICS_BATCH_URL"]
        self.rt_url = found["SPEECHMATICS_RT_URL"]
        self.port = int(self.batch_url.rsplit(":", 1)[1].split("/")[0])
        return self

    def kill(self) -> None:
        """``kill -9``: no cleanup, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.wait(10)

    def close(self) -> None:
        """Kill it if it still runs, and release its pipes (before a restart, or at the end)."""
        self.kill()
        if self.process is None:
            return
        if self._pump is not None:
            self._pump.join(10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        self.process = None

    def terminate(self) -> None:
        """SIGTERM, as a service manager stops it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        """The exit code, waiting at most ``timeout`` seconds; collects stderr."""
        assert self.process is not None
        code = self.process.wait(timeout=timeout)
        assert self.process.stderr is not None
        if not self.process.stderr.closed:
            self.stderr += self.process.stderr.read()
        return code

    def settings_env(self, api_key: str = "any-key") -> dict[str, str]:
        """Environment variables that point the library and the CLI at this server."""
        return {
            "SPEECHMATICS_API_KEY": api_key,
            "SPEECHMATICS_BATCH_URL": self.batch_url,
            "SPEECHMATICS_RT_URL": self.rt_url,
        }


def _pump(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line)
    lines.put(None)


@contextmanager
def serve_process(*args: str, tmpdir: Path | None = None) -> Iterator[ServeProcess]:
    """A running ``serve`` process, killed on the way out whatever happened.

    Args:
        args: More ``serve`` options.
        tmpdir: ``TMPDIR`` for the process, to see which files it leaves behind.
    """
    env = {"TMPDIR": str(tmpdir)} if tmpdir is not None else None
    server = ServeProcess(*args, env=env)
    try:
        yield server.start()
    finally:
        server.close()
