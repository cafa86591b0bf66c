"""One queue of decodes for every job and live session, most urgent first.

A live Whisper decode takes a tenth to a fifth of a second of one core (its encoder sees the
utterance and some padding, not a 30 s window), so the decoders are the scarce thing on a
small machine. A slot per session wasted them (an idle session held one) and let a session's
optional partial decode delay another session's overdue final. Here every decode asks one
queue for a worker with a *deadline* (when its result is needed), and a freed worker goes to
the earliest deadline. A decode that is only nice to have (a partial, a pause decoded before
it is sure) asks with :meth:`DecodeQueue.try_run` and is skipped when no worker is free, so
such work uses spare capacity only.

A caller may stop waiting for its decode: a session whose client forces the end of an
utterance drops the partial decode it was waiting for, so that the answer need not wait for
it. A thread cannot be stopped, so the decode runs on to its end in the queue's own task and
keeps its worker until then: no more decodes ever run at once than there are workers. A
caller that may still use what it stopped waiting for passes ``late``, which gets it.

Decodes are not batched: on a 2-core CPU one CTranslate2 call over four sessions' windows cost
about 0.9 of four separate calls, and every window in it would wait for the slowest, so the
most urgent decode runs alone on the next free worker instead.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TypeVar

import anyio
import anyio.abc
import anyio.to_thread
from typing_extensions import Self

__all__ = ["DecodeQueue"]

T = TypeVar("T")


class DecodeQueue:
    """``workers`` threads' worth of decoding, handed out earliest deadline first.

    Use it with ``async with``: decodes whose callers stopped waiting finish inside the block.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        """How many decodes run at once."""
        self._free = workers
        self._waiting: list[tuple[float, int, anyio.Event]] = []
        self._order = itertools.count()
        self._exits = AsyncExitStack()
        self._running: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> Self:
        self._running = await self._exits.enter_async_context(anyio.create_task_group())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._running = None
        await self._exits.__aexit__(exc_type, exc, tb)

    async def run(
        self, work: Callable[[], T], *, deadline: float, late: Callable[[T], None] | None = None
    ) -> T:
        """Run ``work`` in a thread on the next worker; wait behind earlier deadlines.

        ``late`` gets the result if the caller was cancelled while ``work`` ran. It runs in
        the queue's own task, so it must not raise (an error there would end the queue).
        """
        await self._acquire(deadline)
        return await self._run_taken(work, late)

    async def try_run(
        self,
        work: Callable[[], T],
        *,
        idle: bool = False,
        late: Callable[[T], None] | None = None,
    ) -> T | None:
        """Run ``work`` in a thread if a worker is free now and nobody waits; else ``None``.

        With ``idle``, only if every worker is free: work for an otherwise idle engine (a look
        that makes a later flush faster) must never leave a busy one short of a worker.
        ``late``: as for :meth:`run`.
        """
        if self._free < (self.workers if idle else 1) or self._waiting:
            return None
        self._free -= 1
        return await self._run_taken(work, late)

    async def _run_taken(self, work: Callable[[], T], late: Callable[[T], None] | None) -> T:
        """Run ``work`` on the worker just taken, in the queue's task, which frees it after.

        If the caller stops waiting, the result goes to ``late`` (if any) when it comes.
        """
        running = self._running
        if running is None:
            self._release()
            raise anyio.ClosedResourceError("the decode queue is not running")
        done = anyio.Event()
        outcome: list[T] = []
        failure: list[Exception] = []
        caller_waits = True

        async def hold_worker() -> None:
            try:
                outcome.append(await anyio.to_thread.run_sync(work))
            except Exception as exc:  # handed to the caller, in its own task
                failure.append(exc)
            finally:
                self._release()
                done.set()
            if outcome and late is not None and not caller_waits:
                late(outcome[0])

        running.start_soon(hold_worker)
        try:
            await done.wait()
        except BaseException:
            caller_waits = False
            if outcome and late is not None:  # it came just as the caller stopped waiting
                late(outcome[0])
            raise
        if failure:
            raise failure[0]
        if not outcome:  # the queue closed before the work could start
            raise anyio.ClosedResourceError("the decode queue closed")
        return outcome[0]

    async def _acquire(self, deadline: float) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        granted = anyio.Event()
        entry = (deadline, next(self._order), granted)
        heapq.heappush(self._waiting, entry)
        try:
            await granted.wait()
        except BaseException:
            if granted.is_set():  # handed a worker just as we were cancelled: pass it on
                self._release()
            else:
                self._waiting.remove(entry)
                heapq.heapify(self._waiting)
            raise

    def _release(self) -> None:
        if self._waiting:
            _, _, granted = heapq.heappop(self._waiting)
            granted.set()  # the worker passes straight to the most urgent waiter
        else:
            self._free += 1
