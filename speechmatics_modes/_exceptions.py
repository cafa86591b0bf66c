"""Every error this library raises, under one base class.

The tree::

    SpeechmaticsModesError
    ├── ConfigurationError (also ValueError)   options that cannot work, found before any I/O
    ├── AudioSourceError (also ValueError)     the audio or the source handed to us is unusable
    ├── AuthenticationError                    the key was refused (HTTP 401/403, not_authorised)
    ├── TransportError (also OSError)          the connection failed or dropped; retryable
    ├── ServerError                            the service answered with an error
    │   ├── JobFailedError                     a batch job was rejected or deleted
    │   └── SessionLimitError                  a real-time session hit a service limit
    └── TranscriptionTimeout (also TimeoutError)

Callers who only care whether to try again read ``retryable``: it is a property of each error,
decided where the error is created, not guessed by the caller. Both SDKs' own exception classes
are translated at the backend seam (``_batch.py`` and ``_realtime.py`` each hold one table,
``BATCH_ERRORS`` and ``REALTIME_ERRORS``, applied by :func:`translate_sdk_error`), so an SDK
exception never escapes to our callers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

if sys.version_info < (3, 11):  # pragma: no cover - anyio depends on the backport there
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from speechmatics_modes._models import Transcript

__all__ = [
    "AUDIO_SENT_WAS_TRANSCRIBED",
    "AudioSourceError",
    "AuthenticationError",
    "ConfigurationError",
    "JobFailedError",
    "ServerError",
    "SessionLimitError",
    "SpeechmaticsModesError",
    "TranscriptionTimeout",
    "TransportError",
    "innermost",
    "source_failed",
    "translate_sdk_error",
    "translated",
]


class SpeechmaticsModesError(Exception):
    """Base class of every error raised by speechmatics-modes."""

    retryable: bool = False
    """Whether the same call may succeed if simply tried again later."""
    partial_transcript: Transcript | None = None
    """The words transcribed before the failure, where there were any: nothing is lost."""
    job_id: str | None = None
    """The batch job the failing call had created, if it got that far. After a
    :class:`TransportError` or a :class:`ServerError` the job may still run at the service:
    read its transcript later with ``BatchClient.transcript(job_id)``."""


class ConfigurationError(SpeechmaticsModesError, ValueError):
    """Options that cannot work together, or an option the chosen mode does not support.

    Raised before any network call, so nothing was sent and nothing was billed.
    """


class AudioSourceError(SpeechmaticsModesError, ValueError):
    """The audio or the source object cannot be transcribed as given.

    The message names the source and says what kinds are accepted.
    """


class AuthenticationError(SpeechmaticsModesError):
    """The service refused the API key (or no key was given where one is required)."""


class TransportError(SpeechmaticsModesError, OSError):
    """The connection could not be made, or dropped part way: worth retrying."""

    retryable = True


class ServerError(SpeechmaticsModesError):
    """The service answered with an error.

    Attributes carry what the service said, so callers can branch on it without parsing text.
    """

    def __init__(
        self,
        message: str,
        *,
        error_type: str | None = None,
        status: int | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        """The service's error ``type`` (real-time, e.g. ``"quota_exceeded"``) or error string."""
        self.status = status
        """The HTTP status (batch) or WebSocket close code (real-time), when known."""
        self.retryable = retryable


class JobFailedError(ServerError):
    """A batch job ended without a transcript: rejected (with the service's reasons) or deleted."""

    def __init__(
        self, message: str, *, job_id: str | None = None, reasons: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message, error_type="job_failed")
        self.job_id = job_id
        """The job's id, to look it up with the service."""
        self.reasons = reasons
        """The service's own error messages for the job, oldest first."""


class SessionLimitError(ServerError):
    """A real-time session hit a limit of the service (duration, idle time, concurrency, quota)."""


class TranscriptionTimeout(SpeechmaticsModesError, TimeoutError):
    """The whole operation did not finish within the timeout the caller gave."""


ErrorFactory = Callable[[BaseException], SpeechmaticsModesError]
"""Builds our error from an SDK error; used as the values of the backends' tables."""


def translate_sdk_error(
    exc: BaseException, table: Mapping[type[BaseException], ErrorFactory]
) -> SpeechmaticsModesError | None:
    """Return our error for an SDK exception, choosing the most specific class in ``table``.

    Walks the exception's MRO so a subclass the table does not list (an SDK adding
    ``FooJobError(JobError)``) still maps through its nearest listed ancestor. Returns ``None``
    for exceptions that are not the SDK's, so callers re-raise those untouched.
    """
    for cls in type(exc).__mro__:
        factory = table.get(cls)
        if factory is not None:
            error = factory(exc)
            error.__cause__ = exc
            return error
    return None


@contextmanager
def translated(table: Mapping[type[BaseException], ErrorFactory]) -> Iterator[None]:
    """Raise our error, per ``table``, for any SDK exception raised inside the block.

    The raised error's traceback holds this frame: were ``ours`` left in it, error and frame
    would hold each other, and with them every frame the SDK's exception passed through (the
    objects of ours that called the SDK, such as a real-time session) until a full collection.
    """
    try:
        yield
    except Exception as exc:
        ours = translate_sdk_error(exc, table)
        if ours is None:
            raise
        try:
            raise ours from exc
        finally:
            del ours


def describe(exc: BaseException) -> str:
    """Return ``str(exc)`` or, for an exception with no message, its class name."""
    text = str(exc)
    return text if text else type(exc).__name__


def innermost(exc: BaseException) -> BaseException:
    """The one error a task group wrapped (in one group or several), else ``exc`` itself.

    Our task groups are an implementation detail: a caller should get our error, or their own
    ``SystemExit``/``KeyboardInterrupt``, as itself and not inside an exception group.
    """
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


AUDIO_SENT_WAS_TRANSCRIBED = "the audio sent before it was transcribed (see partial_transcript)"
"""What became of a real-time stream's audio when its source failed."""


def source_failed(exc: BaseException, outcome: str) -> AudioSourceError:
    """Our error for an exception the caller's audio source raised, saying what became of it.

    Args:
        exc: What the source raised; kept as ``__cause__``.
        outcome: What happened to the audio, e.g. "nothing was uploaded".
    """
    error = AudioSourceError(
        f"the audio source raised {type(exc).__name__}: {describe(exc)}; {outcome}"
    )
    error.__cause__ = exc
    return error
