"""The store's file on disk, beside the SQL: the checks before opening it,
the lock that keeps a second writer out, and the WAL checkpoint runner.

Runs on the caller's thread (checks, lock) and the checkpointer thread
(:class:`SQLiteCheckpointRunner`). "Checkpoint" here is SQLite's WAL
checkpoint only.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3

from swarmlog.actors.sqlite.storage import connect, translate_error
from swarmlog.schema.errors import (
    IncompatibleStoreError,
    StoreLockedError,
    StoreOpenError,
)

__all__ = ["FileLock", "SQLiteCheckpointRunner", "check_store_file"]

SMALLEST_SQLITE_FILE = 512  # one page of the smallest page size
_SQLITE_BUSY = 5  # primary result codes
_SQLITE_LOCKED = 6


def check_store_file(path: str, *, read_only: bool) -> None:
    """Refuse a path that cannot hold a store, before anything opens it.

    Runs on the caller's thread (``EventStore.initialize``).

    Raises:
        StoreOpenError: A directory; a missing file (read-only); a missing
            folder (writable).
        IncompatibleStoreError: A file too short to be an SQLite file.
    """
    if os.path.isdir(path):
        raise StoreOpenError(path, "it is a directory")
    if 0 < _file_size(path) < SMALLEST_SQLITE_FILE:
        raise IncompatibleStoreError(path, "not an SQLite file (too short to be one)")
    if read_only:
        if not os.path.exists(path):
            raise StoreOpenError(
                path, "no such file (read-only stores never create one)"
            )
        return
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise StoreOpenError(path, f"folder {parent!r} does not exist")


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


_HELD_BY_MULTI = (
    "(it is open with multi_process=True elsewhere: open it with "
    "multi_process=True too, or read_only=True to watch it)"
)
_HELD_BY_SINGLE = (
    "(it is open without multi_process elsewhere: every writing store of one "
    "file needs multi_process=True, or open it with read_only=True to watch it)"
)


class FileLock:
    """An OS lock on ``<database>.lock``, held for the store's life:
    exclusive for a single-process store, shared for a ``multi_process``
    one (any number of those together, never with a single-process store).

    ``flock`` locks belong to an open file description, so a second store in
    the same process is refused just like one in another process.

    Args:
        database: The database file (its real path).
        shared: Take the shared lock of a ``multi_process`` store.
    """

    def __init__(self, database: str, *, shared: bool = False) -> None:
        self.path = f"{database}.lock"
        self._shared = shared
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`StoreLockedError` (its message
        names ``multi_process`` when the holder is in the other mode)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreOpenError(self.path, e.strerror or str(e)) from e
        try:
            import fcntl

            mode = fcntl.LOCK_SH if self._shared else fcntl.LOCK_EX
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - non-POSIX: best effort
            pass
        except OSError as e:
            reason = _HELD_BY_SINGLE if self._shared else _held_by(fd)
            os.close(fd)
            raise StoreLockedError(self.path[: -len(".lock")], reason) from e
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (closing the descriptor releases it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def abandon(self) -> None:
        """Close this process's copy of an inherited descriptor without
        unlocking (a forked child): the lock belongs to the open file
        description shared with the parent, which keeps holding it until it
        releases its own copy. Never ``flock(LOCK_UN)`` here: that would
        free the parent's lock."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def _held_by(fd: int) -> str | None:
    """Why an exclusive try failed: multi-process stores hold the lock
    (a shared try succeeds), or another single-process store (None)."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return None
    fcntl.flock(fd, fcntl.LOCK_UN)
    return _HELD_BY_MULTI


class SQLiteCheckpointRunner:
    """A connection of its own that folds the WAL into the database file
    with PASSIVE checkpoints, off the writer's commit path."""

    def __init__(self, path: str, *, shared: bool = False) -> None:
        self.path = path
        self._shared = shared
        self._conn = connect(path, read_only=False)
        self._conn.execute("PRAGMA busy_timeout = 1000")

    def wal_size(self) -> int:
        """Bytes in the write-ahead log file now."""
        try:
            return os.path.getsize(f"{self.path}-wal")
        except OSError:
            return 0

    def run(self) -> None:
        """One PASSIVE checkpoint (never blocks the writer or readers). On
        a shared store, another process checkpointing right now is no
        error: the WAL is being folded back either way."""
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as e:
            code = getattr(e, "sqlite_errorcode", 0) & 0xFF
            if self._shared and code in (_SQLITE_BUSY, _SQLITE_LOCKED):
                return
            raise translate_error(e, self.path, "checkpoint") from e

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
