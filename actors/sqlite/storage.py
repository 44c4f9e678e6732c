"""SQLite behind the storage seam: the writing connection and reader pool.

The file itself (checks before opening, the lock, the WAL checkpoint
runner) is :mod:`swarmlog.actors.sqlite.files`.

This is the one module that speaks SQLite dialect and the one boundary where
``sqlite3`` errors become typed swarmlog errors. WAL mode gives readers
snapshot isolation while the single writer commits; each read runs as one
short read transaction so the WAL can always reset.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from swarmlog.actors.sqlite.backfill import backfill_links
from swarmlog.actors.storage import (
    CommitUnknownError,
    EventQuery,
    LineageRecord,
    ProjectionSnapshotRecord,
    RequestConflict,
    SnapshotRecord,
    StorageStats,
)
from swarmlog.schema import sql
from swarmlog.schema.codec import decode_row
from swarmlog.schema.errors import (
    IncompatibleStoreError,
    InvalidConfigError,
    InvalidQueryError,
    StorageError,
    StorageFullError,
    StoreOpenError,
    SwarmlogError,
)
from swarmlog.schema.timeutil import from_micros, to_micros, utc_now

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from swarmlog.actors.storage import EventRow
    from swarmlog.schema.envelope import Event

__all__ = [
    "RESERVED_PRAGMAS",
    "SQLiteReadStorage",
    "SQLiteWriteStorage",
    "check_pragmas",
    "connect",
    "translate_error",
]

# Primary result codes (sqlite3 exposes extended codes; the low byte is primary).
_SQLITE_FULL: Final = 13
_SQLITE_IOERR: Final = 10
_SQLITE_CORRUPT: Final = 11
_SQLITE_NOTADB: Final = 26
_SQLITE_CANTOPEN: Final = 14
_SQLITE_READONLY: Final = 8
_SQLITE_PERM: Final = 3
_SQLITE_NOMEM: Final = 7
_UNKNOWN_OUTCOME: Final = frozenset({_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_NOMEM})

_PRAGMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

RESERVED_PRAGMAS: Final = {
    "synchronous": "durability is EventStoreConfig.synchronous",
    "journal_mode": "the store runs in WAL mode (readers never block the writer)",
    "locking_mode": "readers and read-only stores need NORMAL locking",
    "query_only": "the writing connection writes",
    "wal_autocheckpoint": (
        "checkpoints run off the commit path (auto_persist_interval, "
        "wal_checkpoint_bytes)"
    ),
    "foreign_keys": "the schema's integrity rules are swarmlog's",
    "ignore_check_constraints": "the schema's integrity rules are swarmlog's",
    "writable_schema": "the schema is swarmlog's",
    "application_id": "it marks the file as a swarmlog store",
    "user_version": "it records the store format",
    "schema_version": "it guards every prepared statement",
}
"""Pragmas the store relies on, with the reason: user ``pragmas`` may not
set them (``check_pragmas`` raises ``InvalidConfigError``)."""
_PRAGMA_VALUE = re.compile(r"^[A-Za-z0-9_\-]+$")


def _primary_code(error: sqlite3.Error) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def translate_error(error: sqlite3.Error, path: str, what: str) -> SwarmlogError:
    """Turn an ``sqlite3`` error into the typed error a caller can act on."""
    code = _primary_code(error)
    if code == _SQLITE_FULL:
        return StorageFullError(f"{what}: the database or disk is full ({error})")
    if code in (_SQLITE_NOTADB, _SQLITE_CORRUPT):
        return IncompatibleStoreError(path, f"damaged or not an SQLite file ({error})")
    if code in (_SQLITE_CANTOPEN, _SQLITE_READONLY, _SQLITE_PERM):
        return StoreOpenError(path, str(error))
    return StorageError(f"{what}: {error}")


def check_pragmas(pragmas: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Validate user pragmas and render them as statements.

    Raises:
        InvalidConfigError: A name or value is not a plain identifier/number,
            or the pragma is one the store relies on (``RESERVED_PRAGMAS``).
    """
    statements = []
    for name, value in (pragmas or {}).items():
        if not isinstance(name, str) or not _PRAGMA_NAME.match(name):
            msg = f"pragma name {name!r} is not a plain identifier"
            raise InvalidConfigError(msg)
        reason = RESERVED_PRAGMAS.get(name.lower())
        if reason is not None:
            msg = f"pragma {name} cannot be set: {reason}"
            raise InvalidConfigError(msg)
        if isinstance(value, bool) or not isinstance(value, int | str):
            msg = f"pragma {name} value must be an int or a word, got {value!r}"
            raise InvalidConfigError(msg)
        if isinstance(value, str) and not _PRAGMA_VALUE.match(value):
            msg = f"pragma {name} value {value!r} is not a plain word"
            raise InvalidConfigError(msg)
        statements.append(f"PRAGMA {name} = {value}")
    return tuple(statements)


