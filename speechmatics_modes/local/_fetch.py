"""Fetching ``fetch_data`` URLs for batch jobs without becoming a proxy into the host's network.

A job's config names a URL and the server downloads it: whoever holds the key chooses where the
server connects. So the fetcher:

* fetches only ``http`` and ``https`` (never ``file://``: that would read the server's disk);
* connects only to public addresses, unless the operator allows networks
  (``LocalServer(allow_fetch_from=...)``, ``serve --allow-fetch``). The check runs on the address
  actually connected to (a resolver that drops refused addresses, and a check of IP literals),
  so a name that resolves to ``127.0.0.1`` is refused like ``127.0.0.1`` itself;
* follows redirects itself, checking every hop the same way, and sends the job's
  ``auth_headers`` only to the origin (scheme, host, port) of the first URL;
* stops at the server's size limit and within read and connect timeouts;
* answers every network-level failure with one sentence, so a job's ``errors`` cannot be used to
  map which hosts exist or which ports answer. The operator's log has the detail.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from speechmatics_modes._lifetime import StackOwner
from speechmatics_modes.local._disk import DiskGuard, DiskLow, TooLarge, save_chunks

__all__ = ["ANY_ADDRESS", "FETCH_REFUSED", "Fetcher", "parse_networks"]

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

ANY_ADDRESS = ("0.0.0.0/0", "::/0")
"""``allow_fetch_from`` that allows every address: for a server only its own process uses."""

FETCH_REFUSED = (
    "Audio fetch error: could not fetch the URL (unreachable, or an address this server does "
    "not fetch from)"
)
"""The one error for every network-level failure; it never says which of them it was."""

_SCHEMES = ("http", "https")
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_HOPS = 5
_CHUNK = 256 * 1024
_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=30.0)
_USER_AGENT = "Speechmatics-API/2.0"


class _Refused(OSError):
    """The URL resolved only to addresses the server does not fetch from."""


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``"10.0.0.0/8"``, ``"127.0.0.1"``, ``"::1"`` as networks.

    Raises:
        ValueError: An entry that is not an IP address or network.
    """
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


class _Policy:
    """Which addresses may be fetched from: public ones, plus the networks the operator allows."""

    def __init__(self, allowed: Sequence[Network]) -> None:
        self._allowed = allowed

    def permits(self, address: Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self._allowed):
            return True
        return address.is_global and not (address.is_multicast or address.is_reserved)


class _GuardedResolver(AbstractResolver):
    """The default resolver, keeping only the addresses the policy permits."""

    def __init__(self, policy: _Policy) -> None:
        self._policy = policy
        self._inner = aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        permitted = [r for r in results if self._policy.permits(ipaddress.ip_address(r["host"]))]
        if not permitted:
            raise _Refused(f"{host} resolves only to addresses outside the fetch policy")
        return permitted

    async def close(self) -> None:
        await self._inner.close()


class Fetcher(StackOwner):
    """Downloads ``fetch_data`` URLs to disk under the server's policy and size limit.

    An async context manager: it owns the HTTP client session.
    """

    def __init__(
        self, *, allow_from: Sequence[Network], max_bytes: int | None, disk: DiskGuard
    ) -> None:
        self._policy = _Policy(allow_from)
        self._max_bytes = max_bytes
        self._disk = disk
        self._session: aiohttp.ClientSession | None = None

    async def _acquire(self, stack: AsyncExitStack) -> None:
        connector = aiohttp.TCPConnector(resolver=_GuardedResolver(self._policy))
        self._session = await stack.enter_async_context(
            aiohttp.ClientSession(connector=connector, timeout=_TIMEOUT)
        )

    async def fetch(self, fetch_data: Mapping[str, Any], destination: Path) -> str | None:
        """Download ``fetch_data["url"]`` to ``destination``; the job's error, or ``None``."""
        auth = dict(_header(line) for line in fetch_data.get("auth_headers") or [])
        url_text = str(fetch_data["url"])
        try:
            return await self._download(URL(url_text), auth, destination)
        except TooLarge:
            return (
                "Audio fetch error: the audio is larger than this server's limit of "
                f"{self._max_bytes} bytes"
            )
        except DiskLow:
            return "Audio fetch error: the server is low on disk space; submit the job later"
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            logger.warning("fetch from %s failed: %s", _origin_text(url_text), _cause(exc))
            return FETCH_REFUSED

    async def _download(self, url: URL, auth: dict[str, str], destination: Path) -> str | None:
        assert self._session is not None
        first_origin = (url.scheme, url.host, url.port)
        for _ in range(_MAX_HOPS + 1):
            self._check_target(url)
            headers = {"User-Agent": _USER_AGENT}
            if (url.scheme, url.host, url.port) == first_origin:
                headers.update(auth)
            async with self._session.get(url, headers=headers, allow_redirects=False) as response:
                location = response.headers.get("Location")
                if response.status in _REDIRECTS and location:
                    url = response.url.join(URL(location))
                    continue
                if response.status != 200:
                    return f"Audio fetch error, http status {response.status}"
                await self._save(response, destination)
                return None
        raise _Refused(f"more than {_MAX_HOPS} redirects")

    def _check_target(self, url: URL) -> None:
        """Every hop: http(s) with a host; IP literals skip the resolver, so check them here."""
        if url.scheme not in _SCHEMES or not url.raw_host:
            raise _Refused(f"not an http(s) URL with a host: {url.scheme}://")
        try:
            address = ipaddress.ip_address(url.raw_host)
        except ValueError:
            return
        if not self._policy.permits(address):
            raise _Refused(f"{address} is outside the fetch policy")

    async def _save(self, response: aiohttp.ClientResponse, destination: Path) -> None:
        limit = self._max_bytes
        if limit is not None and (response.content_length or 0) > limit:
            raise TooLarge
        chunks = response.content.iter_chunked(_CHUNK)
        await save_chunks(chunks, destination, limit=limit, disk=self._disk)


def _header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip(), value.strip()


def _origin_text(url_text: str) -> str:
    """Scheme, host and port only: paths and queries can hold signed tokens."""
    try:
        url = URL(url_text)
    except ValueError:
        return "<an invalid URL>"
    return f"{url.scheme}://{url.host}:{url.port}"


def _cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return f"{type(exc).__name__}: {exc}"
