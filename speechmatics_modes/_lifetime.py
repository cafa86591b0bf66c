"""Objects that hold resources for the length of an ``async with`` block.

A client, a stream and a server each open several things (a connection, a task group, a
temporary directory...) that must all be closed, in reverse order, however the block ends, and
closed at once if opening fails halfway. :class:`StackOwner` does that once with an
``AsyncExitStack``: a subclass only says what to open, in :meth:`StackOwner._acquire`.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType

from typing_extensions import Self

__all__ = ["StackOwner"]


class StackOwner:
    """An async context manager whose resources live on one ``AsyncExitStack``."""

    _stack: AsyncExitStack | None = None

    async def _acquire(self, stack: AsyncExitStack) -> None:
        """Open the resources, entering each into ``stack`` so that it closes them."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            await self._acquire(stack)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
