"""The SQLite sides of a whole-store copy (see :mod:`swarmlog.copying`).

:class:`SQLiteSource` reads a store file in one read transaction: WAL
readers see one snapshot and never block the store's writer. The file may
be in use by a running store. :class:`SQLiteTarget` fills an empty store
file (created when missing) in one ``BEGIN IMMEDIATE`` transaction while
holding the file's writer lock, so no store writes it meanwhile; on
:meth:`SQLiteTarget.abort` a file it created is removed.

Runs on the copying (caller's) thread.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from typing import TYPE_CHECKING, Any, Final

from swarmlog.actors.sqlite.files import FileLock
from swarmlog.actors.sqlite.storage import check_format, connect, translate_error
from swarmlog.copy_rows import CopyTargetNotEmptyError
from swarmlog.schema.codec import INSERT_COLUMNS
from swarmlog.schema.errors import StoreOpenError, SwarmlogError
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

__all__ = ["SQLiteSource", "SQLiteTarget"]

_SUFFIXES: Final = ("", "-wal", "-shm", "-journal")
_EVENTS: Final = (
    f"SELECT {INSERT_COLUMNS} FROM events WHERE position > ? AND position <= ? "
    "ORDER BY position LIMIT ?"
)
_SNAPSHOTS: Final = (
    "SELECT aggregate_id, aggregate_type, version, state, timestamp FROM snapshots "
    "AS s WHERE {after} {reached} ORDER BY aggregate_id LIMIT ?"
)
# A fork keeps a snapshot whose version was reached at or before its position
# (as swarmlog.schema.sql.FORK_SNAPSHOTS does).
_REACHED: Final = (
    "AND (s.version = 0 OR EXISTS (SELECT 1 FROM events AS e WHERE "
    "e.aggregate_id = s.aggregate_id AND e.version = s.version AND e.position <= ?))"
)
_PROJECTIONS: Final = (
    "SELECT name, position, state_version, state, updated_at "
    "FROM projection_checkpoints WHERE position <= ? ORDER BY name"
)
_SUBSCRIPTIONS: Final = (
    "SELECT name, position, updated_at FROM subscriptions WHERE position <= ? "
    "ORDER BY name"
)
_LINEAGE: Final = (
    "SELECT generation, source, position, forked_at FROM lineage ORDER BY generation"
)
_INSERTS: Final = {
    "events": f"INSERT INTO events ({INSERT_COLUMNS}) VALUES ({', '.join('?' * 11)})",
    "snapshots": "INSERT INTO snapshots (aggregate_id, aggregate_type, version, "
    "state, timestamp) VALUES (?, ?, ?, ?, ?)",
    "projection_snapshots": "INSERT INTO projection_checkpoints (name, position, "
    "state_version, state, updated_at) VALUES (?, ?, ?, ?, ?)",
    "subscriptions": "INSERT INTO subscriptions (name, position, updated_at) "
    "VALUES (?, ?, ?)",
    "lineage": "INSERT INTO lineage (generation, source, position, forked_at) "
    "VALUES (?, ?, ?, ?)",
}
_NONEMPTY: Final = (
    "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM snapshots) "
    "+ (SELECT count(*) FROM projection_checkpoints) "
    "+ (SELECT count(*) FROM subscriptions) + (SELECT count(*) FROM lineage)"
)


class _Reads:
    """The reads both sides share, on ``self._conn``, of the rows up to
    position ``self._upto`` (a fork's view; ``MAX_INT64``: everything)."""

    _conn: sqlite3.Connection
    display: str
    _upto: int = MAX_INT64
    _forking: bool = False

    def _all(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn.execute(statement, params).fetchall()
        except sqlite3.Error as e:
            raise translate_error(e, self.display, "copy: read") from e

    def head(self) -> int:
        """The highest position (0 when empty; a fork's position)."""
        head = int(self._all("SELECT coalesce(max(position), 0) FROM events")[0][0])
        return min(head, self._upto)

    def event_count(self) -> int:
        """Events stored (up to a fork's position)."""
        statement = "SELECT count(*) FROM events WHERE position <= ?"
        return int(self._all(statement, (self._upto,))[0][0])

    def events(self, after: int, limit: int) -> list[EventRow]:
        """Up to ``limit`` events past ``after``."""
        return self._all(_EVENTS, (after, self._upto, limit))

    def snapshots(self, after: str | None, limit: int) -> list[SnapshotRow]:
        """Up to ``limit`` snapshots with ids above ``after`` (a fork: only
        those whose version it holds)."""
        params: list[Any] = [] if after is None else [after]
        reached = _REACHED if self._forking else ""
        if self._forking:
            params.append(self._upto)
        where = "1 = 1" if after is None else "s.aggregate_id > ?"
        statement = _SNAPSHOTS.format(after=where, reached=reached)
        return self._all(statement, (*params, limit))

    def projection_snapshots(self) -> list[ProjectionSnapshotRow]:
        """Every projection snapshot (a fork: taken at or before it)."""
        return self._all(_PROJECTIONS, (self._upto,))

    def subscriptions(self) -> list[SubscriptionRow]:
        """Every subscription position (a fork: at or before it)."""
        return self._all(_SUBSCRIPTIONS, (self._upto,))

    def lineage(self) -> list[LineageRow]:
        """The fork ancestry."""
        return self._all(_LINEAGE)


class SQLiteSource(_Reads):
    """A store file read in one snapshot.

    Raises:
        StoreOpenError: The file does not exist or cannot be opened.
        IncompatibleStoreError: Not a swarmlog store of the current format.
    """

    def __init__(self, path: str, upto: int | None = None) -> None:
        self.display = path
        if upto is not None:
            self._upto, self._forking = upto, True
        if not os.path.isfile(path):
            raise StoreOpenError(path, "no such store file")
        self._conn = connect(path, read_only=True)
        try:
            check_format(self._conn, path, create=False)
            self._conn.execute("BEGIN")  # one snapshot from the first read on
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        """End the read."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("COMMIT")
        self._conn.close()


class SQLiteTarget(_Reads):
    """An empty store file being filled (created when missing).

    Raises:
        StoreLockedError: A writing store has the file open.
        StoreOpenError: The file cannot be created (e.g. no folder).
        IncompatibleStoreError: The file is not a swarmlog store.
    """

    def __init__(self, path: str) -> None:
        self.display = path
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise StoreOpenError(path, f"folder {parent!r} does not exist")
        self._created = not os.path.exists(path)
        self._lock = FileLock(path)
        lock_existed = os.path.exists(self._lock.path)
        self._lock.acquire()
        self._remove_lock = not lock_existed
        try:
            self._conn = connect(path, read_only=False)
        except SwarmlogError:
            self.abort()
            raise
        try:
            self._conn.execute("PRAGMA journal_mode = WAL").fetchall()
            check_format(self._conn, path, create=True)
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            self.abort()
            raise translate_error(e, path, "open copy target") from e
        except BaseException:
            self.abort()
            raise

    def check_empty(self) -> None:
        """Check the file holds no rows (the writer lock is held already)."""
        events, others = self._all(_NONEMPTY)[0]
        if events or others:
            raise CopyTargetNotEmptyError(self.display, int(events), int(others))

    def _insert(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        try:
            self._conn.executemany(_INSERTS[table], rows)
        except sqlite3.Error as e:
            raise translate_error(e, self.display, f"copy: write {table}") from e

    def write_events(self, rows: Sequence[EventRow]) -> None:
        """Insert events as given."""
        self._insert("events", rows)

    def write_snapshots(self, rows: Sequence[SnapshotRow]) -> None:
        """Insert snapshots."""
        self._insert("snapshots", rows)

    def write_projection_snapshots(self, rows: Sequence[ProjectionSnapshotRow]) -> None:
        """Insert projection snapshots."""
        self._insert("projection_snapshots", rows)

    def write_subscriptions(self, rows: Sequence[SubscriptionRow]) -> None:
        """Insert subscription positions."""
        self._insert("subscriptions", rows)

    def write_lineage(self, rows: Sequence[LineageRow]) -> None:
        """Insert the fork ancestry."""
        self._insert("lineage", rows)

    def set_head(self, position: int) -> None:
        """Nothing to record: SQLite's head is the highest position."""

    def commit(self) -> None:
        """Commit, fold the WAL into the file and let go of the lock."""
        try:
            self._conn.execute("COMMIT")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as e:
            raise translate_error(e, self.display, "copy: commit") from e
        finally:
            self.close()

    def abort(self) -> None:
        """Roll back; remove the file if the copy created it."""
        conn = getattr(self, "_conn", None)
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        self.close()
        if self._created:
            for suffix in _SUFFIXES:
                with contextlib.suppress(OSError):
                    os.remove(self.display + suffix)
            if self._remove_lock:
                with contextlib.suppress(OSError):
                    os.remove(self._lock.path)

    def close(self) -> None:
        """Close the connection and release the lock (idempotent)."""
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()
            del self._conn
        self._lock.release()
