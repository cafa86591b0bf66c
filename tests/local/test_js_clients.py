"""The official JS clients (``@speechmatics/real-time-client``, ``@speechmatics/batch-client``).

They run unchanged under Node, npm-installed as a user would, driven by the small scripts in
``tests/js/`` against :class:`LocalServer` with the scripted engine.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import numpy as np
import pytest

from speechmatics_modes.local import LocalServer
from tests.local.conftest import scripted_engine, wav_bytes, wav_file
from tests.local.test_formats import ENCODINGS, encode

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(600)]

KEY = "a-long-lived-key-of-the-server"
SCRIPTS = Path(__file__).parents[1] / "js"
SENTENCES = "Hello world. How are you."


@pytest.fixture
async def server(no_leaks: None) -> AsyncIterator[LocalServer]:
    async with LocalServer(engine=scripted_engine(), api_key=KEY) as running:
        yield running


async def node(script: str, js_clients: Path, **env: str) -> Any:
    """Run one of the scripts; the JSON it prints."""
    node_path = shutil.which("node")
    assert node_path is not None
    environment = {**os.environ, "SM_NODE_MODULES": str(js_clients), **env}
    with anyio.fail_after(120):
        done = await anyio.run_process(
            [node_path, str(SCRIPTS / script)], env=environment, check=False
        )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return json.loads(done.stdout)


async def temporary_key(server: LocalServer) -> str:
    """What a browser app's backend does: mint a short-lived real-time key."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{server.management_url}/v1/api_keys?type=rt",
            json={"ttl": 60},
            headers={"Authorization": f"Bearer {KEY}"},
        ) as response,
    ):
        assert response.status == 201
        key: str = (await response.json())["key_value"]
        return key


def final_text(messages: list[dict[str, Any]]) -> str:
    finals = [m["metadata"]["transcript"] for m in messages if m["message"] == "AddTranscript"]
    return " ".join(finals).replace(" .", ".")


@pytest.mark.parametrize(
    ("audio_format", "suffix"), [("file", "wav"), ("raw", "wav"), ("file", "mp3")]
)
async def test_real_time_client_file_and_raw_audio(
    js_clients: Path, server: LocalServer, tmp_path: Path, audio_format: str, suffix: str
) -> None:
    audio = tmp_path / f"speech.{suffix}"
    if suffix == "mp3":
        encode([np.zeros(5 * 16_000, dtype=np.int16)], audio, ENCODINGS[0])
    else:
        audio.write_bytes(wav_bytes(5))
    messages = await node(
        "realtime.mjs",
        js_clients,
        SM_RT_URL=server.rt_url,
        SM_JWT=await temporary_key(server),
        SM_AUDIO=str(audio),
        SM_AUDIO_FORMAT=audio_format,
    )
    kinds = [message["message"] for message in messages]
    assert kinds[0] == "RecognitionStarted"
    assert kinds[-1] == "EndOfTranscript"
    if suffix == "wav":  # compressed audio may decode only after the last chunk: no partials
        assert "AddPartialTranscript" in kinds
    text = final_text(messages)
    assert text.replace(".", "").lower().split() == ["hello", "world", "how", "are", "you"]
    assert all(
        "speaker" not in r["alternatives"][0] for m in messages for r in m.get("results", [])
    )
    assert server.stats.unauthorised == 0


async def test_batch_client_formats_and_error_bodies(
    js_clients: Path, server: LocalServer, tmp_path: Path
) -> None:
    audio = wav_file(tmp_path, 5, name="speech.wav")
    got = await node(
        "batch.mjs", js_clients, SM_BATCH_URL=server.batch_url, SM_API_KEY=KEY, SM_AUDIO=str(audio)
    )
    assert got["json"]["job"]["duration"] == 5
    assert {r["alternatives"][0]["speaker"] for r in got["json"]["results"]} == {"S1"}
    assert got["txt"].strip() == f"SPEAKER: S1\n{SENTENCES}"
    assert got["srt"].startswith("1\n00:00:00,500 --> ")
    assert got["listed"] == 1
    errors = got["errors"]
    # Each error parsed into the client's SpeechmaticsResponseError: JSON, with an error name
    # from the API's list (anything else would be a SpeechmaticsUnexpectedResponse).
    assert {name: error["name"] for name, error in errors.items()} == dict.fromkeys(
        errors, "SpeechmaticsResponseError"
    )
    assert errors["missingJob"]["response"] == {"code": 404, "error": "Job not found"}
    assert errors["badLanguage"]["response"]["code"] == 400
    assert errors["otherProduct"]["response"]["code"] == 404
    assert errors["wrongKey"]["response"]["code"] == 401
