"""One retry vocabulary: exponential backoff with jitter, and the batch policy built on it.

Batch requests (a submit the service refused with 429/503 or never received, status polls,
transcript reads) and real-time reconnections (:class:`~speechmatics_modes.RolloverPolicy`)
wait the same way: a delay that grows by a factor up to a cap, each one shortened by a random
fraction so that many clients failing together do not retry together. Both policies name the
curve with the same four fields (``backoff_initial``, ``backoff_factor``, ``backoff_max``,
``backoff_jitter``). Which errors are worth a retry is a property of the error
(:attr:`~speechmatics_modes.SpeechmaticsModesError.retryable`), not of the policy.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from pydantic import Field, model_validator

from speechmatics_modes._frozen import FrozenModel

__all__ = ["Backoff", "RetryPolicy", "backoff_is_ordered"]


class _BackoffCurve(Protocol):
    """The four fields both policies describe their backoff with."""

    @property
    def backoff_initial(self) -> float: ...
    @property
    def backoff_factor(self) -> float: ...
    @property
    def backoff_max(self) -> float: ...
    @property
    def backoff_jitter(self) -> float: ...


_Curve = TypeVar("_Curve", bound=_BackoffCurve)


def backoff_is_ordered(policy: _Curve) -> _Curve:
    """Both policies' validator: a cap below the first delay is a typo, not a curve.

    Attach it with ``model_validator(mode="after")(backoff_is_ordered)``.
    """
    if policy.backoff_max < policy.backoff_initial:
        raise ValueError("backoff_max must be at least backoff_initial")
    return policy


@dataclass
class Backoff:
    """Exponential backoff with jitter; :meth:`reset` after an attempt that proved healthy.

    Args:
        initial: First delay, seconds.
        factor: Growth per failed attempt.
        maximum: Cap on the delay.
        jitter: Each delay is shortened by up to this fraction, at random.
        random: Returns a float in [0, 1); injectable so tests are deterministic.
    """

    initial: float
    factor: float
    maximum: float
    jitter: float
    random: Callable[[], float]
    failures: int = 0
    """Consecutive failed attempts since the last reset."""

    @classmethod
    def following(
        cls, policy: _BackoffCurve, random: Callable[[], float] = _random.random
    ) -> Backoff:
        """A fresh backoff on ``policy``'s curve."""
        return cls(
            policy.backoff_initial,
            policy.backoff_factor,
            policy.backoff_max,
            policy.backoff_jitter,
            random,
        )

    def next_delay(self) -> float:
        """The delay before the next attempt; counts one more failure."""
        delay = min(self.maximum, self.initial * self.factor**self.failures)
        self.failures += 1
        return delay * (1 - self.jitter * self.random())

    def reset(self) -> None:
        """Start again from the initial delay."""
        self.failures = 0


class RetryPolicy(FrozenModel):
    """How batch requests ride out transient failures, and how often a job's status is polled.

    The defaults retry a request up to five times, 0.5 s after the first failure and up to
    5 s apart, and poll a running job at the same growing intervals. A ``Retry-After`` the
    service sends with 429 or 503 takes precedence over the curve, and holds back every request
    of the client, not only the one that met it. A submit is retried only where the service
    cannot have created the job (see docs/errors.md).
    """

    max_failures: int = Field(
        default=5,
        ge=0,
        description="Transient failures tolerated per request before its error is raised; "
        "0 raises the first one.",
    )
    backoff_initial: float = Field(
        default=0.5,
        ge=0,
        description="Seconds before the first retry, and between the first status polls.",
    )
    backoff_factor: float = Field(
        default=1.6, ge=1, description="Each failed attempt (or poll) multiplies the delay by this."
    )
    backoff_max: float = Field(
        default=5.0,
        ge=0,
        description="The longest delay, in seconds: a long job is polled at this interval.",
    )
    backoff_jitter: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="Each delay is shortened by a random fraction up to this, so that the polls "
        "and retries of many jobs spread out.",
    )

    _backoff_is_ordered = model_validator(mode="after")(backoff_is_ordered)
