"""What a caller sets and sees when one real-time stream spans many server sessions.

A session ends at the service's 48-hour limit, after an hour without audio, and whenever the
network drops. With a :class:`RolloverPolicy` the stream carries on across those ends: this
module holds the policy, the events that report each switch of session (:class:`SessionRollover`,
:class:`Reconnected`, :class:`AudioGap`) and the counters (:class:`StreamMetrics`). It has no
I/O and imports only the value base and the backoff rules, so the event models can join the
``StreamEvent`` union.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from speechmatics_modes._frozen import FrozenModel
from speechmatics_modes._retry import backoff_is_ordered

__all__ = [
    "AudioGap",
    "Reconnected",
    "RolloverPolicy",
    "RolloverReason",
    "SessionRollover",
    "StreamMetrics",
]

_SERVICE_SESSION_LIMIT = 48 * 3600.0


class RolloverPolicy(FrozenModel):
    """When to hand a stream over to a new session, and how to recover from a dropped one.

    The defaults suit the service: hand over a quarter of an hour before the 48-hour limit (or
    at its first ``session_timeout`` warning), close the session after 30 minutes without
    speech, reconnect with backoff from half a second up to 30 s. Tests compress them.
    """

    max_session: float = Field(
        default=_SERVICE_SESSION_LIMIT - 15 * 60,
        gt=0,
        description="Seconds a session may run before the stream looks for a pause at which "
        "to hand over to a new session (the service ends sessions at 48 h).",
    )
    pause_wait: float = Field(
        default=10 * 60,
        ge=0,
        description="Seconds to wait for a pause once a handover is due; then the switch is "
        "forced, even mid-word.",
    )
    roll_on_warning: bool = Field(
        default=True,
        description="Start a handover when the service warns that the session will time out.",
    )
    lead_in: float = Field(
        default=2.0,
        ge=0,
        description="Seconds of audio before a planned handover's switch that the new session "
        "is sent first, so that it hears its first words after what came before them. What it "
        "says about that audio, the old session said, and it is dropped.",
    )
    min_pause: float = Field(
        default=0.3,
        gt=0,
        description="Seconds of quiet audio that count as a pause to switch sessions at.",
    )
    silence_dbfs: float = Field(
        default=-45.0,
        le=0,
        description="Audio whose RMS level is below this (dB of full scale) counts as quiet.",
    )
    idle_after: float | None = Field(
        default=30 * 60,
        gt=0,
        description="Seconds without audio, or with only quiet audio, after which the session "
        "is closed (reopened when speech returns); None keeps it open. Must stay under the "
        "service's 1-hour idle limit.",
    )
    buffer_seconds: float = Field(
        default=120.0,
        gt=0,
        description="Audio kept for replay after a drop: everything not yet covered by a "
        "final, up to this many seconds. Bounds memory however long the stream runs.",
    )
    on_buffer_full: Literal["wait", "drop_oldest"] | None = Field(
        default=None,
        description="When the buffer is full: 'wait' stops reading the source (lossless for "
        "files); 'drop_oldest' keeps reading a live feed and reports an AudioGap. None picks "
        "'wait' for files and 'drop_oldest' for live sources.",
    )
    backoff_initial: float = Field(
        default=0.5, ge=0, description="Seconds before the first reconnection attempt."
    )
    backoff_factor: float = Field(
        default=2.0, ge=1, description="Each failed attempt multiplies the delay by this."
    )
    backoff_max: float = Field(default=30.0, ge=0, description="The longest delay, in seconds.")
    backoff_jitter: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Each delay is shortened by a random fraction up to this, so many clients "
        "dropped together do not reconnect together.",
    )
    healthy_after: float = Field(
        default=30.0,
        ge=0,
        description="A session that ran this long and whose finals moved the stream on counts "
        "as healthy: the backoff starts over. One that ended before any final of its own is a "
        "failed attempt, however long it ran.",
    )
    max_attempts: int | None = Field(
        default=10,
        ge=1,
        description="Consecutive failed attempts (connections refused or dropped, sessions that "
        "ended before any final) before the stream gives up and raises the last error; None "
        "retries forever (a 24/7 feed).",
    )
    keep_transcript: bool = Field(
        default=True,
        description="Keep every final word for ``transcript``; False for a feed that never "
        "ends, so memory stays flat (events still carry every word).",
    )

    _backoff_is_ordered = model_validator(mode="after")(backoff_is_ordered)


RolloverReason = Literal["budget", "warning", "idle", "overflow"]
"""Why a stream switched sessions on purpose (see :attr:`SessionRollover.reason`)."""


class SessionRollover(FrozenModel):
    """The stream switched to a new session on purpose (budget, service warning, idle reopen)."""

    kind: Literal["rollover"] = "rollover"
    reason: RolloverReason = Field(
        description="Why: the session's time budget, the service's session_timeout warning, "
        "speech returning after an idle close, or a full buffer that skipped audio."
    )
    offset: float = Field(
        description="Where the new session's audio starts on the stream's clock, in seconds; "
        "its words are shifted by this much."
    )
    at_pause: bool = Field(
        description="True if the switch fell in a pause; False if the deadline forced it."
    )
    previous_session_id: str | None = Field(description="The session handed over from.")
    session_id: str | None = Field(description="The session handed over to.")


class Reconnected(FrozenModel):
    """A session ended unexpectedly and a new one took over, replaying the unfinished audio."""

    kind: Literal["reconnected"] = "reconnected"
    offset: float = Field(
        description="Where the new session's audio starts on the stream's clock, in seconds "
        "(the end of the last final word): its words are shifted by this much."
    )
    replayed_seconds: float = Field(
        description="Seconds of audio sent again because the old session never finalised it."
    )
    attempts: int = Field(description="Connection attempts it took (1 when the first worked).")
    cause: str = Field(description="Why the old session ended, as the error said.")
    session_id: str | None = Field(description="The new session.")


class AudioGap(FrozenModel):
    """Audio that was never transcribed: the buffer had to discard it, or a drain failed."""

    kind: Literal["gap"] = "gap"
    start: float = Field(description="Start of the lost audio on the stream's clock, seconds.")
    end: float = Field(description="End of the lost audio on the stream's clock, seconds.")


@dataclass
class StreamMetrics:
    """Counters of a stream that spans sessions; read them at any time."""

    sessions: int = 0
    """Sessions that carried audio."""
    rollovers: int = 0
    """Planned handovers (budget, warning, idle reopen, overflow)."""
    reconnects: int = 0
    """Unplanned session ends recovered from."""
    connection_attempts: int = 0
    """Every attempt to open a session, successful or not."""
    replayed_seconds: float = 0.0
    """Audio sent twice because a dropped session had not finalised it."""
    deduplicated_words: int = 0
    """Words a new session produced again that had already been emitted, and were dropped."""
    gaps: int = 0
    """:class:`AudioGap` events emitted."""
    gap_seconds: float = 0.0
    """Audio lost in those gaps."""
    idle_closes: int = 0
    """Sessions closed because the source went quiet."""
    skipped_seconds: float = 0.0
    """Quiet audio not sent while the session was closed for idleness (not lost: silence)."""
