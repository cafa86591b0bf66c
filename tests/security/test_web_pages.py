"""A server without a key answers programs on this machine, never a web page in a browser.

Any site the user visits could otherwise submit jobs to a keyless server on loopback, stream
to it over a WebSocket (browsers allow that across origins), or read its answers by rebinding
its own name to 127.0.0.1. Browsers give such requests away by their ``Origin`` and ``Host``.
"""

from __future__ import annotations

import aiohttp
import pytest

from speechmatics_modes.local import LocalServer
from tests.local.conftest import scripted_engine

pytestmark = pytest.mark.anyio

KEY = "browser-key-58c0f1d2e3a4b5"


async def status_of(server: LocalServer, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.batch_url}/jobs", headers=headers) as response,
    ):
        return response.status


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Host": "evil.example"},
        {"Host": "rebound.example:8080"},
    ],
)
async def test_a_keyless_server_refuses_web_pages(
    server: LocalServer, headers: dict[str, str]
) -> None:
    assert await status_of(server, headers) == 403
    assert server.stats.jobs_submitted == 0


@pytest.mark.parametrize(
    "headers",
    [{}, {"Origin": "http://localhost:3000"}, {"Host": "localhost"}, {"Origin": "http://[::1]"}],
)
async def test_a_keyless_server_answers_this_machine(
    server: LocalServer, headers: dict[str, str]
) -> None:
    assert await status_of(server, headers) == 200


async def test_a_keyless_server_refuses_a_web_pages_websocket(server: LocalServer) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await http.ws_connect(server.rt_url, headers={"Origin": "https://evil.example"})
    assert caught.value.status == 403


async def test_a_server_with_a_key_leaves_browsers_to_the_key(no_leaks: None) -> None:
    async with LocalServer(engine=scripted_engine(), api_key=KEY) as server:
        page = {"Origin": "https://app.example", "Authorization": f"Bearer {KEY}"}
        assert await status_of(server, page) == 200
        assert await status_of(server, {"Origin": "https://app.example"}) == 401
