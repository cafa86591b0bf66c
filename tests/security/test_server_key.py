"""The server's key: long enough off loopback, and never written to the access log."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from speechmatics_modes import ConfigurationError
from speechmatics_modes.local import LocalServer
from tests.local.conftest import scripted_engine

pytestmark = pytest.mark.anyio

CANARY = "canary-key-5f0c2a9e7d1b"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_a_short_key_is_refused_off_loopback(host: str) -> None:
    with pytest.raises(ConfigurationError, match="at least 16 characters"):
        LocalServer(host=host, api_key="fifteen-chars..")


def test_a_short_key_is_fine_on_loopback() -> None:
    LocalServer(api_key="short")


async def test_the_access_log_masks_a_key_in_the_query(
    no_leaks: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    async with (
        LocalServer(engine=scripted_engine(), api_key=CANARY) as server,
        aiohttp.ClientSession() as http,
    ):
        for key in (CANARY, "wrong-key"):
            async with http.get(f"{server.batch_url}/jobs", params={"jwt": key}) as response:
                await response.read()
    lines = [record.getMessage() for record in caplog.records if record.name == "aiohttp.access"]
    assert len(lines) == 2
    assert all("/v2/jobs?jwt=" in line for line in lines)
    assert CANARY not in caplog.text
    assert "wrong-key" not in caplog.text
