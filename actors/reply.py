"""Reply: the lightweight one-shot future every append travels back in.

``concurrent.futures.Future`` builds a ``Condition`` per future and runs
Python-level notification; at tens of thousands of appends in flight that
cost shows up next to the commit itself. A Reply is a pre-acquired lock that
the writer releases once: waiting is one C-level lock acquire.
"""

from __future__ import annotations

import _thread
import contextlib
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = [
    "Callbacks",
    "InFlightLimit",
    "Overflow",
    "Reply",
    "Room",
    "callback_errors",
    "run_guarded",
]

T = TypeVar("T")

logger = logging.getLogger("swarmlog")

Callbacks = Callable[[], None]
"""Held-back done-callbacks of one settled reply, run by calling it."""

_callbacks_lock = threading.Lock()  # guards registration vs. settling only
_errors = [0]  # done-callbacks that raised, in this process


def callback_errors() -> int:
    """How many done-callbacks raised (and were logged) in this process."""
    return _errors[0]


def run_guarded(callback: Callable[[T], object], argument: T) -> None:
    """Run one user callback; whatever it raises (BaseException too) is
    logged and counted, never passed on: the thread running it may be the
    writer's, which must not die of user code (any thread)."""
    try:
        callback(argument)
    except BaseException:
        _errors[0] += 1
        logger.exception("a done-callback raised; ignored")


class Reply(Generic[T]):
    """A one-shot result set by one thread and awaited by others.

    Args:
        on_settle: Called (on the settling thread) right after the result or
            exception is set; must be quick and never raise.
    """

    __slots__ = ("_callbacks", "_done", "_error", "_lock", "_on_settle", "_value")

    def __init__(self, on_settle: Callable[[], None] | None = None) -> None:
        self._lock = _thread.allocate_lock()
        self._lock.acquire()
        self._done = False
        self._value: T | None = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[Reply[T]], object]] | None = None
        self._on_settle = on_settle

    def set_result(self, value: T) -> None:
        """Settle with ``value`` (once) and run the done-callbacks."""
        callbacks = self.settle_result(value)
        if callbacks is not None:
            callbacks()

    def set_exception(self, error: BaseException) -> None:
        """Settle with ``error`` (once) and run the done-callbacks."""
        callbacks = self.settle_exception(error)
        if callbacks is not None:
            callbacks()

    def settle_result(self, value: T) -> Callbacks | None:
        """Settle with ``value`` (once); waiters wake now, but the
        done-callbacks are returned for the caller to run later (the writer
        runs them after letting go of its turn: a callback may append).
        None when there are none."""
        self._value = value
        return self._settle()

    def settle_into(
        self,
        later: list[Callbacks | None],
        *,
        value: T | None = None,
        error: BaseException | None = None,
    ) -> int:
        """Settle with ``error``, else ``value``; append the done-callbacks
        (or None) to ``later``. Returns 1 (one request settled), so that
        the committer settles and counts in one statement."""
        if error is None:
            self._value = value
        else:
            self._error = error
        later.append(self._settle())
        return 1

    def settle_exception(self, error: BaseException) -> Callbacks | None:
        """Settle with ``error`` (once); callbacks as :meth:`settle_result`."""
        self._error = error
        return self._settle()

    def _settle(self) -> Callbacks | None:
        with _callbacks_lock:
            if self._done:
                msg = "reply already settled"
                raise RuntimeError(msg)
            self._done = True
            callbacks, self._callbacks = self._callbacks, None
        self._lock.release()
        if self._on_settle is not None:
            self._on_settle()
        if not callbacks:
            return None

        def run() -> None:
            for callback in callbacks:
                run_guarded(callback, self)

        return run

    def done(self) -> bool:
        """Whether it is settled."""
        return self._done

    def result(self, timeout: float | None = None) -> T:
        """Wait for the value (re-raising a settled exception).

        Raises:
            TimeoutError: Not settled within ``timeout`` seconds.
        """
        if not self._done:
            if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
                msg = f"no reply within {timeout} s"
                raise TimeoutError(msg)
            self._lock.release()  # let other waiters through
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def exception(self) -> BaseException | None:
        """The settled exception (None if none or not settled)."""
        return self._error

    def add_done_callback(self, callback: Callable[[Reply[T]], object]) -> None:
        """Call ``callback(self)`` once settled (at once, on this thread, if
        it already is). Either way it runs guarded: what it raises is
        logged and counted (:func:`callback_errors`), never passed on."""
        with _callbacks_lock:
            if not self._done:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        run_guarded(callback, self)


