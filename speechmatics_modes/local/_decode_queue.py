"""One queue of decodes for every job and live session, most urgent first.

A live Whisper decode takes a tenth to a fifth of a second of one core (its encoder sees the
utterance and some padding, not a 30 s window), so the decoders are the scarce thing on a
small machine. A slot per session wasted them (an idle session held one) and let a session's
optional partial decode delay another session's overdue final. Here every decode asks one
queue for a worker with a *deadline* (when its result is needed), and a freed worker goes to
the earliest deadline. A decode that is only nice to have (a partial, a pause decoded before
it is sure) asks with :meth:`DecodeQueue.try_slot` and is skipped when no worker is free, so
such work uses spare capacity only.

Decodes are not batched: on a 2-core CPU one CTranslate2 call over four sessions' windows cost
about 0.9 of four separate calls, and every window in it would wait for the slowest, so the
most urgent decode runs alone on the next free worker instead.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

__all__ = ["DecodeQueue"]


class DecodeQueue:
    """``workers`` slots, handed out earliest deadline first."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        """How many decodes run at once."""
        self._free = workers
        self._waiting: list[tuple[float, int, anyio.Event]] = []
        self._order = itertools.count()

    @asynccontextmanager
    async def slot(self, deadline: float) -> AsyncIterator[None]:
        """Hold a worker for the block; wait behind decodes with earlier deadlines."""
        await self._acquire(deadline)
        try:
            yield
        finally:
            self._release()

    @asynccontextmanager
    async def try_slot(self, *, idle: bool = False) -> AsyncIterator[bool]:
        """Hold a worker for the block if one is free now and nobody waits; yields whether.

        With ``idle``, only if every worker is free: work for an otherwise idle engine (a look
        that makes a later flush faster) must never leave a busy one short of a worker.
        """
        if self._free < (self.workers if idle else 1) or self._waiting:
            yield False
            return
        self._free -= 1
        try:
            yield True
        finally:
            self._release()

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
