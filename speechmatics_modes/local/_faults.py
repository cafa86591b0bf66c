"""Faults the local server can inject, so clients' error handling is tested against real sockets.

A :class:`Faults` value describes *what* should go wrong; the server keeps the running counts
(how many failures are left) in :class:`FaultState`. Assigning a new :class:`Faults` to
``LocalServer.faults`` starts those counts afresh, which is how a test changes its mind mid-run
("fail the next two polls, then behave").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field, model_validator
from typing_extensions import Self

from speechmatics_modes._frozen import FrozenModel

__all__ = ["FaultState", "Faults", "HttpFailure", "SocketFault"]


class HttpFailure(FrozenModel):
    """Answer the next ``count`` HTTP requests (optionally only some) with an error status."""

    count: int = Field(default=1, ge=1, description="How many requests fail before it stops.")
    status: int = Field(default=503, ge=400, le=599, description="The HTTP status to answer.")
    retry_after: int | None = Field(
        default=None, ge=0, description="Seconds for a Retry-After header (429/503 style)."
    )
    method: str | None = Field(
        default=None, description="Only requests with this method (e.g. 'POST'); any if None."
    )
    path_prefix: str | None = Field(
        default=None,
        description="Only requests whose path starts with this (e.g. '/v2/jobs'); any if None.",
    )

    def matches(self, method: str, path: str) -> bool:
        """Whether a request is one this failure targets."""
        method_ok = self.method is None or self.method.upper() == method.upper()
        path_ok = self.path_prefix is None or path.startswith(self.path_prefix)
        return method_ok and path_ok


class SocketFault(FrozenModel):
    """End real-time sessions early: abruptly (no close frame) or with a chosen close code."""

    after_seconds: float | None = Field(
        default=None, gt=0, description="End the session this long after it was accepted."
    )
    after_messages: int | None = Field(
        default=None,
        ge=1,
        description="End the session once the server has sent this many messages.",
    )
    after_audio_seconds: float | None = Field(
        default=None,
        gt=0,
        description="End the session once it has received this many seconds of audio: the "
        "same point of the audio however fast the client sends it or the machine runs.",
    )
    at_end_of_stream: bool = Field(
        default=False,
        description="End the session when the client's EndOfStream (or, with several "
        "channels, the first EndOfChannel) arrives, before the "
        "engine's last words: a session cut while it drains, as a limit reached while the "
        "engine lags behind the socket does.",
    )
    close_code: int | None = Field(
        default=None,
        ge=1000,
        le=4999,
        description="Close with this code (e.g. 1011, 4013); None drops the TCP connection "
        "without a close frame, like a network failure.",
    )
    close_reason: str = Field(default="", max_length=123, description="Close frame reason.")
    sessions: int | None = Field(
        default=None,
        ge=1,
        description="How many sessions (counted from when the fault is set) it applies to; "
        "None means every session. 1 lets a reconnecting client's second session succeed.",
    )

    @model_validator(mode="after")
    def _has_a_trigger(self) -> Self:
        triggers = (self.after_seconds, self.after_messages, self.after_audio_seconds)
        if all(trigger is None for trigger in triggers) and not self.at_end_of_stream:
            raise ValueError(
                "a SocketFault needs after_seconds, after_messages, after_audio_seconds or "
                "at_end_of_stream"
            )
        return self


class Faults(FrozenModel):
    """What the local server should get wrong on purpose. The default injects nothing."""

    http_failure: HttpFailure | None = Field(
        default=None, description="Fail the next HTTP requests with an error status."
    )
    http_latency: float = Field(
        default=0.0,
        ge=0,
        description=(
            "Seconds every HTTP answer is held back after its request took effect (a job "
            "exists before its id reaches the client)."
        ),
    )
    message_latency: float = Field(
        default=0.0,
        ge=0,
        description="Seconds added before every real-time message the server sends.",
    )
    socket: SocketFault | None = Field(
        default=None, description="End real-time sessions early, abruptly or with a code."
    )
    job_seconds: float = Field(
        default=0.0, ge=0, description="Extra seconds every batch job spends 'running'."
    )


@dataclass
class FaultState:
    """The faults in force and what is left of their counts; owned by one server."""

    faults: Faults = field(default_factory=Faults)
    http_failures_left: int = 0
    faulty_sessions_left: int | None = None

    def __post_init__(self) -> None:
        self.replace(self.faults)

    def replace(self, faults: Faults) -> None:
        """Put new faults in force, with fresh counts."""
        self.faults = faults
        self.http_failures_left = faults.http_failure.count if faults.http_failure else 0
        self.faulty_sessions_left = faults.socket.sessions if faults.socket else None

    def take_http_failure(self, method: str, path: str) -> HttpFailure | None:
        """Return the failure to answer this request with, counting it, or ``None``."""
        failure = self.faults.http_failure
        if failure is None or self.http_failures_left <= 0 or not failure.matches(method, path):
            return None
        self.http_failures_left -= 1
        return failure

    def take_socket_fault(self) -> SocketFault | None:
        """Return the fault a newly accepted session must suffer, counting it, or ``None``."""
        fault = self.faults.socket
        if fault is None:
            return None
        if self.faulty_sessions_left is not None:
            if self.faulty_sessions_left <= 0:
                return None
            self.faulty_sessions_left -= 1
        return fault
