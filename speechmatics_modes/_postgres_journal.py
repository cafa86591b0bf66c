"""The PostgreSQL journal: many workers on many machines, one run, one concurrency limit.

Every worker registers the same inputs (``INSERT ... ON CONFLICT DO NOTHING``), then claims
them one at a time. The database keeps the three promises of a run:

* **Each input is worked on by one worker.** A claim is a row lock taken with
  ``FOR UPDATE SKIP LOCKED`` (so claiming workers never wait on each other) turned into a
  lease: the row names its worker and a ``lease_until`` that the worker's heartbeat keeps
  pushing forward. A worker that dies stops its heartbeat; once its leases lapse its inputs
  are claimed again, and the next worker re-attaches to a job the dead one had submitted (by
  the job id, or by the job's tracking reference when the id was never written down).
* **The run never has more jobs in flight than its limit.** A concurrency slot belongs to an
  input (``holds_slot``), not to a worker: a worker's death does not free the slot of a job
  still running at the service; the worker that takes the input over inherits it. Claims are
  counted against the limit under a lock on the single run row.
* **A rate limit slows everyone.** A 429/503 met by any worker halves the run's limit and
  pauses new claims for the ``Retry-After`` the service gave, and a ``NOTIFY`` tells every
  worker to hold its requests back as long. Each job that then succeeds raises the limit by
  ``1/limit`` (additive increase), back up to the ceiling the workers were started with.

The schema is created and migrated here, under an advisory lock so workers starting together
do it once; ``speechmatics_modes_schema_version`` says which migrations ran. All tables live
in the connection's ``search_path`` schema, so one database can hold several runs (one schema
each: ``?options=-csearch_path%3Dmy_run`` in the URL).
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from speechmatics_modes._exceptions import ConfigurationError, TransportError
from speechmatics_modes._inputs import BulkInput
from speechmatics_modes._journal import TERMINAL_STATES, Entry, PauseCallback, State
from speechmatics_modes._models import Transcript

if TYPE_CHECKING:
    from psycopg import AsyncConnection

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "PostgresJournal",
    "RunStatus",
    "open_postgres_journal",
    "retry_failed",
    "run_status",
]

logger = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 60.0
"""How long a claim outlives its worker's last heartbeat (a run setting: ``lease_seconds``)."""

_PAUSE_CHANNEL = "speechmatics_modes_pause"
_REGISTER_BATCH = 5000
_IDLE_SECONDS = (0.2, 0.6)
"""A worker with nothing to claim looks again after a random delay in this range."""

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE speechmatics_modes_run (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        ceiling integer NOT NULL CHECK (ceiling >= 1),
        slot_limit double precision NOT NULL CHECK (slot_limit >= 1),
        paused_until timestamptz NOT NULL DEFAULT '-infinity',
        lease_seconds double precision NOT NULL DEFAULT 60 CHECK (lease_seconds > 0),
        started_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE speechmatics_modes_inputs (
        id text PRIMARY KEY,
        source text NOT NULL,
        state text NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'submitting', 'submitted', 'done', 'failed')),
        reference text NOT NULL,
        job_id text,
        error text,
        worker text,
        lease_until timestamptz,
        holds_slot boolean NOT NULL DEFAULT false,
        attempts integer NOT NULL DEFAULT 0,
        finished_at timestamptz,
        transcript jsonb,
        transcript_text text
    );
    CREATE INDEX speechmatics_modes_inputs_open ON speechmatics_modes_inputs (id)
        WHERE state IN ('pending', 'submitting', 'submitted');
    CREATE INDEX speechmatics_modes_inputs_slots ON speechmatics_modes_inputs (id)
        WHERE holds_slot;
    CREATE INDEX speechmatics_modes_inputs_finished ON speechmatics_modes_inputs (finished_at)
        WHERE finished_at IS NOT NULL;
    """,
)
"""Migration N (1-based) brings the schema from version N-1 to N. Append; never edit."""

_OPEN = "state IN ('pending', 'submitting', 'submitted')"

_CLAIM = f"""
UPDATE speechmatics_modes_inputs
SET worker = %(worker)s, holds_slot = true, attempts = attempts + 1,
    lease_until = now() + make_interval(secs => %(lease)s)
