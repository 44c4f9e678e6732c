"""Durable subscriptions: the public handle and the store's helper.

``store.subscribe(name, handler)`` returns a :class:`Subscription`; its
handler runs on a thread of its own (see
:mod:`swarmlog.actors.subscription` for the delivery guarantees).
``store.aio.subscribe(name)`` is the asyncio form: an async iterator that
stores the position of an event when the loop asks for the next one.
:class:`SubscriptionManager` does the work behind the store's methods
(``subscribe``, ``reset_subscription``, ``delete_subscription``, the
``subscriptions`` of ``get_stats``).

Positions are stored in the store file, so they survive restarts and are
shared by every store that opens the file; one live subscription per name
per store is enforced here. Several processes writing one file at once do
not exist (a file has one writing store), so there is no ownership hand-over
between processes yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import TYPE_CHECKING, Any, Final, Literal

from swarmlog.actors.runtime import in_engine_thread
from swarmlog.actors.subscription import (
    PAGE_SIZE,
    Owner,
    SubscriptionHub,
    SubscriptionRunner,
    await_write,
)
from swarmlog.aio import _off_loop
from swarmlog.schema.errors import (
    EngineThreadWaitError,
    InvalidConfigError,
    InvalidQueryError,
)
from swarmlog.stats import SubscriptionStatus

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from concurrent.futures import Future

    from swarmlog.actors.storage import ReadStorage, WriteStorage
    from swarmlog.schema.envelope import Event

__all__ = ["FromPosition", "Subscription", "SubscriptionManager"]

FromPosition = int | Literal["end"] | None
"""Where a subscription with no stored position starts: None (the first
event), a position (that event), or ``"end"`` (events appended from now)."""

_MAX_TIMEOUT: Final = threading.TIMEOUT_MAX  # a longer wait overflows
_IDLE_WAIT: Final = 5.0  # seconds: a guard against a missed wake-up, not a poll
MAX_ATTEMPTS: Final = 5  # handler calls per event before a subscription fails
RETRY_DELAY: Final = 0.1  # seconds before the second attempt (then doubling)


class Subscription:
    """A running durable subscription (``store.subscribe``). Safe from any
    thread; usable as a context manager (``stop()`` on exit)."""

    __slots__ = ("_runner",)

    def __init__(self, runner: SubscriptionRunner) -> None:
        self._runner = runner

    @property
    def name(self) -> str:
        """The subscription's name."""
        return self._runner.name

    @property
    def position(self) -> int:
        """The last handled position (stored: a restart resumes after it)."""
        return self._runner.position

    @property
    def status(self) -> str:
        """``"running"``, ``"stopped"`` or ``"failed"``."""
        return self._runner.status

    @property
    def error(self) -> BaseException | None:
        """The handler's error that stopped it (status ``"failed"``), else
        None."""
        return self._runner.error

    def wait_for(self, position: int, timeout: float | None = 30.0) -> None:
        """Block until the event at ``position`` is handled and its position
        stored.

        Returns at once if it is reached already (from any thread).

        Raises:
            SubscriptionTimeoutError: Not reached within ``timeout`` seconds.
            SubscriptionStoppedError: It stopped or failed before (at once
                in a forked child: its thread stayed in the parent).
            EngineThreadWaitError: Not reached yet and called from its own
                handler or an engine thread (a done-callback of
                ``append_async``, a listener, a projection handler): the
                writer, which stores its positions, would wait for itself.
            InvalidQueryError: ``position`` is not an int, or ``timeout``
                is not None or a number >= 0.
        """
        if isinstance(position, bool) or not isinstance(position, int):
            msg = f"position must be an int, got {position!r}"
            raise InvalidQueryError(msg)
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 <= timeout < _MAX_TIMEOUT
        ):
            msg = f"timeout must be None or finite seconds >= 0, got {timeout!r}"
            raise InvalidQueryError(msg)
        self._runner.wait_for(position, timeout)

    def stop(self) -> None:
        """Stop after the event in progress and wait (bounded) for it; the
        name can then be subscribed again. Idempotent; never raises.

        From its own handler, or from an engine thread (a done-callback of
        ``append_async``, a listener, a projection handler), it only asks
        the subscription to stop and returns at once: the event in progress
        finishes and its position is stored (by the writer, which this
        thread would otherwise block), then the name is freed. If the wait
        times out (a stuck handler), the subscription is given up: status
        ``"stopped"``, its name freed, no later position stored."""
        self._runner.stop()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Subscription {self.name!r} {self.status} at position {self.position}>"


