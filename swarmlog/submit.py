"""AppendGate: the caller's side of an append, up to the committer's queue.

Encodes events on the caller's thread, checks ``expected_version``, and
applies back-pressure: at most ``max_in_flight`` appends in flight (a
thread blocks for a slot; on an event loop's thread the request waits in the
overflow line instead, so the loop never blocks). Then the request goes to
the :class:`~swarmlog.actors.committer.Committer`, which settles it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from swarmlog.actors.reply import InFlightLimit, Overflow
from swarmlog.actors.runtime import in_engine_thread
from swarmlog.schema.codec import prepare_event
from swarmlog.schema.envelope import ANY
from swarmlog.schema.errors import DuplicateEventError, EngineThreadWaitError
from swarmlog.validation import check_expected

if TYPE_CHECKING:
    from collections.abc import Callable

    from swarmlog.actors.append_request import AppendRequest
    from swarmlog.actors.committer import Committer
    from swarmlog.config import EventStoreConfig
    from swarmlog.schema.codec import PreparedEvent
    from swarmlog.schema.envelope import Event

__all__ = ["AppendGate"]


class AppendGate:
    """Prepares appends and queues them with back-pressure (any thread).

    Args:
        config: The store's options (``max_in_flight``,
            ``max_payload_bytes``, ``caller_commits``).
        writable: The committer of the open, writable store, or raises the
            store's typed error.
        is_open: Whether the store is open now.
    """

    def __init__(
        self,
        config: EventStoreConfig,
        writable: Callable[[], Committer],
        is_open: Callable[[], bool],
    ) -> None:
        self._config = config
        self._writable = writable
        self._is_open = is_open
        self.in_flight = InFlightLimit(config.max_in_flight)
        self._here = threading.local()  # .unqueued: see unqueued_here()
        self._overflow: Overflow[AppendRequest] = Overflow(
            self.in_flight, self._submit_overflow, _refuse
        )

    def prepare(self, event: Event[Any]) -> PreparedEvent:
        """Check and encode one event (caller's thread).

        Raises:
            UnknownEventTypeError: The event type is not registered.
            InvalidEventError: The event is malformed or too large.
        """
        return prepare_event(event, self._config.max_payload_bytes)

    def prepare_batch(self, events: Iterable[Event[Any]]) -> tuple[PreparedEvent, ...]:
        """Check and encode a batch (caller's thread).

        Raises:
            DuplicateEventError: Two events of the batch share an id.
        """
        prepared = tuple(self.prepare(e) for e in events)
        if len({p.id_bytes for p in prepared}) != len(prepared):
            seen: set[bytes] = set()
            for p in prepared:
                if p.id_bytes in seen:
                    raise DuplicateEventError(p.event.id)
                seen.add(p.id_bytes)
        return prepared

    def submit(self, request: AppendRequest, *, lead: bool = False) -> None:
        """Queue an append on the committer (it settles ``request``).

        With ``lead`` (a caller about to wait anyway) and the writer idle,
        the append is committed on this thread before this returns.
        """
        expected = request.expected
        if expected is not ANY:
            if isinstance(expected, Mapping):
                for value in expected.values():
                    check_expected(value)
            else:
                check_expected(expected)
        committer = self._writable()
        # On an event loop's thread, back-pressure must make the await wait,
        # never block the loop: a request that finds no slot (or others
        # already waiting for one) waits in the overflow line.
        on_loop = not lead and asyncio._get_running_loop() is not None
        if on_loop and self._overflow.busy():
            self._overflow.put(request)
            return
        here = self._here
        here.unqueued = getattr(here, "unqueued", 0) + 1
        try:
            self._submit_slot(committer, request, lead=lead, on_loop=on_loop)
        finally:
            here.unqueued -= 1

    def unqueued_here(self) -> int:
        """Appends of this thread between taking a slot and queueing (a
        signal handler's ``shutdown()`` must not wait for them: they are
        suspended beneath it)."""
        return int(getattr(self._here, "unqueued", 0))

    def _submit_slot(
        self, committer: Committer, request: AppendRequest, *, lead: bool, on_loop: bool
    ) -> None:
        in_flight = self.in_flight
        if not in_flight.acquire(blocking=False):
            if on_loop:
                self._overflow.put(request)
                return
            # A handler or listener must not block on back-pressure: the
            # writer may be waiting for the very thread it runs on to drain.
            if in_engine_thread():
                msg = "too many appends in flight to append from inside the engine"
                raise EngineThreadWaitError(msg)
            in_flight.acquire()
        try:
            self._submit_held(committer, request, lead=lead, park=not on_loop)
        except BaseException:
            # An interrupt (a signal on this thread) or a refusal: give the
            # slot back unless the request reached the queue (then the
            # writer commits it and releases the slot; its outcome is
            # unknown to this caller).
            if committer.reclaim(request):
                in_flight.release()
            raise

    def _submit_held(
        self, committer: Committer, request: AppendRequest, *, lead: bool, park: bool
    ) -> None:
        """Queue a request that holds an in-flight slot."""
        if not self._is_open():
            self._writable()
        committer.submit(request, lead=lead and self._config.caller_commits, park=park)

    def _submit_overflow(self, request: AppendRequest) -> None:
        """Queue a request from the overflow line (its helper thread)."""
        committer = self._writable()
        try:
            self._submit_held(committer, request, lead=False, park=True)
        except BaseException:
            if committer.reclaim(request):
                self.in_flight.release()
            raise


def _refuse(request: AppendRequest, error: BaseException) -> None:
    """Settle a request of the overflow line that could not be queued."""
    if not request.done():
        request.set_exception(error)
