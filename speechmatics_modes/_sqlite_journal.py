"""The SQLite journal: one process on one machine, resumable without waste.

SQLite is used because it is in the standard library, survives a process killed at any point
(each write is its own transaction) and lets a user inspect the journal with any SQLite tool.
The inputs are worked through in the order given; the process's own task count is the
concurrency limit, so claiming needs no locks.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from speechmatics_modes._inputs import BulkInput
from speechmatics_modes._journal import Entry, PauseCallback, State
from speechmatics_modes._models import Transcript

__all__ = ["SqliteJournal"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inputs (
    path TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    reference TEXT NOT NULL,
    job_id TEXT,
    error TEXT
)
"""
"""``path`` holds the input's id (the absolute path for files, as in the first releases)."""


class SqliteJournal:
    """A SQLite file recording each input's batch job and state (see :class:`Journal`).

    An input whose file changed (size or modification time) since it was recorded starts
    afresh: its old transcript would be of other audio.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open (creating if needed) the journal at ``path`` (``":memory:"`` for none)."""
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._queue: Iterator[BulkInput] = iter(())

    def close(self) -> None:
        """Close the database; every write is already committed."""
        self._db.close()

    async def begin(
        self, inputs: Sequence[BulkInput], *, concurrency: int, pause: PauseCallback
    ) -> None:
        """Work through ``inputs`` in order; the caller's task count bounds concurrency."""
        self._queue = iter(inputs)

    async def claim(self) -> Entry | None:
        """The next input's row (``done`` ones too: the caller reports them as skipped)."""
        item = next(self._queue, None)
        return None if item is None else self.entry(item)

    def entry(self, item: BulkInput) -> Entry:
        """The row for ``item``, created as ``pending`` if new or if the file changed."""
        fingerprint = _fingerprint(item)
        row = self._db.execute(
            "SELECT state, reference, job_id, error, fingerprint FROM inputs WHERE path = ?",
            (item.id,),
        ).fetchone()
        if row is not None and row[4] == fingerprint:
            return Entry(item.id, item.source, row[0], row[1], job_id=row[2], error=row[3])
        entry = Entry(item.id, item.source, "pending", f"speechmatics-modes:{uuid.uuid4()}")
        self._db.execute(
            "INSERT OR REPLACE INTO inputs (path, fingerprint, state, reference) "
            "VALUES (?, ?, ?, ?)",
            (item.id, fingerprint, entry.state, entry.reference),
        )
        return entry

    async def record(
        self,
        entry: Entry,
        state: State,
        *,
        job_id: str | None = None,
        error: str | None = None,
        transcript: Transcript | None = None,
    ) -> bool:
        """Store ``state`` (and the job id, error) for ``entry``'s input; always ``True``."""
        self._db.execute(
            "UPDATE inputs SET state = ?, job_id = ?, error = ? WHERE path = ?",
            (state, job_id, error, entry.id),
        )
        return True

    async def release(self, entry: Entry) -> None:
        """Nothing to do: the caller's task count is the limit."""

    async def rate_limited(self, seconds: float) -> None:
        """Nothing to do: the one batch client already pauses every request of this process."""

    def reopen(self, item: BulkInput) -> None:
        """Make a ``done`` input due again, keeping its job id.

        The next run then fetches its transcript from that job again (no second upload), or
        transcribes it afresh if the service no longer has the job.
        """
        entry = self.entry(item)
        if entry.state == "done":
            self._db.execute("UPDATE inputs SET state = 'submitted' WHERE path = ?", (entry.id,))


def _fingerprint(item: BulkInput) -> str:
    if item.is_url:
        return "url"
    try:
        stat = Path(item.source).stat()
    except OSError:
        return "missing"
    return f"{stat.st_size}:{stat.st_mtime_ns}"
