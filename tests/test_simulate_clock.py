"""The fake clock of ``benchmarks.simulate``: events in time order, a stop at the instant."""

from __future__ import annotations

import anyio
import pytest

from benchmarks.simulate import Clock, Timeline

pytestmark = pytest.mark.anyio


async def test_audio_and_other_events_happen_in_time_order_on_the_clock() -> None:
    clock = Clock()
    timeline = Timeline(clock, [(0.1, b"a"), (0.2, b"b"), (0.3, b"c")])
    seen: list[tuple[float, str]] = []
    timeline.on_audio = lambda pcm: seen.append((clock.now, pcm.decode()))
    timeline.at(0.2, lambda: seen.append((clock.now, "event")))
    timeline.at(0.15, lambda: seen.append((clock.now, "earlier event")))

    await timeline.advance_to(0.25)

    assert seen == [(0.1, "a"), (0.15, "earlier event"), (0.2, "b"), (0.2, "event")]
    assert clock.now == 0.25
    assert timeline.audio_left
    assert timeline.next_audio == 0.3


async def test_a_wait_cancelled_by_arriving_audio_stops_at_that_instant() -> None:
    """As a stream drops a decode when ``arriving`` audio shows a pause: the rest waits."""
    clock = Clock()
    timeline = Timeline(clock, [(0.1, b"speech"), (0.2, b"pause"), (0.3, b"more")])
    with anyio.CancelScope() as scope:

        def arriving(pcm: bytes) -> None:
            if pcm == b"pause":
                scope.cancel()

        timeline.on_audio = arriving
        await timeline.advance_to(1.0)

    assert scope.cancelled_caught
    assert clock.now == 0.2
    assert timeline.next_audio == 0.3


async def test_the_clock_never_goes_back() -> None:
    clock = Clock()
    timeline = Timeline(clock, [])
    await timeline.advance_to(0.5)
    await timeline.advance_to(0.2)
    assert clock.now == 0.5
