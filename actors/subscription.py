"""Durable subscriptions: the registry and the thread that runs a handler.

A subscription reads committed events in pages from the reader pool (after
its last handled position), calls its handler once per event on a daemon
thread of its own, and stores the new position through the writer actor,
waiting for the write to be acknowledged before the next event is handed
out. So a crash loses at most the event in progress, which is handled
again after a restart (at-least-once for that one event; exactly once,
in order, for the others within a run).

It never polls on a timer: the committer's commit hook wakes every live
subscription (:meth:`SubscriptionHub.commit_seen`, one ``Event.set`` each),
and a subscription that finds nothing new waits for that wake-up. The wait
is bounded (``_IDLE_WAIT``) only as a guard against a missed wake-up.

A raising handler (any ``BaseException``) is called again after a back-off
(``retry_delay``, doubling, at most ``_MAX_DELAY``) up to ``max_attempts``
times in all; then the subscription stops with status ``"failed"`` and the
error visible, its position still before the failing event (never skipped).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Final

from swarmlog.actors.runtime import in_engine_thread
from swarmlog.schema.errors import EngineThreadWaitError
from swarmlog.schema.subscription_errors import (
    SubscriptionActiveError,
    SubscriptionStoppedError,
    SubscriptionTimeoutError,
    SubscriptionWriteTimeoutError,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future

    from swarmlog.actors.storage import ReadStorage, WriteStorage
    from swarmlog.schema.envelope import Event

__all__ = [
    "PAGE_SIZE",
    "WRITE_TIMEOUT",
    "Owner",
    "SubscriptionHub",
    "SubscriptionRunner",
    "await_write",
]

logger = logging.getLogger("swarmlog.subscriptions")

PAGE_SIZE: Final = 500  # events read per reader call (bounded memory)
_IDLE_WAIT: Final = 5.0  # seconds: a guard against a missed wake-up, not a poll
_MAX_DELAY: Final = 5.0  # seconds: the longest back-off between handler attempts
WRITE_TIMEOUT: Final = 60.0  # seconds a position write may take (a hang guard)
_STOP_TIMEOUT: Final = 30.0  # seconds stop() waits for a handler in progress


class Owner:
    """What the hub needs of a live subscription (thread or async form)."""

    name: str
    position: int
    status: str
    error: BaseException | None

    def wake(self) -> None:
        """A commit happened (the committer's thread, turn held: cheap)."""

    def halt(self) -> None:
        """Ask it to stop without waiting (any thread)."""

    def stop(self, timeout: float = 30.0) -> None:
        """Stop it, wait (at most ``timeout`` seconds) and free its name.
        Never raises."""

    def orphan(self) -> None:
        """Mark it stopped in a forked child (the child's only thread): its
        thread stayed in the parent. Takes no lock a parent thread held."""
        self.status = "stopped"


class SubscriptionHub:
    """The live subscriptions of one store: one per name, woken per commit.

    Safe from any thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, Owner] = {}
        self._owners: tuple[Owner, ...] = ()

    def reserve(self, owner: Owner) -> None:
        """Make ``owner`` the live subscription of its name.

        Raises:
            SubscriptionActiveError: Another one of that name is live.
        """
        with self._lock:
            if owner.name in self._live:
                raise SubscriptionActiveError(owner.name)
            self._live[owner.name] = owner
            self._owners = tuple(self._live.values())

    def release(self, owner: Owner) -> None:
        """Forget ``owner`` (if it still holds its name). Idempotent."""
        with self._lock:
            if self._live.get(owner.name) is owner:
                del self._live[owner.name]
                self._owners = tuple(self._live.values())

    def owns(self, owner: Owner) -> bool:
        """Whether ``owner`` still holds its name."""
        return self._live.get(owner.name) is owner

    def check_idle(self, name: str) -> None:
        """Raise SubscriptionActiveError if ``name`` is live."""
        if name in self._live:
            raise SubscriptionActiveError(name)

    def live(self) -> tuple[Owner, ...]:
        """The live subscriptions now."""
        return self._owners

    def commit_seen(self) -> None:
        """Wake every live subscription (the committer's commit hook)."""
        for owner in self._owners:
            try:
                owner.wake()
            except Exception:  # a closed event loop: its subscription ends
                logger.debug("subscription wake-up failed", exc_info=True)

    def stop_all(self) -> None:
        """Stop every live subscription (shutdown: each stop is bounded).
        Never raises."""
        owners = list(self._owners)
        for owner in owners:
            owner.halt()
        deadline = time.monotonic() + _STOP_TIMEOUT  # for all of them together
        for owner in owners:
            owner.stop(max(deadline - time.monotonic(), 0.0))
            self.release(owner)

    def abandon(self) -> None:
        """Forget every live subscription in a forked child (its only
        thread): their threads stayed in the parent, so nothing is waited
        for or locked (a parent thread may have held a lock at the fork)."""
        self._lock = threading.Lock()
        for owner in self._owners:
            owner.orphan()
        self._live = {}
        self._owners = ()


class SubscriptionRunner(Owner):
    """One subscription's thread: read a page, handle, store the position.

    Args:
        name: The subscription's name.
        handler: Called with each event, on this runner's thread.
        position: The last handled position (stored already).
        hub: The store's registry (``reserve`` already done).
        reader: The store's reader pool.
        write: Tells the writer one write; returns its reply future.
        max_attempts: Handler calls per event before the subscription fails.
        retry_delay: Seconds before the second attempt (then doubling).
    """

    def __init__(
        self,
        name: str,
        handler: Callable[[Event[Any]], Any],
        position: int,
        hub: SubscriptionHub,
        reader: ReadStorage,
        write: Callable[[Callable[[WriteStorage], None]], Future[None]],
        *,
        max_attempts: int,
        retry_delay: float,
    ) -> None:
        self.name = name
        self.position = position
        self.status = "running"
        self.error: BaseException | None = None
        self._handler = handler
        self._hub = hub
        self._reader = reader
        self._write = write
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(
            target=self._run, name=f"swarmlog-subscription-{name}", daemon=True
        )

    def start(self) -> None:
        """Start the thread (the caller's thread)."""
        self._thread.start()

    def wake(self) -> None:
        """A commit happened: look for new events."""
        self._wake.set()

    def halt(self) -> None:
        """Ask the thread to stop after the event in progress."""
        self._stop.set()
        self._wake.set()

    def orphan(self) -> None:
        """In a forked child: stopped, with a fresh condition (a parent
        thread may have held the old one at the fork)."""
        self._changed = threading.Condition()
        if self.status == "running":
            self.status = "stopped"

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the event in progress, wait (at most ``timeout``
        seconds) for the thread and free the name. Idempotent; never
        raises.

        From its own handler, or from an engine thread (a done-callback, a
        listener, a projection handler: the thread may need the writer to
        store its position), it only asks the thread to stop and returns at
        once; the name is freed when the thread ends. A stop that times out
        gives the subscription up: status ``"stopped"``, the name freed, and
        no later position stored by its thread.
        """
        if os.getpid() != self._pid:  # a forked child: the thread is the parent's
            self.status = "stopped" if self.status == "running" else self.status
            return
        if timeout is None:
            timeout = _STOP_TIMEOUT
        try:
            self.halt()
            if self._thread is threading.current_thread() or in_engine_thread():
                return  # it ends after the event in progress; never wait here
            if self._thread.is_alive():
                self._thread.join(timeout)
                if self._thread.is_alive():
                    logger.warning(
                        "subscription %r: handler still running after %ss; its "
                        "position is no longer stored",
                        self.name,
                        timeout,
                    )
                    self._hub.release(self)  # before the status: never stored
                    self._end("stopped", None)
            self._hub.release(self)
        except BaseException:  # never raises: a stop must not fail its caller
            logger.exception("subscription %r: stop failed", self.name)

    def wait_for(self, position: int, timeout: float | None) -> None:
        """Block until ``position`` is handled (and its position stored).

        Raises:
            SubscriptionTimeoutError: Not reached within ``timeout`` seconds.
            SubscriptionStoppedError: It stopped or failed before, or this
                is a forked child (at once: the thread is the parent's).
            EngineThreadWaitError: Not reached yet and called from its own
                handler or from an engine thread (a done-callback, a
                listener, a projection handler), which would stall the
                writer that stores positions.
        """
        if self.position >= position:
            return
        if os.getpid() != self._pid:  # a forked child: the thread is the parent's
            reason = "the process forked; its thread stayed in the parent"
            raise SubscriptionStoppedError(self.name, position, self.position, reason)
        if self._thread is threading.current_thread() or in_engine_thread():
            msg = (
                f"subscription {self.name!r} cannot be waited for from its own "
                "handler or from an engine thread (a done-callback, a listener, "
                "a projection handler): it needs the writer to store its position"
            )
            raise EngineThreadWaitError(msg)
        with self._changed:
            reached = self._changed.wait_for(
                lambda: self.position >= position or self.status != "running",
                timeout,
            )
        if self.position >= position:
            return
        if not reached:
            raise SubscriptionTimeoutError(
                self.name, position, self.position, timeout or 0.0
            )
        reason = "stopped" if self.error is None else _describe(self.error)
        raise SubscriptionStoppedError(self.name, position, self.position, reason)

    # -- the thread -------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as error:  # storage failed, or the store closed
            if not self._stop.is_set():
                logger.warning("subscription %r stopped: %s", self.name, error)
                self._end("failed", error)
        finally:
            self._end("stopped", None)
            self._hub.release(self)

    def _loop(self) -> None:
        stop = self._stop
        while not stop.is_set():
            self._wake.clear()  # before the read: a commit after it wakes us
            page = self._reader.read_page(self.position, PAGE_SIZE)
            if not page:
                self._wake.wait(_IDLE_WAIT)
                continue
            for event in page:
                if stop.is_set() or not self._handle(event):
                    return
                self._store(event.position)

    def _handle(self, event: Event[Any]) -> bool:
        delay = self._retry_delay
        for attempt in range(1, self._max_attempts + 1):
            try:
                self._handler(event)
            except BaseException as error:  # user code: never kills the thread
                logger.warning(
                    "subscription %r: handler failed on position %d "
                    "(attempt %d of %d): %r",
                    self.name,
                    event.position,
                    attempt,
                    self._max_attempts,
                    error,
                )
                last = error
            else:
                return True
            if attempt < self._max_attempts:
                if self._stop.wait(delay):
                    return False  # stopped during the back-off: not failed
                delay = min(delay * 2, _MAX_DELAY)
        self._end("failed", last)
        return False

    def _store(self, position: int) -> None:
        if not self._hub.owns(self):
            return  # given up by a stop that timed out: never overwrite
        name = self.name
        future = self._write(lambda storage: storage.save_subscription(name, position))
        await_write(future, name)
        with self._changed:
            self.position = position
            self._changed.notify_all()

    def _end(self, status: str, error: BaseException | None) -> None:
        with self._changed:
            if self.status == "running":
                self.status = status
                self.error = error
            self._changed.notify_all()


def await_write(future: Future[None], name: str, timeout: float | None = None) -> None:
    """Wait (the calling thread) for a subscription write's acknowledgement.

    Raises:
        SubscriptionWriteTimeoutError: Not acknowledged within ``timeout``
            seconds (default ``WRITE_TIMEOUT``: a hang guard; also a
            ``TimeoutError``).
    """
    if timeout is None:
        timeout = WRITE_TIMEOUT
    try:
        future.result(timeout)
    except TimeoutError:
        raise SubscriptionWriteTimeoutError(name, timeout) from None


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
