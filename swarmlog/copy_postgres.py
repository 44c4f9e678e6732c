"""The PostgreSQL sides of a whole-store copy (see :mod:`swarmlog.copying`).

:class:`PostgresSource` reads a store's schema in one ``REPEATABLE READ
READ ONLY`` transaction: one snapshot of every table, while the store's
writers go on (they are never blocked). :class:`PostgresTarget` fills an
empty store schema (created when missing) in one transaction that holds
the ``head`` row's lock from the emptiness check to COMMIT, so no writer
of that store appends meanwhile; events go in with ``COPY``. Every message
names the URL without its password.

Imports psycopg: only :mod:`swarmlog.copying` imports this module, and only
for a PostgreSQL URL. Runs on the copying (caller's) thread.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Final

import psycopg

from swarmlog.actors.postgres.connection import connect, translate_error
from swarmlog.actors.postgres.layout import check_layout
from swarmlog.actors.postgres.sql import PG_INSERT_COLUMNS, Statements
from swarmlog.actors.postgres.url import DEFAULT_SCHEMA, check_schema_name, redact
from swarmlog.copy_rows import CopyTargetNotEmptyError
from swarmlog.validation import MAX_INT64

if TYPE_CHECKING:
    from collections.abc import Sequence

    from swarmlog.copy_rows import (
        EventRow,
        LineageRow,
        ProjectionSnapshotRow,
        SnapshotRow,
        SubscriptionRow,
    )

__all__ = ["PostgresSource", "PostgresTarget", "display_name"]

Connection = psycopg.Connection[tuple[Any, ...]]

LOCK_TIMEOUT: Final = "30s"
_EVENT_TYPES: Final = (  # PG_INSERT_COLUMNS' server types (actors/postgres/sql.py)
    "int8", "bytea", "text", "bytea", "text", "int8", "int8", "int4", "bytea",
    "bytea", "bytea", "bytea",
)  # fmt: skip
"""How long the target waits for its store's head row (a hang guard)."""


def display_name(url: str, schema: str) -> str:
    """The store as messages name it: the URL without its password, and
    the schema unless it is the default."""
    shown = redact(url)
    return shown if schema == DEFAULT_SCHEMA else f"{shown} (pg_schema {schema})"


