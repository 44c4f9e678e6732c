"""Publisher: hands committed pages on, in position order.

Whoever holds the committer's turn publishes each committed page: this
process's rounds (``Committer._committed``) and, on a shared store, what
other processes committed (``actors/catch_up.py``). The page goes to the
dispatcher only when someone listens (an :class:`Audience`); then the
commit hook runs (the checkpointer's nudge, the durable subscriptions'
wake-up). Turn held; never raises.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from swarmlog.actors.messages import DeliverPage

if TYPE_CHECKING:
    from collections.abc import Callable

    import pykka

    from swarmlog.actors.runtime import Audience
    from swarmlog.schema.envelope import Event

__all__ = ["Publisher"]

logger = logging.getLogger("swarmlog.writer")


class Publisher:
    """Committed pages to the dispatcher, then the commit hook.

    Args:
        dispatcher: Where committed pages go (when ``audience`` is present).
        audience: Whether anybody wants committed pages.
        on_commit: Called after each commit (quick; may be set later,
            before any append).
    """

    __slots__ = ("_audience", "_dispatcher", "on_commit")

    def __init__(
        self,
        dispatcher: pykka.ActorRef[Any],
        audience: Audience,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self._audience = audience
        self.on_commit = on_commit

    @property
    def wanted(self) -> bool:
        """Whether anybody wants committed pages now."""
        return self._audience.present

    def page(self, events: tuple[Event[Any], ...]) -> None:
        """Tell the dispatcher a committed page (if anybody listens)."""
        if self._audience.present:
            try:
                self._dispatcher.tell(DeliverPage(events))
            except Exception:  # projections fill the gap from the store
                logger.exception("committed page not delivered")

    def nudge(self) -> None:
        """Run the commit hook (its failure is only logged)."""
        if self.on_commit is not None:
            try:
                self.on_commit()
            except Exception:  # a nudge: never a reason to stop
                logger.exception("commit hook failed")

    def foreign(self, events: tuple[Event[Any], ...]) -> None:
        """Another process's committed page: the page, then the hook."""
        self.page(events)
        self.nudge()
