"""The store-wide write lock of multi-process stores: a sidecar file lock.

Every process that opened a store with ``multi_process=True`` takes this
lock for one append round (or one snapshot write) and then lets go. It sits
in front of SQLite's own write lock (``BEGIN IMMEDIATE``) so that waiting
never goes through SQLite's busy handler, whose sleeps grow to 100 ms and
whose waiters are served in no order at all.

Waiting: non-blocking ``flock`` tries with short escalating sleeps (50 µs
doubling to 2 ms), bounded by the caller's timeout. A waiter that has waited
longer than :data:`_STARVING_AFTER` takes the *turnstile* (a second lock
file); while someone holds it, nobody else tries the write lock, so the
process that just committed (and would otherwise win the race to retake the
lock, being awake already) lets the starving one in: no process starves
while others are busy. The longest wait is measured (:attr:`WriteLock.worst_wait`).

``flock`` locks belong to an open file description: two stores in one
process exclude each other like two processes, and a writer killed with
``kill -9`` loses its lock with its process. Runs on whichever thread holds
the committer's turn.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import Final

from swarmlog.schema.errors import LockTimeoutError, StoreOpenError

__all__ = ["WriteLock"]

_FIRST_SLEEP: Final = 0.00005  # seconds before the second try
_MAX_SLEEP: Final = 0.002  # the sleep between tries grows up to this
_STARVING_AFTER: Final = 0.005  # a wait this long takes the turnstile


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise StoreOpenError(path, e.strerror or str(e)) from e


def _try(fd: int, operation: int) -> bool:
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class WriteLock:
    """The exclusive lock on ``<database>.write-lock``, taken per round.

    Args:
        database: The database file (its real path).

    Attributes:
        held: Whether this lock is held now.
        waits: How many acquisitions had to wait.
        worst_wait: The longest wait of an acquisition, in seconds.
        total_wait: Seconds spent waiting, over all acquisitions.
    """

    def __init__(self, database: str) -> None:
        self.path = f"{database}.write-lock"
        self._fd = _open(self.path)
        try:
            self._turnstile = _open(f"{database}.write-turnstile")
        except BaseException:
            os.close(self._fd)
            raise
        self._database = database
        self.held = False
        self.waits = 0
        self.worst_wait = 0.0
        self.total_wait = 0.0

    def acquire(self, timeout: float) -> float:
        """Take the lock, waiting at most ``timeout`` seconds.

        Returns:
            The seconds waited (0.0 when it was free).

        Raises:
            LockTimeoutError: Not free in time; nothing is held.
        """
        if self._turnstile_free() and _try(self._fd, fcntl.LOCK_EX):
            self.held = True
            return 0.0
        start = time.monotonic()
        deadline = start + timeout
        sleep = _FIRST_SLEEP
        starving = False
        try:
            while True:
                now = time.monotonic()
                if not starving and now - start >= _STARVING_AFTER:
                    starving = _try(self._turnstile, fcntl.LOCK_EX)
                if (starving or self._turnstile_free()) and _try(
                    self._fd, fcntl.LOCK_EX
                ):
                    break
                if now >= deadline:
                    raise LockTimeoutError(self._database, timeout)
                time.sleep(min(sleep, max(deadline - now, 0.0)))
                sleep = min(sleep * 2, _MAX_SLEEP)
        finally:
            if starving:
                fcntl.flock(self._turnstile, fcntl.LOCK_UN)
        self.held = True
        waited = time.monotonic() - start
        self.waits += 1
        self.total_wait += waited
        self.worst_wait = max(self.worst_wait, waited)
        return waited

    def _turnstile_free(self) -> bool:
        """Whether no starving waiter holds the turnstile (a shared try)."""
        if not _try(self._turnstile, fcntl.LOCK_SH):
            return False
        fcntl.flock(self._turnstile, fcntl.LOCK_UN)
        return True

    def release(self) -> None:
        """Let go of the lock (a no-op when not held)."""
        if self.held:
            self.held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Release and close the files (twice is safe)."""
        self.release()
        for fd in (self._fd, self._turnstile):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._turnstile = -1
