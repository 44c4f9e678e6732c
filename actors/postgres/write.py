"""PostgreSQL's writing connection behind the storage seam.

Runs with the writer's turn held (see ``swarmlog.actors.committer``), on
whichever thread holds it. One connection per process, in autocommit mode:
an append without an open round is one statement (its own transaction, one
round trip) that stores the rows right after the head as it finds it
(:attr:`PostgresWriteStorage.places_rows`). A round
(:meth:`PostgresWriteStorage.begin_round`, when other processes write) is
two round trips: ``BEGIN`` + ``SET LOCAL lock_timeout`` + the head row
``FOR UPDATE`` + the events others committed past the writer's head, in
one simple query; then the rows and ``COMMIT`` in one pipeline. (Nothing in
that pipeline precedes the append, so psycopg's prepared-statement cache
never names a statement whose ``Parse`` the server skipped.)

Faults: a connection lost while a write was in flight is an unknown
outcome (:class:`~swarmlog.actors.storage.CommitUnknownError`; a retry of
the same events resolves idempotently). Unlike SQLite the store is not
broken then: the next call reconnects (:attr:`reconnects_after_unknown`),
and so does any call that finds its idle connection dead (a server
restart), before it sends anything.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Final

import psycopg
from psycopg.pq import TransactionStatus

from swarmlog.actors.postgres.arrays import register
from swarmlog.actors.postgres.bare import (
    BareAppend,
    append_one_params,
    append_params,
)
from swarmlog.actors.postgres.connection import (
    connect,
    healthy,
    is_connection_lost,
    translate_error,
)
from swarmlog.actors.postgres.layout import check_layout
from swarmlog.actors.postgres.sql import Statements
from swarmlog.actors.postgres.url import redact, redact_text
from swarmlog.actors.storage import CommitUnknownError, RequestConflict
from swarmlog.schema.codec import decode_row
from swarmlog.schema.errors import (
    LockTimeoutError,
    StorageError,
    StorageTimeoutError,
    SwarmlogError,
)
from swarmlog.schema.timeutil import to_micros, utc_now

if TYPE_CHECKING:
    from collections.abc import Sequence

    from swarmlog.actors.storage import (
        EventRow,
        ProjectionSnapshotRecord,
        SnapshotRecord,
    )
    from swarmlog.schema.envelope import Event

__all__ = ["PostgresWriteStorage"]

Connection = psycopg.Connection[tuple[Any, ...]]

LOCK_TIMEOUT: Final = 30.0
"""Seconds a write waits for a row lock outside a round (a hang guard)."""
IDLE_IN_ROUND_TIMEOUT: Final = 60_000
"""Milliseconds the server keeps a round whose process went quiet (stopped,
hung) before it rolls it back and frees the head for the other writers."""
AHEAD: Final = 1000
"""Events past the writer's head that a round reads with its lock."""


