"""Temporary keys: ``POST /v1/api_keys?type=rt|batch``, as the service's management platform.

Browser apps cannot keep a long-lived key secret, so they ask their own backend for a
temporary key and connect with it (``?jwt=`` for real-time). The SDKs' ``JWTAuth`` and the
legacy CLI's ``--generate-temp-token`` mint one per connection the same way. A temporary key
is good only for the API it was minted for and only for its ``ttl``; it cannot mint others.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Literal

import anyio
from aiohttp import web

from speechmatics_modes.local._batch_api import error_response
from speechmatics_modes.local._stats import ServerStats

__all__ = ["KeyKind", "TemporaryKeys"]

KeyKind = Literal["rt", "batch"]
"""Which API a temporary key opens."""

MIN_TTL_SECONDS = 1
MAX_TTL_SECONDS = 86_400
_KINDS: tuple[KeyKind, ...] = ("rt", "batch")


@dataclass
class TemporaryKeys:
    """The temporary keys one server minted, each with its kind and expiry (monotonic time)."""

    stats: ServerStats
    _keys: dict[str, tuple[KeyKind, float]] = field(default_factory=dict)

    def mint(self, kind: KeyKind, ttl: float) -> str:
        """A new key of ``kind``, valid for ``ttl`` seconds."""
        self._forget_expired()
        key = "sm-local-temp-" + secrets.token_urlsafe(32)
        self.stats.temporary_keys_minted += 1
        self._keys[key] = (kind, anyio.current_time() + ttl)
        return key

    def opens(self, key: str, kind: KeyKind) -> bool:
        """Whether ``key`` is an unexpired temporary key for ``kind``."""
        found = self._keys.get(key)
        return found is not None and found[0] == kind and anyio.current_time() < found[1]

    def _forget_expired(self) -> None:
        now = anyio.current_time()
        for key in [key for key, (_, until) in self._keys.items() if until <= now]:
            del self._keys[key]

    async def handle(self, request: web.Request) -> web.Response:
        """``POST /v1/api_keys?type=rt|batch`` with ``{"ttl": seconds}``: 201 and the key.

        The caller has already checked the long-lived key.
        """
        kind = request.query.get("type")
        if kind not in _KINDS:
            return _refused(f"type must be one of {', '.join(_KINDS)}, got {kind!r}")
        try:
            body = json.loads(await request.text() or "{}")
        except (ValueError, RecursionError):
            return _refused('the body must be a JSON object like {"ttl": 60}')
        ttl = body.get("ttl", 60) if isinstance(body, dict) else None
        if not isinstance(ttl, int) or not MIN_TTL_SECONDS <= ttl <= MAX_TTL_SECONDS:
            return _refused(
                f"ttl must be whole seconds from {MIN_TTL_SECONDS} to {MAX_TTL_SECONDS}"
            )
        key = self.mint(kind, ttl)
        return web.json_response({"apikey_id": None, "key_value": key}, status=201)


def _refused(detail: str) -> web.Response:
    return error_response(400, "Bad Request", detail)
