"""Testing an application against real Speechmatics protocol traffic, offline.

With speechmatics-modes installed, pytest loads its plugin: the fixtures below need no import
and no conftest.py. Run: ``pytest examples/testing``.
"""

from __future__ import annotations

import wave
from pathlib import Path

import pytest
from my_app import caption

from speechmatics_modes import ServerError, Settings
from speechmatics_modes.local import Faults, HttpFailure, LocalServer

pytestmark = pytest.mark.anyio  # the fixtures are async; anyio runs them on asyncio


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """Three seconds of silence: the default scripted engine hears "hello world." in anything."""
    path = tmp_path / "recording.wav"
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16_000)
        writer.writeframes(b"\x00\x00" * 48_000)
    return path


async def test_caption(recording: Path, speechmatics_settings: Settings) -> None:
    assert await caption(recording, speechmatics_settings) == "Hello world."


@pytest.mark.speechmatics(faults=Faults(http_failure=HttpFailure(count=2, status=503)))
async def test_caption_rides_out_a_busy_service(
    recording: Path, speechmatics_settings: Settings, speechmatics_server: LocalServer
) -> None:
    assert await caption(recording, speechmatics_settings) == "Hello world."
    assert speechmatics_server.stats.http_failures_injected == 2  # both were met, and retried


async def test_caption_reports_a_broken_service(
    recording: Path, speechmatics_settings: Settings, speechmatics_server: LocalServer
) -> None:
    speechmatics_server.faults = Faults(http_failure=HttpFailure(count=1000, status=500))
    with pytest.raises(ServerError):
        await caption(recording, speechmatics_settings)
