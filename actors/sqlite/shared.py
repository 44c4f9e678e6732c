"""SQLite written by several processes: the writer of a multi-process store.

:class:`SQLiteSharedWriteStorage` is the writing connection of a store
opened with ``multi_process=True``: other processes write the same file.
Each append round is one transaction bracketed by the store-wide write lock
(:class:`~swarmlog.actors.sqlite.write_lock.WriteLock`): ``begin_round``
takes the lock and ``BEGIN IMMEDIATE`` and reads the committed head;
``write_events`` inserts, commits and lets go; ``abort_round`` rolls back
and lets go. Every other write (snapshots, projection snapshots,
subscription positions) is its own short transaction under the same lock.
``SQLITE_BUSY`` never reaches a caller: waiting happens on the lock file
(bounded by ``lock_timeout``), and a busy SQLite behind it becomes
:class:`~swarmlog.schema.errors.LockTimeoutError` with nothing written.

:class:`SQLiteChangeProbe` is the follower's cheap look at the file:
``PRAGMA data_version`` tells whether any other connection committed.

Runs with the committer's turn held (the storage) or on the follower's
thread (the probe).
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import TYPE_CHECKING, Any, Final

from swarmlog.actors.sqlite.storage import (
    SQLiteWriteStorage,
    connect,
    translate_error,
)
from swarmlog.actors.sqlite.write_lock import WriteLock
from swarmlog.actors.storage import CommitUnknownError, RequestConflict
from swarmlog.schema import sql
from swarmlog.schema.errors import LockTimeoutError, StorageError
from swarmlog.schema.timeutil import to_micros, utc_now

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from swarmlog.actors.storage import EventRow, ProjectionSnapshotRecord

__all__ = ["SQLiteChangeProbe", "SQLiteSharedWriteStorage"]

_SQLITE_BUSY: Final = 5
_SQLITE_LOCKED: Final = 6
_UNKNOWN_OUTCOME: Final = frozenset({10, 11, 7})  # IOERR, CORRUPT, NOMEM
_CLOSE_LOCK_WAIT: Final = 1.0  # seconds a closing store waits to truncate the WAL
_CLOSE_BUSY_MS: Final = 100  # and how long that checkpoint waits for readers

# A projection snapshot never replaces a newer one (another process may
# have saved a later position); a new state_version always replaces.
UPSERT_PROJECTION_SNAPSHOT_NEWER: Final = """
    INSERT INTO projection_checkpoints
        (name, position, state_version, state, updated_at)
    VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET
        position = excluded.position,
        state_version = excluded.state_version,
        state = excluded.state,
        updated_at = excluded.updated_at
    WHERE excluded.position >= projection_checkpoints.position
        OR excluded.state_version != projection_checkpoints.state_version
