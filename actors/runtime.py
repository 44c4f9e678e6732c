"""The little state actors publish to other threads.

Each object here has one writer at a time (whoever holds the committer's
turn for :class:`CommitHead` and :class:`WriterMetrics`); other threads only
read plain ints, which CPython reads and writes atomically.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol

import pykka

if TYPE_CHECKING:
    from collections.abc import Callable


__all__ = [
    "ESCAPED",
    "STOP_TIMEOUT",
    "Audience",
    "CommitHead",
    "EventListeners",
    "FastInboxActor",
    "WriterMetrics",
    "in_engine_thread",
    "mark_engine_thread",
    "stop_bounded",
]

logger = logging.getLogger("swarmlog.actors")

_local = threading.local()


def mark_engine_thread() -> None:
    """Mark the calling thread as part of the engine (an actor or the
    notifier), where a blocking wait on the engine could deadlock."""
    _local.engine = True


def in_engine_thread() -> bool:
    """Whether the calling thread is an engine thread."""
    return getattr(_local, "engine", False)


class CommitHead:
    """The highest committed position, published by the writer after COMMIT
    and before it resolves the callers' futures (read-your-writes)."""

    __slots__ = ("position", "source")

    def __init__(self, position: int = 0) -> None:
        self.position = position
        # A shared store's (multi_process): reads the store's committed head
        # and asks the writer to catch up to it (set by the store's wiring).
        self.source: Callable[[], int] | None = None

    def committed(self) -> int:
        """The position a strong read must reflect (any thread): the head
        published here, or on a store other processes write, the head
        committed in the store by any process (read-your-writes across
        processes; the projection then waits for the catch-up)."""
        source = self.source
        return self.position if source is None else max(source(), self.position)


class EventListeners(Protocol):
    """What :class:`Audience` reads of the notifier's listener registry
    (``swarmlog.actors.notifier.Listeners``; a Protocol here, the lower
    room, so runtime never imports the notifier)."""

    @property
    def wants_events(self) -> bool:
        """Whether any listener wants committed events."""
        ...


class Audience:
    """Who wants committed pages: running projections (counted by the
    store) and event listeners. With nobody, the committer does not even
    tell the dispatcher (a wasted thread wake-up per commit); a projection
    that starts later catches up from the store and fills any gap itself.
    """

    __slots__ = ("listeners", "projections")

    def __init__(self, listeners: EventListeners) -> None:
        self.listeners = listeners
        self.projections = 0

    @property
    def present(self) -> bool:
        """Whether anyone wants pages now."""
        return self.projections > 0 or self.listeners.wants_events


class WriterMetrics:
    """Counters the committer keeps under its turn (read by ``get_stats``)."""

    __slots__ = (
        "appends",
        "caller_transactions",
        "events",
        "failed_appends",
        "transactions",
    )

    def __init__(self) -> None:
        self.appends = 0
        self.events = 0
        self.transactions = 0
        self.caller_transactions = 0
        self.failed_appends = 0

    def committed(self, appends: int, events: int, by_caller: bool) -> None:
        """Count one committed transaction (``by_caller``: a caller's
        thread committed it, not the writer's)."""
        self.transactions += 1
        self.caller_transactions += by_caller
        self.appends += appends
        self.events += events

    @property
    def mean_batch_size(self) -> float:
        """Mean number of append requests per transaction."""
        return self.appends / self.transactions if self.transactions else 0.0


class FastInboxActor(pykka.ThreadingActor):
    """A pykka threading actor whose inbox is a C-level ``SimpleQueue``.

    pykka's default ``queue.Queue`` takes a Python-level Condition on every
    put; the hot paths (append hand-off, page delivery) put once per commit
    and per projection, so the cheaper put and wake-up show in latency.

    Its thread is a daemon thread: a store nobody shut down must not hold
    the process (the exit hook in ``swarmlog.lifecycle`` shuts it down).

    ``on_start``, ``on_receive`` and ``on_stop`` of every subclass are
    wrapped, once, when the class is made: a ``BaseException`` that is not
    an ``Exception`` (``KeyboardInterrupt``, ``SystemExit``,
    ``asyncio.CancelledError`` raised by user code) never leaves them. pykka
    would otherwise stop this actor and then every actor in the process
    (``ActorRegistry.stop_all``), other stores' included. It is logged and
    counted in :data:`ESCAPED`; the message's ``future``, if any, gets it.
    """

    use_daemon_thread = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("on_start", "on_receive", "on_stop"):
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "_guarded", False):
                setattr(cls, name, _guarded(method))

    @staticmethod
    def _create_actor_inbox() -> Any:
        return queue.SimpleQueue()


class _Escaped:
    """Counts BaseExceptions stopped at an actor's edge (read by tests and
    stats; written by actor threads, one int add under the GIL)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


ESCAPED = _Escaped()


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    if method.__name__ == "on_receive":  # the hot one: no *args packing

        @functools.wraps(method)
        def guarded_receive(self: pykka.Actor, message: Any) -> Any:
            try:
                return method(self, message)
            except Exception:
                raise  # pykka's own handling: the caller's reply, or a log
            except BaseException as error:
                _stopped_at_edge(self, method, error, message)
                return None

        guarded_receive._guarded = True  # type: ignore[attr-defined]
        return guarded_receive

    @functools.wraps(method)
    def guarded(self: pykka.Actor) -> Any:
        try:
            return method(self)
        except Exception:
            raise
        except BaseException as error:
            _stopped_at_edge(self, method, error, None)
            return None

    guarded._guarded = True  # type: ignore[attr-defined]
    return guarded


def _stopped_at_edge(
    actor: pykka.Actor, method: Callable[..., Any], error: BaseException, message: Any
) -> None:
    ESCAPED.count += 1
    logger.error(
        "%s: %s in %s stopped at the actor's edge",
        actor,
        type(error).__name__,
        method.__name__,
        exc_info=error,
    )
    future = getattr(message, "future", None)
    if isinstance(future, Future) and not future.done():
        try:
            future.set_exception(error)
        except Exception:  # settled meanwhile
            logger.debug("future settled meanwhile", exc_info=True)


STOP_TIMEOUT = 60.0
"""Seconds the store's shutdown waits for any one actor or reply (a bound
against a stuck handler, not a pace). Read at each use, so a test may
lower it."""


def stop_bounded(actor: pykka.ActorRef[Any]) -> None:
    """Stop an actor, waiting at most :data:`STOP_TIMEOUT` (a handler stuck
    forever must not hold the process: the thread is a daemon). Any thread
    but the actor's own."""
    try:
        actor.stop(timeout=STOP_TIMEOUT)
    except pykka.Timeout:
        logging.getLogger("swarmlog").warning(
            "swarmlog: %s did not stop in %ss", actor, STOP_TIMEOUT
        )