def connect(path: str, *, read_only: bool) -> sqlite3.Connection:
    """A connection to the store file (autocommit; any thread may use it,
    one at a time). Errors come back typed (:func:`translate_error`)."""
    if read_only:
        uri = f"file:{urllib.parse.quote(path)}?mode=ro"
        target, use_uri = uri, True
    else:
        target, use_uri = path, False
    try:
        return sqlite3.connect(
            target,
            isolation_level=None,
            check_same_thread=False,
            uri=use_uri,
            cached_statements=256,
        )
    except sqlite3.Error as e:
        raise translate_error(e, path, "open") from e


def check_format(conn: sqlite3.Connection, path: str, *, create: bool) -> None:
    """Check the file is a swarmlog store this code can read; create or
    migrate its schema when ``create`` is set.

    Raises:
        IncompatibleStoreError: Not a swarmlog store, or a newer format.
    """
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
        ).fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise IncompatibleStoreError(path, f"not an SQLite database ({e})") from e
    if app_id == sql.APPLICATION_ID:
        if version > sql.FORMAT_VERSION:
            reason = (
                f"store format {version} is newer than this swarmlog's "
                f"{sql.FORMAT_VERSION}; upgrade swarmlog"
            )
            raise IncompatibleStoreError(path, reason)
        if version < sql.FORMAT_VERSION:
            if not create:
                reason = (
                    f"store format {version} is older than this swarmlog's "
                    f"{sql.FORMAT_VERSION}; open it once with a writing store "
                    "to migrate it"
                )
                raise IncompatibleStoreError(path, reason)
            _migrate(conn, path, version)
        return
    if app_id == 0 and tables == 0:
        if create:
            _create_schema(conn, path)
            return
        raise IncompatibleStoreError(path, "empty file, not a swarmlog store yet")
    raise IncompatibleStoreError(path, "an SQLite file of another application")


MigrationStep = str | Callable[[sqlite3.Connection], None]
"""A statement, or a function run with the migrating connection (inside the
migration's one transaction)."""

_MIGRATIONS: dict[int, tuple[MigrationStep, ...]] = {
    1: (*sql.MIGRATE_1_TO_2_COLUMNS, backfill_links, *sql.LINK_INDEXES),
    2: sql.MIGRATE_2_TO_3,
}
"""Forward migrations: from format N to N+1."""


def _migrate(conn: sqlite3.Connection, path: str, version: int) -> None:
    try:
        conn.execute("BEGIN IMMEDIATE")
        while version < sql.FORMAT_VERSION:
            steps = _MIGRATIONS.get(version)
            if steps is None:
                conn.execute("ROLLBACK")
                reason = f"no migration from store format {version}"
                raise IncompatibleStoreError(path, reason)
            for step in steps:
                if isinstance(step, str):
                    conn.execute(step)
                else:
                    step(conn)
            version += 1
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except sqlite3.Error as e:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise translate_error(e, path, "migrate") from e
    except BaseException:  # a failing step of Python code: all or nothing
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _create_schema(conn: sqlite3.Connection, path: str) -> None:
    try:
        conn.execute("BEGIN IMMEDIATE")
        for statement in sql.SCHEMA:
            conn.execute(statement)
        conn.execute("COMMIT")
    except sqlite3.Error as e:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise translate_error(e, path, "create schema") from e


