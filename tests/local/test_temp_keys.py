"""Temporary keys (``POST /v1/api_keys``), minted and used by the SDKs and by raw clients."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import pytest
from speechmatics import batch, rt

from speechmatics_modes import Settings, transcribe
from speechmatics_modes.local import LocalServer
from tests.local.conftest import scripted_engine, wav_bytes, wav_file

pytestmark = pytest.mark.anyio

KEY = "a-long-lived-key-of-the-server"


@pytest.fixture
async def keyed(no_leaks: None) -> AsyncIterator[LocalServer]:
    async with LocalServer(engine=scripted_engine(), api_key=KEY) as running:
        yield running


async def mint(server: LocalServer, kind: str, body: Any, key: str = KEY) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{server.management_url}/v1/api_keys?type={kind}",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
        ) as response,
    ):
        return response.status, await response.json()


async def test_the_rt_sdk_connects_with_a_key_it_minted(keyed: LocalServer) -> None:
    auth = rt.JWTAuth(KEY, ttl=60, mp_url=keyed.management_url)
    finals: list[str] = []
    async with rt.AsyncClient(auth, url=keyed.rt_url) as client:
        client.on(rt.ServerMessageType.ADD_TRANSCRIPT, lambda m: finals.append(m["results"]))
        await client.transcribe(
            io.BytesIO(wav_bytes(2)), transcription_config=rt.TranscriptionConfig()
        )
    assert finals
    assert keyed.stats.unauthorised == 0


async def test_the_batch_sdk_submits_with_a_key_it_minted(
    keyed: LocalServer, tmp_path: Any
) -> None:
    audio = wav_file(tmp_path, 2)
    auth = batch.JWTAuth(KEY, ttl=60, mp_url=keyed.management_url)
    async with batch.AsyncClient(auth, url=keyed.batch_url) as client:
        text = await client.transcribe(
            str(audio),
            transcription_config=batch.TranscriptionConfig(language="en"),
            format_type=batch.FormatType.TXT,
            wait=10,
        )
    assert text == "Hello world."


async def test_a_temporary_key_opens_only_its_api_and_only_until_it_expires(
    keyed: LocalServer,
) -> None:
    status, body = await mint(keyed, "rt", {"ttl": 1})
    assert (status, body["apikey_id"]) == (201, None)
    temporary = body["key_value"]
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{keyed.rt_url}?jwt={temporary}") as socket:
            await socket.close()
        headers = {"Authorization": f"Bearer {temporary}"}
        async with http.get(f"{keyed.batch_url}/jobs", headers=headers) as response:
            assert response.status == 401  # an rt key does not open batch
        assert (await mint(keyed, "rt", {"ttl": 60}, key=temporary))[0] == 401
        await anyio.sleep(1.2)  # past the key's ttl
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{keyed.rt_url}?jwt={temporary}")
        assert refused.value.status == 401


@pytest.mark.parametrize(
    ("kind", "body", "detail"),
    [("voice", {"ttl": 60}, "type must be"), ("rt", {"ttl": 0}, "ttl"), ("rt", [1], "ttl")],
)
async def test_bad_mint_requests_are_400(
    keyed: LocalServer, kind: str, body: Any, detail: str
) -> None:
    status, answer = await mint(keyed, kind, body)
    assert (status, answer["code"]) == (400, 400)
    assert detail in answer["detail"]


async def test_the_facade_sends_the_long_lived_key_only_to_the_key_endpoint(
    keyed: LocalServer,
) -> None:
    settings = keyed.settings().model_copy(update={"temporary_keys": True})
    pcm = wav_bytes(4)[44:]

    async def chunks() -> AsyncIterator[bytes]:
        for offset in range(0, len(pcm), 3200):
            yield pcm[offset : offset + 3200]

    transcript = await transcribe(chunks(), settings=settings)
    assert transcript.text == "Hello world. How are you."
    assert keyed.stats.temporary_keys_minted == 1
    plain = await transcribe(chunks(), settings=keyed.settings())
    assert plain.text == transcript.text
    assert keyed.stats.temporary_keys_minted == 1


def test_temporary_keys_need_a_key_to_mint_them_with() -> None:
    with pytest.raises(ValueError, match="temporary_keys needs an api_key"):
        Settings(temporary_keys=True)
