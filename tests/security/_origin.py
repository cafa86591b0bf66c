"""A second HTTP server on loopback that ``fetch_data`` URLs point at, recording every request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BatchServer(Protocol):
    """A LocalServer, or a ``serve`` process: anything with a batch URL."""

    @property
    def batch_url(self) -> str: ...


@dataclass
class Origin:
    """Where fetches land: ``seen`` lists ``(path, Authorization header)`` of every request."""

    host: str
    port: int
    seen: list[tuple[str, str | None]] = field(default_factory=list)

    def url(self, path: str, host: str | None = None) -> str:
        """This origin's URL for ``path``, optionally spelling the host another way."""
        return f"http://{host or self.host}:{self.port}{path}"


@asynccontextmanager
async def origin(routes: dict[str, Handler], host: str = "127.0.0.1") -> AsyncIterator[Origin]:
    """Serve ``routes`` (path -> handler) on ``host`` at a free port."""
    app = web.Application()
    holder: list[Origin] = []

    def recording(handler: Handler) -> Handler:
        async def record(request: web.Request) -> web.StreamResponse:
            holder[0].seen.append((request.path, request.headers.get("Authorization")))
            return await handler(request)

        return record

    for path, handler in routes.items():
        app.router.add_get(path, recording(handler))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    holder.append(Origin(host, runner.addresses[0][1]))
    try:
        yield holder[0]
    finally:
        await runner.cleanup()


def job_config(url: str, auth_headers: list[str] | None = None) -> dict[str, Any]:
    """A transcription job that fetches ``url``."""
    fetch: dict[str, Any] = {"url": url}
    if auth_headers is not None:
        fetch["auth_headers"] = auth_headers
    return {
        "type": "transcription",
        "transcription_config": {"language": "en"},
        "fetch_data": fetch,
    }


async def submit(
    server: BatchServer, config: dict[str, Any], query: str = "?wait=20"
) -> tuple[int, dict[str, Any]]:
    """POST a job whose audio is fetched; the status and body of the answer."""
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("config", json.dumps(config))
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.batch_url}/jobs{query}", data=form) as response,
    ):
        return response.status, await response.json()


async def job_errors(server: BatchServer, job_id: str) -> list[str]:
    """The messages in a job's ``errors``."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.batch_url}/jobs/{job_id}") as response,
    ):
        body = await response.json()
    return [error["message"] for error in body["job"].get("errors", [])]
