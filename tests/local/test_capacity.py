"""Real-time capacity: the server refuses live sessions beyond what its engine keeps up with."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from speechmatics.rt import (
    AsyncClient,
    AudioEncoding,
    AudioFormat,
    ServerMessageType,
    TranscriptionConfig,
    TranscriptionError,
)

from speechmatics_modes import ConfigurationError, SessionLimitError, transcribe
from speechmatics_modes.local import LocalServer, ScriptedEngine
from speechmatics_modes.local._engine import stream_capacity
from speechmatics_modes.local._pocketsphinx import PocketsphinxEngine
from speechmatics_modes.local._whisper import STREAMS_PER_WORKER, WhisperEngine
from tests.local.conftest import SCRIPT, pcm_bytes

pytestmark = pytest.mark.anyio


class OneStreamEngine(ScriptedEngine):
    """A scripted engine that says the machine keeps up with one live stream."""

    max_streams = 1


def one_stream_engine() -> OneStreamEngine:
    scripted = ScriptedEngine.from_text(SCRIPT)
    return OneStreamEngine(scripted.words, pause=scripted.pause)


@asynccontextmanager
async def live_session(server: LocalServer, errors: list[Any]) -> AsyncIterator[AsyncClient]:
    """A started SDK session; every ``Error`` message the server sends lands in ``errors``."""
    async with AsyncClient(api_key="any", url=server.rt_url) as client:
        client.on(ServerMessageType.ERROR, errors.append)
        await client.start_session(
            transcription_config=TranscriptionConfig(language="en"),
            audio_format=AudioFormat(encoding=AudioEncoding.PCM_S16LE, sample_rate=16_000),
        )
        yield client


async def test_sessions_beyond_the_engines_capacity_get_quota_exceeded(no_leaks: None) -> None:
    errors: list[Any] = []
    async with LocalServer(engine=one_stream_engine()) as server:
        async with live_session(server, errors) as first:
            await first.send_audio(pcm_bytes(0.5))
            with pytest.raises(TranscriptionError, match="Concurrent Quota Exceeded"):
                async with live_session(server, errors):
                    pass
            await first.stop_session()
        async with live_session(server, errors) as after_the_first_ended:
            await after_the_first_ended.stop_session()
        assert server.stats.sessions_refused == 1
        assert server.stats.sessions_started == 2
    assert [error["type"] for error in errors] == ["quota_exceeded"]


async def test_our_client_surfaces_the_engines_capacity_as_a_retryable_session_limit(
    no_leaks: None,
) -> None:
    """The refusal above, through this library: ``SessionLimitError``, retryable, typed."""
    errors: list[Any] = []
    async with LocalServer(engine=one_stream_engine()) as server:
        async with live_session(server, errors) as first:
            await first.send_audio(pcm_bytes(0.5))
            with pytest.raises(SessionLimitError) as caught:
                await transcribe([pcm_bytes(0.5)], "realtime", settings=server.settings())
            await first.stop_session()
        assert server.stats.sessions_refused == 1
    assert caught.value.error_type == "quota_exceeded"
    assert caught.value.retryable
    assert "Concurrent Quota Exceeded" in str(caught.value)


async def test_an_explicit_max_sessions_wins_over_the_engines_capacity(no_leaks: None) -> None:
    errors: list[Any] = []
    async with (
        LocalServer(engine=one_stream_engine(), max_sessions=2) as server,
        live_session(server, errors) as first,
        live_session(server, errors) as second,
    ):
        await second.stop_session()
        await first.stop_session()
        assert server.stats.sessions_refused == 0
    assert errors == []


async def test_an_engine_that_states_no_capacity_has_no_limit(no_leaks: None) -> None:
    errors: list[Any] = []
    async with (
        LocalServer(engine=ScriptedEngine.from_text(SCRIPT)) as server,
        live_session(server, errors),
        live_session(server, errors),
        live_session(server, errors),
    ):
        assert server.stats.sessions_started == 3
    assert errors == []


def test_whisper_admits_streams_per_decode_worker_sharing_one_queue() -> None:
    default = WhisperEngine()
    assert 1 <= default.workers <= max(1, os.cpu_count() or 1)
    assert stream_capacity(default) == STREAMS_PER_WORKER * default.workers
    assert WhisperEngine(workers=3).max_streams == 3 * STREAMS_PER_WORKER


def test_pocketsphinx_capacity_scales_with_the_cores() -> None:
    assert stream_capacity(PocketsphinxEngine()) == 2 * (os.cpu_count() or 1)


def test_a_capacity_that_is_not_a_positive_count_is_refused() -> None:
    engine = ScriptedEngine.from_text(SCRIPT)
    for bad in (0, -1, 1.5, True):
        engine.max_streams = bad  # type: ignore[attr-defined]
        with pytest.raises(ConfigurationError, match="max_streams"):
            stream_capacity(engine)
