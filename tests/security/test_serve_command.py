"""``speechmatics-modes serve`` as an operator runs it: the key kept out of the process list,
limits set from the command line, and SIGTERM stopping it cleanly whatever it is doing."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import aiohttp
import anyio
import anyio.to_thread
import pytest
from aiohttp import web

from tests._serve_process import ServeProcess, serve_process
from tests.security._origin import job_config, origin, submit
from tests.security.test_slow_clients import upload_head

pytestmark = pytest.mark.anyio

KEY = "operator-key-3b9d41c7e2"
SERVE = (sys.executable, "-m", "speechmatics_modes", "serve")
STOP_SECONDS = 30.0
"""How long SIGTERM may take, at most: the server's own bound is a few seconds."""


async def status_with_key(server: ServeProcess, key: str) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.batch_url}/jobs", headers=headers) as response,
    ):
        return response.status


async def test_the_key_comes_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    with serve_process("--api-key-file", str(key_file)) as server:
        assert await status_with_key(server, KEY) == 200
        assert await status_with_key(server, "any-other-key") == 401
        assert server.process is not None
        assert KEY not in await anyio.Path(f"/proc/{server.process.pid}/cmdline").read_text()


async def test_the_key_comes_from_the_environment() -> None:
    server = ServeProcess(env={"SPEECHMATICS_MODES_SERVE_API_KEY": KEY})
    try:
        server.start()
        assert await status_with_key(server, KEY) == 200
        assert await status_with_key(server, "any-other-key") == 401
    finally:
        server.close()


def test_a_short_key_off_loopback_is_refused_before_listening() -> None:
    done = subprocess.run(
        [*SERVE, "--host", "0.0.0.0", "--port", "0", "--engine", "scripted", "--api-key", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "at least 16 characters" in done.stderr
    assert "SPEECHMATICS_BATCH_URL" not in done.stdout


async def test_max_upload_mb_limits_uploads() -> None:
    with serve_process("--max-upload-mb", "0.5") as server:
        form = aiohttp.FormData(default_to_multipart=True)
        form.add_field(
            "config", '{"type": "transcription", "transcription_config": {"language": "en"}}'
        )
        form.add_field("data_file", b"\0" * 1024 * 1024, filename="a.wav")
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{server.batch_url}/jobs", data=form) as response,
        ):
            assert response.status == 413
            assert str(512 * 1024) in (await response.json())["detail"]


async def test_sigterm_stops_it_mid_fetch_and_mid_upload_leaving_nothing(
    tmp_path: Path,
) -> None:
    fetching = anyio.Event()

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        while True:
            await response.write(b"\x00" * 65536)
            fetching.set()
            await anyio.sleep(0.01)

    async with origin({"/endless": endless}) as source:
        with serve_process("--allow-fetch", "127.0.0.1", tmpdir=tmp_path) as server:
            async with anyio.create_task_group() as group:
                group.start_soon(_submit_quietly, server, source.url("/endless"))
                stream = await anyio.connect_tcp("127.0.0.1", server.port)
                await stream.send(upload_head(server.port, declared_length=50_000_000))
                with anyio.fail_after(STOP_SECONDS):
                    await fetching.wait()
                assert [path async for path in anyio.Path(tmp_path).glob("sm-modes-local-*/*")]
                server.terminate()
                code = await anyio.to_thread.run_sync(server.wait, STOP_SECONDS)
                await stream.aclose()
                group.cancel_scope.cancel()
    assert code == 0, server.stderr
    assert [path async for path in anyio.Path(tmp_path).iterdir()] == []
    assert "Traceback" not in server.stderr


async def _submit_quietly(server: ServeProcess, url: str) -> None:
    """Submit a job fetching ``url``; the server goes away before answering."""
    with contextlib.suppress(aiohttp.ClientError):
        await submit(server, job_config(url), query="")
