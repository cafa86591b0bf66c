"""The engine's one queue of decodes: earliest deadline first, optional work only when free,
and a worker stays taken until its decode ends, whoever stopped waiting for it."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio
import anyio.to_thread
import pytest

from speechmatics_modes.local._decode_queue import DecodeQueue

WAIT = 10.0
"""Seconds any step of a test may take before it is a failure (never reached when it passes)."""

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def busy_worker(queue: DecodeQueue) -> AsyncIterator[threading.Event]:
    """One of the queue's workers decoding until the block ends (or the event is set)."""
    started, done = threading.Event(), threading.Event()

    def decode() -> None:
        started.set()
        done.wait(WAIT)

    async with anyio.create_task_group() as group:
        group.start_soon(partial(queue.run, decode, deadline=0.0))
        assert await anyio.to_thread.run_sync(started.wait, WAIT)
        try:
            yield done
        finally:
            done.set()


async def test_the_queue_serves_the_earliest_deadline_first() -> None:
    order: list[str] = []
    async with DecodeQueue(1) as queue, anyio.create_task_group() as group, busy_worker(queue):
        for name, deadline in [("late", 9.0), ("urgent", 1.0), ("soon", 5.0)]:
            group.start_soon(partial(queue.run, partial(order.append, name), deadline=deadline))
        await anyio.wait_all_tasks_blocked()
        assert await queue.try_run(lambda: "ran") is None, "optional work never waits"
    assert order == ["urgent", "soon", "late"]


async def test_work_for_an_idle_engine_runs_only_when_every_worker_is_free() -> None:
    async with DecodeQueue(2) as queue:
        async with busy_worker(queue):
            assert await queue.try_run(lambda: "look", idle=True) is None
            assert await queue.try_run(lambda: "partial") == "partial", "one worker is free"
        assert await queue.try_run(lambda: "look", idle=True) == "look"


async def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    served: list[str] = []
    async with DecodeQueue(1) as queue:
        async with anyio.create_task_group() as group, busy_worker(queue):
            with anyio.CancelScope() as waiter:
                waiter.cancel()
                await queue.run(partial(served.append, "gave up"), deadline=1.0)
            group.start_soon(partial(queue.run, partial(served.append, "next"), deadline=2.0))
            await anyio.wait_all_tasks_blocked()
        assert served == ["next"]
        assert await queue.try_run(lambda: "free") == "free"


@pytest.mark.parametrize("optional", [False, True])
async def test_a_decode_nobody_waits_for_keeps_its_worker_until_it_ends(optional: bool) -> None:
    """A session that drops a partial decode gets on at once; the thread cannot be stopped, so
    its worker is not handed out again until it ends: never more decodes than workers. Its
    result goes to ``late``, once, when it comes."""
    started, finish = threading.Event(), threading.Event()
    late: list[str] = []

    def decode() -> str:
        started.set()
        finish.wait(WAIT)
        return "partial"

    async with DecodeQueue(1) as queue:
        run = (
            partial(queue.try_run, decode, late=late.append)
            if optional
            else partial(queue.run, decode, deadline=0.0, late=late.append)
        )
        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as group:
                group.start_soon(run)
                assert await anyio.to_thread.run_sync(started.wait, WAIT)
                group.cancel_scope.cancel()  # the caller stops waiting
        assert late == []
        assert await queue.try_run(lambda: "next") is None, "its worker is still decoding"
        finish.set()
    assert late == ["partial"], "the queue's block waited for the decode to end"


async def test_a_failed_decode_raises_in_its_caller_and_frees_its_worker() -> None:
    def decode() -> None:
        raise ValueError("the model failed")

    async with DecodeQueue(1) as queue:
        with pytest.raises(ValueError, match="the model failed"):
            await queue.run(decode, deadline=0.0)
        assert await queue.try_run(lambda: "free") == "free"


async def test_a_queue_not_running_refuses_work() -> None:
    queue = DecodeQueue(1)
    with pytest.raises(anyio.ClosedResourceError):
        await queue.run(lambda: "work", deadline=0.0)
    async with queue:
        assert await queue.try_run(lambda: "work") == "work", "the refused work freed its worker"
