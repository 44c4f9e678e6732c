"""SubscriptionMethods: the store's durable-subscription calls.

Mixed into :class:`~swarmlog.EventStore`; the subscriptions themselves
(threads, positions, the async form) live in :mod:`swarmlog.subscriptions`
and :mod:`swarmlog.actors.subscription`.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from swarmlog.actors.messages import RunWrite
from swarmlog.subscriptions import MAX_ATTEMPTS, RETRY_DELAY

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from swarmlog.actors.committer import Committer
    from swarmlog.actors.storage import WriteStorage
    from swarmlog.schema.envelope import Event
    from swarmlog.subscriptions import (
        FromPosition,
        Subscription,
        SubscriptionManager,
    )
    from swarmlog.wiring import StoreWiring

__all__ = ["SubscriptionMethods"]


class SubscriptionMethods:
    """Durable subscriptions of a store (see :meth:`subscribe`)."""

    __slots__ = ()
    if TYPE_CHECKING:  # what EventStore provides (a mixin never imports it)
        _subscriptions: SubscriptionManager
        _wiring: StoreWiring

        def _require_writable(self) -> Committer: ...

    def subscribe(
        self,
        name: str,
        handler: Callable[[Event[Any]], Any],
        *,
        from_position: FromPosition = None,
        max_attempts: int = MAX_ATTEMPTS,
        retry_delay: float = RETRY_DELAY,
    ) -> Subscription:
        """Call ``handler(event)`` for every committed event after the last
        one ``name`` handled, on a thread of the subscription's own, in
        position order; the position is stored after each handled event
        (through the writer), so a restart resumes after it.

        Safe from any thread but the engine's. ``from_position`` applies
        only when ``name`` has no stored position: None (the first event),
        a position (that event on), or ``"end"`` (only events appended from
        now on). A raising handler is called again after ``retry_delay``
        seconds (doubling, at most 5 s), ``max_attempts`` times in all;
        then the subscription stops with status ``"failed"`` and the error
        in ``error``, its position before the failing event.

        Raises:
            SubscriptionActiveError: ``name`` is already running here.
            InvalidConfigError: A bad name, handler or option.
            ReadOnlyStoreError: The store is read-only.
        """
        return self._subscriptions.subscribe(
            name,
            handler,
            from_position,
            max_attempts=max_attempts,
            retry_delay=retry_delay,
        )

    def reset_subscription(self, name: str, position: int) -> None:
        """Store ``position`` as the last handled one of ``name`` (0: from
        the first event on). Safe from any thread but the engine's.

        Raises:
            SubscriptionActiveError: ``name`` is running here.
            InvalidQueryError: ``position`` is not an int from 0 to the head.
        """
        self._subscriptions.reset(name, position)

    def delete_subscription(self, name: str) -> bool:
        """Forget the stored position of ``name``; return whether there was
        one. Safe from any thread but the engine's.

        Raises:
            SubscriptionActiveError: ``name`` is running here.
        """
        return self._subscriptions.delete(name)

    def _aio_subscribe(
        self, name: str, from_position: FromPosition
    ) -> AsyncIterator[Event[Any]]:
        """The iterator behind ``store.aio.subscribe`` (caller's thread)."""
        return self._subscriptions.subscribe_async(name, from_position)

    def _subscription_write(
        self, function: Callable[[WriteStorage], None]
    ) -> Future[None]:
        """Tell the writer one write; return its reply future (any thread)."""
        committer = self._require_writable()
        future: Future[None] = Future()
        committer.tracked.track(future)
        self._wiring.tell_writer(RunWrite(function, future))
        return future
