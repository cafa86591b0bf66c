"""A real capture device on machines without a sound card: a private PulseAudio null sink.

PortAudio (through ALSA's pulse plugin) records from the default PulseAudio source; here that is
the monitor of a null sink, so whatever ``paplay`` plays into the sink comes out of the
"microphone". Each server gets its own directory, socket and cookie, so parallel test runs and a
desktop's own PulseAudio never meet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SINK = "virt"
"""The null sink's name; its monitor is the default input."""

_STARTUP_DEADLINE_SECONDS = 20.0


def missing_tools() -> list[str]:
    """The PulseAudio programs this helper needs that are not installed."""
    return [tool for tool in ("pulseaudio", "pactl", "paplay") if shutil.which(tool) is None]


class VirtualMicrophone:
    """A running private PulseAudio server, and how clients reach it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "native"
        self.log = directory / "pulseaudio.log"
        self.client_env = {
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_COOKIE": str(directory / "home" / ".config" / "pulse" / "cookie"),
        }
        """Variables that point PulseAudio clients (libpulse, paplay, ALSA's plugin) here."""

    def play(self, wav: Path) -> subprocess.Popen[bytes]:
        """Start playing ``wav`` into the sink, i.e. into the microphone; the caller waits."""
        return subprocess.Popen(
            ["paplay", f"--device={SINK}", str(wav)],
            env={**os.environ, **self.client_env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _server_env(self) -> dict[str, str]:
        for name in ("home", "xdg", "run", "state"):
            (self.directory / name).mkdir(mode=0o700, exist_ok=True)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.directory / "home"),
            "XDG_RUNTIME_DIR": str(self.directory / "xdg"),
            "PULSE_RUNTIME_PATH": str(self.directory / "run"),
            "PULSE_STATE_PATH": str(self.directory / "state"),
        }

    def _write_config(self) -> Path:
        config = self.directory / "virtual-mic.pa"
        config.write_text(
            f"load-module module-null-sink sink_name={SINK}\n"
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.socket}\n"
            f"set-default-source {SINK}.monitor\n"
            f"set-default-sink {SINK}\n"
        )
        return config

    def start(self) -> subprocess.Popen[bytes]:
        """Start the server in the foreground (so we own its pid) and wait until it answers."""
        with self.log.open("wb") as log:
            server = subprocess.Popen(
                [
                    "pulseaudio",
                    "-n",
                    "-F",
                    str(self._write_config()),
                    "--daemonize=no",
                    "--system=false",
                    "--exit-idle-time=-1",
                    "--use-pid-file=no",
                    "--realtime=no",
                    "--high-priority=no",
                    "--log-target=stderr",
                ],
                env=self._server_env(),
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        try:
            self._wait_until_answering(server)
        except BaseException:
            _stop(server)
            raise
        return server

    def _wait_until_answering(self, server: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + _STARTUP_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"pulseaudio exited: {self.log.read_text()[-2000:]}")
            if self.socket.exists() and self._answers():
                return
            time.sleep(0.05)
        raise RuntimeError(f"pulseaudio did not start: {self.log.read_text()[-2000:]}")

    def _answers(self) -> bool:
        probe = subprocess.run(
            ["pactl", "info"],
            env={**os.environ, **self.client_env},
            capture_output=True,
            check=False,
        )
        return probe.returncode == 0


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@contextmanager
def virtual_microphone(directory: Path) -> Iterator[VirtualMicrophone]:
    """Run a private PulseAudio server in ``directory`` for the duration of the block.

    The caller still has to put :attr:`VirtualMicrophone.client_env` into ``os.environ`` for
    PortAudio in this process to find it.
    """
    mic = VirtualMicrophone(directory)
    server = mic.start()
    try:
        yield mic
    finally:
        _stop(server)
