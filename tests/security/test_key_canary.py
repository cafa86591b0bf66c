"""A canary key, every logger at DEBUG: it must not appear anywhere, in batch, real-time or CLI.

Each test also checks that the place the key used to leak (the WebSocket handshake headers that
``websockets.client`` logs) was logged, masked: a test that saw no log line could not fail.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from anyio.from_thread import start_blocking_portal

from speechmatics_modes import transcribe
from speechmatics_modes._cli import main
from speechmatics_modes.local import LocalServer
from tests.local.conftest import scripted_engine, wav_bytes, wav_file

CANARY = "canary-5e1d7c3a9b2f40e6"
HANDSHAKE_MASKED = "Authorization: Bearer <redacted>"


def _no_canary(text: str) -> None:
    assert CANARY not in text
    assert CANARY[8:] not in text  # nor a tail of it


@pytest.mark.anyio
async def test_batch_and_realtime_never_log_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with LocalServer(engine=scripted_engine(), api_key=CANARY) as server:
        settings = server.settings()
        batch = await transcribe(wav_bytes(2), settings=settings, mode="batch")
        live = await transcribe(wav_bytes(2), settings=settings, mode="realtime")
    assert batch.text == live.text
    assert batch.text
    _no_canary(caplog.text)
    assert HANDSHAKE_MASKED in caplog.text


def test_the_command_line_never_logs_the_key(
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    audio = wav_file(tmp_path, 2)
    with start_blocking_portal("asyncio") as portal:
        server = LocalServer(engine=scripted_engine(), api_key=CANARY)
        with portal.wrap_async_context_manager(server):
            monkeypatch.setenv("SPEECHMATICS_API_KEY", CANARY)
            monkeypatch.setenv("SPEECHMATICS_BATCH_URL", server.batch_url)
            monkeypatch.setenv("SPEECHMATICS_RT_URL", server.rt_url)
            codes = [
                main(["--verbose", "transcribe", str(audio), "--mode", mode])
                for mode in ("batch", "realtime")
            ]
    out, err = capsys.readouterr()
    assert codes == [0, 0], err
    _no_canary(out + err + caplog.text)
    assert HANDSHAKE_MASKED in caplog.text
