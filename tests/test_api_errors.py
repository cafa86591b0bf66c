"""Bad input to the façade gets a clear error, before any I/O where possible, and leaks nothing.

Every test runs against a real :class:`LocalServer` on loopback (the scripted engine: the words
do not matter here) and checks, through the server's counters, what did or did not reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import math
import os
import socket
import struct
import tempfile
import traceback
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple

import anyio
import anyio.from_thread
import pytest
from aiohttp import WSMsgType, web
from pydantic import SecretStr

from speechmatics_modes import (
    AudioFormat,
    AudioSource,
    AudioSourceError,
    AuthenticationError,
    ConfigurationError,
    Final,
    JobFailedError,
    Microphone,
    RetryPolicy,
    ServerError,
    SessionLimitError,
    Settings,
    SpeechmaticsModesError,
    Transcript,
    TranscriptionOptions,
    TranscriptionTimeout,
    TransportError,
    stream,
    transcribe,
    transcribe_many,
    transcribe_sync,
)
from speechmatics_modes._realtime import RealtimeSession
from speechmatics_modes.local import Faults, HttpFailure, LocalServer, SocketFault
from tests.conftest import eventually
from tests.local.conftest import pcm_bytes, scripted_engine, wav_bytes, wav_file

pytestmark = pytest.mark.anyio

CHUNK = 3200
"""100 ms of 16 kHz 16-bit mono."""
HANG_GUARD = 30.0
"""Seconds after which a call counts as hung: far above anything these tests wait for."""
SPOOL_PREFIX = "speechmatics-modes-"
Forced = Literal["batch", "realtime"]
MODES: tuple[Forced, ...] = ("batch", "realtime")


def _fd_targets() -> list[str]:
    targets = []
    for entry in os.scandir("/proc/self/fd"):
        with suppress(OSError):  # the scandir handle itself is gone by now
            targets.append(os.readlink(entry.path))
    return targets


def _open_sockets() -> int:
    return sum(target.startswith("socket:") for target in _fd_targets())


def _temp_files() -> int:
    """Spools in the temp directory, named or unnamed (O_TMPFILE files show only as open fds)."""
    temp = tempfile.gettempdir()
    named = len(list(Path(temp).glob(SPOOL_PREFIX + "*")))
    unnamed = sum(target.startswith(temp + os.sep) for target in _fd_targets())
    return named + unnamed


_NOT_OURS = ("_call_in_runner_task", "RequestHandler.start")
"""pytest's anyio runner; and aiohttp's server-side connection handlers, which belong to the
server: after answering an error before reading an upload, aiohttp lingers up to 10 s
reading the rest, even after LocalServer has exited (a server matter, not the client's)."""


def _running_tasks() -> set[asyncio.Task[object]]:
    return {
        task
        for task in asyncio.all_tasks()
        if not task.done() and not any(name in repr(task.get_coro()) for name in _NOT_OURS)
    }


@pytest.fixture
async def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Fail if a test leaves a task, a socket or a temporary file or directory behind.

    Temporary files go to a directory of this test's own, so spools of other processes on
    the machine (another test run) are not counted as this test's.
    """
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    tasks, sockets, temp_files = _running_tasks(), _open_sockets(), _temp_files()
    yield
    # Closed transports release their sockets a few loop iterations later: give them time.
    assert await eventually(lambda: _open_sockets() <= sockets), "sockets left open"
    assert await eventually(lambda: _temp_files() <= temp_files), "temporary files left behind"
    assert await eventually(lambda: _running_tasks() <= tasks), (
        f"tasks left running: {_running_tasks() - tasks}"
    )


@pytest.fixture
async def server(clean: None) -> AsyncIterator[LocalServer]:
    async with LocalServer(engine=scripted_engine()) as running:
        yield running


def nothing_reached(server: LocalServer) -> bool:
    stats = server.stats
    return stats.http_requests == 0 and stats.jobs_submitted == 0 and stats.sessions_opened == 0


def chunks_of(audio: bytes, size: int = CHUNK) -> Iterator[bytes]:
    for offset in range(0, len(audio), size):
        yield audio[offset : offset + size]


def adpcm_wav() -> bytes:
    """A WAV whose format tag is 2 (MS ADPCM): valid RIFF, but not PCM anyone here decodes."""
    fmt = struct.pack("<HHIIHH", 2, 1, 16_000, 8_000, 256, 4)
    data = bytes(range(256)) * 32
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def spoken(transcript: Transcript) -> list[str]:
    return [word.content.lower() for word in transcript.words if not word.is_punctuation]


def full_text(exc: BaseException) -> str:
    """The error, its causes and their tracebacks, as a user would see them printed."""
    return "".join(traceback.format_exception(exc))


# -- files that are not there, or not audio ------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_missing_file_names_it_and_nothing_reaches_the_server(
    server: LocalServer, tmp_path: Path, mode: Forced
) -> None:
    missing = tmp_path / "nowhere.wav"
    with pytest.raises(AudioSourceError, match=r"nowhere\.wav: no such file"):
        await transcribe(missing, mode, settings=server.settings())
    assert nothing_reached(server)


@pytest.mark.parametrize("mode", MODES)
async def test_a_directory_is_not_audio(server: LocalServer, tmp_path: Path, mode: Forced) -> None:
    with pytest.raises(AudioSourceError, match="is a directory"):
        await transcribe(tmp_path, mode, settings=server.settings())
    assert nothing_reached(server)


@pytest.mark.parametrize("mode", MODES)
async def test_an_empty_file_has_nothing_to_transcribe(
    server: LocalServer, tmp_path: Path, mode: Forced
) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    with pytest.raises(AudioSourceError, match="is empty"):
        await transcribe(empty, mode, settings=server.settings())
    assert nothing_reached(server)


@pytest.mark.parametrize("mode", MODES)
async def test_a_fifo_or_a_device_path_is_refused_without_opening_it(
    server: LocalServer, tmp_path: Path, mode: Forced
) -> None:
    # Opening a FIFO with no writer blocks until one comes: on the event loop it froze the
    # whole program, timeout included. A device like /dev/zero never ends.
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    with anyio.fail_after(HANG_GUARD):
        with pytest.raises(AudioSourceError, match=r"named pipe \(FIFO\), not a regular file"):
            await transcribe(fifo, mode, settings=server.settings(), timeout=5)
        with pytest.raises(AudioSourceError, match="is a device, not a regular file"):
            await transcribe("/dev/zero", mode, settings=server.settings(), timeout=5)
        with pytest.raises(AudioSourceError, match="the path is empty"):
            await transcribe("", mode, settings=server.settings())
    assert nothing_reached(server)


@pytest.mark.parametrize("mode", MODES)
async def test_a_wav_arriving_through_a_pipe_is_transcribed(
    server: LocalServer, mode: Forced
) -> None:
    read_end, write_end = os.pipe()
    audio = wav_bytes(3.0)

    def write_all() -> None:
        with os.fdopen(write_end, "wb") as writer:
            writer.write(audio)

    with os.fdopen(read_end, "rb") as pipe:
        async with anyio.create_task_group() as group:
            group.start_soon(functools.partial(anyio.to_thread.run_sync, write_all))
            with anyio.fail_after(HANG_GUARD):
                transcript = await transcribe(pipe, mode, settings=server.settings())
    direct = await transcribe(audio, mode, settings=server.settings())
    assert spoken(transcript) == spoken(direct)
    assert spoken(direct)


@pytest.mark.parametrize("mode", MODES)
async def test_the_timeout_holds_while_a_callers_pipe_sends_nothing(
    server: LocalServer, mode: Forced
) -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as silent:
        try:
            with anyio.fail_after(HANG_GUARD), pytest.raises(TranscriptionTimeout):
                await transcribe(silent, mode, settings=server.settings(), timeout=0.5)
        finally:
            os.close(write_end)  # the abandoned read sees the end of the pipe and returns


class Undecodable(NamedTuple):
    """A file that is not audio either mode can read, and what each mode says about it."""

    content: bytes
    batch_reason: str
    realtime_reason: str


UNDECODABLE = {
    "text": Undecodable(
        b"these are meeting notes, not a recording\n" * 50, "not audio", "is not a WAV file"
    ),
    "truncated-wav-header": Undecodable(wav_bytes(1.0)[:30], "WAV", "WAV header is truncated"),
    "adpcm-wav": Undecodable(adpcm_wav(), "format tag 0x0002", "format tag 0x0002"),
}


@pytest.fixture(params=list(UNDECODABLE))
def undecodable(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Undecodable]:
    bad = UNDECODABLE[request.param]
    path = tmp_path / "upload.wav"
    path.write_bytes(bad.content)
    return path, bad


async def test_batch_audio_the_server_cannot_decode_fails_the_job_with_its_reasons(
    server: LocalServer, undecodable: tuple[Path, Undecodable]
) -> None:
    path, bad = undecodable
    with anyio.fail_after(HANG_GUARD), pytest.raises(JobFailedError) as caught:
        await transcribe(path, "batch", settings=server.settings())
    error = caught.value
    assert error.job_id is not None
    assert error.job_id in str(error)
    assert error.reasons
    assert bad.batch_reason in error.reasons[0]
    assert server.stats.jobs_submitted == 1


async def test_realtime_audio_that_cannot_be_streamed_fails_before_connecting(
    server: LocalServer, undecodable: tuple[Path, Undecodable]
) -> None:
    path, bad = undecodable
    with pytest.raises(AudioSourceError, match=bad.realtime_reason):
        await transcribe(path, "realtime", settings=server.settings())
    assert nothing_reached(server)


def _pipe_holding(data: bytes) -> IO[bytes]:
    """The read end of a pipe that holds ``data`` (small enough for the pipe's buffer)."""
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as writer:
        writer.write(data)
    return os.fdopen(read_end, "rb")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("through", ["path", "pipe"])
async def test_an_audio_format_contradicting_the_wav_header_is_refused(
    server: LocalServer, tmp_path: Path, mode: Forced, through: str
) -> None:
    path = wav_file(tmp_path, 1.0, rate=8_000, name="eight-khz.wav")
    with contextlib.ExitStack() as stack:
        source = (
            path if through == "path" else stack.enter_context(_pipe_holding(path.read_bytes()))
        )
        with pytest.raises(
            AudioSourceError, match=r"16000 Hz\) contradicts .* \(pcm_s16le, 8000 Hz"
        ):
            await transcribe(
                source,
                mode,
                audio_format=AudioFormat(sample_rate=16_000),
                settings=server.settings(),
            )
    assert nothing_reached(server)


async def test_an_audio_format_agreeing_with_the_wav_header_is_accepted_in_batch(
    server: LocalServer, tmp_path: Path
) -> None:
    path = wav_file(tmp_path, 2.0, rate=8_000, name="eight-khz.wav")
    with anyio.fail_after(HANG_GUARD):
        transcript = await transcribe(
            path.read_bytes(),
            audio_format=AudioFormat(sample_rate=8_000),
            settings=server.settings(),
        )
    assert spoken(transcript) == ["hello", "world"]


# -- iterators ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_an_iterator_of_text_names_the_bad_chunk(server: LocalServer, mode: Forced) -> None:
    chunks: list[Any] = [pcm_bytes(0.1), "not audio"]
    with anyio.fail_after(HANG_GUARD), pytest.raises(AudioSourceError, match="chunk 1 is a str"):
        await transcribe(iter(chunks), mode, settings=server.settings())
    assert server.stats.jobs_submitted == 0
    assert await eventually(lambda: server.stats.sessions_active == 0)


@pytest.mark.parametrize("mode", MODES)
async def test_an_empty_iterator_has_nothing_to_transcribe(
    server: LocalServer, mode: Forced
) -> None:
    with anyio.fail_after(HANG_GUARD), pytest.raises(AudioSourceError, match="empty"):
        await transcribe(iter([]), mode, settings=server.settings())
    assert server.stats.jobs_submitted == 0


async def test_odd_length_chunks_are_realigned_to_whole_samples(server: LocalServer) -> None:
    audio = pcm_bytes(3.0)
    with anyio.fail_after(HANG_GUARD):
        transcript = await transcribe(chunks_of(audio, 3333), settings=server.settings())
    assert spoken(transcript)[:2] == ["hello", "world"]
    assert server.stats.audio_bytes == len(audio)


async def test_an_iterator_that_raises_surfaces_with_the_finals_so_far(
    server: LocalServer,
) -> None:
    unplugged = RuntimeError("microphone unplugged")

    def failing() -> Iterator[bytes]:
        yield from chunks_of(pcm_bytes(2.0))
        raise unplugged

    with anyio.fail_after(HANG_GUARD), pytest.raises(AudioSourceError) as caught:
        await transcribe(failing(), settings=server.settings())
    error = caught.value
    assert error.__cause__ is unplugged
    assert "microphone unplugged" in str(error)
    assert error.partial_transcript is not None
    assert spoken(error.partial_transcript) == ["hello", "world"]
    assert await eventually(lambda: server.stats.sessions_active == 0)


async def test_a_stream_whose_iterator_raises_ends_iteration_with_the_error(
    server: LocalServer,
) -> None:
    async def failing() -> AsyncIterator[bytes]:
        for chunk in chunks_of(pcm_bytes(2.0)):
            yield chunk
        raise OSError("pipe closed")

    finals: list[str] = []

    async def read_all() -> None:
        async with stream(failing(), settings=server.settings()) as events:
            async for event in events:
                if isinstance(event, Final):
                    finals.extend(w.content.lower() for w in event.words if not w.is_punctuation)

    with anyio.fail_after(HANG_GUARD), pytest.raises(AudioSourceError) as caught:
        await read_all()
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.partial_transcript is not None
    assert spoken(caught.value.partial_transcript) == finals == ["hello", "world"]
    assert await eventually(lambda: server.stats.sessions_active == 0)


# -- options that cannot work --------------------------------------------------------------


@pytest.mark.parametrize("timeout", [0, -1.5])
async def test_a_timeout_that_is_not_positive_is_a_configuration_error(
    server: LocalServer, tmp_path: Path, timeout: float
) -> None:
    path = wav_file(tmp_path, 1.0)
    for mode in MODES:
        with pytest.raises(ConfigurationError, match="timeout"):
            await transcribe(path, mode, settings=server.settings(), timeout=timeout)
    with pytest.raises(ConfigurationError, match="timeout"):
        stream(path, settings=server.settings(), timeout=timeout)
    assert nothing_reached(server)


async def test_an_unknown_mode_lists_the_modes(server: LocalServer, tmp_path: Path) -> None:
    path = wav_file(tmp_path, 1.0)
    with pytest.raises(ConfigurationError, match="'auto', 'batch' or 'realtime', got 'live'"):
        await transcribe(path, "live", settings=server.settings())  # type: ignore[arg-type]
    assert nothing_reached(server)


async def test_a_realtime_option_on_a_batch_file_names_the_field(
    server: LocalServer, tmp_path: Path
) -> None:
    path = wav_file(tmp_path, 1.0)
    with pytest.raises(ConfigurationError, match="enable_partials"):
        await transcribe(path, options={"enable_partials": True}, settings=server.settings())
    assert nothing_reached(server)


async def test_batch_options_on_a_realtime_source_are_refused(server: LocalServer) -> None:
    with pytest.raises(ConfigurationError, match="batch_options"):
        await transcribe(
            chunks_of(pcm_bytes(1.0)),
            batch_options={"auto_chapters": True},
            settings=server.settings(),
        )
    assert nothing_reached(server)


async def test_a_microphone_cannot_be_a_batch_job(server: LocalServer) -> None:
    # A device that does not exist: constructing must not open it, so this cannot fail here.
    microphone = Microphone(device="no such device")
    with pytest.raises(AudioSourceError, match="Microphone never finishes"):
        await transcribe(microphone, "batch", settings=server.settings())
    assert nothing_reached(server)


# -- keys and addresses --------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_wrong_key_is_an_authentication_error_that_does_not_repeat_it(
    clean: None, tmp_path: Path, mode: Forced
) -> None:
    path = wav_file(tmp_path, 1.0)
    async with LocalServer(engine=scripted_engine(), api_key="right-key-1234") as server:
        settings = server.settings().model_copy(update={"api_key": SecretStr("wrong-key-5678")})
        with anyio.fail_after(HANG_GUARD), pytest.raises(AuthenticationError) as caught:
            await transcribe(path, mode, settings=settings)
        assert server.stats.unauthorised == 1
        assert server.stats.jobs_submitted == server.stats.sessions_started == 0
    printed = full_text(caught.value) + repr(caught.value)
    assert "wrong-key-5678" not in printed
    assert "right-key-1234" not in printed
    assert not caught.value.retryable


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("mode", MODES)
async def test_an_unreachable_url_is_a_retryable_transport_error(
    clean: None, tmp_path: Path, mode: Forced
) -> None:
    path = wav_file(tmp_path, 1.0)
    port = closed_port()
    settings = Settings(
        api_key=SecretStr("any"),
        batch_url=f"http://127.0.0.1:{port}/v2",
        rt_url=f"ws://127.0.0.1:{port}/v2",
        backend="cloud",
    )
    with anyio.fail_after(HANG_GUARD), pytest.raises(TransportError) as caught:
        await transcribe(path, mode, settings=settings, timeout=25)
    assert caught.value.retryable
    assert isinstance(caught.value, OSError)
    assert isinstance(caught.value, SpeechmaticsModesError)


# -- deadlines -----------------------------------------------------------------------------


async def test_a_batch_job_past_the_timeout_is_deleted_on_the_server(
    clean: None, tmp_path: Path
) -> None:
    path = wav_file(tmp_path, 1.0)
    async with LocalServer(engine=scripted_engine(), faults=Faults(job_seconds=60)) as server:
        with anyio.fail_after(HANG_GUARD), pytest.raises(TranscriptionTimeout) as caught:
            await transcribe(path, "batch", settings=server.settings(), timeout=1)
        assert isinstance(caught.value, TimeoutError)
        assert (server.stats.jobs_submitted, server.stats.jobs_deleted) == (1, 1)


@asynccontextmanager
async def fake_realtime_server(frames: list[int], *, ends: bool) -> AsyncIterator[Settings]:
    """A real-time service that starts sessions and acknowledges audio, recording frame sizes.

    With ``ends=False`` it ignores ``EndOfStream``: a service that never sends EndOfTranscript.
    """

    async def session(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            if message.type is WSMsgType.BINARY:
                frames.append(len(message.data))
                await socket.send_json({"message": "AudioAdded", "seq_no": len(frames)})
            elif message.type is WSMsgType.TEXT:
                kind = json.loads(message.data)["message"]
                if kind == "StartRecognition":
                    await socket.send_json({"message": "RecognitionStarted", "id": "fake"})
                elif kind == "EndOfStream" and ends:
                    await socket.send_json({"message": "EndOfTranscript"})
        return socket

    app = web.Application()
    app.router.add_get("/v2", session)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield Settings(
            api_key=SecretStr("any"),
            batch_url=f"http://127.0.0.1:{port}/v2",
            rt_url=f"ws://127.0.0.1:{port}/v2",
            backend="cloud",
        )
    finally:
        await runner.cleanup()


async def aiter_of(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def test_a_service_that_never_ends_the_transcript_times_out_instead_of_hanging(
    clean: None,
) -> None:
    frames: list[int] = []
    async with fake_realtime_server(frames, ends=False) as settings:
        session = RealtimeSession(
            settings=settings,
            options=TranscriptionOptions(),
            audio_format=AudioFormat(),
            end_of_transcript_timeout=1.0,
        )
        with anyio.fail_after(HANG_GUARD), pytest.raises(TranscriptionTimeout, match="EndOfTr"):
            await session.run(aiter_of(chunks_of(pcm_bytes(0.5))))
    assert sum(frames) == len(pcm_bytes(0.5))


async def test_the_callers_timeout_bounds_a_realtime_call_on_a_silent_service(
    clean: None,
) -> None:
    async with fake_realtime_server([], ends=False) as settings:
        with anyio.fail_after(HANG_GUARD), pytest.raises(TranscriptionTimeout) as caught:
            await transcribe(chunks_of(pcm_bytes(0.5)), settings=settings, timeout=1.5)
    assert caught.value.partial_transcript is not None


async def test_odd_length_chunks_reach_the_service_as_whole_samples(clean: None) -> None:
    frames: list[int] = []
    audio = pcm_bytes(1.0) + b"\x00"  # and a stray byte at the very end
    async with fake_realtime_server(frames, ends=True) as settings:
        with anyio.fail_after(HANG_GUARD):
            await transcribe(chunks_of(audio, 3333), settings=settings)
    assert all(size % 2 == 0 for size in frames), frames
    assert sum(frames) == len(audio) - 1


async def test_the_timeout_bounds_a_batch_call_that_keeps_retrying(
    clean: None, tmp_path: Path
) -> None:
    path = wav_file(tmp_path, 1.0)
    settings = Settings(
        api_key=SecretStr("any"), batch_url=f"http://127.0.0.1:{closed_port()}/v2", backend="cloud"
    )
    with anyio.fail_after(HANG_GUARD), pytest.raises(TranscriptionTimeout, match="within 1 s"):
        await transcribe(path, "batch", settings=settings, timeout=1)


# -- cancellation --------------------------------------------------------------------------


@pytest.mark.parametrize("spooled", [False, True], ids=["file", "spooled-iterator"])
async def test_cancelling_a_batch_transcription_deletes_its_job(
    clean: None, tmp_path: Path, spooled: bool
) -> None:
    path = wav_file(tmp_path, 1.0)
    source: AudioSource = chunks_of(pcm_bytes(1.0)) if spooled else path
    call = functools.partial(transcribe, source, "batch", audio_format=AudioFormat())
    async with LocalServer(engine=scripted_engine(), faults=Faults(job_seconds=60)) as server:
        with anyio.fail_after(HANG_GUARD):
            async with anyio.create_task_group() as group:
                group.start_soon(functools.partial(call, settings=server.settings()))
                assert await eventually(lambda: server.stats.jobs_submitted == 1)
                group.cancel_scope.cancel()
        assert server.stats.jobs_deleted == 1


async def test_cancelling_while_a_job_s_id_is_on_its_way_still_deletes_the_job(
    clean: None, tmp_path: Path
) -> None:
    """The job exists, but the answer with its id is held back a second: the cancelled call
    waits for it and deletes the job (before, the job was left running)."""
    call = functools.partial(transcribe, wav_file(tmp_path, 1.0), "batch")
    faults = Faults(job_seconds=60, http_latency=1.0)
    async with LocalServer(engine=scripted_engine(), faults=faults) as server:
        with anyio.fail_after(HANG_GUARD):
            async with anyio.create_task_group() as group:
                group.start_soon(functools.partial(call, settings=server.settings()))
                assert await eventually(lambda: server.stats.jobs_submitted == 1)
                group.cancel_scope.cancel()
        assert server.stats.jobs_deleted == 1


async def endless_silence() -> AsyncIterator[bytes]:
    while True:
        yield pcm_bytes(0.1)
        await anyio.sleep(0.01)


async def test_cancelling_a_stream_closes_its_session(server: LocalServer) -> None:
    with anyio.fail_after(HANG_GUARD), anyio.CancelScope() as scope:
        async with stream(endless_silence(), settings=server.settings()) as events:
            async for event in events:
                if isinstance(event, Final):
                    scope.cancel()
    assert scope.cancelled_caught
    assert server.stats.sessions_started == 1
    assert await eventually(lambda: server.stats.sessions_active == 0)


# -- transient and fatal service errors ----------------------------------------------------


async def test_status_polls_answered_503_are_retried(clean: None, tmp_path: Path) -> None:
    path = wav_file(tmp_path, 2.0)
    unavailable = HttpFailure(count=2, status=503, retry_after=0, method="GET")
    async with LocalServer(
        engine=scripted_engine(), faults=Faults(http_failure=unavailable)
    ) as server:
        with anyio.fail_after(HANG_GUARD):
            transcript = await transcribe(path, settings=server.settings())
        assert spoken(transcript) == ["hello", "world"]
        assert server.stats.http_failures_injected == 2
        assert server.stats.jobs_submitted == 1


async def test_a_retry_policy_decides_how_many_transient_failures_a_request_rides_out(
    clean: None, tmp_path: Path
) -> None:
    path = wav_file(tmp_path, 2.0)
    unavailable = HttpFailure(count=2, status=503, retry_after=0, method="GET")
    quick = {"backoff_initial": 0.01, "backoff_max": 0.01}
    async with LocalServer(
        engine=scripted_engine(), faults=Faults(http_failure=unavailable)
    ) as server:
        with anyio.fail_after(HANG_GUARD), pytest.raises(ServerError) as caught:
            await transcribe(
                path, settings=server.settings(), retry=RetryPolicy(max_failures=1, **quick)
            )
        assert caught.value.status == 503
        assert server.stats.http_failures_injected == 2
    async with LocalServer(
        engine=scripted_engine(), faults=Faults(http_failure=unavailable)
    ) as server:
        with anyio.fail_after(HANG_GUARD):
            transcript = await transcribe(
                path, settings=server.settings(), retry=RetryPolicy(max_failures=2, **quick)
            )
        assert spoken(transcript) == ["hello", "world"]


async def test_a_retry_policy_for_a_real_time_transcription_is_refused(
    server: LocalServer,
) -> None:
    refused = r"^retry only applies to batch transcription.*mode='batch'$"
    with pytest.raises(ConfigurationError, match=refused):
        await transcribe(chunks_of(pcm_bytes(1.0)), settings=server.settings(), retry=RetryPolicy())
    assert server.stats.sessions_started == 0


async def test_a_429_on_submit_waits_for_retry_after_and_submits_once(
    clean: None, tmp_path: Path
) -> None:
    path = wav_file(tmp_path, 2.0)
    busy = HttpFailure(count=1, status=429, retry_after=2, method="POST")
    async with LocalServer(engine=scripted_engine(), faults=Faults(http_failure=busy)) as server:
        started = anyio.current_time()
        with anyio.fail_after(HANG_GUARD):
            transcript = await transcribe(path, settings=server.settings())
        waited = anyio.current_time() - started
        assert spoken(transcript) == ["hello", "world"]
        assert server.stats.http_failures_injected == 1
        assert server.stats.jobs_submitted == 1
    # Our own first backoff is at most 0.6 s: only Retry-After explains a 2 s wait.
    assert waited >= 2.0


async def test_a_500_on_submit_is_not_retried(clean: None, tmp_path: Path) -> None:
    path = wav_file(tmp_path, 1.0)
    broken = HttpFailure(count=1, status=500, method="POST")
    async with LocalServer(engine=scripted_engine(), faults=Faults(http_failure=broken)) as server:
        with anyio.fail_after(HANG_GUARD), pytest.raises(ServerError) as caught:
            await transcribe(path, settings=server.settings())
        assert caught.value.status == 500
        # The job may exist after a 500: submitting again could bill the audio twice.
        assert server.stats.http_requests == server.stats.http_failures_injected == 1
        assert server.stats.jobs_submitted == 0


async def test_a_session_limit_mid_session_keeps_the_finals_so_far(
    clean: None, tmp_path: Path
) -> None:
    path = wav_file(tmp_path, 6.0, name="long.wav")
    async with LocalServer(engine=scripted_engine(), max_session_seconds=2) as server:
        with anyio.fail_after(HANG_GUARD), pytest.raises(SessionLimitError) as caught:
            await transcribe(path, "realtime", settings=server.settings(), pace=1.0)
        assert await eventually(lambda: server.stats.sessions_active == 0)
    error = caught.value
    assert error.error_type == "session_timeout"
    assert error.partial_transcript is not None
    assert spoken(error.partial_transcript) == ["hello", "world"]


async def test_a_dropped_connection_mid_session_is_a_retryable_transport_error(
    clean: None, tmp_path: Path
) -> None:
    path = wav_file(tmp_path, 6.0, name="long.wav")
    drop = SocketFault(after_seconds=2.0)
    async with LocalServer(engine=scripted_engine(), faults=Faults(socket=drop)) as server:
        with anyio.fail_after(HANG_GUARD), pytest.raises(TransportError) as caught:
            await transcribe(path, "realtime", settings=server.settings(), pace=1.0)
        assert server.stats.sessions_faulted == 1
    assert caught.value.retryable
    assert caught.value.partial_transcript is not None
    assert spoken(caught.value.partial_transcript) == ["hello", "world"]


# -- the synchronous door ------------------------------------------------------------------


def test_transcribe_sync_works_from_plain_synchronous_code(tmp_path: Path) -> None:
    path = wav_file(tmp_path, 2.0)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(LocalServer(engine=scripted_engine())) as server,
    ):
        transcript = transcribe_sync(path, settings=server.settings(), timeout=HANG_GUARD)
    assert spoken(transcript) == ["hello", "world"]


async def test_transcribe_sync_refuses_to_block_a_running_loop(server: LocalServer) -> None:
    with pytest.raises(ConfigurationError, match="await transcribe"):
        transcribe_sync(iter([pcm_bytes(0.1)]), settings=server.settings())
    assert nothing_reached(server)


async def test_a_session_refused_at_the_start_raises_the_error_the_service_named() -> None:
    """quota_exceeded before RecognitionStarted: a retryable SessionLimitError, not a bare error."""
    hold = anyio.Event()

    async def held() -> AsyncIterator[bytes]:
        yield pcm_bytes(0.5)
        with anyio.fail_after(30):
            await hold.wait()

    async with LocalServer(engine=scripted_engine(), max_sessions=1) as server:
        settings = server.settings()
        async with stream(held(), settings=settings) as first:
            await first.get_speakers()  # the first session has started and holds the slot
            with pytest.raises(SessionLimitError) as caught:
                await transcribe([pcm_bytes(0.5)], settings=settings)
            hold.set()
            async for _ in first:
                pass
    assert caught.value.error_type == "quota_exceeded"
    assert caught.value.retryable


# -- every wrong input is a typed, named error (issue 12, item 9) ----------------------------


@pytest.mark.parametrize("pace", [0, -1, math.nan, math.inf, "1"])
async def test_a_pace_that_is_not_a_positive_number_is_a_configuration_error(
    server: LocalServer, pace: object
) -> None:
    with pytest.raises(ConfigurationError, match="pace must be a positive number"):
        await transcribe(wav_bytes(1.0), "realtime", settings=server.settings(), pace=pace)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="pace must be a positive number"):
        stream(wav_bytes(1.0), settings=server.settings(), pace=pace)  # type: ignore[arg-type]
    assert nothing_reached(server)


@pytest.mark.parametrize("mode", MODES)
async def test_arguments_of_the_wrong_type_are_configuration_errors(
    server: LocalServer, mode: Forced
) -> None:
    with pytest.raises(ConfigurationError, match="timeout must be a positive number"):
        await transcribe(wav_bytes(1.0), mode, settings=server.settings(), timeout="5")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="settings must be a Settings"):
        await transcribe(wav_bytes(1.0), mode, settings="x")  # type: ignore[arg-type]
    closed = io.BytesIO(wav_bytes(1.0))
    closed.close()
    with pytest.raises(AudioSourceError, match="is closed"):
        await transcribe(closed, mode, settings=server.settings())
    assert nothing_reached(server)