class SQLiteWriteStorage:
    """The only writing connection. Every method runs with the writer's turn
    held (see ``swarmlog.actors.committer``), on whichever thread holds it."""

    def __init__(
        self, path: str, synchronous: str, pragmas: Mapping[str, Any] | None
    ) -> None:
        self.path = path
        # With FULL every commit syncs the WAL, and a WAL growing past its
        # old size also makes each sync journal the file's new size: restart
        # it (checkpoint when idle) sooner, so commits stay inside the space
        # it already has. NORMAL syncs only at checkpoints: fold less often.
        self.wal_checkpoint_every = 250 if synchronous == "full" else 1000
        extra = check_pragmas(pragmas)
        conn = connect(path, read_only=False)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            check_format(conn, path, create=True)
            for statement in (*sql.writer_pragmas(synchronous), *extra):
                conn.execute(statement)
        except sqlite3.Error as e:
            conn.close()
            raise translate_error(e, path, "open") from e
        except SwarmlogError:
            conn.close()
            raise
        self._conn = conn
        self._inserts: dict[int, str] = {}

    def head(self) -> int:
        """The highest committed position."""
        row = self._conn.execute(sql.SELECT_HEAD).fetchone()
        return int(row[0])

    def aggregate(self, aggregate_id: str) -> tuple[str, int] | None:
        """``(aggregate_type, version)`` of a stored aggregate, or None."""
        row = self._conn.execute(sql.SELECT_AGGREGATE, (aggregate_id,)).fetchone()
        return None if row is None else (row[0], row[1])

    def find_events(self, ids: Sequence[bytes]) -> list[Event[Any]]:
        """The stored events among ``ids``."""
        found: list[Event[Any]] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._conn.execute(
                f"{sql.SELECT_EVENTS} WHERE id IN ({marks})", tuple(chunk)
            ).fetchall()
            found.extend(decode_row(r) for r in rows)
        return found

    def write_events(self, rows: Sequence[EventRow], requests: int) -> None:
        """Insert every request's rows in one transaction and commit.

        A batch that fits one multi-row INSERT runs as that single statement
        in autocommit mode: SQLite makes it one atomic transaction, and the
        writer crosses into SQLite once. A uniqueness conflict in a batch of
        several requests is reported as ``RequestConflict(-1)`` (culprit
        unknown: the writer then retries them one by one).
        """
        if len(rows) <= sql.MAX_ROWS_PER_INSERT:
            params = [value for row in rows for value in row]
            try:
                self._conn.execute(self._insert_statement(len(rows)), params)
            except sqlite3.IntegrityError as e:
                raise RequestConflict(0 if requests == 1 else -1) from e
            except sqlite3.Error as e:
                if _primary_code(e) in _UNKNOWN_OUTCOME:
                    raise CommitUnknownError(str(e)) from e
                raise translate_error(e, self.path, "append") from e
            return
        conn = self._conn
        try:
            conn.execute("BEGIN")
            for start in range(0, len(rows), sql.MAX_ROWS_PER_INSERT):
                chunk = rows[start : start + sql.MAX_ROWS_PER_INSERT]
                params = [value for row in chunk for value in row]
                conn.execute(self._insert_statement(len(chunk)), params)
        except sqlite3.IntegrityError as e:
            self._rollback()
            raise RequestConflict(0 if requests == 1 else -1) from e
        except sqlite3.Error as e:
            self._rollback()
            raise translate_error(e, self.path, "append") from e
        self._commit("append")

    def _insert_statement(self, rows: int) -> str:
        statement = self._inserts.get(rows)
        if statement is None:
            statement = sql.insert_events(rows)
            if len(self._inserts) < 4096:
                self._inserts[rows] = statement
        return statement

    def _commit(self, what: str) -> None:
        conn = self._conn
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            code = _primary_code(e)
            if code in _UNKNOWN_OUTCOME:
                raise CommitUnknownError(str(e)) from e
            try:
                self._rollback()
            except Exception as rollback_error:
                raise CommitUnknownError(str(e)) from rollback_error
            raise translate_error(e, self.path, what) from e

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _write_one(self, statement: str, params: tuple[Any, ...], what: str) -> None:
        try:
            self._conn.execute("BEGIN")
            self._conn.execute(statement, params)
        except sqlite3.Error as e:
            self._rollback()
            raise translate_error(e, self.path, what) from e
        except (OverflowError, ValueError, TypeError) as e:  # unbindable value
            self._rollback()
            raise StorageError(f"{what}: {e}") from e
        self._commit(what)

    def save_snapshot(self, record: SnapshotRecord) -> None:
        """Store a snapshot unless a higher version is stored."""
        params = (
            record.aggregate_id,
            record.aggregate_type,
            record.version,
            record.state,
            record.timestamp,
        )
        self._write_one(sql.UPSERT_SNAPSHOT, params, "save snapshot")

    def save_projection_snapshot(
        self, name: str, record: ProjectionSnapshotRecord
    ) -> None:
        """Store a projection snapshot."""
        params = (
            name,
            record.position,
            record.state_version,
            record.state,
            to_micros(utc_now()),
        )
        self._write_one(
            sql.UPSERT_PROJECTION_SNAPSHOT, params, "save projection snapshot"
        )

    def delete_projection_snapshot(self, name: str) -> None:
        """Forget a projection snapshot."""
        self._write_one(
            sql.DELETE_PROJECTION_SNAPSHOT, (name,), "delete projection snapshot"
        )

    # -- durable subscriptions
    def save_subscription(self, name: str, position: int) -> None:
        """Store a subscription's last handled position."""
        params = (name, position, to_micros(utc_now()))
        self._write_one(sql.UPSERT_SUBSCRIPTION, params, "save subscription position")

    def delete_subscription(self, name: str) -> None:
        """Forget a subscription's position."""
        self._write_one(sql.DELETE_SUBSCRIPTION, (name,), "delete subscription")

    def effective_pragmas(self, names: Sequence[str]) -> dict[str, Any]:
        """The writing connection's current value of each pragma in
        ``names`` (plain identifiers; used by tests and diagnostics)."""
        values: dict[str, Any] = {}
        for name in names:
            if not _PRAGMA_NAME.match(name):
                msg = f"pragma name {name!r} is not a plain identifier"
                raise InvalidConfigError(msg)
            row = self._conn.execute(f"PRAGMA {name}").fetchone()
            values[name] = None if row is None else row[0]
        return values

    def checkpoint_passive(self) -> None:
        """Fold the WAL into the database without waiting on readers."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def checkpoint(self) -> None:
        """Fold the whole WAL into the database and truncate it."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


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
