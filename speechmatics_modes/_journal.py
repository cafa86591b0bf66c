"""The journal of a bulk run: where each input stands, so no input's work is done twice.

Two engines keep it behind one :class:`Journal` interface, chosen once from the target's form
(:func:`is_postgres_url`) when a run starts:

* a SQLite file (:mod:`._sqlite_journal`) for one process on one machine;
* a PostgreSQL database (:mod:`._postgres_journal`, a ``postgresql://`` URL) for any number of
  worker processes on any number of machines, which claim inputs from it, share one
  concurrency limit through it and take over the inputs of workers that died.

A row records an input's state (``pending``, ``submitting``, ``submitted``, ``done`` or
``failed``), the batch job created for it and the reference that job was tagged with.
``submitting`` and the reference are stored *before* the upload starts, so whoever does the
input next finds the job by its reference instead of submitting the audio a second time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from speechmatics_modes._inputs import BulkInput

if TYPE_CHECKING:
    from speechmatics_modes._models import Transcript

__all__ = [
    "TERMINAL_STATES",
    "Entry",
    "Journal",
    "PauseCallback",
    "State",
    "is_postgres_url",
]

State = Literal["pending", "submitting", "submitted", "done", "failed"]
"""Where an input stands; ``done`` means the caller received its transcript."""

TERMINAL_STATES: tuple[State, ...] = ("done", "failed")
"""States no worker works on; ``failed`` ones are tried again by a new run or ``retry-failed``."""

PauseCallback = Callable[[float], None]
"""Told to hold every request back for this many seconds (a rate limit another worker met)."""


@dataclass(frozen=True)
class Entry:
    """One input's row."""

    id: str
    """The input's key (see :class:`~speechmatics_modes._inputs.BulkInput`)."""
    source: str
    """The input's absolute path or URL."""
    state: State
    reference: str
    """A unique tag put on the batch job (``tracking.reference``), to find it again."""
    job_id: str | None = None
    error: str | None = None
    """Why the last attempt failed, when it did."""

    @property
    def input(self) -> BulkInput:
        """The input this row is about."""
        return BulkInput(self.id, self.source)


class Journal(Protocol):
    """What a bulk run needs from its journal, whichever engine keeps it."""

    async def begin(
        self, inputs: Sequence[BulkInput], *, concurrency: int, pause: PauseCallback
    ) -> None:
        """Register the run's inputs (rows already there keep their state).

        Args:
            inputs: Every input of the run.
            concurrency: How many inputs may be in flight at once: in this process (SQLite),
                or over every worker of the run (PostgreSQL).
            pause: Called when another worker met a rate limit, to hold requests back.
        """
        ...

    async def claim(self) -> Entry | None:
        """The next input for this process to work on; ``None`` once there is none left.

        May wait (for a concurrency slot, or for another worker's claim to expire).
        """
        ...

    async def record(
        self,
        entry: Entry,
        state: State,
        *,
        job_id: str | None = None,
        error: str | None = None,
        transcript: Transcript | None = None,
    ) -> bool:
        """Store ``state`` (and the job id, error, transcript) for ``entry``.

        Returns ``False`` when this process no longer holds the input (its lease lapsed and
        another worker took it over): nothing was stored, and the caller must drop the input.
        """
        ...

    async def release(self, entry: Entry) -> None:
        """The input's job is over at the service: its concurrency slot is free again."""
        ...

    async def rate_limited(self, seconds: float) -> None:
        """The service answered 429/503 asking for ``seconds`` of quiet: tell every worker."""
        ...


def is_postgres_url(target: object) -> bool:
    """``postgresql://`` and ``postgres://`` name a PostgreSQL journal; anything else a file."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))
