"""The façade end to end: every kind of source, both modes, against the real local server."""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
from aiohttp import web

from benchmarks._wer import word_error_rate
from speechmatics_modes import (
    AudioFormat,
    EndOfUtterance,
    Final,
    Mode,
    Partial,
    SessionInfo,
    Settings,
    Transcript,
    TranscriptionOptions,
    stream,
    transcribe,
)
from speechmatics_modes.local import LocalServer
from tests.conftest import SYNTHETIC_AUDIO, Clip
from tests.local.conftest import scripted_engine, wav_bytes
from tests.security._origin import origin

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def clip(speech_clips: list[Clip]) -> Clip:
    """One LibriSpeech clip of about 5 s: long enough to carry several partials."""
    return next(c for c in speech_clips if c.path.name == "librispeech-1988-24833-0003.wav")


@pytest.fixture
async def speech_server() -> AsyncIterator[LocalServer]:
    """The local server with its default (real) engine."""
    async with LocalServer() as server:
        yield server


@pytest.fixture
async def scripted_server() -> AsyncIterator[LocalServer]:
    """The local server with the scripted engine: for flow, not words."""
    async with LocalServer(engine=scripted_engine()) as server:
        yield server


def _pcm_of(path: Path) -> bytes:
    return path.read_bytes()[44:]  # the manifest clips have canonical 44-byte headers


async def _async_chunks(data: bytes, size: int = 3200) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _sync_chunks(data: bytes, size: int = 3200) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.slow
async def test_a_file_goes_through_batch_and_matches_the_reference(
    speech_server: LocalServer, clip: Clip
) -> None:
    transcript = await transcribe(clip.path, settings=speech_server.settings())
    assert transcript.mode is Mode.BATCH
    assert transcript.job_id is not None
    assert word_error_rate([clip.reference], [transcript.text]) < 0.5
    assert speech_server.stats.jobs_submitted == 1
    assert speech_server.stats.sessions_opened == 0


@pytest.mark.slow
async def test_an_async_iterator_goes_through_realtime(
    speech_server: LocalServer, clip: Clip
) -> None:
    transcript = await transcribe(
        _async_chunks(_pcm_of(clip.path)), settings=speech_server.settings()
    )
    assert transcript.mode is Mode.REALTIME
    assert len(transcript.session_ids) == 1
    assert word_error_rate([clip.reference], [transcript.text]) < 0.5
    assert speech_server.stats.jobs_submitted == 0


@pytest.mark.slow
async def test_both_modes_hear_the_same_words(speech_server: LocalServer, clip: Clip) -> None:
    settings = speech_server.settings()
    batch = await transcribe(clip.path, settings=settings)
    realtime = await transcribe(clip.path, mode="realtime", settings=settings)
    assert realtime.mode is Mode.REALTIME
    # The same engine behind both, so the words agree closely (streaming cuts differ a little).
    assert word_error_rate([batch.text], [realtime.text]) < 0.35
    assert realtime.words[-1].end <= clip.duration + 0.1


async def test_a_sync_iterator_goes_through_realtime(scripted_server: LocalServer) -> None:
    pcm = wav_bytes(4.0)[44:]
    transcript = await transcribe(_sync_chunks(pcm), settings=scripted_server.settings())
    assert transcript.mode is Mode.REALTIME
    assert transcript.text == "Hello world. How are you."


@pytest.mark.parametrize("kind", ["path", "str", "bytes", "file"])
async def test_finished_audio_of_every_kind_goes_through_batch(
    scripted_server: LocalServer, tmp_path: Path, kind: str
) -> None:
    data = wav_bytes(4.0)
    path = tmp_path / "audio.wav"
    path.write_bytes(data)
    source: object = {
        "path": path,
        "str": str(path),
        "bytes": data,
        "file": io.BytesIO(data),
    }[kind]
    transcript = await transcribe(source, settings=scripted_server.settings())  # type: ignore[arg-type]
    assert transcript.mode is Mode.BATCH
    assert transcript.text == "Hello world. How are you."


async def test_a_url_is_fetched_by_the_service_not_by_us() -> None:
    data = wav_bytes(4.0)

    async def audio(request: web.Request) -> web.Response:
        return web.Response(body=data, content_type="audio/wav")

    async with (
        origin({"/audio.wav": audio}) as files,
        LocalServer(engine=scripted_engine(), allow_fetch_from=["127.0.0.1"]) as server,
    ):
        transcript = await transcribe(files.url("/audio.wav"), settings=server.settings())
    assert transcript.mode is Mode.BATCH
    assert transcript.text == "Hello world. How are you."
    assert len(files.seen) == 1  # by the server's fetcher: we uploaded nothing


