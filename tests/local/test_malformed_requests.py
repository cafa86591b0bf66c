"""Malformed requests get a 4xx in the API's JSON shape with the reason, never a 500.

The requests are written byte by byte on a raw socket: client libraries refuse to send most of
them (a non-UTF-8 header, a multipart body that does not match its boundary).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import pytest

from speechmatics_modes.local import LocalServer
from tests.local.conftest import scripted_engine

pytestmark = pytest.mark.anyio

DEEP = "[" * 100_000 + "]" * 100_000
MULTIPART_NO_BOUNDARY = b"multipart/form-data"
MULTIPART_WRONG_BOUNDARY = b"multipart/form-data; boundary=z"
CONFIG = json.dumps({"type": "transcription", "transcription_config": {"language": "en"}})


def request(method: str, path: str, headers: dict[str, bytes], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close"]
    lines += [name.encode() + b": " + value for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def multipart(boundary: bytes, config: str) -> bytes:
    return (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="config"\r\n\r\n'
        + config.encode()
        + b"\r\n--" + boundary + b'\r\nContent-Disposition: form-data; name="data_file"; '
        b'filename="a.wav"\r\n\r\nRIFF'
        + b"\r\n--" + boundary + b"--\r\n"
    )  # fmt: skip


def submit(body: bytes, content_type: bytes = b"multipart/form-data; boundary=abc") -> bytes:
    return request("POST", "/v2/jobs", {"Content-Type": content_type}, body)


async def exchange(server: LocalServer, raw: bytes) -> tuple[int, str, dict[str, Any]]:
    """Send ``raw``, read the whole answer: status, content type and JSON body."""
    with anyio.fail_after(10):
        async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
            await stream.send(raw)
            answer = b""
            try:
                while chunk := await stream.receive():
                    answer += chunk
            except anyio.EndOfStream:
                pass
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers["Content-Type"], json.loads(body)


@pytest.fixture
async def keyed_server(no_leaks: None) -> AsyncIterator[LocalServer]:
    async with LocalServer(engine=scripted_engine(), api_key="secret") as running:
        yield running


AUTH = {"Authorization": b"Bearer secret"}


@pytest.mark.parametrize(
    ("raw", "status", "error", "detail"),
    [
        (request("GET", "/nothing", AUTH), 404, "Requested product not available", "/nothing"),
        (request("GET", "/v2/agent", AUTH), 404, "Requested product not available", "/v2/agent"),
        (request("PUT", "/v2/jobs", AUTH), 405, "Bad Request", "PUT is not allowed"),
        (request("GET", "/v2", AUTH), 400, "Bad Request", "WebSocket"),
        (
            request("GET", "/v2/jobs", {"Authorization": b"Bearer \xff\xfe"}),
            400,
            "Malformed request",
            "not valid UTF-8",
        ),
        (request("GET", "/v2/jobs", {}), 401, "Permission Denied", "API key"),
    ],
    ids=["unrouted", "other-product", "wrong-method", "not-an-upgrade", "non-utf8-key", "no-key"],
)
async def test_unrouted_and_unreadable_requests_answer_json(
    keyed_server: LocalServer, raw: bytes, status: int, error: str, detail: str
) -> None:
    answer = await exchange(keyed_server, raw)
    assert answer[:2] == (status, "application/json; charset=utf-8")
    assert answer[2]["code"] == status
    assert answer[2]["error"] == error
    assert detail in answer[2]["detail"]


@pytest.mark.parametrize(
    ("raw", "error", "detail"),
    [
        (submit(multipart(b"abc", CONFIG), MULTIPART_WRONG_BOUNDARY), "Malformed", "boundary"),
        (submit(multipart(b"abc", CONFIG), MULTIPART_NO_BOUNDARY), "Malformed", "boundary"),
        (submit(multipart(b"abc", CONFIG)[:70]), "Malformed", "malformed"),
        (submit(multipart(b"abc", DEEP)), "Job rejected", "nested too deeply"),
        (submit(multipart(b"abc", '{"type": ' + "9" * 5000 + "}")), "Job rejected", "digits"),
        (submit(b"not multipart", b"application/json"), "Malformed", "multipart/form-data"),
    ],
    ids=["wrong-boundary", "no-boundary", "truncated", "deep-json", "long-number", "not-multipart"],
)  # fmt: skip
async def test_malformed_submissions_are_400_with_the_reason(
    server: LocalServer, raw: bytes, error: str, detail: str
) -> None:
    status, content_type, body = await exchange(server, raw)
    assert (status, content_type) == (400, "application/json; charset=utf-8")
    assert body["error"].startswith(error)
    assert detail in body["detail"]
    assert server.stats.jobs_submitted == 0


async def test_deep_json_in_start_recognition_is_invalid_message(server: LocalServer) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(server.rt_url) as socket,
    ):
        await socket.send_str(
            '{"message": "StartRecognition", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
        )
        reply = await socket.receive_json(timeout=10)
        closing = await socket.receive(timeout=10)
    assert (reply["message"], reply["type"]) == ("Error", "invalid_message")
    assert "nested too deeply" in reply["reason"]
    assert closing.type is aiohttp.WSMsgType.CLOSE
    assert closing.data == 1003
