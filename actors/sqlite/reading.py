"""SQLite behind the storage seam: the pool of reader connections.

Each read borrows a pooled connection and runs one short read transaction
(see :class:`SQLiteReadStorage`); errors are translated at the storage
module's boundary (:func:`swarmlog.actors.sqlite.storage.translate_error`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from typing import TYPE_CHECKING, Any

from swarmlog.actors.sqlite.storage import check_format, connect, translate_error
from swarmlog.actors.storage import (
    EventQuery,
    LineageRecord,
    ProjectionSnapshotRecord,
    SnapshotRecord,
    StorageStats,
)
from swarmlog.schema import sql
from swarmlog.schema.codec import decode_row
from swarmlog.schema.errors import InvalidQueryError
from swarmlog.schema.timeutil import from_micros

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from swarmlog.schema.envelope import Event

__all__ = ["SQLiteReadStorage"]


class SQLiteReadStorage:
    """A pool of reader connections. Safe from any thread.

    Each call borrows a connection, runs one short read transaction and
    returns it, so readers never queue behind the writer and never pin the
    WAL.
    """

    def __init__(self, path: str, *, read_only: bool, pool_size: int = 8) -> None:
        self.path = path
        self._read_only = read_only
        self._pool_size = pool_size
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        with self._connection() as conn:  # fail early on a bad file
            check_format(conn, path, create=False)

    def _new_connection(self) -> sqlite3.Connection:
        conn = connect(self.path, read_only=self._read_only)
        try:
            for statement in sql.READER_PRAGMAS:
                conn.execute(statement)
        except sqlite3.Error as e:
            conn.close()
            raise translate_error(e, self.path, "open reader") from e
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._new_connection()
        try:
            yield conn
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise translate_error(e, self.path, "read") from e
        except OverflowError as e:  # a bound int beyond SQLite's 64 bits
            raise InvalidQueryError(f"a filter value is out of range: {e}") from e
        except UnicodeEncodeError as e:  # e.g. a lone surrogate in a string
            raise InvalidQueryError(f"a filter string is not valid text: {e}") from e
        finally:
            with self._lock:
                keep = not self._closed and len(self._idle) < self._pool_size
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    def _rows(self, statement: str, params: Sequence[Any]) -> list[Any]:
        with self._connection() as conn:
            return conn.execute(statement, params).fetchall()

    def head(self) -> int:
        """The highest committed position."""
        return int(self._rows(sql.SELECT_HEAD, ())[0][0])

    def read_stream(
        self,
        aggregate_id: str,
        from_version: int,
        *,
        limit: int | None = None,
        backwards: bool = False,
    ) -> list[Event[Any]]:
        """One aggregate's events from ``from_version`` on (see the protocol)."""
        if backwards:
            params = (aggregate_id, from_version, -1 if limit is None else limit)
            rows = self._rows(sql.SELECT_STREAM_BACKWARDS, params)
        elif limit is None:
            rows = self._rows(sql.SELECT_STREAM, (aggregate_id, from_version))
        else:
            rows = self._rows(
                sql.SELECT_STREAM_LIMITED, (aggregate_id, from_version, limit)
            )
        return [decode_row(r) for r in rows]

    def version(self, aggregate_id: str) -> int:
        """An aggregate's current version (0 when it has no events)."""
        return int(self._rows(sql.SELECT_VERSION, (aggregate_id,))[0][0])

    def read_page(
        self, after: int, limit: int, upto: int | None = None
    ) -> list[Event[Any]]:
        """Up to ``limit`` events after ``after`` (and up to ``upto``)."""
        if upto is None:
            rows = self._rows(sql.SELECT_PAGE, (after, limit))
        else:
            rows = self._rows(sql.SELECT_PAGE_UPTO, (after, upto, limit))
        return [decode_row(r) for r in rows]

    def query(self, spec: EventQuery) -> list[Event[Any]]:
        """Events matching ``spec`` (filters ANDed), in commit order."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, values in (
            ("aggregate_id", spec.aggregate_ids),
            ("aggregate_type", spec.aggregate_types),
            ("type", spec.event_types),
        ):
            if values is None:
                continue
            if not values:
                return []
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)
        for condition, value in (
            ("timestamp > ?", spec.after_timestamp),
            ("timestamp < ?", spec.before_timestamp),
            ("version >= ?", spec.from_version),
            ("position >= ?", spec.from_position),
        ):
            if value is not None:
                clauses.append(condition)
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        statement = f"{sql.SELECT_EVENTS}{where} ORDER BY position LIMIT ? OFFSET ?"
        params.extend((-1 if spec.limit is None else spec.limit, spec.offset))
        return [decode_row(r) for r in self._rows(statement, params)]

    def event(self, event_id: bytes) -> Event[Any] | None:
        """The event with this id (see the protocol)."""
        rows = self._rows(sql.SELECT_EVENT_BY_ID, (event_id,))
        return decode_row(rows[0]) if rows else None

    def causal_chain(self, event_id: bytes) -> list[Event[Any]]:
        """The event and its causes, root first (see the protocol)."""
        rows = self._rows(sql.SELECT_CAUSAL_CHAIN, (event_id,))
        return [decode_row(r) for r in rows]

    def consequences(self, cause: bytes | str) -> list[Event[Any]]:
        """What ``cause`` led to, in commit order (see the protocol)."""
        rows = self._rows(sql.SELECT_CONSEQUENCES, (cause,))
        return [decode_row(r) for r in rows]

    def correlated(self, correlation_id: str) -> list[Event[Any]]:
        """Events with this correlation id, in commit order."""
        rows = self._rows(sql.SELECT_CORRELATED, (correlation_id,))
        return [decode_row(r) for r in rows]

    def load_snapshot(self, aggregate_id: str) -> SnapshotRecord | None:
        """The stored snapshot of an aggregate."""
        rows = self._rows(sql.SELECT_SNAPSHOT, (aggregate_id,))
        return SnapshotRecord(*rows[0]) if rows else None

    def load_projection_snapshot(self, name: str) -> ProjectionSnapshotRecord | None:
        """A projection's stored snapshot."""
        rows = self._rows(sql.SELECT_PROJECTION_SNAPSHOT, (name,))
        return ProjectionSnapshotRecord(*rows[0]) if rows else None

    def load_subscription(self, name: str) -> int | None:
        """A subscription's stored position, or None."""
        rows = self._rows(sql.SELECT_SUBSCRIPTION, (name,))
        return int(rows[0][0]) if rows else None

    def subscriptions(self) -> dict[str, int]:
        """Every stored subscription position, by name."""
        return {name: int(p) for name, p in self._rows(sql.SELECT_SUBSCRIPTIONS, ())}

    def stats(self) -> StorageStats:
        """Counts for ``get_stats``, read in one consistent snapshot."""
        with self._connection() as conn:
            conn.execute("BEGIN")
            try:
                total, head, oldest, newest = conn.execute(
                    "SELECT count(*), coalesce(max(position), 0), "
                    "min(timestamp), max(timestamp) FROM events"
                ).fetchone()
                by_type = dict(
                    conn.execute("SELECT type, count(*) FROM events GROUP BY type")
                )
                by_aggregate = dict(
                    conn.execute(
                        "SELECT aggregate_id, count(*) FROM events "
                        "GROUP BY aggregate_id"
                    )
                )
                snapshots = conn.execute("SELECT count(*) FROM snapshots").fetchone()[0]
                lineage = tuple(
                    LineageRecord(*row) for row in conn.execute(sql.SELECT_LINEAGE)
                )
                pages = conn.execute("PRAGMA page_count").fetchone()[0]
                page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            finally:
                conn.execute("COMMIT")
        wal = f"{self.path}-wal"
        wal_size = os.path.getsize(wal) if os.path.exists(wal) else 0
        return StorageStats(
            total_events=total,
            events_by_type=by_type,
            events_by_aggregate=by_aggregate,
            oldest_event=None if oldest is None else from_micros(oldest),
            newest_event=None if newest is None else from_micros(newest),
            snapshot_count=snapshots,
            head_position=head,
            database_size_bytes=pages * page_size + wal_size,
            lineage=lineage,
        )

    def close(self) -> None:
        """Close every idle connection; borrowed ones close on return."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
