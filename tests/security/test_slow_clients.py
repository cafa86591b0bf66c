"""Slow, stalled and vanishing clients: bounded in time, and nothing they sent stays on disk."""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from anyio.abc import SocketStream

from speechmatics_modes.local import LocalServer
from tests.conftest import eventually
from tests.local.conftest import scripted_engine, wav_bytes

pytestmark = pytest.mark.anyio

BOUNDARY = "sm-test-boundary"
WAIT = 15.0
"""The longest any test here waits for the server; the server's own bounds are far shorter."""


def upload_head(port: int, declared_length: int) -> bytes:
    """A job upload's request headers and the start of its multipart body."""
    config = '{"type": "transcription", "transcription_config": {"language": "en"}}'
    body_start = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="config"\r\n\r\n{config}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="data_file"; '
        'filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'
    ).encode() + wav_bytes(1)
    headers = (
        f"POST /v2/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {declared_length}\r\n\r\n"
    ).encode()
    return headers + body_start


async def read_until_closed(stream: SocketStream) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    with anyio.fail_after(WAIT):
        while True:
            try:
                received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return received


def job_directories() -> list[Path]:
    """The job directories of every local server of this test (see the ``no_leaks`` fixture)."""
    return list(Path(tempfile.gettempdir()).glob("sm-modes-local-*/*"))


@pytest.fixture
async def strict_server(no_leaks: None) -> AsyncIterator[LocalServer]:
    async with LocalServer(
        engine=scripted_engine(), header_timeout_seconds=0.5, body_timeout_seconds=0.5
    ) as server:
        yield server


async def test_headers_trickled_byte_by_byte_are_cut_off(strict_server: LocalServer) -> None:
    request = f"GET /v2/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: {'a' * 10_000}"
    async with await anyio.connect_tcp("127.0.0.1", strict_server.port) as stream:
        with anyio.fail_after(WAIT):
            for byte in request.encode():
                try:
                    await stream.send(bytes([byte]))
                except (anyio.BrokenResourceError, ConnectionError):
                    break
                await anyio.sleep(0.01)
            else:
                raise AssertionError("the server read slow headers for the whole test")


async def test_a_connection_that_sends_nothing_is_closed(strict_server: LocalServer) -> None:
    async with await anyio.connect_tcp("127.0.0.1", strict_server.port) as stream:
        assert await read_until_closed(stream) == b""


async def test_a_stalled_upload_is_answered_408_and_its_file_removed(
    strict_server: LocalServer,
) -> None:
    head = upload_head(strict_server.port, declared_length=10_000_000)
    async with await anyio.connect_tcp("127.0.0.1", strict_server.port) as stream:
        await stream.send(head)
        answer = await read_until_closed(stream)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert job_directories() == []
    assert strict_server.stats.jobs_submitted == 0


async def test_an_upload_the_client_abandons_leaves_no_file(server: LocalServer) -> None:
    for _ in range(3):
        async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
            await stream.send(upload_head(server.port, declared_length=10_000_000))
            assert await eventually(job_directories, WAIT)  # the server is storing it
    assert await eventually(lambda: not job_directories(), WAIT)
    assert server.stats.jobs_submitted == 0


def test_the_default_upload_limit_is_the_services() -> None:
    # The service rejects a data_file of 1 GB or more (docs.speechmatics.com, batch limits).
    default = inspect.signature(LocalServer).parameters["max_upload_bytes"].default
    assert default == 1024**3


async def test_one_client_cannot_hold_every_connection(no_leaks: None) -> None:
    async with LocalServer(engine=scripted_engine(), max_connections_per_client=3) as server:
        held = [await anyio.connect_tcp("127.0.0.1", server.port) for _ in range(3)]
        try:
            async with await anyio.connect_tcp("127.0.0.1", server.port) as extra:
                assert await read_until_closed(extra) == b""  # closed as it opened
            await held.pop().aclose()
            answer = await _get_jobs(server.port)
            assert answer.startswith(b"HTTP/1.1 200 ")
        finally:
            for stream in held:
                await stream.aclose()


GET_JOBS = b"GET /v2/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


async def _get_jobs(port: int) -> bytes:
    """A GET on a fresh connection, retried while the server has not yet seen a close."""
    with anyio.fail_after(WAIT):
        while True:
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                await stream.send(
                    b"GET /v2/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                )
                answer = await read_until_closed(stream)
            if answer:
                return answer
            await anyio.sleep(0.05)
