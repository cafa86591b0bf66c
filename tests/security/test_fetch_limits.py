"""Fetches and uploads cannot fill the disk: size limits, a free-space floor, and ending the
request stops them."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import aiohttp
import anyio
import pytest
from aiohttp import web

from speechmatics_modes.local import LocalServer
from tests.conftest import eventually
from tests.local.conftest import scripted_engine, wav_bytes
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


async def test_a_client_that_gives_up_mid_fetch_stops_it_and_leaves_no_files(
    no_leaks: None,
) -> None:
    # The server fetches before it answers the submit (clients read the duration from the
    # first status), so the fetch belongs to the request: ending the request ends the fetch.
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
        async with anyio.create_task_group() as group:
            group.start_soon(submit, server, job_config(source.url("/slow")), "")
            with anyio.fail_after(10):
                await streaming.wait()
            assert len(_job_directories()) == 1
            group.cancel_scope.cancel()
        with anyio.fail_after(10):
            await stopped.wait()
        assert await eventually(lambda: not _job_directories())
        assert server.stats.jobs_submitted == 0


def _job_directories() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob("sm-modes-local-*/*"))


async def test_uploads_and_fetches_stop_before_the_disk_runs_low(no_leaks: None) -> None:
    # A floor above what is free now: as if many uploads at once had filled the disk.
    floor = shutil.disk_usage(tempfile.gettempdir()).free + 2 * 1024**3
    async with (
        origin({"/a.wav": _small}) as source,
        LocalServer(
            engine=scripted_engine(), allow_fetch_from=["127.0.0.1"], min_free_disk_bytes=floor
        ) as server,
    ):
        form = aiohttp.FormData(default_to_multipart=True)
        form.add_field(
            "config", json.dumps(job_config(source.url("/a.wav")) | {"fetch_data": None})
        )
        form.add_field("data_file", wav_bytes(2), filename="a.wav")
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{server.batch_url}/jobs", data=form) as response,
        ):
            assert response.status == 503
            assert response.headers["Retry-After"]
            assert "low on disk space" in (await response.json())["detail"]
        status, body = await submit(server, job_config(source.url("/a.wav")))
        assert (status, body["status"]) == (201, "rejected")
        errors = await job_errors(server, body["id"])
        assert _job_directories() == []
    assert errors == ["Audio fetch error: the server is low on disk space; submit the job later"]


async def _small(request: web.Request) -> web.Response:
    return web.Response(body=wav_bytes(2), content_type="audio/wav")
