"""Messages between the actors: small, immutable, slotted.

Imperative names (``DeliverPage``, ``SaveSnapshot``) like pykka's own
``messages`` module. Replies travel in a ``concurrent.futures.Future`` the
sender made (never a pykka ``ask`` inside the actor graph), or back as a
message to the sender's actor. An append is not a message: it is queued on
the committer (:mod:`swarmlog.actors.append_request`).
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future

    import pykka

    from swarmlog.actors.storage import (
        ProjectionSnapshotRecord,
        SnapshotRecord,
        WriteStorage,
    )
    from swarmlog.schema.envelope import Event

__all__ = [
    "WAKE",
    "DeleteProjectionSnapshot",
    "DeliverPage",
    "Flush",
    "Notify",
    "ProjectionSnapshotSaved",
    "RunWrite",
    "SaveProjectionSnapshot",
    "SaveSnapshot",
    "Subscribe",
    "TrackedReplies",
    "Unsubscribe",
    "Wake",
]


class Wake:
    """Take the committer's turn and commit what is queued (the writer)."""

    __slots__ = ()


WAKE = Wake()
"""The one :class:`Wake` message (it carries nothing)."""


class SaveSnapshot:
    """Store an aggregate snapshot."""

    __slots__ = ("future", "record")

    def __init__(self, record: SnapshotRecord, future: Future[None]) -> None:
        self.record = record
        self.future = future


class SaveProjectionSnapshot:
    """Store a projection snapshot; tell ``reply_to`` a
    :class:`ProjectionSnapshotSaved` when done."""

    __slots__ = ("name", "record", "reply_to")

    def __init__(
        self,
        name: str,
        record: ProjectionSnapshotRecord,
        reply_to: pykka.ActorRef[Any] | None,
    ) -> None:
        self.name = name
        self.record = record
        self.reply_to = reply_to


class ProjectionSnapshotSaved:
    """The writer stored a projection snapshot (or failed: ``error``)."""

    __slots__ = ("error", "position")

    def __init__(self, position: int, error: BaseException | None = None) -> None:
        self.position = position
        self.error = error


class DeleteProjectionSnapshot:
    """Forget a projection's snapshot."""

    __slots__ = ("future", "name")

    def __init__(self, name: str, future: Future[None]) -> None:
        self.name = name
        self.future = future


class RunWrite:
    """Run ``function`` on the writing connection (one non-append write,
    e.g. a durable subscription's position); settle ``future``."""

    __slots__ = ("function", "future")

    def __init__(
        self, function: Callable[[WriteStorage], None], future: Future[None]
    ) -> None:
        self.function = function
        self.future = future


class Flush:
    """Resolve ``future`` once every message sent before this one is done."""

    __slots__ = ("future",)

    def __init__(self, future: Future[None]) -> None:
        self.future = future


class DeliverPage:
    """Committed events, in commit order (positions contiguous)."""

    __slots__ = ("events",)

    def __init__(self, events: tuple[Event[Any], ...]) -> None:
        self.events = events


class Notify:
    """Call the listeners of ``name`` with ``args`` (on the notifier thread)."""

    __slots__ = ("args", "name")

    def __init__(self, name: str, args: tuple[Any, ...]) -> None:
        self.name = name
        self.args = args


class Subscribe:
    """Deliver committed pages to ``ref`` from now on."""

    __slots__ = ("ref",)

    def __init__(self, ref: pykka.ActorRef[Any]) -> None:
        self.ref = ref


class Unsubscribe:
    """Stop delivering pages to ``ref``."""

    __slots__ = ("ref",)

    def __init__(self, ref: pykka.ActorRef[Any]) -> None:
        self.ref = ref


class TrackedReplies:
    """Reply futures told to the writer actor and not yet settled.

    pykka drops told messages left in a stopped actor's inbox; rather than
    read its private inbox, whoever tells the writer a message with a reply
    future tracks the future here first, and the writer's ``on_stop``
    fails what is left (thread-safe).
    """

    __slots__ = ("_futures", "_lock")

    def __init__(self) -> None:
        self._futures: set[Future[None]] = set()
        self._lock = threading.Lock()

    def track(self, future: Future[None]) -> None:
        """Remember ``future`` until it is settled (any thread)."""
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)

    def fail(self, error: BaseException) -> None:
        """Fail every tracked future still unsettled (any thread)."""
        with self._lock:
            pending = list(self._futures)
        for future in pending:
            if not future.done():
                with contextlib.suppress(Exception):  # settled meanwhile
                    future.set_exception(error)