WHERE id = (
    SELECT id FROM speechmatics_modes_inputs
    WHERE {_OPEN} AND {{which}}
    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING id, source, state, reference, job_id, error
"""
_ORPHAN = _CLAIM.format(which="holds_slot AND lease_until < now()")
"""An input whose worker died while it held a slot: taken over with its slot, limit or not."""
_FRESH = _CLAIM.format(which="NOT holds_slot AND (lease_until IS NULL OR lease_until < now())")


@dataclass(frozen=True)
class RunStatus:
    """Where a whole run stands, as any machine can read it from the database."""

    pending: int
    """Inputs nobody works on yet (or whose worker died)."""
    running: int
    """Inputs a live worker holds."""
    done: int
    failed: int
    in_flight: int
    """Jobs holding one of the run's concurrency slots."""
    workers: int
    """Workers holding at least one live claim."""
    slot_limit: float
    """The limit now: below ``ceiling`` after a rate limit, recovering with each success."""
    ceiling: int
    paused_seconds: float
    """How much longer new claims wait for a rate limit to pass (0 when none does)."""
    done_per_minute: float
    """Inputs finished per minute over the last ten minutes."""

    @property
    def remaining(self) -> int:
        """Inputs not done or failed."""
        return self.pending + self.running

    @property
    def total(self) -> int:
        """Every input of the run."""
        return self.remaining + self.done + self.failed

    @property
    def eta_seconds(self) -> float | None:
        """Seconds until the run is done at the current rate; ``None`` without a rate."""
        if self.remaining == 0:
            return 0.0
        if self.done_per_minute <= 0:
            return None
        return self.remaining / self.done_per_minute * 60


class PostgresJournal:
    """A run's journal in PostgreSQL, seen by one worker (see the module docstring).

    Made by :func:`open_postgres_journal`, which owns its connections and background tasks.
    """

    def __init__(
        self, connection: AsyncConnection[Any], worker: str, *, store_transcripts: bool
    ) -> None:
        self._db = connection
        self._lock = anyio.Lock()  # one statement or transaction at a time on the connection
        self.worker = worker
        """Who this worker is in the ``worker`` column: host, process id and a random tag."""
        self._store_transcripts = store_transcripts
        self._lease = DEFAULT_LEASE_SECONDS
        self._leased = anyio.Event()
        """Set once :meth:`begin` read the run's lease: the heartbeat keeps time by it."""
        self._pause: PauseCallback = _ignore_pause
        self._claiming = anyio.Lock()
        self._freed = anyio.Event()

    async def begin(
        self, inputs: Sequence[BulkInput], *, concurrency: int, pause: PauseCallback
    ) -> None:
        """Register ``inputs``; ``concurrency`` becomes the run's limit (the last worker's)."""
        self._pause = pause
        async with _reaching_the_database(), self._lock:
            row = await _one(
                self._db,
                "INSERT INTO speechmatics_modes_run (ceiling, slot_limit) VALUES (%s, %s) "
                "ON CONFLICT (id) DO UPDATE SET ceiling = EXCLUDED.ceiling, "
                "slot_limit = least(speechmatics_modes_run.slot_limit, EXCLUDED.ceiling) "
                "RETURNING lease_seconds",
                (concurrency, concurrency),
            )
            self._lease = float(row[0])
            self._leased.set()
            for start in range(0, len(inputs), _REGISTER_BATCH):
                batch = inputs[start : start + _REGISTER_BATCH]
                await self._db.execute(
                    "INSERT INTO speechmatics_modes_inputs (id, source, reference) "
                    "SELECT id, source, 'speechmatics-modes:' || gen_random_uuid() "
                    "FROM unnest(%s::text[], %s::text[]) AS given(id, source) "
                    "ON CONFLICT (id) DO NOTHING",
                    ([item.id for item in batch], [item.source for item in batch]),
                )

    @property
    def heartbeat_seconds(self) -> float:
        """How often the leases are renewed: three times per lease."""
        return self._lease / 3

    async def claim(self) -> Entry | None:
        """Claim the next input that may start now; wait while others still hold some.

        One task of this worker looks at a time (the others queue here), so an idle worker
        asks the database a few times a second however many tasks it runs; a slot this worker
        frees wakes it at once, a slot freed elsewhere is seen at its next look.
        """
        async with self._claiming:
            while True:
                entry, left = await self._try_claim()
                if entry is not None or not left:
                    return entry
                self._freed = anyio.Event()
                with anyio.move_on_after(random.uniform(*_IDLE_SECONDS)):
                    await self._freed.wait()

    async def _try_claim(self) -> tuple[Entry | None, bool]:
        params = {"worker": self.worker, "lease": self._lease}
        async with _reaching_the_database(), self._lock, self._db.transaction():
            run = await _one(
                self._db,
                "SELECT slot_limit, paused_until > now() FROM speechmatics_modes_run FOR UPDATE",
            )
            row = await _maybe_one(self._db, _ORPHAN, params)
            if row is None and not run[1]:
                in_flight = await _one(
                    self._db, "SELECT count(*) FROM speechmatics_modes_inputs WHERE holds_slot"
                )
                if in_flight[0] < math.floor(run[0]):
                    row = await _maybe_one(self._db, _FRESH, params)
            if row is not None:
                return Entry(*row), True
            left = await _one(
                self._db, f"SELECT EXISTS (SELECT 1 FROM speechmatics_modes_inputs WHERE {_OPEN})"
            )
            return None, bool(left[0])

    async def record(
        self,
        entry: Entry,
        state: State,
        *,
        job_id: str | None = None,
        error: str | None = None,
        transcript: Transcript | None = None,
    ) -> bool:
        """Store the state while this worker still holds the claim; a final state ends it."""
        stored = transcript if self._store_transcripts else None
        async with _reaching_the_database(), self._lock:
            cursor = await self._db.execute(
                "UPDATE speechmatics_modes_inputs SET state = %(state)s, job_id = %(job_id)s, "
                "error = %(error)s, "
                "holds_slot = holds_slot AND NOT %(final)s, "
                "worker = CASE WHEN %(final)s THEN NULL ELSE worker END, "
                "lease_until = CASE WHEN %(final)s THEN NULL ELSE lease_until END, "
                "finished_at = CASE WHEN %(final)s THEN now() END, "
                "transcript = coalesce(%(json)s::jsonb, transcript), "
                "transcript_text = coalesce(%(text)s, transcript_text) "
                "WHERE id = %(id)s AND worker = %(worker)s",
                {
                    "state": state,
                    "job_id": job_id,
                    "error": error,
                    "final": state in TERMINAL_STATES,
                    "json": stored.to_json() if stored is not None else None,
                    "text": stored.to_text() if stored is not None else None,
                    "id": entry.id,
                    "worker": self.worker,
                },
            )
        if state in TERMINAL_STATES:
            self._freed.set()
        if cursor.rowcount == 0:
            logger.warning(
                "input %s was taken over by another worker (this worker's lease lapsed); "
                "this worker drops it",
                entry.id,
            )
        return cursor.rowcount > 0

    async def release(self, entry: Entry) -> None:
        """Give the input's slot back, and let the limit recover a little."""
        async with _reaching_the_database(), self._lock:
            await self._db.execute(
                "WITH freed AS (UPDATE speechmatics_modes_inputs SET holds_slot = false "
                "WHERE id = %s AND worker = %s AND holds_slot RETURNING 1) "
                "UPDATE speechmatics_modes_run "
                "SET slot_limit = least(ceiling, slot_limit + 1 / slot_limit) "
                "WHERE EXISTS (SELECT 1 FROM freed)",
                (entry.id, self.worker),
            )
        self._freed.set()

    async def rate_limited(self, seconds: float) -> None:
        """Halve the limit (once per pause), pause new claims, and tell every worker.

        A transient database error (see :func:`_database_errors`) is logged, not raised: this
        process pauses anyway, and the request that met the rate limit should not fail for
        the sake of the others. Any other database error is a bug or a schema changed under
        the run, and raises.
        """
        try:
            async with self._lock:
                await self._broadcast_pause(seconds)
        except _database_errors() as exc:
            logger.warning("could not tell the other workers about a rate limit: %s", exc)

    async def _broadcast_pause(self, seconds: float) -> None:
        await self._db.execute(
            "WITH paused AS (UPDATE speechmatics_modes_run SET "
            "slot_limit = CASE WHEN paused_until < now() "
            "THEN greatest(1, slot_limit / 2) ELSE slot_limit END, "
            "paused_until = greatest(paused_until, now() + make_interval(secs => %s)) "
            "RETURNING extract(epoch FROM paused_until - now()) AS seconds) "
            "SELECT pg_notify(%s, seconds::text) FROM paused",
            (seconds, _PAUSE_CHANNEL),
        )

    async def heartbeat(self) -> None:
        """Push this worker's leases forward, every third of a lease, until cancelled.

        A transient database error (see :func:`_database_errors`) is logged and the next beat
        tries again: a lease lasts three beats, and ending the worker's run would drop
        every job it has in flight. Any other database error is a bug or a schema changed
        under the run: it raises, and ends the run, rather than let the leases lapse unseen.
        The first beat waits for :meth:`begin` (no claim comes before it), which reads the
        run's lease: a run with a lease shorter than the default is renewed in time.
        """
        await self._leased.wait()
        while True:
            await anyio.sleep(self.heartbeat_seconds)
            try:
                async with self._lock:
                    await self._db.execute(
                        "UPDATE speechmatics_modes_inputs "
                        "SET lease_until = now() + make_interval(secs => %s) "
                        f"WHERE worker = %s AND {_OPEN}",
                        (self._lease, self.worker),
                    )
            except _database_errors() as exc:  # keep trying: the lease outlives a blip
                logger.warning("could not renew this worker's claims: %s", exc)

    async def listen_for_pauses(self, listener: AsyncConnection[Any]) -> None:
        """Pass every other worker's rate-limit pause on to this worker's requests.

        A transient database error (see :func:`_database_errors`; above all a lost
        connection) is logged and ends the listening, not the run: claims still wait for the
        run's ``paused_until``, only requests already under way are no longer held back. Any
        other database error raises.
        """
        try:
            await listener.execute(f"LISTEN {_PAUSE_CHANNEL}")
            async for notice in listener.notifies():
                try:
                    seconds = float(notice.payload)
                except ValueError:
                    continue
                self._pause(seconds)
        except _database_errors() as exc:
            logger.warning("no longer hearing the other workers' rate limits: %s", exc)


@asynccontextmanager
async def open_postgres_journal(
    url: str, *, store_transcripts: bool = False
) -> AsyncIterator[PostgresJournal]:
    """Connect, migrate the schema, and run the heartbeat and pause listener while open.

    On a clean exit (or cancellation) this worker's unfinished claims are given up so other
    workers need not wait for the lease to lapse; a killed worker's lapse on their own.

    Raises:
        ConfigurationError: psycopg is not installed.
        TransportError: the database cannot be reached.
    """
    async with _connected(url) as connection, _connected(url) as listener:
        await migrate(connection)
        journal = PostgresJournal(connection, _worker_name(), store_transcripts=store_transcripts)
        async with anyio.create_task_group() as group:
            group.start_soon(journal.heartbeat)
            group.start_soon(journal.listen_for_pauses, listener)
            try:
                yield journal
            finally:
                group.cancel_scope.cancel()
                with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                    await _give_up_claims(url, journal.worker)


async def _give_up_claims(url: str, worker: str) -> None:
    """Let other workers take ``worker``'s unfinished inputs at once (a clean exit).

    A connection of its own: the worker's may have been closed by the cancellation that ends
    it (psycopg closes a connection whose query was interrupted). A failure only means the
    others wait for the lease to lapse, so it is logged, not raised over the real exit reason.
    """
    try:
        async with _connected(url) as connection, _reaching_the_database():
            await connection.execute(
                "UPDATE speechmatics_modes_inputs SET worker = NULL, lease_until = NULL "
                f"WHERE worker = %s AND {_OPEN}",
                (worker,),
            )
    except TransportError as exc:
        logger.warning("could not give up this worker's claims (they will lapse): %s", exc)


async def migrate(connection: AsyncConnection[Any]) -> int:
    """Bring the schema up to date (once, whoever else is starting); return its version."""
    async with connection.transaction():
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.speechmatics_modes'))"
        )
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS speechmatics_modes_schema_version "
            "(version integer NOT NULL)"
        )
        row = await _maybe_one(
            connection, "SELECT max(version) FROM speechmatics_modes_schema_version"
        )
        version = int(row[0]) if row is not None and row[0] is not None else 0
        for number, sql in enumerate(_MIGRATIONS[version:], start=version + 1):
            await connection.execute(sql)
            await connection.execute(
                "INSERT INTO speechmatics_modes_schema_version (version) VALUES (%s)", (number,)
            )
    return len(_MIGRATIONS)


