"""A fetch cannot fill the disk: the upload limit bounds it, and deleting the job stops it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import aiohttp
import anyio
import pytest
from aiohttp import web

from speechmatics_modes.local import LocalServer
from tests.local.conftest import scripted_engine
from tests.security._origin import job_config, job_errors, origin, submit

pytestmark = pytest.mark.anyio

LIMIT = 200_000


async def _endless(request: web.Request) -> web.StreamResponse:
    """Zeros forever, chunked, as ``/dev/zero`` behind a web server would be."""
    response = web.StreamResponse()
    await response.prepare(request)
    while True:
        await response.write(b"\x00" * 64 * 1024)
        await anyio.sleep(0.01)


async def _declared_huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Length": str(10 * LIMIT)})
    await response.prepare(request)
    await response.write(b"\x00" * 1024)
    return response


@pytest.mark.parametrize("path", ["/endless", "/declared-huge"])
async def test_a_fetch_stops_at_the_upload_limit(no_leaks: None, path: str) -> None:
    async with (
        origin({"/endless": _endless, "/declared-huge": _declared_huge}) as source,
        LocalServer(
            engine=scripted_engine(), allow_fetch_from=["127.0.0.1"], max_upload_bytes=LIMIT
        ) as server,
    ):
        status, body = await submit(server, job_config(source.url(path)))
        assert (status, body["status"]) == (201, "rejected")
        errors = await job_errors(server, body["id"])
    assert errors == [
        f"Audio fetch error: the audio is larger than this server's limit of {LIMIT} bytes"
    ]


async def test_deleting_a_job_stops_its_fetch_and_removes_its_files(no_leaks: None) -> None:
    streaming = anyio.Event()
    stopped = anyio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        try:
            while True:
                await response.write(b"\x00" * 4096)
                streaming.set()
                await anyio.sleep(0.02)
        finally:
            stopped.set()

    async with (
        origin({"/slow": slow}) as source,
        LocalServer(engine=scripted_engine(), allow_fetch_from=["127.0.0.1"]) as server,
    ):
        status, body = await submit(server, job_config(source.url("/slow")), query="")
        assert status == 201
        job_dirs = list(Path(tempfile.gettempdir()).glob(f"sm-modes-local-*/{body['id']}"))
        with anyio.fail_after(10):
            await streaming.wait()
        assert [path.exists() for path in job_dirs] == [True]
        async with (
            aiohttp.ClientSession() as http,
            http.delete(f"{server.batch_url}/jobs/{body['id']}?force=true") as response,
        ):
            assert (await response.json())["job"]["status"] == "deleted"
        assert not job_dirs[0].exists()
        with anyio.fail_after(10):
            await stopped.wait()
