"""Queries between projections: answered while their asker waits.

A projection handler may query another projection (with
``consistency="eventual"``, or a strong query it has already caught up
with). The asker's thread then waits for the answer. If the other
projection's handler is at that moment querying the first one, each waits
for the other: with plain ``tell`` and ``Future.result`` both would stall
until ``query_timeout``.

So a query sent from an engine thread goes to the target's *side inbox* as
well as waking its actor with :data:`SERVE_SIDE`, and a projection thread
that waits for an answer keeps serving its own side inbox meanwhile. Every
query still runs on the thread of the projection it reads (the read model
is never touched by another thread); a waiting projection answers from the
model as it stands in the middle of its handler (eventual consistency).
Whichever of the two wake-ups comes first serves the query; the other finds
the side inbox empty.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, Final, TypeVar

from swarmlog.actors.projection_messages import RunQuery
from swarmlog.actors.runtime import in_engine_thread

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future

    import pykka

__all__ = ["SERVE_SIDE", "ServeSide", "SideInbox", "send", "wait"]

R = TypeVar("R")


class ServeSide:
    """Tells a projection actor to answer what waits in its side inbox."""

    __slots__ = ()


SERVE_SIDE: Final = ServeSide()


class SideInbox:
    """Queries for one projection sent from engine threads.

    Args:
        serve: Answers one message; runs on the owning actor's thread.
    """

    __slots__ = ("_queue", "_serve", "_wake")

    def __init__(self, serve: Callable[[Any], None]) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._serve = serve
        self._wake = threading.Event()

    def put(self, message: Any) -> None:
        """Queue a query (any thread)."""
        self._queue.put(message)
        self._wake.set()

    def wake(self) -> None:
        """Wake the owner if it waits (any thread)."""
        self._wake.set()

    def clear(self) -> None:
        """Forget earlier wake-ups (the owner, before it looks again)."""
        self._wake.clear()

    def sleep(self, timeout: float | None) -> None:
        """Wait for a wake-up, at most ``timeout`` seconds (the owner)."""
        self._wake.wait(timeout)

    def serve_pending(self) -> None:
        """Answer every queued query (the owning actor's thread)."""
        while True:
            try:
                message = self._queue.get_nowait()
            except queue.Empty:
                return
            self._serve(message)

    def drain(self) -> list[Any]:
        """Take every queued query unanswered (the owner stops)."""
        messages = []
        while True:
            try:
                messages.append(self._queue.get_nowait())
            except queue.Empty:
                return messages


_inboxes: dict[str, SideInbox] = {}  # actor urn -> side inbox
_local = threading.local()


def open_inbox(urn: str, serve: Callable[[Any], None]) -> SideInbox:
    """Give the calling actor thread a side inbox (its ``on_start``)."""
    inbox = SideInbox(serve)
    _inboxes[urn] = inbox
    _local.inbox = inbox
    return inbox


def close_inbox(urn: str) -> list[Any]:
    """Remove an actor's side inbox (its ``on_stop``); returns the queries
    nobody answered."""
    inbox = _inboxes.pop(urn, None)
    _local.inbox = None
    return [] if inbox is None else inbox.drain()


def send(actor: pykka.ActorRef[Any], message: Any) -> None:
    """Deliver a message to a projection actor (any thread); a query sent
    from an engine thread also goes to the target's side inbox.

    Raises:
        pykka.ActorDeadError: The actor stopped.
    """
    inbox = None
    if isinstance(message, RunQuery) and in_engine_thread():
        inbox = _inboxes.get(actor.actor_urn)
    if inbox is None:
        actor.tell(message)
        return
    inbox.put(message)
    actor.tell(SERVE_SIDE)


def wait(future: Future[R], timeout: float | None) -> R:
    """``future.result(timeout)``; on a projection thread, answer queries
    sent to this projection while waiting.

    Raises:
        concurrent.futures.TimeoutError: No answer within ``timeout``.
    """
    own: SideInbox | None = getattr(_local, "inbox", None)
    if own is None:
        return future.result(timeout)
    future.add_done_callback(lambda _: own.wake())
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        own.clear()
        own.serve_pending()
        if future.done():
            return future.result()
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise FutureTimeout
        own.sleep(remaining)
