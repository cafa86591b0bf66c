"""One retry vocabulary: the backoff curve, and the batch policy a caller passes as ``retry=``."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from speechmatics_modes import RetryPolicy, RolloverPolicy
from speechmatics_modes._retry import Backoff


class TestBackoff:
    def test_delays_grow_to_the_cap_and_reset(self) -> None:
        backoff = Backoff(initial=0.5, factor=2, maximum=3, jitter=0, random=lambda: 0.0)
        assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
        assert backoff.failures == 5
        backoff.reset()
        assert backoff.next_delay() == 0.5

    def test_jitter_shortens_each_delay_by_up_to_its_fraction(self) -> None:
        backoff = Backoff(initial=1.0, factor=2, maximum=8, jitter=0.5, random=lambda: 1.0)
        assert backoff.next_delay() == 0.5
        backoff = Backoff(initial=1.0, factor=2, maximum=8, jitter=0.5, random=lambda: 0.0)
        assert backoff.next_delay() == 1.0

    def test_both_policies_name_the_same_curve(self) -> None:
        for policy in (
            RetryPolicy(backoff_initial=1, backoff_factor=3, backoff_max=5, backoff_jitter=0),
            RolloverPolicy(backoff_initial=1, backoff_factor=3, backoff_max=5, backoff_jitter=0),
        ):
            backoff = Backoff.following(policy, random=lambda: 0.5)
            assert [backoff.next_delay() for _ in range(3)] == [1, 3, 5]


def test_the_default_retry_policy_is_the_batch_curve_we_had() -> None:
    backoff = Backoff.following(RetryPolicy(), random=lambda: 0.0)
    assert [round(backoff.next_delay(), 3) for _ in range(7)] == [
        0.5,
        0.8,
        1.28,
        2.048,
        3.277,
        5.0,
        5.0,
    ]
    assert RetryPolicy().max_failures == 5


@pytest.mark.parametrize(
    "bad",
    [
        {"max_failures": -1},
        {"backoff_factor": 0.5},
        {"backoff_jitter": 1.5},
        {"backoff_initial": 3, "backoff_max": 1},
        {"retries": 3},
    ],
)
def test_a_retry_policy_that_cannot_work_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        RetryPolicy(**bad)  # type: ignore[arg-type]