class InFlightLimit:
    """Counts appends in flight and blocks new ones at ``limit``.

    Signal-safe: every step is one C-level call that holds no Python lock
    (slots given back wait in a ``SimpleQueue``; slots never used yet are
    numbered by an ``itertools.count``). A signal handler on the main
    thread may append or shut down while that thread is in the middle of
    :meth:`acquire` or :meth:`release`, and the writer's :meth:`release`
    never waits for a frame a handler suspended.
    """

    __slots__ = ("_free", "_fresh", "_idle", "_limit")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._free: queue.SimpleQueue[None] = queue.SimpleQueue()  # given back
        self._fresh = itertools.count()  # numbers of slots never used yet
        self._idle = threading.Event()  # set when at most one is in flight

    def acquire(self, *, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a slot; False when not ``blocking`` and none is free, or
        when none came free within ``timeout`` seconds. Interruptible."""
        try:
            self._free.get_nowait()
        except queue.Empty:
            if next(self._fresh) < self._limit:
                return True
            if not blocking:
                return False
            try:
                self._free.get(timeout=timeout)
            except queue.Empty:
                return False
        return True

    def release(self, count: int = 1) -> None:
        """Give ``count`` slots back (the committer, as appends settle)."""
        put = self._free.put
        for _ in range(count):
            put(None)
        # Set at most once per wait: a waiter clears the flag before it
        # counts, so a release that finds it set has nobody to wake.
        if not self._idle.is_set() and self.count <= 1:
            self._idle.set()

    def wait_idle(self, timeout: float | None = None, *, allowance: int = 0) -> bool:
        """Block until at most ``allowance`` appends are in flight (those
        the waiting thread itself holds, suspended under a signal handler);
        False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._idle.clear()
            if self.count <= allowance:
                return True
            left = _IDLE_LOOK if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return False
            self._idle.wait(min(left, _IDLE_LOOK))

    @property
    def count(self) -> int:
        """Appends in flight now."""
        # The next number the counter would give, read from its repr
        # ("count(7)"): reading it through pickling support is deprecated
        # since Python 3.12 and gone in 3.14.
        issued = int(repr(self._fresh)[6:-1])
        return min(issued, self._limit) - self._free.qsize()


_IDLE_LOOK = 0.05  # seconds between looks in wait_idle (a bound, not a delay)
_ROOM_WAIT = 1.0  # seconds between looks while parked (a bound, not a delay)


class Room:
    """Where producers park while a whole batch waits untaken.

    A thread that keeps queueing ``append_async`` calls would otherwise
    compete for the GIL with the committing thread, which then waits a
    whole switch interval (5 ms) to get it back after each SQLite call;
    parked here, it lets the committer plan and settle at full speed and
    resumes (to fill the next batch while SQLite works) as soon as the
    queue is taken.

    Signal-safe, like :class:`InFlightLimit`: no Python-level lock is ever
    held. Each parked producer waits on a token of its own (a C-level
    ``SimpleQueue``) listed before it looks at the queue, so a wake-up
    between its look and its wait is never lost, and a signal handler that
    appends on a thread parked here parks (or goes on) independently
    instead of waiting for a lock its own suspended frame holds.
    """

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[queue.SimpleQueue[None]] = []

    def wait(self, full: Callable[[], bool]) -> None:
        """Block while ``full()`` (the producer's thread); each wait is
        bounded, so a missed wake-up costs at most a second."""
        token: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._waiters.append(token)
        try:
            while full():
                with contextlib.suppress(queue.Empty):
                    token.get(timeout=_ROOM_WAIT)
        finally:
            self._waiters.remove(token)

    def make(self, *, force: bool = False) -> None:
        """Wake the parked producers (the committer, as it takes a batch;
        ``force``: kept for callers that wake everyone at a stop)."""
        if self._waiters or force:
            for token in tuple(self._waiters):
                token.put(None)


class Overflow(Generic[T]):
    """Requests waiting for an in-flight slot off the thread that made them.

    An event loop's thread must never block on back-pressure (the whole
    loop would stop): ``append_async`` called there at the in-flight bound
    puts its request here and returns its future at once; one helper thread
    takes slots for the waiting requests, in order, and submits them, so
    awaiting the future is what waits. While any request waits here, later
    ones from a loop join the line behind it (their order is kept).

    Args:
        limit: The in-flight slots.
        submit: Queues a request that holds a slot (the helper's thread).
        refuse: Settles a request that can no longer be submitted.
    """

    __slots__ = ("_limit", "_lock", "_pending", "_refuse", "_running", "_submit")

    def __init__(
        self,
        limit: InFlightLimit,
        submit: Callable[[T], None],
        refuse: Callable[[T, BaseException], None],
    ) -> None:
        self._limit = limit
        self._submit = submit
        self._refuse = refuse
        self._pending: deque[T] = deque()
        self._lock = threading.Lock()
        self._running = False

    def busy(self) -> bool:
        """Whether requests wait here (any thread)."""
        return bool(self._pending)

    def put(self, request: T) -> None:
        """Queue ``request`` behind the others waiting (any thread)."""
        with self._lock:
            self._pending.append(request)
            if self._running:
                return
            self._running = True
        thread = threading.Thread(
            target=self._drain, name="swarmlog-overflow", daemon=True
        )
        thread.start()

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._running = False
                    return
                request = self._pending.popleft()
            try:
                self._limit.acquire()
            except BaseException as error:  # never strand a request
                self._refuse(request, error)
                continue
            try:
                self._submit(request)
            except BaseException as error:
                self._limit.release()
                self._refuse(request, error)
