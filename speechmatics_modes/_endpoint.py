"""Where requests go: the Speechmatics service, or an embedded local server started on demand."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from speechmatics_modes._exceptions import AuthenticationError, ConfigurationError
from speechmatics_modes._settings import Settings

__all__ = ["endpoint"]

logger = logging.getLogger(__name__)


@asynccontextmanager
async def endpoint(settings: Settings | None) -> AsyncIterator[Settings]:
    """Yield settings that point at a running service.

    With ``backend="local"`` a :class:`~speechmatics_modes.local.LocalServer` runs for the
    duration of the block. With ``backend="cloud"`` a missing key is an error here, before any
    connection: the library never falls back to the offline engine on its own, because an
    application that lost its key should fail loudly, not quietly transcribe worse.

    Raises:
        AuthenticationError: cloud backend without an API key.
        ConfigurationError: ``settings`` that is not a :class:`Settings`; local backend
            without the ``local`` extra installed.
    """
    if settings is not None and not isinstance(settings, Settings):
        raise ConfigurationError(
            f"settings must be a Settings (or None for the environment's), got "
            f"{type(settings).__name__}"
        )
    settings = settings if settings is not None else Settings()
    if settings.backend == "cloud":
        if settings.api_key is None:
            raise AuthenticationError(
                "no Speechmatics API key: set SPEECHMATICS_API_KEY, or use the embedded offline "
                "server with Settings(backend='local') or SPEECHMATICS_MODES_BACKEND=local"
            )
        yield settings
        return
    try:
        from speechmatics_modes.local import ANY_ADDRESS, LocalServer
    except ImportError as exc:
        raise ConfigurationError(
            "backend='local' needs the embedded server's dependencies: "
            'pip install "speechmatics-modes[local]"'
        ) from exc
    # This server runs this process's own calls, so the URLs it fetches are the caller's own:
    # loopback and private ones (a file server on localhost) are fetched too.
    async with LocalServer(allow_fetch_from=ANY_ADDRESS) as server:
        logger.debug("started an embedded local server at %s", server.batch_url)
        yield server.settings()