async def run_status(url: str) -> RunStatus:
    """Where the run in the database at ``url`` stands."""
    async with _connected(url) as connection:
        await migrate(connection)
        counts = await _one(
            connection,
            "SELECT "
            "count(*) FILTER (WHERE state IN ('pending', 'submitting', 'submitted') "
            "  AND (lease_until IS NULL OR lease_until < now())), "
            "count(*) FILTER (WHERE state IN ('pending', 'submitting', 'submitted') "
            "  AND lease_until >= now()), "
            "count(*) FILTER (WHERE state = 'done'), "
            "count(*) FILTER (WHERE state = 'failed'), "
            "count(*) FILTER (WHERE holds_slot), "
            "count(DISTINCT worker) FILTER (WHERE lease_until >= now()), "
            "count(*) FILTER (WHERE finished_at > now() - interval '10 minutes' "
            "  AND state = 'done'), "
            "extract(epoch FROM least(interval '10 minutes', greatest(interval '1 second', "
            "  now() - min(finished_at) FILTER (WHERE state = 'done')))) "
            "FROM speechmatics_modes_inputs",
        )
        run = await _maybe_one(
            connection,
            "SELECT slot_limit, ceiling, extract(epoch FROM greatest(paused_until, now()) - now()) "
            "FROM speechmatics_modes_run",
        )
    return RunStatus(
        pending=counts[0],
        running=counts[1],
        done=counts[2],
        failed=counts[3],
        in_flight=counts[4],
        workers=counts[5],
        slot_limit=float(run[0]) if run else 0.0,
        ceiling=int(run[1]) if run else 0,
        paused_seconds=float(run[2]) if run else 0.0,
        done_per_minute=counts[6] / float(counts[7]) * 60,
    )


