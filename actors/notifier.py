"""Listeners and the notifier actor that calls them.

``EventStore.on(name, callback)`` registers a listener. Callbacks run on the
notifier's own thread, never on the writer, in commit order; a slow callback
delays only later callbacks, and a raising one is logged, counted
(``Listeners.errors``, shown as ``listener_errors`` in the store's stats)
and ignored, whatever it raises: ``asyncio.CancelledError``,
``KeyboardInterrupt`` and ``SystemExit`` included.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Final

from swarmlog.actors.messages import DeliverPage, Notify
from swarmlog.actors.runtime import FastInboxActor, mark_engine_thread
from swarmlog.schema.errors import InvalidConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["LISTENER_EVENTS", "ListenerHandle", "Listeners", "NotifierActor"]

logger = logging.getLogger("swarmlog.listeners")

LISTENER_EVENTS: Final = frozenset(
    {
        "event:appended",
        "snapshot:recommended",
        "snapshot:saved",
        "persisted",
        "error",
        "initialized",
        "shutdown",
    }
)
_EVENT_DRIVEN: Final = frozenset({"event:appended", "snapshot:recommended"})


class ListenerHandle:
    """Returned by ``EventStore.on``; ``cancel()`` removes the listener."""

    __slots__ = ("_callback", "_listeners", "name")

    def __init__(
        self, listeners: Listeners, name: str, callback: Callable[..., Any]
    ) -> None:
        self._listeners = listeners
        self.name = name
        self._callback = callback

    def cancel(self) -> None:
        """Stop calling this listener (safe from any thread, idempotent)."""
        self._listeners.remove(self.name, self._callback)


class Listeners:
    """A thread-safe registry: event name -> callbacks (copy on write)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, tuple[Callable[..., Any], ...]] = {}
        self.wants_events = False
        self.errors = 0  # callbacks that raised (written by the notifier only)

    def add(self, name: str, callback: Callable[..., Any]) -> ListenerHandle:
        """Register ``callback`` for ``name``.

        Raises:
            InvalidConfigError: Unknown ``name`` or a non-callable.
        """
        if name not in LISTENER_EVENTS:
            known = ", ".join(sorted(LISTENER_EVENTS))
            msg = f"unknown listener event {name!r} (one of {known})"
            raise InvalidConfigError(msg)
        if not callable(callback):
            msg = f"listener for {name!r} must be callable"
            raise InvalidConfigError(msg)
        with self._lock:
            self._by_name[name] = (*self._by_name.get(name, ()), callback)
            self._refresh()
        return ListenerHandle(self, name, callback)

    def remove(self, name: str, callback: Callable[..., Any]) -> None:
        """Unregister one callback (no error if it is not registered)."""
        with self._lock:
            callbacks = list(self._by_name.get(name, ()))
            if callback in callbacks:
                callbacks.remove(callback)
            self._by_name[name] = tuple(callbacks)
            self._refresh()

    def _refresh(self) -> None:
        self.wants_events = any(self._by_name.get(n) for n in _EVENT_DRIVEN)

    def get(self, name: str) -> tuple[Callable[..., Any], ...]:
        """The callbacks of ``name`` now."""
        return self._by_name.get(name, ())


class NotifierActor(FastInboxActor):
    """Calls listener callbacks on its own thread, in the order told.

    Args:
        listeners: The registry to read callbacks from.
        snapshot_threshold: Recommend a snapshot when an aggregate's
            version reaches a multiple of this.
    """

    def __init__(self, listeners: Listeners, snapshot_threshold: int) -> None:
        super().__init__()
        self._listeners = listeners
        self._threshold = snapshot_threshold

    def on_start(self) -> None:
        """Mark the thread as an engine thread."""
        mark_engine_thread()

    def on_receive(self, message: Any) -> Any:
        """Run the callbacks for a page or a notification (this thread)."""
        if isinstance(message, DeliverPage):
            appended = self._listeners.get("event:appended")
            recommended = self._listeners.get("snapshot:recommended")
            for event in message.events:
                for callback in appended:
                    self._call(callback, "event:appended", (event,))
                if recommended and event.version % self._threshold == 0:
                    info = {
                        "aggregate_id": event.aggregate_id,
                        "version": event.version,
                    }
                    for callback in recommended:
                        self._call(callback, "snapshot:recommended", (info,))
        elif isinstance(message, Notify):
            for callback in self._listeners.get(message.name):
                self._call(callback, message.name, message.args)
        return None

    def _call(
        self, callback: Callable[..., Any], name: str, args: tuple[Any, ...]
    ) -> None:
        try:
            callback(*args)
        except BaseException:  # user code: never stops this actor (or pykka's)
            self._listeners.errors += 1
            logger.exception("listener %r for %r raised", callback, name)
