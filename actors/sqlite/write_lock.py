"""The store-wide write lock of multi-process stores: a sidecar file lock.

Every process that opened a store with ``multi_process=True`` takes this
lock for one append round (or one snapshot write) and then lets go. It sits
in front of SQLite's own write lock (``BEGIN IMMEDIATE``) so that waiting
never goes through SQLite's busy handler, whose sleeps grow to 100 ms and
whose waiters are served in no order at all.

Taking it: one non-blocking ``flock`` try (the lock is usually free). If
that fails, a waiter thread of this lock queues for it with *blocking*
``flock`` calls, so the kernel wakes it the moment the holder lets go (no
sleeps in the way), while the committing thread waits on an event bounded
by the caller's timeout. A wait that times out is abandoned: the waiter
thread lets go of the lock as soon as it gets it.

Fairness: waiters first queue on a second lock file, the *turnstile*, and
hold it while they wait for the write lock; the fast path tries the write
lock only while the turnstile is free. So the process that just committed
(awake already, it would otherwise win every race to retake the lock) goes
to the back of the line whenever someone waits: no process starves while
others are busy. The longest wait is measured (:attr:`WriteLock.worst_wait`).

``flock`` locks belong to an open file description: two stores in one
process exclude each other like two processes, and a writer killed with
``kill -9`` loses its lock with its process. Runs on whichever thread holds
the committer's turn (and the lock's own waiter thread).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import threading
import time

from swarmlog.schema.errors import LockTimeoutError, StoreOpenError

__all__ = ["WriteLock"]


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


class _Wait:
    """One queued acquisition: granted by the waiter thread, or abandoned
    by its (timed-out) requester, whichever comes first."""

    __slots__ = ("abandoned", "done", "error", "granted", "guard")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.guard = threading.Lock()
        self.granted = False
        self.abandoned = False
        self.error: OSError | None = None


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
        self._queue: queue.SimpleQueue[_Wait | None] = queue.SimpleQueue()
        self._waiter: threading.Thread | None = None
        self._outstanding = 0  # queued waits not yet granted or given back
        self._count_lock = threading.Lock()
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
            StoreOpenError: The lock file failed (an OS error).
        """
        if (
            not self._outstanding  # an abandoned wait may still get it
            and self._turnstile_free()
            and _try(self._fd, fcntl.LOCK_EX)
        ):
            self.held = True
            return 0.0
        start = time.monotonic()
        wait = _Wait()
        with self._count_lock:
            self._outstanding += 1
        self._start_waiter()
        self._queue.put(wait)
        if not wait.done.wait(timeout):
            with wait.guard:
                if not wait.granted:
                    wait.abandoned = True  # the waiter thread gives it back
                    raise LockTimeoutError(self._database, timeout)
        if wait.error is not None:
            raise StoreOpenError(self.path, str(wait.error)) from wait.error
        self.held = True
        waited = time.monotonic() - start
        self.waits += 1
        self.total_wait += waited
        self.worst_wait = max(self.worst_wait, waited)
        return waited

    def _turnstile_free(self) -> bool:
        """Whether nobody queues for the lock (a shared try)."""
        if not _try(self._turnstile, fcntl.LOCK_SH):
            return False
        fcntl.flock(self._turnstile, fcntl.LOCK_UN)
        return True

    def _start_waiter(self) -> None:
        if self._waiter is None:
            self._waiter = threading.Thread(
                target=self._serve, name="swarmlog-write-lock", daemon=True
            )
            self._waiter.start()

    def _serve(self) -> None:
        """The waiter thread: queue at the turnstile, then the lock
        (blocking ``flock``: the kernel wakes it), then hand it over."""
        turnstile, fd = self._turnstile, self._fd
        while True:
            wait = self._queue.get()
            if wait is None:
                return
            try:
                fcntl.flock(turnstile, fcntl.LOCK_EX)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                finally:
                    fcntl.flock(turnstile, fcntl.LOCK_UN)
            except OSError as error:  # a closed or failing file
                wait.error = error
                self._settle(wait, granted=False)
                continue
            self._settle(wait, granted=True)

    def _settle(self, wait: _Wait, *, granted: bool) -> None:
        with wait.guard:
            abandoned = wait.abandoned
            wait.granted = granted and not abandoned
        if granted and abandoned:  # its requester gave up: give it back
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        with self._count_lock:
            self._outstanding -= 1
        wait.done.set()

    def release(self) -> None:
        """Let go of the lock (a no-op when not held)."""
        if self.held:
            self.held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Release, stop the waiter thread and close the files (twice is
        safe). A waiter still blocked in ``flock`` (an abandoned wait) keeps
        the files until it returns."""
        self.release()
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._queue.put(None)
            if self._outstanding:  # blocked in flock: it closes nothing, we
                return  # leave the two descriptors to the process's end
        for fd in (self._fd, self._turnstile):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._turnstile = -1