class _AsyncOwner(Owner):
    """The live registration of one asyncio subscription (its loop's)."""

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop) -> None:
        self.name = name
        self.position = 0
        self.status = "running"
        self.error: BaseException | None = None
        self.stopping = False
        self.woken = asyncio.Event()
        self._loop = loop

    def wake(self) -> None:
        self._loop.call_soon_threadsafe(self.woken.set)

    def halt(self) -> None:
        self.stopping = True
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self._loop.call_soon_threadsafe(self.woken.set)

    def stop(self, timeout: float = 0.0) -> None:
        self.halt()
        if self.status == "running":
            self.status = "stopped"


class SubscriptionManager:
    """The durable subscriptions of one store (its helper; any thread).

    Args:
        reader: The store's reader pool (raises if the store is closed).
        write: Tells the writer one write and returns its reply future
            (raises if the store is read-only or closed).
        writable: Raises if the store is read-only or closed.
    """

    def __init__(
        self,
        reader: Callable[[], ReadStorage],
        write: Callable[[Callable[[WriteStorage], None]], Future[None]],
        writable: Callable[[], object],
    ) -> None:
        self.hub = SubscriptionHub()
        self._reader = reader
        self._write = write
        self._writable = writable
        self._lock = threading.Lock()
        self._recent: dict[str, Owner] = {}  # the last one per name, for stats

    def subscribe(
        self,
        name: str,
        handler: Callable[[Event[Any]], Any],
        from_position: FromPosition,
        *,
        max_attempts: int,
        retry_delay: float,
    ) -> Subscription:
        """Start a subscription (see ``EventStore.subscribe``)."""
        _check_name(name)
        if not callable(handler):
            msg = f"handler must be callable, got {handler!r}"
            raise InvalidConfigError(msg)
        _check_from(from_position)
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
            msg = f"max_attempts must be an int >= 1, got {max_attempts!r}"
            raise InvalidConfigError(msg)
        if max_attempts < 1:
            msg = f"max_attempts must be an int >= 1, got {max_attempts!r}"
            raise InvalidConfigError(msg)
        if not isinstance(retry_delay, int | float) or not 0 <= retry_delay <= 60:
            msg = f"retry_delay must be seconds from 0 to 60, got {retry_delay!r}"
            raise InvalidConfigError(msg)
        _refuse_engine_thread()
        reader = self._reader()
        self._writable()
        runner = SubscriptionRunner(
            name,
            handler,
            0,
            self.hub,
            reader,
            self._write,
            max_attempts=max_attempts,
            retry_delay=float(retry_delay),
        )
        self.hub.reserve(runner)
        try:
            position, new = _initial(reader, name, from_position)
            if new:
                await_write(self._save(name, position), name)
            runner.position = position
            runner.start()
        except BaseException:
            self.hub.release(runner)
            raise
        with self._lock:
            self._recent[name] = runner
        return Subscription(runner)

    def subscribe_async(
        self, name: str, from_position: FromPosition
    ) -> AsyncIterator[Event[Any]]:
        """The asyncio form (see ``store.aio.subscribe``); arguments are
        checked at once."""
        _check_name(name)
        _check_from(from_position)
        self._reader()  # open and writable, or raise now
        self._writable()
        return self._iterate(name, from_position)

    async def _iterate(
        self, name: str, from_position: FromPosition
    ) -> AsyncIterator[Event[Any]]:
        owner = _AsyncOwner(name, asyncio.get_running_loop())
        self.hub.reserve(owner)
        try:
            reader = self._reader()
            position, new = await _off_loop(_initial, reader, name, from_position)
            if new:
                await asyncio.wrap_future(self._save(name, position))
            owner.position = position
            with self._lock:
                self._recent[name] = owner
            while not owner.stopping:
                owner.woken.clear()  # before the read: a later commit wakes us
                page = await _off_loop(reader.read_page, owner.position, PAGE_SIZE)
                if not page:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(owner.woken.wait(), _IDLE_WAIT)
                    continue
                for event in page:
                    if owner.stopping:
                        return
                    yield event
                    if owner.stopping:  # stopped (shutdown) during the body:
                        return  # store nothing more; the event comes again
                    # The loop asked for the next event: this one is handled.
                    await asyncio.wrap_future(self._save(name, event.position))
                    owner.position = event.position
        except Exception as error:
            if owner.stopping:  # the store closed under a read or a write
                return  # ends like the thread form: status "stopped"
            owner.error = error
            owner.status = "failed"
            raise
        except BaseException as error:
            if not isinstance(error, GeneratorExit | asyncio.CancelledError):
                owner.error = error
                owner.status = "failed"
            raise
        finally:
            if owner.status == "running":
                owner.status = "stopped"
            self.hub.release(owner)

    def reset(self, name: str, position: int) -> None:
        """Store ``position`` as the last handled one of ``name``."""
        _check_name(name)
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            msg = f"position must be an int >= 0, got {position!r}"
            raise InvalidQueryError(msg)
        reader = self._reader()
        head = reader.head()
        if position > head:
            msg = f"position {position} is beyond the head ({head})"
            raise InvalidQueryError(msg)
        _refuse_engine_thread()
        self.hub.check_idle(name)
        await_write(self._save(name, position), name)
        with self._lock:
            self._recent.pop(name, None)

    def delete(self, name: str) -> bool:
        """Forget ``name``'s position; return whether one was stored."""
        _check_name(name)
        reader = self._reader()
        _refuse_engine_thread()
        self.hub.check_idle(name)
        existed = reader.load_subscription(name) is not None
        await_write(
            self._write(lambda storage: storage.delete_subscription(name)), name
        )
        with self._lock:
            self._recent.pop(name, None)
        return existed

    def statuses(self, head: int) -> dict[str, SubscriptionStatus]:
        """Every stored subscription, by name (with this store's status of
        those it ran: ``"stopped"`` for the others)."""
        stored = self._reader().subscriptions()
        with self._lock:
            recent = dict(self._recent)
        result = {}
        for name in sorted(stored):
            owner = recent.get(name)
            position = stored[name]
            status, error = "stopped", None
            if owner is not None:
                position = max(position, owner.position)
                status = owner.status
                if owner.error is not None:
                    error = f"{type(owner.error).__name__}: {owner.error}"
            result[name] = SubscriptionStatus(
                position=position,
                lag=max(head - position, 0),
                status=status,
                error=error,
            )
        return result

    def shutdown(self) -> None:
        """Stop every live subscription (bounded). Never raises."""
        self.hub.stop_all()

    def _save(self, name: str, position: int) -> Future[None]:
        return self._write(lambda storage: storage.save_subscription(name, position))


def _initial(reader: ReadStorage, name: str, start: FromPosition) -> tuple[int, bool]:
    """Where ``name`` resumes: its stored position, else (and then True:
    store it) the one ``start`` names."""
    stored = reader.load_subscription(name)
    if stored is not None:
        return stored, False
    if start is None:
        return 0, True
    head = reader.head()
    if start == "end":
        return head, True
    position = max(int(start) - 1, 0)
    if position > head:  # as reset() refuses: later events would be skipped
        msg = (
            f"from_position {start} is beyond the head ({head}); at most "
            f"{head + 1} (the next event)"
        )
        raise InvalidQueryError(msg)
    return position, True


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name.strip():
        msg = f"a subscription name must be a non-empty string, got {name!r}"
        raise InvalidConfigError(msg)


def _check_from(start: object) -> None:
    if start is None or start == "end":
        return
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        msg = f'from_position must be None, an int >= 0 or "end", got {start!r}'
        raise InvalidConfigError(msg)


def _refuse_engine_thread() -> None:
    if in_engine_thread():
        msg = (
            "subscriptions cannot be started, reset or deleted from a "
            "projection handler or a listener (the writer would wait for itself)"
        )
        raise EngineThreadWaitError(msg)
