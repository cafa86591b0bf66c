"""pytest fixtures that put the embedded Speechmatics-compatible server behind your own tests.

Installed with the package as a pytest plugin (the ``pytest11`` entry point), so in any project
with ``speechmatics-modes[local]`` installed a test can ask for:

- ``speechmatics_server``: a :class:`~speechmatics_modes.local.LocalServer` on 127.0.0.1, on a
  free port, started for the test and stopped after it. Its engine is a
  :class:`~speechmatics_modes.local.ScriptedEngine` (it answers :data:`DEFAULT_SCRIPT` whatever
  the audio: fast and deterministic) unless the test's marker asks for another.
- ``speechmatics_settings``: :class:`~speechmatics_modes.Settings` pointing at that server;
  pass it to ``transcribe()``, ``stream()`` or your own code. The official SDKs work against
  ``speechmatics_server.batch_url`` and ``rt_url`` too.

Configure the server with the marker ``@pytest.mark.speechmatics(**kwargs)``: its keyword
arguments are :class:`~speechmatics_modes.local.LocalServer`'s (``engine="whisper"`` for real
speech recognition, ``faults=Faults(...)`` to misbehave from the start, ``max_session_seconds``,
...). Change the faults mid-test by assigning ``speechmatics_server.faults``.

The fixtures are async: tests use them under anyio's pytest plugin (``@pytest.mark.anyio``),
on the asyncio backend, which the SDKs need. Each test gets its own server (function scope), so
faults, jobs and :attr:`~speechmatics_modes.local.LocalServer.stats` never leak between tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from speechmatics_modes._settings import Settings
    from speechmatics_modes.local import LocalServer

__all__ = ["DEFAULT_SCRIPT", "speechmatics_server", "speechmatics_settings"]

DEFAULT_SCRIPT = "hello world."
"""What the default scripted engine hears in any audio: these words, from its start."""

_MARKER = "speechmatics"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker, so ``--strict-markers`` accepts it."""
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**kwargs): LocalServer arguments for the speechmatics_server fixture "
        "(e.g. engine='whisper', faults=Faults(...)).",
    )


@pytest.fixture
async def speechmatics_server(
    request: pytest.FixtureRequest, anyio_backend: str
) -> AsyncIterator[LocalServer]:
    """A :class:`~speechmatics_modes.local.LocalServer` for this test, on a free loopback port.

    Configured by the test's ``@pytest.mark.speechmatics(**kwargs)`` (``LocalServer``'s
    arguments); without one, or without ``engine``, it runs a scripted engine.
    """
    del anyio_backend  # requested so that anyio's plugin runs this fixture
    # Imported here: the plugin loads in every pytest run of an environment with this package,
    # including ones without the ``local`` extra that never ask for a server.
    from speechmatics_modes.local import LocalServer, ScriptedEngine

    marker = request.node.get_closest_marker(_MARKER)
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    if marker and marker.args:
        raise pytest.UsageError(f"@pytest.mark.{_MARKER} takes LocalServer keyword arguments")
    options.setdefault("engine", ScriptedEngine.from_text(DEFAULT_SCRIPT))
    async with LocalServer(host="127.0.0.1", port=0, **options) as server:
        yield server


@pytest.fixture
def speechmatics_settings(speechmatics_server: LocalServer) -> Settings:
    """:class:`~speechmatics_modes.Settings` that send every call to ``speechmatics_server``."""
    return speechmatics_server.settings()