async def test_a_stream_forced_to_batch_is_spooled_and_uploaded(
    scripted_server: LocalServer,
) -> None:
    pcm = wav_bytes(4.0)[44:]
    transcript = await transcribe(
        _async_chunks(pcm),
        mode="batch",
        audio_format=AudioFormat(),
        settings=scripted_server.settings(),
    )
    assert transcript.mode is Mode.BATCH
    assert transcript.text == "Hello world. How are you."


async def test_mode_auto_is_logged_and_recorded(
    scripted_server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="speechmatics_modes")
    transcript = await transcribe(wav_bytes(4.0), settings=scripted_server.settings())
    assert transcript.mode is Mode.BATCH
    assert "mode=auto: transcribing bytes in batch mode" in caplog.text


async def test_stream_yields_typed_events_in_protocol_order(scripted_server: LocalServer) -> None:
    options = TranscriptionOptions(
        enable_partials=True, conversation_config={"end_of_utterance_silence_trigger": 0.5}
    )
    pcm = wav_bytes(4.0)[44:]
    async with stream(
        _async_chunks(pcm), options=options, settings=scripted_server.settings()
    ) as events:
        received = [event async for event in events]
    assert isinstance(received[0], SessionInfo)
    kinds = [type(event) for event in received]
    assert Partial in kinds
    assert Final in kinds
    assert EndOfUtterance in kinds
    assert kinds.index(Partial) < kinds.index(Final)
    finals = [event for event in received if isinstance(event, Final)]
    assert events.transcript == Transcript.model_validate(events.transcript.model_dump())
    assert " ".join(f.text for f in finals).replace(" .", ".") == events.transcript.text


@pytest.mark.slow
async def test_pace_one_never_sends_ahead_of_real_time(
    speech_server: LocalServer, clip: Clip
) -> None:
    """A word cannot be final before its audio was sent: at pace 1, not before its time.

    A lower bound only, so a slow machine cannot fail it.
    """
    started = anyio.current_time()
    async with stream(clip.path, settings=speech_server.settings(), pace=1.0) as events:
        async for event in events:
            if isinstance(event, Final) and event.words:
                assert anyio.current_time() - started >= event.end - 0.05
    assert events.transcript.words
    assert speech_server.stats.audio_bytes == clip.path.stat().st_size - 44


async def test_settings_backend_local_starts_a_server_on_demand() -> None:
    transcript = await transcribe(wav_bytes(2.0), settings=Settings(backend="local"))
    assert transcript.mode is Mode.BATCH
    assert transcript.words == ()  # silence: the real engine hears nothing


async def test_headerless_pcm_with_a_format_is_uploaded_as_wav(
    scripted_server: LocalServer, tmp_path: Path
) -> None:
    """The batch API needs a container: raw PCM described by an AudioFormat gets a WAV header."""
    pcm = wav_bytes(4.0, rate=8_000)[44:]
    raw = tmp_path / "call.raw"
    raw.write_bytes(pcm)
    for source in (pcm, raw):
        transcript = await transcribe(
            source,  # type: ignore[arg-type]
            mode="batch",
            audio_format=AudioFormat(sample_rate=8_000),
            settings=scripted_server.settings(),
        )
        assert transcript.text == "Hello world. How are you."
    assert scripted_server.stats.jobs_refused == 0


NOT_FOR_BATCH = (
    "numpy",
    "pyaudio",
    "pydantic_settings",
    "speechmatics.rt",
    "speechmatics_modes._cli",
    "speechmatics_modes._microphone",
    "speechmatics_modes._realtime",
    "speechmatics_modes._stream._rolling",
    "speechmatics_modes.local",
    "websockets",
)
"""What a batch job's process must not import: the real-time side, the microphone, the server,
the CLI."""


async def test_a_batch_job_imports_nothing_of_real_time(scripted_server: LocalServer) -> None:
    """A whole batch job in a process of its own, as a script would run it."""
    settings = scripted_server.settings()
    assert settings.api_key is not None
    environment = {
        **os.environ,
        "SPEECHMATICS_API_KEY": settings.api_key.get_secret_value(),
        "SPEECHMATICS_BATCH_URL": settings.batch_url,
        "SPEECHMATICS_RT_URL": settings.rt_url,
    }
    probe = (
        "import sys, speechmatics_modes as sm; "
        f"words = sm.transcribe_sync({str(SYNTHETIC_AUDIO / 'espeak-hello-world.wav')!r}).words; "
        "print(len(words), *sorted(sys.modules))"
    )
    with anyio.fail_after(60):
        done = await anyio.run_process([sys.executable, "-c", probe], env=environment)
    count, *loaded = done.stdout.decode().split()
    assert int(count) > 0
    assert "speechmatics.batch" in loaded
    unwanted = [name for name in loaded if name.startswith(NOT_FOR_BATCH)]
    assert not unwanted, unwanted
