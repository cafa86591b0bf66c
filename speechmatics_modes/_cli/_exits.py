"""Exit statuses: part of the interface, since scripts branch on them.

Listed once here; ``docs/cli.md`` repeats the table and a test holds the two together.
"""

from __future__ import annotations

from speechmatics_modes._exceptions import (
    AudioSourceError,
    AuthenticationError,
    ConfigurationError,
)

__all__ = [
    "EXIT_AUTH",
    "EXIT_CODES",
    "EXIT_FAILED",
    "EXIT_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
    "exit_code",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_AUTH = 4
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "everything asked for was done",
    EXIT_FAILED: "a transcription failed: service error, rejected job (e.g. not audio), lost "
    "connection, timeout",
    EXIT_USAGE: "the command line or the options are wrong; nothing was sent",
    EXIT_INPUT: "an input could not be used: missing, unreadable, empty, a directory without "
    "audio, no microphone support",
    EXIT_AUTH: "the service refused the API key",
    EXIT_INTERRUPTED: "interrupted (Ctrl+C); a bulk run resumes from its journal",
}
"""Exit statuses. When several inputs fail differently, the highest status wins."""


class UsageError(Exception):
    """The command line cannot work as given (exit status 2)."""


def exit_code(exc: BaseException) -> int:
    """The status an error ends the command with."""
    if isinstance(exc, (UsageError, ConfigurationError)):
        return EXIT_USAGE
    if isinstance(exc, AuthenticationError):
        return EXIT_AUTH
    if isinstance(exc, AudioSourceError):
        return EXIT_INPUT
    return EXIT_FAILED
