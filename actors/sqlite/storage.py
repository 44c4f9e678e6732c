"""SQLite behind the storage seam: the writing connection and reader pool.

The file itself (checks before opening, the lock, the WAL checkpoint
runner) is :mod:`swarmlog.actors.sqlite.files`; the reader pool
:mod:`swarmlog.actors.sqlite.reading`; the multi-process writer
:mod:`swarmlog.actors.sqlite.shared`.

This is the one module that speaks SQLite dialect and the one boundary where
``sqlite3`` errors become typed swarmlog errors. WAL mode gives readers
snapshot isolation while the single writer commits; each read runs as one
short read transaction so the WAL can always reset.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from swarmlog.actors.sqlite.backfill import backfill_links
from swarmlog.actors.storage import (
    CommitUnknownError,
    ProjectionSnapshotRecord,
    RequestConflict,
    SnapshotRecord,
)
from swarmlog.schema import sql
from swarmlog.schema.codec import decode_row
from swarmlog.schema.errors import (
    IncompatibleStoreError,
    InvalidConfigError,
    StorageError,
    StorageFullError,
    StoreOpenError,
    SwarmlogError,
)
from swarmlog.schema.timeutil import to_micros, utc_now

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from swarmlog.actors.storage import EventRow
    from swarmlog.schema.envelope import Event

__all__ = [
    "RESERVED_PRAGMAS",
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
    held (see ``swarmlog.actors.committer``), on whichever thread holds it.
    Not shared: the multi-process writer is
    :class:`swarmlog.actors.sqlite.shared.SQLiteSharedWriteStorage`."""

    shared = False
    reconnects_after_unknown = False  # an unknown outcome: the writer stops
    places_rows = False  # a shared SQLite store writes only inside rounds
    _upsert_projection_snapshot = sql.UPSERT_PROJECTION_SNAPSHOT

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
        except BaseException as e:  # whatever failed: no connection left open
            conn.close()
            if isinstance(e, sqlite3.Error):
                raise translate_error(e, path, "open") from e
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

    def begin_round(self, timeout: float, after: int | None = None) -> int:
        """Never called on a store nobody else writes (see the protocol)."""
        msg = "begin_round on a store opened without multi_process"
        raise StorageError(msg)

    def read_after(self, position: int, limit: int) -> list[Event[Any]]:
        """Up to ``limit`` committed events past ``position``, in order."""
        rows = self._conn.execute(sql.SELECT_PAGE, (position, limit)).fetchall()
        return [decode_row(r) for r in rows]

    def abort_round(self) -> None:
        """Nothing to roll back: no round is ever open here."""

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
        """Store a projection snapshot (on a shared file: unless a newer
        one is stored)."""
        params = (
            name,
            record.position,
            record.state_version,
            record.state,
            to_micros(utc_now()),
        )
        self._write_one(
            self._upsert_projection_snapshot, params, "save projection snapshot"
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
