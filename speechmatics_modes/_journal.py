"""The bulk journal: one SQLite row per input, so a bulk run can be resumed without waste.

A row records where an input stands (``pending``, ``submitting``, ``submitted``, ``done`` or
``failed``), the batch job created for it and the reference that job was tagged with. Rows are
written *before* the step they describe finishes where that matters: ``submitting`` and the
reference are committed before the upload starts, so a run killed mid-upload can find the job
by its reference instead of submitting the audio a second time.

SQLite is used because it is in the standard library, survives a process killed at any point
(each write is its own transaction) and lets a user inspect the journal with any SQLite tool.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["Entry", "Journal", "State"]

State = Literal["pending", "submitting", "submitted", "done", "failed"]
"""Where an input stands; ``done`` means the caller received its transcript."""

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


@dataclass(frozen=True)
class Entry:
    """One input's row."""

    path: str
    """The input's absolute path: the key."""
    state: State
    reference: str
    """A unique tag put on the batch job (``tracking.reference``), to find it again."""
    job_id: str | None = None
    error: str | None = None
    """Why the last attempt failed, when it did."""


class Journal:
    """A SQLite file recording each input's batch job and state.

    An input whose file changed (size or modification time) since it was recorded starts
    afresh: its old transcript would be of other audio.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open (creating if needed) the journal at ``path``."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        """Close the database; every write is already committed."""
        self._db.close()

    def entry(self, path: Path) -> Entry:
        """The row for ``path``, created as ``pending`` if new or if the file changed."""
        key, fingerprint = str(path.resolve()), _fingerprint(path)
        row = self._db.execute(
            "SELECT state, reference, job_id, error, fingerprint FROM inputs WHERE path = ?",
            (key,),
        ).fetchone()
        if row is not None and row[4] == fingerprint:
            return Entry(key, state=row[0], reference=row[1], job_id=row[2], error=row[3])
        entry = Entry(key, state="pending", reference=f"speechmatics-modes:{uuid.uuid4()}")
        self._db.execute(
            "INSERT OR REPLACE INTO inputs (path, fingerprint, state, reference) "
            "VALUES (?, ?, ?, ?)",
            (key, fingerprint, entry.state, entry.reference),
        )
        return entry

    def record(
        self, entry: Entry, state: State, *, job_id: str | None = None, error: str | None = None
    ) -> Entry:
        """Store ``state`` (and the job id, error) for ``entry``'s input; returns the new row."""
        updated = Entry(
            entry.path, state=state, reference=entry.reference, job_id=job_id, error=error
        )
        self._db.execute(
            "UPDATE inputs SET state = ?, job_id = ?, error = ? WHERE path = ?",
            (state, job_id, error, entry.path),
        )
        return updated

    def reopen(self, path: Path) -> None:
        """Make a ``done`` input due again, keeping its job id.

        The next run then fetches its transcript from that job again (no second upload), or
        transcribes it afresh if the service no longer has the job.
        """
        entry = self.entry(path)
        if entry.state == "done":
            self.record(entry, "submitted", job_id=entry.job_id)

    def entries(self) -> list[Entry]:
        """Every row, in path order."""
        rows = self._db.execute(
            "SELECT path, state, reference, job_id, error FROM inputs ORDER BY path"
        ).fetchall()
        return [Entry(r[0], state=r[1], reference=r[2], job_id=r[3], error=r[4]) for r in rows]


def _fingerprint(path: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        return "missing"
    return f"{stat.st_size}:{stat.st_mtime_ns}"
