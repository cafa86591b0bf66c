"""Fixtures for the local server's tests: scripted servers, WAV bytes, and leak checks."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import sys
import tempfile
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NoReturn

import pytest

from speechmatics_modes.local import LocalServer, ScriptedEngine

SCRIPT = "hello world. how are you"


def wav_bytes(seconds: float, rate: int = 16_000) -> bytes:
    """A silent mono 16-bit WAV: the scripted engine only measures audio."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


def wav_file(directory: Path, seconds: float, rate: int = 16_000, *, name: str = "a.wav") -> Path:
    """A silent WAV (see :func:`wav_bytes`) written to ``directory/name``: an upload."""
    path = directory / name
    path.write_bytes(wav_bytes(seconds, rate))
    return path


def pcm_bytes(seconds: float, rate: int = 16_000) -> bytes:
    """Silent raw s16le PCM."""
    return b"\x00\x00" * int(seconds * rate)


def scripted_engine() -> ScriptedEngine:
    return ScriptedEngine.from_text(SCRIPT)


@pytest.fixture
async def no_leaks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Fail if a test leaves tasks or temporary directories behind.

    Temporary files go to a directory of this test's own, so other processes on the machine
    (a parallel test run) cannot make it fail.
    """
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    tasks_before = asyncio.all_tasks()
    yield
    leaked = {
        task
        for task in asyncio.all_tasks() - tasks_before
        if not task.done() and "_call_in_runner_task" not in repr(task.get_coro())
    }
    assert not leaked, f"tasks left running: {leaked}"
    # multiprocessing's forkserver keeps one "pymp-*" directory for the whole process: not ours.
    left = [path.name for path in private_tmp.iterdir() if not path.name.startswith("pymp-")]
    assert not left, f"temporary files left behind: {left}"


@pytest.fixture
async def server(no_leaks: None) -> AsyncIterator[LocalServer]:
    """A server on a free loopback port with the scripted engine."""
    async with LocalServer(engine=scripted_engine()) as running:
        yield running


REQUIRE_CLIENTS = os.environ.get("SPEECHMATICS_MODES_REQUIRE_CLIENTS") == "1"
"""CI sets this: a client that cannot be installed fails the tests instead of skipping them
(read at import, before the hermetic fixture clears SPEECHMATICS_* for each test)."""

CLIENTS_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / (
    "speechmatics-modes-tests"
)
"""Where the official clients are installed once and reused by later runs."""

LEGACY_CLI = "speechmatics-python>=5,<6"
JS_CLIENTS = ("@speechmatics/real-time-client@^8.5", "@speechmatics/batch-client@^5.1")


def missing_client(reason: str) -> NoReturn:
    """Skip (locally) or fail (CI) a test whose official client cannot be installed."""
    if REQUIRE_CLIENTS:
        pytest.fail(f"{reason} (SPEECHMATICS_MODES_REQUIRE_CLIENTS=1)")
    pytest.skip(reason)


def _install(command: list[str], what: str) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        output = getattr(exc, "stderr", b"") or b""
        missing_client(f"cannot install {what}: {exc} {output.decode(errors='replace')[-500:]}")


@pytest.fixture(scope="session")
def legacy_cli() -> Path:
    """The legacy ``speechmatics`` CLI, pip-installed into a virtualenv of its own.

    It cannot share ours: its ``speechmatics`` package shadows the namespace the new SDKs
    (``speechmatics.rt``, ``speechmatics.batch``) live in.
    """
    venv = CLIENTS_CACHE / "legacy-cli"
    cli = venv / "bin" / "speechmatics"
    if not cli.exists():
        _install([sys.executable, "-m", "venv", "--clear", str(venv)], "a virtualenv")
        _install([str(venv / "bin" / "pip"), "install", "-q", LEGACY_CLI], LEGACY_CLI)
    return cli


@pytest.fixture(scope="session")
def js_clients() -> Path:
    """``node_modules`` with the official JS real-time and batch clients, npm-installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing_client("node and npm are needed for the JS clients (apt-get install nodejs npm)")
    prefix = CLIENTS_CACHE / "js"
    modules = prefix / "node_modules"
    if not (modules / "@speechmatics" / "batch-client").exists():
        prefix.mkdir(parents=True, exist_ok=True)
        command = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix)]
        _install([*command, *JS_CLIENTS], " and ".join(JS_CLIENTS))
    return modules
