"""SQLite written by several processes: the writer of a multi-process store.

:class:`SQLiteSharedWriteStorage` is the writing connection of a store
opened with ``multi_process=True``: other processes write the same file.
Each append round is bracketed by the store-wide write lock
(:class:`~swarmlog.actors.sqlite.write_lock.WriteLock`): ``begin_round``
takes the lock and reads the committed head; ``write_events`` inserts and
commits (one atomic statement) and lets go; ``abort_round`` lets go.
Every other write (snapshots, projection snapshots, subscription
positions) is its own short transaction under the same lock.
``SQLITE_BUSY`` never reaches a caller: waiting happens on the lock file
(bounded by ``lock_timeout``), and a busy SQLite behind it becomes
:class:`~swarmlog.schema.errors.LockTimeoutError` with nothing written.

With ``synchronous="full"`` the write-ahead log is fsynced *after* the
lock is let go, before the round is acknowledged (SQLite itself runs with
NORMAL, which syncs only around checkpoints): the lock is held for the
inserts and the commit only, so the processes' fsyncs overlap instead of
queueing behind one another. Durability is unchanged: a round is
acknowledged once its WAL frames are on disk, and WAL recovery keeps a
prefix of the commits, so no acknowledged round can be lost behind one
that was not yet synced.

The WAL stays bounded: SQLite reuses the WAL from its start only when a
checkpoint has folded *all* of it back, which a checkpoint running beside
other processes' appends never does. So the writer whose commit finds the
WAL past ``wal_fold_bytes`` runs a PASSIVE checkpoint before it lets go of
the lock: nobody appends meanwhile, the checkpoint completes, the next
round restarts the WAL, and ``journal_size_limit`` (the bound) truncates
the file again if it grew past it. Not to less: a WAL file cut shorter
is extended again by every cycle, and extending a file costs the kernel
far more than overwriting it (new page-cache pages, block reservations):
with a quarter of the bound, each 4-event commit of four processes took
~170 us of CPU instead of ~120 us. The checkpointer threads fold most of
the WAL back before that, off the lock (at half the bound), so appends
wait only for the rest.

:class:`SQLiteChangeProbe` is the follower's cheap look at the file:
``PRAGMA data_version`` tells whether any other connection committed.

Runs with the committer's turn held (the storage) or on the follower's
thread (the probe).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from typing import TYPE_CHECKING, Any, Final

from swarmlog.actors.sqlite.storage import (
    SQLiteWriteStorage,
    connect,
    translate_error,
)
from swarmlog.actors.sqlite.write_lock import WriteLock
from swarmlog.actors.storage import CommitUnknownError
from swarmlog.schema import sql
from swarmlog.schema.errors import LockTimeoutError, StorageError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from swarmlog.actors.storage import EventRow

__all__ = ["SQLiteChangeProbe", "SQLiteSharedWriteStorage"]

_SQLITE_BUSY: Final = 5
_SQLITE_LOCKED: Final = 6
_UNKNOWN_OUTCOME: Final = frozenset({10, 11, 7})  # IOERR, CORRUPT, NOMEM
_CLOSE_LOCK_WAIT: Final = 1.0  # seconds a closing store waits to truncate the WAL
_CLOSE_BUSY_MS: Final = 100  # and how long that checkpoint waits for readers
WAL_FOLD_BYTES: Final = 16 << 20  # WAL size folded back under the lock (at most)
_FOLD_SPACING: Final = 8  # rounds between two looks at the WAL's size (and folds)
_WAL_HEADER: Final = 32  # bytes of the WAL file's header (its salts at 16..24)
_FRAME_HEADER: Final = 24  # bytes before each page in a WAL frame (salts at 8..16)


# The versions other processes committed in (after, upto]: a catch-up that
# nobody listens to folds them into the writer's cache without decoding.
SELECT_VERSIONS_BETWEEN: Final = (
    "SELECT aggregate_id, aggregate_type, version FROM events "
    "WHERE position > ? AND position <= ? ORDER BY position"
)
# A round's first read, with the lock held: what others committed past the
# writer's head (their versions), which also tells the head, in one call.
SELECT_VERSIONS_AHEAD: Final = (
    "SELECT position, aggregate_id, aggregate_type, version FROM events "
    "WHERE position > ? ORDER BY position LIMIT ?"
)
AHEAD: Final = 1000  # events past the writer's head a round reads at once


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
        wal_fold_bytes: WAL size past which a commit folds the WAL back
            before letting go of the lock (see the module docstring).

    Raises:
        LockTimeoutError: Opening (the format check, a migration) waited
            for the write lock longer than ``lock_timeout``.
    """

    shared = True
    _upsert_projection_snapshot = sql.UPSERT_PROJECTION_SNAPSHOT_NEWER

    def __init__(
        self,
        path: str,
        synchronous: str,
        pragmas: Mapping[str, Any] | None,
        lock_timeout: float,
        wal_fold_bytes: int = WAL_FOLD_BYTES,
    ) -> None:
        self._lock = WriteLock(path)
        self._wal = f"{path}-wal"
        self._fold_bytes = wal_fold_bytes
        self.wal_folds = 0  # checkpoints run under the lock
        self._since_fold = 0  # rounds since the last fold (or the first round)
        self._sync_after = synchronous.lower() == "full"  # fsync off the lock
        self._wal_fd = -1  # the -wal file, read and fsynced (never the -shm)
        self._timeout = lock_timeout
        self._in_round = False
        # What the open round read past the writer's head: (after, rows).
        self._ahead: tuple[int, list[Any]] | None = None
        try:
            # One process creates or migrates the schema at a time.
            self._lock.acquire(lock_timeout)
            try:
                super().__init__(path, synchronous, pragmas)
            finally:
                self._lock.release()
            self._busy_ms = max(1, int(min(lock_timeout, 3600.0) * 1000))
            self._conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            limit = max(wal_fold_bytes, 1)  # not less (module docstring)
            self._conn.execute(f"PRAGMA journal_size_limit = {limit}")
            if self._sync_after:
                self._conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            self._lock.close()
            raise

    @property
    def lock(self) -> WriteLock:
        """The write lock (its wait measurements)."""
        return self._lock

    def begin_round(self, timeout: float, after: int | None = None) -> int:
        """Take the write lock; the committed head (see the protocol).

        No SQLite transaction is opened: while this process holds the
        store-wide lock no other store writes the file (a store without
        ``multi_process`` cannot open it), so the head read here stays the
        head until :meth:`write_events`, whose one multi-row INSERT commits
        atomically in autocommit mode, as on a single-process store.
        With ``after`` (the writer's head), one read gives the head and the
        versions others committed past it (kept for this round's
        :meth:`versions_after`).
        """
        if self._in_round:
            msg = "a write round is already open on this connection"
            raise StorageError(msg)
        self._lock.acquire(timeout)
        try:
            head = self._head_after(after)
        except sqlite3.Error as e:
            self._lock.release()
            if _code(e) in (_SQLITE_BUSY, _SQLITE_LOCKED):
                raise LockTimeoutError(self.path, timeout) from e
            raise translate_error(e, self.path, "read the head") from e
        except BaseException:
            self._lock.release()
            raise
        self._in_round = True
        return head

    def _head_after(self, after: int | None) -> int:
        """The committed head; with ``after``, read what lies past it too."""
        self._ahead = None
        conn = self._conn
        if after is not None:
            rows = conn.execute(SELECT_VERSIONS_AHEAD, (after, AHEAD)).fetchall()
            if len(rows) < AHEAD:  # all of it: the last one is the head
                self._ahead = (after, rows)
                return int(rows[-1][0]) if rows else after
        return int(conn.execute(sql.SELECT_HEAD).fetchone()[0])

    def versions_after(self, position: int, upto: int) -> dict[str, tuple[str, int]]:
        """The last ``(aggregate_type, version)`` of each aggregate committed
        in ``(position, upto]`` (the writer's catch-up when nobody listens;
        answered from the round's first read when it covers them).

        Raises:
            StorageError: The read failed.
        """
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == position:
            read = ahead[1]
            if (read[-1][0] if read else position) >= upto:  # it covers them
                return {r[1]: (r[2], r[3]) for r in read if r[0] <= upto}
        try:
            rows = self._conn.execute(SELECT_VERSIONS_BETWEEN, (position, upto))
            return {row[0]: (row[1], row[2]) for row in rows}
        except sqlite3.Error as e:
            raise translate_error(e, self.path, "read versions") from e

    def abort_round(self) -> None:
        """Let go of the lock (nothing was written)."""
        self._ahead = None
        self._in_round = False
        self._lock.release()

    def write_events(self, rows: Sequence[EventRow], requests: int) -> None:
        """Insert and commit the round's rows, let go of the lock (see the
        protocol). Without an open round, one is opened.

        Raises:
            LockTimeoutError: SQLite's own write lock stayed busy (a
                program other than swarmlog writes the file); nothing
                was written.
        """
        self._ahead = None
        if not self._in_round:
            self.begin_round(self._timeout)
        try:
            self._busy_is_timeout(super().write_events, rows, requests)
            self._fold_wal_if_due()
        finally:
            self._in_round = False
            self._lock.release()
        if self._sync_after:
            self._sync_wal()

    def _busy_is_timeout(self, write: Callable[..., None], *args: Any) -> None:
        """Run ``write``; SQLite busy past its timeout is a lock timeout."""
        try:
            write(*args)
        except StorageError as error:
            cause = error.__cause__
            if isinstance(cause, sqlite3.Error) and _code(cause) in (
                _SQLITE_BUSY,
                _SQLITE_LOCKED,
            ):
                raise LockTimeoutError(self.path, self._timeout) from cause
            raise

    def _write_one(self, statement: str, params: tuple[Any, ...], what: str) -> None:
        """One statement in its own transaction under the write lock."""
        if self._in_round:
            msg = f"{what} inside an open write round"
            raise StorageError(msg)
        self._lock.acquire(self._timeout)
        try:
            self._busy_is_timeout(super()._write_one, statement, params, what)
        finally:
            self._lock.release()
        if self._sync_after:
            self._sync_wal()

    def _sync_wal(self) -> None:
        """fsync the WAL (after COMMIT, lock let go; see the module
        docstring). Our connection is open, so SQLite never deletes the file.

        Raises:
            CommitUnknownError: The fsync failed: the round's durability is
                unknown.
        """
        try:
            os.fsync(self._wal_file())
        except OSError as e:
            msg = f"fsync of the write-ahead log failed: {e}"
            raise CommitUnknownError(msg) from e

    def _wal_file(self) -> int:
        """The descriptor of the ``-wal`` file, opened on first use (our
        connection is open, so SQLite never deletes the file; SQLite holds
        no lock on it, so closing it drops none).

        Raises:
            OSError: It cannot be opened.
        """
        if self._wal_fd < 0:
            self._wal_fd = os.open(self._wal, os.O_RDONLY)
        return self._wal_fd

    def _fold_wal_if_due(self) -> None:
        """A PASSIVE checkpoint, lock held, once the WAL passed its bound.

        The bound is looked at every :data:`_FOLD_SPACING` rounds, not
        every round: two reads of the WAL file that each let go of the
        GIL, under the store-wide lock, for a WAL that grows by a few
        pages a round (it may pass the bound by a few rounds' pages).
        """
        self._since_fold += 1
        if self._since_fold % _FOLD_SPACING or not self._wal_reaches_bound():
            return
        self._since_fold = 0
        with contextlib.suppress(sqlite3.Error):  # busy: another checkpoints
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.wal_folds += 1

    def _wal_reaches_bound(self) -> bool:
        """Whether the WAL in use reaches ``wal_fold_bytes`` (lock held, so
        nobody appends meanwhile).

        The file's size does not tell: SQLite reuses the file from its
        start after a complete checkpoint. Its frames do
        (https://www.sqlite.org/fileformat2.html#walformat): a frame
        belongs to the WAL in use when it carries the salts of the WAL
        header, which change each time the WAL restarts; so the WAL
        reaches the bound when the frame at the bound carries them. (A
        frame written by a transaction that rolled back counts too: one
        fold too early, never one too few.)

        Only the ``-wal`` file is read, never the ``-shm`` file: SQLite
        holds POSIX locks on that one, and closing *any* descriptor of a
        file drops all of this process's locks on it, those of every other
        connection here included. SQLite takes no lock on the ``-wal``
        file. False when it cannot be read.
        """
        try:
            wal = self._wal_file()
            header = os.pread(wal, _WAL_HEADER, 0)
            if len(header) < _WAL_HEADER:
                return False
            page_size = int.from_bytes(header[8:12], "big")
            frame_size = _FRAME_HEADER + page_size
            last = max(1, -(-self._fold_bytes // frame_size))  # reaches the bound
            frame = os.pread(wal, _FRAME_HEADER, _WAL_HEADER + (last - 1) * frame_size)
        except OSError:
            return False
        return len(frame) == _FRAME_HEADER and frame[8:16] == header[16:24]

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
            if self._wal_fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(self._wal_fd)
            self._wal_fd = -1
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

    def rest(self) -> None:
        """Nothing to stop: a look costs only when it is made."""

    def wake(self) -> None:
        """Nothing to resume (see :meth:`rest`)."""

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