class PostgresWriteStorage:
    """The writing connection. Every method runs with the writer's turn held.

    Args:
        url: A libpq URI (``postgresql://...``).
        schema: The schema holding the store's tables (checked).
        lock_timeout: Seconds a write outside a round waits for a lock.
        synchronous_commit: Wait for the server's WAL flush at COMMIT (off:
            an append that returned survives this process's crash, not the
            server's).
    """

    shared: bool
    """Other processes may write the same store: always, on PostgreSQL."""
    wal_checkpoint_every: int = 0
    """No WAL for the writer to fold: the server manages its own."""
    reconnects_after_unknown: bool
    """After ``CommitUnknownError`` the next call reconnects; the writer may
    go on serving appends (the server decided the batch's fate)."""
    places_rows: bool
    """A write outside a round stores its rows right after the head as it
    finds it (one statement, one round trip), whoever moved it."""

    def __init__(
        self,
        url: str,
        schema: str,
        *,
        lock_timeout: float = LOCK_TIMEOUT,
        synchronous_commit: bool = True,
    ) -> None:
        self.shared = True
        self.reconnects_after_unknown = True
        self.places_rows = True
        self.wal_checkpoint_every = 0  # no WAL of ours to fold
        self._url = url
        self._synchronous_commit = "on" if synchronous_commit else "off"
        self.path = redact(url)
        self._sql = Statements(schema)
        self._bare = BareAppend(self._sql.append, self._sql.append_one)
        self._lock_timeout_ms = max(1, int(lock_timeout * 1000))
        self._in_round = False
        # What the open round read past the writer's head: (after, rows).
        self._ahead: tuple[int, list[tuple[Any, ...]]] | None = None
        self._conn = self._connect(create=True)

    def __repr__(self) -> str:
        return f"PostgresWriteStorage({self.path!r}, schema={self._sql.schema!r})"

    # -- the connection -----------------------------------------------------

    def _connect(self, *, create: bool) -> Connection:
        conn: Connection = connect(self._url)
        register(conn)  # the append statement's arrays
        try:
            if create:
                check_layout(conn, self._sql, self._url, self.path, create=True)
            conn.execute(
                "SELECT set_config('lock_timeout', %s, false), "
                "set_config('idle_in_transaction_session_timeout', %s, false), "
                "set_config('synchronous_commit', %s, false), "
                # The append statement's plan never depends on its values:
                # planning it at every Bind cost ~75 us of a ~600 us commit.
                "set_config('plan_cache_mode', 'force_generic_plan', false)",
                (
                    f"{self._lock_timeout_ms}ms",
                    f"{IDLE_IN_ROUND_TIMEOUT}ms",
                    self._synchronous_commit,
                ),
            )
        except psycopg.Error as e:
            conn.close()
            raise translate_error(e, self._url, "open") from e
        except BaseException:
            conn.close()
            raise
        return conn

    def reconnect(self) -> None:
        """Replace the connection with a new one (an open round is lost:
        the server rolls it back).

        Raises:
            StorageError: The server cannot be reached now.
        """
        self._in_round = False
        self._ahead = None
        old = self._conn
        with contextlib.suppress(psycopg.Error):
            old.close()
        try:
            self._conn = self._connect(create=False)
        except SwarmlogError as e:
            msg = f"reconnect to {self.path}: {e}"
            raise StorageError(msg) from e

    def _ready(self) -> Connection:
        """The connection, replaced first if it died while idle."""
        if not healthy(self._conn):
            self.reconnect()
        return self._conn

    def _failed(self, error: psycopg.Error, what: str) -> SwarmlogError:
        """Roll back what is open after a failed statement and type the
        error (a lost connection is replaced by the next call)."""
        self._in_round = False
        self._ahead = None
        conn = self._conn
        if not is_connection_lost(conn) and conn.info.transaction_status in (
            TransactionStatus.INTRANS,
            TransactionStatus.INERROR,
        ):
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")
        return translate_error(error, self._url, what)

    # -- shared-store rounds -------------------------------------------------

    def begin_round(self, timeout: float, after: int | None = None) -> int:
        """Take the head row's lock (waiting at most ``timeout`` seconds),
        open the transaction the next :meth:`write_events` or
        :meth:`abort_round` ends, and return the committed head; with
        ``after``, read the events past it in the same round trip (kept
        for this round's :meth:`read_after` and :meth:`versions_after`).

        Raises:
            LockTimeoutError: The head was not granted in time (a
                ``TimeoutError``; nothing held afterwards).
            StorageError: The server failed or cannot be reached.
        """
        conn = self._ready()
        milliseconds = max(1, int(timeout * 1000))
        # Three or four statements in one simple query: one round trip, and
        # nothing prepared (an error leaves psycopg's statement cache alone).
        # In READ COMMITTED each statement reads with a snapshot of its own,
        # so the last one sees every commit up to the head it locked.
        statement = (
            f"BEGIN; SET LOCAL lock_timeout = {milliseconds}; {self._sql.lock_head}"
        )
        if after is not None:
            ahead = self._sql.select_ahead.format(after=int(after), limit=AHEAD)
            statement = f"{statement}; {ahead}"
        try:
            cursor = conn.execute(statement, prepare=False)
            while cursor.description is None and cursor.nextset():
                pass
            row = cursor.fetchone()
            if after is not None:
                cursor.nextset()
                self._ahead = (after, cursor.fetchall())
        except psycopg.Error as e:
            failure = self._failed(e, "begin a write round")
            if (
                isinstance(failure, StorageTimeoutError)
                and failure.setting == "lock_timeout"
            ):  # as on SQLite: the store-wide write lock was not free in time
                raise LockTimeoutError(self.path, timeout) from e
            raise failure from e
        assert row is not None
        self._in_round = True
        return int(row[0])

    def abort_round(self) -> None:
        """Roll back the open round and release the head (nothing planned)."""
        self._ahead = None
        if not self._in_round:
            return
        self._in_round = False
        with contextlib.suppress(psycopg.Error):  # lost: the server rolled back
            self._conn.execute("ROLLBACK")

    def read_after(self, position: int, limit: int) -> list[Event[Any]]:
        """Up to ``limit`` committed events past ``position``, in order, on
        the writing connection (inside the open round when one is open)."""
        ahead = self._ahead
        if ahead is not None and ahead[0] == position and len(ahead[1]) <= limit:
            self._ahead = None  # read once: a page is published once
            return [decode_row(r[:4]) for r in ahead[1]]
        conn = self._conn if self._in_round else self._ready()
        try:
            rows = conn.execute(
                self._sql.select_page, (position, limit), binary=True
            ).fetchall()
        except psycopg.Error as e:
            raise self._failed(e, "read") from e
        return [decode_row(r) for r in rows]

    def versions_after(self, position: int, upto: int) -> dict[str, tuple[str, int]]:
        """The last ``(aggregate_type, version)`` of each aggregate committed
        in ``(position, upto]`` (the writer's catch-up when nobody wants
        the events themselves).

        Raises:
            StorageError: The read failed.
        """
        ahead = self._ahead
        if ahead is not None and ahead[0] == position:
            rows = ahead[1]
            if len(rows) < AHEAD or rows[-1][0] >= upto:
                self._ahead = None
                return {
                    bytes(r[4]).decode(): (r[5], r[6]) for r in rows if r[0] <= upto
                }
        conn = self._conn if self._in_round else self._ready()
        try:
            found = conn.execute(
                self._sql.select_versions_between, (position, upto)
            ).fetchall()
        except psycopg.Error as e:
            raise self._failed(e, "read versions") from e
        return {bytes(r[0]).decode(): (r[1], int(r[2])) for r in found}

    # -- the seam ---------------------------------------------------------------

    def head(self) -> int:
        """The committed head (0 when empty)."""
        conn = self._conn if self._in_round else self._ready()
        try:
            row = conn.execute(self._sql.select_head).fetchone()
        except psycopg.Error as e:
            raise self._failed(e, "read the head") from e
        assert row is not None
        return int(row[0])

    def aggregate(self, aggregate_id: str) -> tuple[str, int] | None:
        """``(aggregate_type, version)`` of a stored aggregate, or None."""
        conn = self._conn if self._in_round else self._ready()
        try:
            row = conn.execute(
                self._sql.select_aggregate, (aggregate_id.encode(),)
            ).fetchone()
        except psycopg.Error as e:
            raise self._failed(e, "read an aggregate") from e
        return None if row is None else (str(row[0]), int(row[1]))

    def find_events(self, ids: Sequence[bytes]) -> list[Event[Any]]:
        """The stored events among ``ids`` (any order)."""
        if not ids:
            return []
        conn = self._conn if self._in_round else self._ready()
        try:
            rows = conn.execute(
                self._sql.select_by_ids, (list(ids),), binary=True
            ).fetchall()
        except psycopg.Error as e:
            raise self._failed(e, "read events") from e
        return [decode_row(r) for r in rows]

    def write_events(self, rows: Sequence[EventRow], requests: int) -> int:
        """Insert ``rows`` and commit, in one transaction; return the head
        the rows were stored after.

        Inside a round, the rows join its transaction, which commits and
        releases the head: they are stored where they were planned. Without
        one, one statement moves the head by the batch's size and stores
        the rows right after where it found it (see ``sql``): after other
        processes' commits the writer did not know of, the positions (in
        the column and in each envelope) are shifted by the same amount.

        Raises:
            RequestConflict: A uniqueness constraint (an event id stored
                already, or an aggregate version another writer took);
                nothing was stored.
            StorageError: A known failure; nothing was stored.
            CommitUnknownError: The connection was lost while the write was
                in flight; it may or may not have committed.
        """
        in_round = self._in_round
        self._ahead = None
        conn = self._conn if in_round else self._ready()
        try:
            if in_round:
                found = self._append_in_round(conn, rows)
            else:  # one statement, its own transaction (see ``bare``)
                found = self._bare.append(conn, rows)
        except psycopg.IntegrityError as e:
            self._failed(e, "append")
            raise RequestConflict(0 if requests == 1 else -1) from e
        except psycopg.Error as e:
            if is_connection_lost(conn):
                self._in_round = False
                raise CommitUnknownError(redact_text(str(e), self._url)) from e
            raise self._failed(e, "append") from e
        finally:
            if in_round and not conn.closed and not conn.broken:
                status = conn.info.transaction_status
                self._in_round = status != TransactionStatus.IDLE
        if found is None:  # no head row: the layout check makes one
            msg = f"{self.path}: the store's head row is missing"
            raise StorageError(msg)
        return found

    def _append_in_round(
        self, conn: Connection, rows: Sequence[EventRow]
    ) -> int | None:
        """The rows, then COMMIT, in one round trip (the round's transaction)."""
        if len(rows) == 1:
            statement, params = self._sql.append_one, append_one_params(rows[0])
        else:
            statement, params = self._sql.append, append_params(rows)
        with conn.pipeline():
            cursor = conn.execute(statement, params)
            conn.execute("COMMIT", prepare=False)
        found = cursor.fetchone()
        return None if found is None else int(found[0])

    def _write_one(self, statement: str, params: Sequence[Any], what: str) -> None:
        conn = self._ready()
        try:
            conn.execute(statement, params)
        except psycopg.Error as e:
            raise self._failed(e, what) from e

    def save_snapshot(self, record: SnapshotRecord) -> None:
        """Store a snapshot unless a higher version is stored."""
        params = (
            record.aggregate_id.encode(),
            record.aggregate_type,
            record.version,
            record.state,
            record.timestamp,
        )
        self._write_one(self._sql.upsert_snapshot, params, "save snapshot")

    def save_projection_snapshot(
        self, name: str, record: ProjectionSnapshotRecord
    ) -> None:
        """Store a projection snapshot unless one further along (of the
        same state version) is stored."""
        params = (
            name.encode(),
            record.position,
            record.state_version,
            record.state,
            to_micros(utc_now()),
        )
        self._write_one(
            self._sql.upsert_projection_snapshot, params, "save projection snapshot"
        )

    def delete_projection_snapshot(self, name: str) -> None:
        """Forget a projection snapshot."""
        self._write_one(
            self._sql.delete_projection_snapshot,
            (name.encode(),),
            "delete projection snapshot",
        )

    def save_subscription(self, name: str, position: int) -> None:
        """Store a subscription's last handled position."""
        params = (name.encode(), position, to_micros(utc_now()))
        self._write_one(
            self._sql.upsert_subscription, params, "save subscription position"
        )

    def delete_subscription(self, name: str) -> None:
        """Forget a subscription's position."""
        self._write_one(
            self._sql.delete_subscription, (name.encode(),), "delete subscription"
        )

    def checkpoint_passive(self) -> None:
        """Nothing to do: the server manages its write-ahead log."""

    def checkpoint(self) -> None:
        """Nothing to do: the server manages its write-ahead log."""

    def close(self) -> None:
        """Close the connection (an open round rolls back on the server)."""
        self._in_round = False
        self._conn.close()