class _Reads:
    """The reads both sides share, on ``self._conn`` inside its transaction."""

    _conn: Connection
    _url: str
    _sql: Statements
    display: str
    _upto: int = MAX_INT64  # a fork's view: the rows up to this position
    _forking: bool = False

    def _open(self, url: str, schema: str, what: str, *, create: bool) -> None:
        self._url = url
        self._sql = Statements(check_schema_name(schema))
        self.display = display_name(url, schema)
        self._conn = connect(url, what=what)
        try:
            check_layout(self._conn, self._sql, url, self.display, create=create)
        except BaseException:
            self._conn.close()
            raise
        s = f'"{schema}"'
        self._events_sql = (
            f"SELECT {PG_INSERT_COLUMNS} FROM {s}.events WHERE position > %s "
            "AND position <= %s ORDER BY position LIMIT %s"
        )
        self._snapshots_sql = (
            "SELECT aggregate_id, aggregate_type, version, state, timestamp "
            f"FROM {s}.snapshots AS s WHERE {{after}} {{reached}} "
            "ORDER BY aggregate_id LIMIT %s"
        )
        # A fork keeps a snapshot whose version was reached at or before its
        # position (as swarmlog.schema.sql.FORK_SNAPSHOTS does on SQLite).
        self._reached_sql = (
            f"AND (s.version = 0 OR EXISTS (SELECT 1 FROM {s}.events AS e WHERE "
            "e.aggregate_id = s.aggregate_id AND e.version = s.version "
            "AND e.position <= %s))"
        )
        self._projections_sql = (
            "SELECT name, position, state_version, state, updated_at "
            f"FROM {s}.projection_checkpoints WHERE position <= %s ORDER BY name"
        )
        self._subscriptions_sql = (
            f"SELECT name, position, updated_at FROM {s}.subscriptions "
            "WHERE position <= %s ORDER BY name"
        )
        self._lineage_sql = (
            f"SELECT generation, source, position, forked_at FROM {s}.lineage "
            "ORDER BY generation"
        )
        self._count_sql = f"SELECT count(*) FROM {s}.events WHERE position <= %s"

    def _all(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn.execute(statement, params, binary=True).fetchall()
        except psycopg.Error as e:
            raise translate_error(e, self._url, "copy: read") from e

    def head(self) -> int:
        """The committed head (the ``head`` row; a fork's position)."""
        return min(int(self._all(self._sql.select_head)[0][0]), self._upto)

    def event_count(self) -> int:
        """Events stored (up to a fork's position)."""
        return int(self._all(self._count_sql, (self._upto,))[0][0])

    def events(self, after: int, limit: int) -> list[EventRow]:
        """Up to ``limit`` events past ``after``, as SQLite rows."""
        out: list[EventRow] = []
        append = out.append
        for r in self._all(self._events_sql, (after, self._upto, limit)):
            cause_id, cause_text, correlation = r[9], r[10], r[11]
            cause = cause_id if cause_id is not None else _text(cause_text)
            append(
                (
                    r[0], r[1], r[2], bytes(r[3]).decode(), r[4], r[5], r[6],
                    r[7], r[8], cause, _text(correlation),
                )
            )  # fmt: skip
        return out

    def snapshots(self, after: str | None, limit: int) -> list[SnapshotRow]:
        """Up to ``limit`` snapshots with ids above ``after`` (a fork: only
        those whose version it holds)."""
        params: list[Any] = [] if after is None else [after.encode()]
        if self._forking:
            params.append(self._upto)
        statement = self._snapshots_sql.format(
            after="true" if after is None else "s.aggregate_id > %s",
            reached=self._reached_sql if self._forking else "",
        )
        rows = self._all(statement, (*params, limit))
        return [(bytes(r[0]).decode(), r[1], r[2], bytes(r[3]), r[4]) for r in rows]

    def projection_snapshots(self) -> list[ProjectionSnapshotRow]:
        """Every projection snapshot (a fork: taken at or before it)."""
        rows = self._all(self._projections_sql, (self._upto,))
        return [(bytes(r[0]).decode(), r[1], r[2], bytes(r[3]), r[4]) for r in rows]

    def subscriptions(self) -> list[SubscriptionRow]:
        """Every subscription position (a fork: at or before it)."""
        rows = self._all(self._subscriptions_sql, (self._upto,))
        return [(bytes(r[0]).decode(), r[1], r[2]) for r in rows]

    def lineage(self) -> list[LineageRow]:
        """The fork ancestry."""
        return [tuple(r) for r in self._all(self._lineage_sql)]

    def close(self) -> None:
        """End the transaction (rolled back if still open) and close."""
        conn = getattr(self, "_conn", None)
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()


def _text(value: bytes | None) -> str | None:
    return None if value is None else bytes(value).decode()


class PostgresSource(_Reads):
    """A store's schema read in one snapshot.

    Raises:
        StoreOpenError: The server cannot be reached, or no store there.
        IncompatibleStoreError: Another layout version.
    """

    def __init__(self, url: str, schema: str, upto: int | None = None) -> None:
        if upto is not None:
            self._upto, self._forking = upto, True
        self._open(url, schema, "open copy source", create=False)
        try:
            self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        except psycopg.Error as e:
            self._conn.close()
            raise translate_error(e, url, "copy: begin the read") from e


class PostgresTarget(_Reads):
    """An empty store schema being filled (created when missing).

    Raises:
        StoreOpenError: The server cannot be reached or refused.
        IncompatibleStoreError: The schema holds something else.
    """

    def __init__(self, url: str, schema: str) -> None:
        self._open(url, schema, "open copy target", create=True)
        try:
            self._conn.execute("BEGIN")
            self._conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        except psycopg.Error as e:
            self._conn.close()
            raise translate_error(e, url, "copy: begin the write") from e

    def check_empty(self) -> None:
        """Lock the head row (other writers wait until COMMIT) and check
        that no table holds a row."""
        s = f'"{self._sql.schema}"'
        self._all(self._sql.lock_head)
        events = self.event_count()
        others = self._all(
            f"SELECT (SELECT count(*) FROM {s}.snapshots) "
            f"+ (SELECT count(*) FROM {s}.projection_checkpoints) "
            f"+ (SELECT count(*) FROM {s}.subscriptions) "
            f"+ (SELECT count(*) FROM {s}.lineage) + (SELECT position FROM {s}.head)"
        )[0][0]
        if events or others:
            raise CopyTargetNotEmptyError(self.display, events, int(others))

    def _copy(
        self,
        table: str,
        columns: str,
        rows: Sequence[tuple[Any, ...]],
        types: Sequence[str],
    ) -> None:
        """COPY ``rows`` in, in the binary format (``types``: the columns'
        server types, so no value goes through text)."""
        statement = (
            f'COPY "{self._sql.schema}".{table} ({columns}) FROM STDIN (FORMAT BINARY)'
        )
        try:
            with self._conn.cursor() as cursor, cursor.copy(statement) as copy:
                copy.set_types(types)
                write = copy.write_row
                for row in rows:
                    write(row)
        except psycopg.Error as e:
            raise translate_error(e, self._url, f"copy: write {table}") from e

    def write_events(self, rows: Sequence[EventRow]) -> None:
        """COPY events in, as given."""
        converted = [
            (
                r[0], r[1], r[2], r[3].encode(), r[4], r[5], r[6], r[7], r[8],
                r[9] if isinstance(r[9], bytes) else None,
                r[9].encode() if isinstance(r[9], str) else None,
                None if r[10] is None else r[10].encode(),
            )
            for r in rows
        ]  # fmt: skip
        self._copy("events", PG_INSERT_COLUMNS, converted, _EVENT_TYPES)

    def write_snapshots(self, rows: Sequence[SnapshotRow]) -> None:
        """COPY snapshots in."""
        self._copy(
            "snapshots",
            "aggregate_id, aggregate_type, version, state, timestamp",
            [(r[0].encode(), *r[1:]) for r in rows],
            ("bytea", "text", "int8", "bytea", "int8"),
        )

    def write_projection_snapshots(self, rows: Sequence[ProjectionSnapshotRow]) -> None:
        """COPY projection snapshots in."""
        self._copy(
            "projection_checkpoints",
            "name, position, state_version, state, updated_at",
            [(r[0].encode(), *r[1:]) for r in rows],
            ("bytea", "int8", "int8", "bytea", "int8"),
        )

    def write_subscriptions(self, rows: Sequence[SubscriptionRow]) -> None:
        """COPY subscription positions in."""
        self._copy(
            "subscriptions",
            "name, position, updated_at",
            [(r[0].encode(), *r[1:]) for r in rows],
            ("bytea", "int8", "int8"),
        )

    def write_lineage(self, rows: Sequence[LineageRow]) -> None:
        """COPY the fork ancestry in."""
        self._copy(
            "lineage",
            "generation, source, position, forked_at",
            rows,
            ("int8", "text", "int8", "int8"),
        )

    def set_head(self, position: int) -> None:
        """Move the head row to ``position``."""
        try:
            self._conn.execute(
                f'UPDATE "{self._sql.schema}".head SET position = %s', (position,)
            )
        except psycopg.Error as e:
            raise translate_error(e, self._url, "copy: set the head") from e

    def commit(self) -> None:
        """Commit the copy (the head row's lock goes with it)."""
        try:
            self._conn.execute("COMMIT")
        except psycopg.Error as e:
            raise translate_error(e, self._url, "copy: commit") from e
        finally:
            self.close()

    def abort(self) -> None:
        """Roll back (the server does it when the connection closes)."""
        with contextlib.suppress(psycopg.Error):
            self._conn.execute("ROLLBACK")
        self.close()