"""


def _code(error: sqlite3.Error) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


class SQLiteSharedWriteStorage(SQLiteWriteStorage):
    """The writing connection of a multi-process store (see the module
    docstring). Turn held, like its base.

    Args:
        path: The database file (its real path).
        synchronous: ``"full"`` or ``"normal"``.
        pragmas: Extra pragmas of the writing connection.
        lock_timeout: Seconds a write waits for the write lock.

    Raises:
        LockTimeoutError: Opening (the format check, a migration) waited
            for the write lock longer than ``lock_timeout``.
    """

    shared = True

    def __init__(
        self,
        path: str,
        synchronous: str,
        pragmas: Mapping[str, Any] | None,
        lock_timeout: float,
    ) -> None:
        self._lock = WriteLock(path)
        self._timeout = lock_timeout
        self._in_round = False
        try:
            # One process creates or migrates the schema at a time.
            self._lock.acquire(lock_timeout)
            try:
                super().__init__(path, synchronous, pragmas)
            finally:
                self._lock.release()
            self._busy_ms = max(1, int(min(lock_timeout, 3600.0) * 1000))
            self._conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        except BaseException:
            self._lock.close()
            raise

    @property
    def lock(self) -> WriteLock:
        """The write lock (its wait measurements)."""
        return self._lock

    def begin_round(self, timeout: float) -> int:
        """Take the write lock and open the round's transaction; the
        committed head (see the protocol)."""
        if self._in_round:
            msg = "a write round is already open on this connection"
            raise StorageError(msg)
        self._begin(timeout)
        try:
            head = int(self._conn.execute(sql.SELECT_HEAD).fetchone()[0])
        except sqlite3.Error as e:
            self._end()
            raise translate_error(e, self.path, "read the head") from e
        except BaseException:
            self._end()
            raise
        self._in_round = True
        return head

    def _begin(self, timeout: float) -> None:
        """The lock, then ``BEGIN IMMEDIATE``; nothing held on failure."""
        waited = self._lock.acquire(timeout)
        conn = self._conn
        try:
            if waited:  # SQLite may wait only what is left of the timeout
                left = max(1, int((timeout - waited) * 1000))
                conn.execute(f"PRAGMA busy_timeout = {min(left, self._busy_ms)}")
            try:
                conn.execute("BEGIN IMMEDIATE")
            finally:
                if waited:
                    conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        except sqlite3.Error as e:
            self._end()
            if _code(e) in (_SQLITE_BUSY, _SQLITE_LOCKED):
                raise LockTimeoutError(self.path, timeout) from e
            raise translate_error(e, self.path, "begin a write") from e
        except BaseException:
            self._end()
            raise

    def _end(self) -> None:
        """Roll back whatever is open and let go of the lock."""
        self._in_round = False
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        finally:
            self._lock.release()

    def abort_round(self) -> None:
        """Roll back the open round and let go of the lock."""
        if self._in_round or self._lock.held:
            try:
                self._end()
            except sqlite3.Error as e:
                raise translate_error(e, self.path, "roll back") from e

    def write_events(self, rows: Sequence[EventRow], requests: int) -> None:
        """Insert the round's rows in its transaction, commit, let go of the
        lock (see the protocol). Without an open round, one is opened."""
        if not self._in_round:
            self.begin_round(self._timeout)
        conn = self._conn
        try:
            try:
                for start in range(0, len(rows), sql.MAX_ROWS_PER_INSERT):
                    chunk = rows[start : start + sql.MAX_ROWS_PER_INSERT]
                    params = [value for row in chunk for value in row]
                    conn.execute(self._insert_statement(len(chunk)), params)
            except sqlite3.IntegrityError as e:
                self._rollback_or_unknown(e)
                raise RequestConflict(0 if requests == 1 else -1) from e
            except sqlite3.Error as e:
                self._rollback_or_unknown(e)
                raise translate_error(e, self.path, "append") from e
            self._commit("append")
        finally:
            self._in_round = False
            self._lock.release()

    def _rollback_or_unknown(self, error: sqlite3.Error) -> None:
        """Roll back a failed insert; a failed rollback leaves the outcome
        unknown (the writer stops)."""
        try:
            self._rollback()
        except sqlite3.Error as rollback_error:
            raise CommitUnknownError(str(error)) from rollback_error

    def _write_one(self, statement: str, params: tuple[Any, ...], what: str) -> None:
        """One statement in its own transaction under the write lock."""
        if self._in_round:
            msg = f"{what} inside an open write round"
            raise StorageError(msg)
        self._begin(self._timeout)
        conn = self._conn
        try:
            try:
                conn.execute(statement, params)
            except sqlite3.Error as e:
                self._rollback_or_unknown(e)
                raise translate_error(e, self.path, what) from e
            except (OverflowError, ValueError, TypeError) as e:  # unbindable
                self._rollback_or_unknown(sqlite3.Error(str(e)))
                raise StorageError(f"{what}: {e}") from e
            self._commit(what)
        finally:
            self._end()

    def save_projection_snapshot(
        self, name: str, record: ProjectionSnapshotRecord
    ) -> None:
        """Store a projection snapshot unless a newer one is stored."""
        params = (
            name,
            record.position,
            record.state_version,
            record.state,
            to_micros(utc_now()),
        )
        self._write_one(
            UPSERT_PROJECTION_SNAPSHOT_NEWER, params, "save projection snapshot"
        )

    def checkpoint(self) -> None:
        """At shutdown: fold the WAL back and truncate it when the write
        lock and the readers allow it soon; otherwise a PASSIVE checkpoint
        (other processes still write; one of them truncates later)."""
        if self._in_round:
            return
        try:
            self._lock.acquire(_CLOSE_LOCK_WAIT)
        except LockTimeoutError:
            self.checkpoint_passive()
            return
        conn = self._conn
        try:
            with contextlib.suppress(sqlite3.Error):
                conn.execute(f"PRAGMA busy_timeout = {_CLOSE_BUSY_MS}")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        finally:
            self._lock.release()

    def close(self) -> None:
        """Close the connection and the lock files."""
        try:
            super().close()
        finally:
            self._lock.close()


class SQLiteChangeProbe:
    """A connection of its own that tells whether the file changed.

    ``PRAGMA data_version`` changes whenever another connection (in any
    process, this process's writer included) committed: a few microseconds,
    no read of the events. Used by one thread (the follower's).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn = connect(path, read_only=False)
        try:
            for statement in sql.READER_PRAGMAS:
                self._conn.execute(statement)
            self._version = self._data_version()
        except sqlite3.Error as e:
            self._conn.close()
            raise translate_error(e, path, "open the change probe") from e

    def _data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def changed(self) -> bool:
        """Whether anyone committed since the last call.

        Raises:
            StorageError: The file cannot be read.
        """
        try:
            version = self._data_version()
        except sqlite3.Error as e:
            raise translate_error(e, self.path, "look for changes") from e
        if version == self._version:
            return False
        self._version = version
        return True

    def head(self) -> int:
        """The committed head in the file now.

        Raises:
            StorageError: The file cannot be read.
        """
        try:
            return int(self._conn.execute(sql.SELECT_HEAD).fetchone()[0])
        except sqlite3.Error as e:
            raise translate_error(e, self.path, "read the head") from e

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
