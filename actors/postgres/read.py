"""PostgreSQL's reader pool behind the storage seam.

Safe from any thread. Each call borrows an autocommit connection and runs
one statement (one snapshot; ``stats`` runs one read-only repeatable-read
transaction), so readers never wait for the writer. An idle connection the
server dropped (a restart) is replaced before use, and a read that lost its
connection is retried once on a new one: reads change nothing.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

import psycopg

from swarmlog.actors.postgres.connection import (
    connect,
    healthy,
    is_connection_lost,
    translate_error,
)
from swarmlog.actors.postgres.layout import check_layout
from swarmlog.actors.postgres.sql import Statements
from swarmlog.actors.postgres.url import redact
from swarmlog.actors.storage import (
    LineageRecord,
    ProjectionSnapshotRecord,
    SnapshotRecord,
    StorageStats,
)
from swarmlog.schema.codec import decode_row
from swarmlog.schema.errors import InvalidQueryError, StorageError, SwarmlogError
from swarmlog.schema.timeutil import from_micros

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from swarmlog.actors.storage import EventQuery
    from swarmlog.schema.envelope import Event

__all__ = ["PostgresReadStorage"]

Connection = psycopg.Connection[tuple[Any, ...]]


class PostgresReadStorage:
    """A pool of reader connections. Safe from any thread.

    Args:
        url: A libpq URI.
        schema: The schema holding the store's tables (checked).
        pool_size: Idle connections kept.
        check: Check the layout now (a read-only store: its schema must
            exist; a writing store's writer checked it already).
    """

    def __init__(
        self, url: str, schema: str, *, pool_size: int = 8, check: bool = True
    ) -> None:
        self._url = url
        self.path = redact(url)
        self._sql = Statements(schema)
        self._pool_size = pool_size
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        conn = self._new_connection()
        try:
            if check:
                check_layout(conn, self._sql, url, self.path, create=False)
        except BaseException:
            conn.close()
            raise
        self._give_back(conn)

    def __repr__(self) -> str:
        return f"PostgresReadStorage({self.path!r}, schema={self._sql.schema!r})"

    # -- the pool ----------------------------------------------------------------

    def _new_connection(self) -> Connection:
        return connect(self._url, what="open reader")

    def _borrow(self) -> Connection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._new_connection()
            if healthy(conn):
                return conn
            conn.close()

    def _give_back(self, conn: Connection) -> None:
        with self._lock:
            keep = not self._closed and len(self._idle) < self._pool_size
            if keep:
                self._idle.append(conn)
        if not keep:
            conn.close()

    def _run(self, work: Callable[[Connection], Any], what: str) -> Any:
        """``work(conn)`` on a borrowed connection; once more on a new
        connection if the first was lost under it."""
        for attempt in (1, 2):
            conn = self._borrow_typed(what)
            try:
                result = work(conn)
            except psycopg.Error as e:
                lost = is_connection_lost(conn)
                conn.close() if lost else self._give_back(conn)
                if lost and attempt == 1:
                    continue
                raise translate_error(e, self._url, what, reading=True) from e
            except (OverflowError, UnicodeEncodeError, ValueError) as e:
                self._give_back(conn)
                msg = f"{what}: a filter value cannot be sent: {e}"
                raise InvalidQueryError(msg) from e
            except BaseException:
                conn.close()
                raise
            self._give_back(conn)
            return result
        raise AssertionError("not reached")  # pragma: no cover

    def _borrow_typed(self, what: str) -> Connection:
        try:
            return self._borrow()
        except SwarmlogError as e:
            msg = f"{what}: {e}"
            raise StorageError(msg) from e

    def _rows(
        self, statement: str, params: Sequence[Any], what: str = "read"
    ) -> list[Any]:
        return list(
            self._run(
                lambda conn: conn.execute(statement, params, binary=True).fetchall(),
                what,
            )
        )

    def _events(
        self, statement: str, params: Sequence[Any] | dict[str, Any]
    ) -> list[Event[Any]]:
        rows = self._run(
            lambda conn: conn.execute(statement, params, binary=True).fetchall(),
            "read",
        )
        return [decode_row(r) for r in rows]

    # -- the seam ---------------------------------------------------------------

    def head(self) -> int:
        """The committed head (0 when empty)."""
        return int(self._rows(self._sql.select_head, ())[0][0])

    def read_stream(
        self,
        aggregate_id: str,
        from_version: int,
        *,
        limit: int | None = None,
        backwards: bool = False,
    ) -> list[Event[Any]]:
        """One aggregate's events from ``from_version`` on (see the protocol)."""
        statement = (
            self._sql.select_stream_backwards if backwards else self._sql.select_stream
        )
        return self._events(statement, (_utf8(aggregate_id), from_version, limit))

    def version(self, aggregate_id: str) -> int:
        """An aggregate's current version (0 when it has no events)."""
        rows = self._rows(self._sql.select_version, (_utf8(aggregate_id),))
        return int(rows[0][0])

    def read_page(
        self, after: int, limit: int, upto: int | None = None
    ) -> list[Event[Any]]:
        """Up to ``limit`` events after ``after`` (and up to ``upto``)."""
        if upto is None:
            return self._events(self._sql.select_page, (after, limit))
        return self._events(self._sql.select_page_upto, (after, upto, limit))

    def query(self, spec: EventQuery) -> list[Event[Any]]:
        """Events matching ``spec`` (filters ANDed), in commit order."""
        clauses: list[str] = []
        params: list[Any] = []
        if spec.aggregate_ids is not None:
            if not spec.aggregate_ids:
                return []
            clauses.append("aggregate_id = ANY(%s::bytea[])")
            params.append([_utf8(a) for a in spec.aggregate_ids])
        for column, values in (
            ("aggregate_type", spec.aggregate_types),
            ("type", spec.event_types),
        ):
            if values is None:
                continue
            if not values:
                return []
            # A type string cannot hold NUL on PostgreSQL: none matches one.
            texts = [value for value in values if "\x00" not in value]
            if not texts:
                return []
            clauses.append(f"{column} = ANY(%s::text[])")
            params.append(texts)
        for condition, value in (
            ("timestamp > %s", spec.after_timestamp),
            ("timestamp < %s", spec.before_timestamp),
            ("version >= %s", spec.from_version),
            ("position >= %s", spec.from_position),
        ):
            if value is not None:
                clauses.append(condition)
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        statement = (
            f"{self._sql.select_events}{where} ORDER BY position LIMIT %s OFFSET %s"
        )
        params.extend((spec.limit, spec.offset))
        return self._events(statement, params)

    def event(self, event_id: bytes) -> Event[Any] | None:
        """The event with this id (see the protocol)."""
        found = self._events(self._sql.select_event_by_id, (event_id,))
        return found[0] if found else None

    def causal_chain(self, event_id: bytes) -> list[Event[Any]]:
        """The event and its causes, root first (see the protocol)."""
        return self._events(self._sql.select_causal_chain, (event_id,))

    def consequences(self, cause: bytes | str) -> list[Event[Any]]:
        """What ``cause`` led to, in commit order (see the protocol)."""
        if isinstance(cause, bytes):
            return self._events(self._sql.select_consequences_of_id, {"c": cause})
        statement = self._sql.select_consequences_of_text
        return self._events(statement, {"c": _utf8(cause)})

    def correlated(self, correlation_id: str) -> list[Event[Any]]:
        """Events with this correlation id, in commit order."""
        return self._events(self._sql.select_correlated, (_utf8(correlation_id),))

    def load_snapshot(self, aggregate_id: str) -> SnapshotRecord | None:
        """The stored snapshot of an aggregate."""
        rows = self._rows(self._sql.select_snapshot, (_utf8(aggregate_id),))
        if not rows:
            return None
        stored_id, aggregate_type, version, state, timestamp = rows[0]
        return SnapshotRecord(
            bytes(stored_id).decode(), aggregate_type, version, state, timestamp
        )

    def load_projection_snapshot(self, name: str) -> ProjectionSnapshotRecord | None:
        """A projection's stored snapshot."""
        rows = self._rows(self._sql.select_projection_snapshot, (_utf8(name),))
        return ProjectionSnapshotRecord(*rows[0]) if rows else None

    def load_subscription(self, name: str) -> int | None:
        """A subscription's stored position, or None."""
        rows = self._rows(self._sql.select_subscription, (_utf8(name),))
        return int(rows[0][0]) if rows else None

    def subscriptions(self) -> dict[str, int]:
        """Every stored subscription position, by name."""
        return {
            bytes(name).decode(): int(p)
            for name, p in self._rows(self._sql.select_subscriptions, ())
        }

    def stats(self) -> StorageStats:
        """Counts for ``get_stats``, read in one consistent snapshot."""
        sql = self._sql

        def read(conn: Connection) -> StorageStats:
            with conn.transaction():
                conn.execute(
                    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
                )
                row = conn.execute(sql.stats_totals).fetchone()
                assert row is not None
                total, head, oldest, newest = row
                by_type: dict[Any, Any] = dict(
                    conn.execute(sql.stats_by_type).fetchall()
                )
                by_aggregate: dict[Any, Any] = dict(
                    conn.execute(sql.stats_by_aggregate).fetchall()
                )
                snapshots = conn.execute(sql.stats_snapshots).fetchone()
                lineage = tuple(
                    LineageRecord(*r) for r in conn.execute(sql.select_lineage)
                )
                size = conn.execute(sql.stats_size, (sql.schema,)).fetchone()
            assert snapshots is not None
            assert size is not None
            return StorageStats(
                total_events=int(total),
                events_by_type={str(k): int(v) for k, v in by_type.items()},
                events_by_aggregate={
                    bytes(k).decode(): int(v) for k, v in by_aggregate.items()
                },
                oldest_event=None if oldest is None else from_micros(int(oldest)),
                newest_event=None if newest is None else from_micros(int(newest)),
                snapshot_count=int(snapshots[0]),
                head_position=int(head),
                database_size_bytes=int(size[0]),
                lineage=lineage,
            )

        result: StorageStats = self._run(read, "read stats")
        return result

    def close(self) -> None:
        """Close every idle connection; borrowed ones close on return."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(psycopg.Error):
                conn.close()


def _utf8(text: str) -> bytes:
    """A caller's string as stored (UTF-8 bytes; see ``sql``).

    Raises:
        InvalidQueryError: It is not valid text (a lone surrogate).
    """
    try:
        return text.encode()
    except UnicodeEncodeError as e:
        msg = f"a filter string is not valid text: {e}"
        raise InvalidQueryError(msg) from e
