"""What the local server does at the connection level, so it can face a network.

* :class:`GuardedConnection` closes a connection whose first request has not finished its
  headers in time (a "slowloris" client trickling header bytes never reaches a handler, so no
  handler timeout can catch it), and refuses a client's connection beyond its share
  (:class:`PeerLimit`), so one client cannot take every connection the process can hold.
  Requests after the first on a kept-alive connection are bounded by the server's keep-alive
  timeout, which aiohttp applies while it waits for the next request.
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
from collections import Counter
from collections.abc import Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from yarl import URL

__all__ = [
    "GuardedConnection",
    "PeerLimit",
    "RedactingAccessLogger",
    "from_a_web_page",
    "is_loopback_name",
    "redact_query",
]

logger = logging.getLogger(__name__)

_END_OF_HEADERS = b"\r\n\r\n"
_SECRET_PARAMETERS = ("jwt",)
_REDACTED = "<redacted>"


class PeerLimit:
    """How many connections each client address may hold at once."""

    def __init__(self, per_client: int) -> None:
        self._per_client = per_client
        self._open: Counter[str] = Counter()

    def admit(self, peer: str) -> bool:
        """Count a new connection from ``peer``, unless it already holds its share."""
        if self._open[peer] >= self._per_client:
            return False
        self._open[peer] += 1
        return True

    def release(self, peer: str) -> None:
        """A connection from ``peer`` closed."""
        self._open[peer] -= 1
        if self._open[peer] <= 0:
            del self._open[peer]


class GuardedConnection(asyncio.Protocol):
    """Wraps aiohttp's protocol: a client's share of connections, and a deadline for headers."""

    def __init__(self, inner: asyncio.Protocol, seconds: float, peers: PeerLimit) -> None:
        self._inner = inner
        self._seconds = seconds
        self._peers = peers
        self._peer: str | None = None
        self._tail = b""
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None

    @classmethod
    def factory(
        cls, inner: Callable[[], asyncio.Protocol], seconds: float, peers: PeerLimit
    ) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` around aiohttp's."""
        return lambda: cls(inner(), seconds, peers)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peername = transport.get_extra_info("peername")
        peer = str(peername[0]) if peername else "unknown"
        if not self._peers.admit(peer):
            logger.warning("refusing a connection from %s: it holds its share already", peer)
            transport.abort()  # aiohttp never sees it
            return
        self._peer = peer
        self._transport = transport
        self._timer = asyncio.get_running_loop().call_later(self._seconds, self._expire)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._peer is None:
            return
        if self._timer is not None:
            seen = self._tail + data
            if _END_OF_HEADERS in seen:
                self._disarm()
            else:
                self._tail = seen[-(len(_END_OF_HEADERS) - 1) :]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return None if self._peer is None else self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._peer is None:
            return
        self._disarm()
        self._peers.release(self._peer)
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
