"""What the local server does at the connection level, so it can face a network.

* :class:`HeaderDeadline` closes a connection whose first request has not finished its headers
  in time (a "slowloris" client trickling header bytes never reaches a handler, so no handler
  timeout can catch it). Requests after the first on a kept-alive connection are bounded by the
  server's keep-alive timeout, which aiohttp applies while it waits for the next request.
* :class:`RedactingAccessLogger` writes aiohttp's access log without the ``jwt`` query
  parameter, which carries the key of real-time clients that cannot send headers.
* :func:`from_a_web_page` spots the requests a web page in the user's browser makes to a
  server on loopback: a server without a key refuses them, since any site could otherwise
  submit jobs to it, stream to it, and (by rebinding its own name to 127.0.0.1) read the
  answers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from yarl import URL

__all__ = ["HeaderDeadline", "RedactingAccessLogger", "from_a_web_page", "redact_query"]

logger = logging.getLogger(__name__)

_END_OF_HEADERS = b"\r\n\r\n"
_SECRET_PARAMETERS = ("jwt",)
_REDACTED = "<redacted>"


class HeaderDeadline(asyncio.Protocol):
    """Wraps aiohttp's protocol; closes the connection if headers are not in by a deadline."""

    def __init__(self, inner: asyncio.Protocol, seconds: float) -> None:
        self._inner = inner
        self._seconds = seconds
        self._tail = b""
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None

    @classmethod
    def factory(
        cls, inner: Callable[[], asyncio.Protocol], seconds: float
    ) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` around aiohttp's."""
        return lambda: cls(inner(), seconds)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._timer = asyncio.get_running_loop().call_later(self._seconds, self._expire)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            seen = self._tail + data
            if _END_OF_HEADERS in seen:
                self._disarm()
            else:
                self._tail = seen[-(len(_END_OF_HEADERS) - 1) :]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self._transport is not None and not self._transport.is_closing():
            peer = self._transport.get_extra_info("peername")
            logger.info("closing a connection from %s: no complete request headers in time", peer)
            self._transport.abort()


class RedactingAccessLogger(AbstractAccessLogger):
    """One line per request, like aiohttp's default, with secret query parameters masked."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.3fs',
            request.remote,
            request.method,
            redact_query(request.rel_url),
            request.version.major,
            request.version.minor,
            response.status,
            response.body_length,
            time,
        )


def redact_query(url: URL) -> str:
    """``url`` as text, with the values of secret parameters masked."""
    secrets = [name for name in _SECRET_PARAMETERS if name in url.query]
    if not secrets:
        return str(url)
    return str(url.update_query(dict.fromkeys(secrets, _REDACTED)))


def from_a_web_page(request: web.BaseRequest) -> bool:
    """Whether a browser sent ``request`` on behalf of a page not served from this machine.

    Browsers name the page's origin in ``Origin`` (cross-site POSTs and every WebSocket
    handshake) and the name they resolved in ``Host``; the SDKs send no ``Origin`` and a
    loopback ``Host``. Either naming another machine gives the page away.
    """
    named = [f"//{request.host}"]
    origin = request.headers.get("Origin")
    if origin is not None:
        named.append(origin)
    for url in named:
        try:
            host = URL(url).host
        except ValueError:
            return True
        if not is_loopback_name(host or ""):
            return True
    return False


def is_loopback_name(host: str) -> bool:
    """``localhost``, ``127.x.x.x`` or ``::1``."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