async def retry_failed(url: str) -> int:
    """Put the run's failed inputs back to work; returns how many.

    An input whose job may exist is re-attached to, not submitted again: one with a job id
    goes back to ``submitted``, one without to ``submitting`` (its job is looked up by
    reference first).
    """
    async with _connected(url) as connection:
        await migrate(connection)
        cursor = await connection.execute(
            "UPDATE speechmatics_modes_inputs SET "
            "state = CASE WHEN job_id IS NULL THEN 'submitting' ELSE 'submitted' END, "
            "finished_at = NULL "
            "WHERE state = 'failed'"
        )
        return cursor.rowcount


@asynccontextmanager
async def _connected(url: str) -> AsyncIterator[AsyncConnection[Any]]:
    """A connection to ``url``, closed however the block is left.

    Not psycopg's ``async with connection``: its exit awaits a rollback (or a commit) before
    it closes, and in a cancelled scope that await can raise the cancellation again (psycopg
    yields to the event loop there once it has been busy for a few milliseconds; anyio
    cancels at every yield), which skipped the close and left the connection to the garbage
    collector and its ResourceWarning. Nothing here needs ending but the connection: it
    autocommits, and each transaction block commits or rolls back on its own way out (the
    server rolls back whatever a dropped connection left open). ``close()`` does not wait.
    """
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigurationError(
            "a postgresql:// journal needs psycopg: pip install 'speechmatics-modes[postgres]'"
        ) from exc
    try:
        connection = await psycopg.AsyncConnection.connect(url, autocommit=True)
    except psycopg.OperationalError as exc:
        raise TransportError(f"cannot connect to the journal database: {exc}") from exc
    try:
        yield connection
    finally:
        await connection.close()


