"""``fetch_data`` cannot turn the local server into a proxy into its own host or network.

Every refusal is checked two ways: the job is rejected with the one generic sentence, and a
listener that would have answered saw no request at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from speechmatics_modes import ConfigurationError
from speechmatics_modes.local import LocalServer
from speechmatics_modes.local._fetch import FETCH_REFUSED
from tests.local.conftest import scripted_engine, wav_bytes
from tests.security._origin import Origin, job_config, job_errors, origin, submit

pytestmark = pytest.mark.anyio

AUDIO = wav_bytes(3)


async def _audio(request: web.Request) -> web.Response:
    return web.Response(body=AUDIO, content_type="audio/wav")


@pytest.fixture
async def audio_origin() -> AsyncIterator[Origin]:
    async with origin({"/a.wav": _audio}) as running:
        yield running


async def _rejected_with(server: LocalServer, url: str) -> list[str]:
    status, body = await submit(server, job_config(url))
    assert (status, body["status"]) == (201, "rejected")
    return await job_errors(server, body["id"])


async def test_file_urls_are_refused_at_submission(server: LocalServer) -> None:
    status, body = await submit(server, job_config("file:///etc/passwd"))
    assert (status, body["code"]) == (400, 400)
    assert server.stats.jobs_submitted == 0


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "0.0.0.0",
        "[::ffff:127.0.0.1]",
        "127.1",
        "2130706433",
        "0x7f000001",
    ],
)
async def test_loopback_in_any_spelling_is_not_fetched_by_default(
    server: LocalServer, audio_origin: Origin, host: str
) -> None:
    errors = await _rejected_with(server, audio_origin.url("/a.wav", host=host))
    assert errors == [FETCH_REFUSED]
    assert audio_origin.seen == []


async def test_an_allowed_network_is_fetched(no_leaks: None, audio_origin: Origin) -> None:
    async with LocalServer(engine=scripted_engine(), allow_fetch_from=["127.0.0.0/8"]) as server:
        status, body = await submit(server, job_config(audio_origin.url("/a.wav")))
    assert (status, body["status"]) == (201, "done")
    assert audio_origin.seen == [("/a.wav", None)]


async def test_errors_do_not_tell_closed_ports_from_refused_or_missing_hosts(
    no_leaks: None, audio_origin: Origin
) -> None:
    closed_port = audio_origin.port
    async with origin({}) as other:
        closed_port = other.port  # nothing listens there once this block ends
    urls = [
        audio_origin.url("/a.wav", host="10.0.0.1"),  # private: refused before connecting
        f"http://127.0.0.1:{closed_port}/a.wav",  # allowed network, nothing listening
        "http://no-such-host.invalid/a.wav",  # does not resolve
    ]
    async with LocalServer(engine=scripted_engine(), allow_fetch_from=["127.0.0.1"]) as server:
        answers = [await _rejected_with(server, url) for url in urls]
    assert answers == [[FETCH_REFUSED]] * len(urls)


async def test_every_redirect_hop_is_checked(no_leaks: None) -> None:
    async with origin({"/a.wav": _audio}, host="127.0.0.2") as inner:

        async def bounce(request: web.Request) -> web.Response:
            raise web.HTTPFound(inner.url("/a.wav"))

        async with (
            origin({"/start": bounce}) as outer,
            LocalServer(engine=scripted_engine(), allow_fetch_from=["127.0.0.1"]) as server,
        ):
            errors = await _rejected_with(server, outer.url("/start"))
    assert errors == [FETCH_REFUSED]
    assert outer.seen == [("/start", None)]
    assert inner.seen == []


async def test_redirects_to_file_urls_and_loops_are_refused(no_leaks: None) -> None:
    async def to_file(request: web.Request) -> web.Response:
        raise web.HTTPFound("file:///etc/passwd")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async with (
        origin({"/to-file": to_file, "/loop": loop}) as bouncer,
        LocalServer(engine=scripted_engine(), allow_fetch_from=["127.0.0.1"]) as server,
    ):
        assert await _rejected_with(server, bouncer.url("/to-file")) == [FETCH_REFUSED]
        assert await _rejected_with(server, bouncer.url("/loop")) == [FETCH_REFUSED]
    assert len(bouncer.seen) < 10


async def test_auth_headers_go_only_to_the_first_origin(no_leaks: None) -> None:
    async with origin({"/a.wav": _audio}) as elsewhere:

        async def first(request: web.Request) -> web.Response:
            raise web.HTTPFound("/second")

        async def second(request: web.Request) -> web.Response:
            raise web.HTTPFound(elsewhere.url("/a.wav"))

        async with (
            origin({"/first": first, "/second": second}) as start,
            LocalServer(engine=scripted_engine(), allow_fetch_from=["127.0.0.1"]) as server,
        ):
            config = job_config(start.url("/first"), ["Authorization: Bearer fetch-secret"])
            status, body = await submit(server, config)
    assert (status, body["status"]) == (201, "done")
    secret = "Bearer fetch-secret"
    assert start.seen == [("/first", secret), ("/second", secret)]
    assert elsewhere.seen == [("/a.wav", None)]


async def test_fetch_policy_entries_must_be_networks() -> None:
    with pytest.raises(ConfigurationError, match="allow_fetch_from"):
        LocalServer(engine=scripted_engine(), allow_fetch_from=["example.com"])