@pytest.mark.parametrize("mode", MODES)
async def test_a_source_that_raises_is_an_audio_source_error_in_both_modes(
    server: LocalServer, mode: Forced
) -> None:
    def failing() -> Iterator[bytes]:
        yield pcm_bytes(0.5)
        raise ValueError("the microphone fell off")

    with pytest.raises(AudioSourceError, match="raised ValueError: the microphone fell off"):
        await transcribe(failing(), mode, settings=server.settings())
    assert server.stats.jobs_submitted == 0


@pytest.mark.parametrize("mode", MODES)
async def test_a_sources_system_exit_arrives_as_itself(server: LocalServer, mode: Forced) -> None:
    def exiting() -> Iterator[bytes]:
        yield pcm_bytes(0.5)
        raise SystemExit(3)

    with pytest.raises(SystemExit) as caught:
        await transcribe(exiting(), mode, settings=server.settings())
    assert caught.value.code == 3


@pytest.mark.parametrize("mode", MODES)
async def test_a_wav_with_no_samples_is_refused_the_same_way_in_both_modes(
    server: LocalServer, mode: Forced
) -> None:
    with pytest.raises(AudioSourceError, match="nothing to transcribe"):
        await transcribe(wav_bytes(0.0), mode, settings=server.settings())
    assert server.stats.jobs_submitted == 0


async def test_a_chunk_larger_than_a_message_is_sent_as_several(server: LocalServer) -> None:
    audio = pcm_bytes(200.0)  # 6.4 MB in one chunk; the service refuses messages of 1 MiB
    whole = await transcribe([audio], "realtime", settings=server.settings())
    in_pieces = await transcribe(chunks_of(audio, 64_000), "realtime", settings=server.settings())
    assert spoken(whole) == spoken(in_pieces)
    assert spoken(whole)


async def test_bulk_refuses_one_path_for_a_list_and_a_journal_it_cannot_open(
    server: LocalServer, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match=r"write transcribe_many\(\['a.wav'\]\)"):
        async for _ in transcribe_many("a.wav", settings=server.settings()):
            pass
    with pytest.raises(ConfigurationError, match="cannot open it as a SQLite file"):
        async for _ in transcribe_many([tmp_path / "a.wav"], journal=tmp_path):
            pass
    assert nothing_reached(server)
