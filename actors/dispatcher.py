"""DispatcherActor: committed pages from the writer to every subscriber.

The writer tells this actor one :class:`DeliverPage` per commit, in commit
order; the dispatcher forwards the same immutable page to each projection
actor (one ``tell`` per projection per page, never per event) and, when
anyone listens for events, to the notifier. A dead subscriber is dropped;
nothing a projection does can stop the dispatcher or the writer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pykka

from swarmlog.actors.messages import DeliverPage, Subscribe, Unsubscribe
from swarmlog.actors.runtime import FastInboxActor, mark_engine_thread

if TYPE_CHECKING:
    from swarmlog.actors.notifier import Listeners

__all__ = ["DispatcherActor"]


class DispatcherActor(FastInboxActor):
    """Fans committed pages out to projection actors and the notifier.

    Runs on its own thread.

    Args:
        notifier: The notifier actor (gets pages when events are listened to).
        listeners: The store's listener registry.
    """

    def __init__(self, notifier: pykka.ActorRef[Any], listeners: Listeners) -> None:
        super().__init__()
        self._notifier = notifier
        self._listeners = listeners
        self._subscribers: tuple[pykka.ActorRef[Any], ...] = ()

    def on_start(self) -> None:
        """Mark the thread as an engine thread."""
        mark_engine_thread()

    def on_receive(self, message: Any) -> Any:
        """Forward a page, or change the subscriber list (this thread)."""
        if isinstance(message, DeliverPage):
            dead = []
            for ref in self._subscribers:
                try:
                    ref.tell(message)
                except pykka.ActorDeadError:
                    dead.append(ref)
            if dead:
                self._subscribers = tuple(r for r in self._subscribers if r not in dead)
            if self._listeners.wants_events:
                self._notifier.tell(message)
        elif isinstance(message, Subscribe):
            self._subscribers = (*self._subscribers, message.ref)
        elif isinstance(message, Unsubscribe):
            self._subscribers = tuple(r for r in self._subscribers if r != message.ref)
        return None
