"""Fixtures for the local server's tests: scripted servers, WAV bytes, and leak checks."""

from __future__ import annotations

import asyncio
import io
import tempfile
import wave
from collections.abc import AsyncIterator
from pathlib import Path

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