def _database_errors() -> tuple[type[Exception], ...]:
    """The database errors that are transient, the same for every caller.

    ``OperationalError``: the connection lost or refused, the server shutting down or short of
    resources, a statement cancelled or timed out, a deadlock or serialization failure. The
    foreground raises them as :class:`TransportError` (retryable); the background tasks
    (:meth:`PostgresJournal.heartbeat`, :meth:`~PostgresJournal.rate_limited`,
    :meth:`~PostgresJournal.listen_for_pauses`) log them and go on. Every other psycopg error
    (SQL the server rejects, a missing table, a broken constraint) is a bug or a schema
    changed under the run: raised as itself everywhere, so it stays visible.
    """
    import psycopg

    return (psycopg.OperationalError,)


@asynccontextmanager
async def _reaching_the_database() -> AsyncIterator[None]:
    """A lost or failing database connection becomes our :class:`TransportError`."""
    try:
        yield
    except _database_errors() as exc:
        raise TransportError(f"the journal database failed: {exc}") from exc


async def _maybe_one(
    connection: AsyncConnection[Any], sql: str, params: Any = None
) -> tuple[Any, ...] | None:
    cursor = await connection.execute(sql, params)
    row: tuple[Any, ...] | None = await cursor.fetchone()
    return row


async def _one(connection: AsyncConnection[Any], sql: str, params: Any = None) -> tuple[Any, ...]:
    row = await _maybe_one(connection, sql, params)
    assert row is not None, sql
    return row


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _ignore_pause(seconds: float) -> None:
    """Before :meth:`PostgresJournal.begin` there are no requests to hold back."""
