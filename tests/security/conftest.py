"""The security tests use the local server's fixtures: scripted servers and leak checks."""

from tests.local.conftest import no_leaks, server

__all__ = ["no_leaks", "server"]
