"""WhyQueries: the store's causation and correlation reads.

Mixed into :class:`~swarmlog.EventStore`; each query is one indexed read on
a pooled reader connection, safe from any thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from swarmlog.schema.errors import InvalidQueryError
from swarmlog.validation import why_key

if TYPE_CHECKING:
    from swarmlog.actors.storage import ReadStorage
    from swarmlog.schema.envelope import Event

__all__ = ["WhyQueries"]


class WhyQueries:
    """Why did this happen, what did it lead to (see each method)."""

    __slots__ = ()
    if TYPE_CHECKING:  # what EventStore provides (a mixin never imports
        # the store: that would be an import cycle)

        def _reader_checked(self) -> ReadStorage: ...

    def get_event(self, event_id: UUID | str) -> Event[Any] | None:
        """The event with this id (a ``UUID`` or its string), or None.
        Safe from any thread; one index lookup.

        Raises:
            InvalidQueryError: ``event_id`` is neither a UUID nor a string.
        """
        key = why_key(event_id, "event_id")
        if not isinstance(key, bytes):
            return None
        return self._reader_checked().event(key)

    def get_causal_chain(self, event_id: UUID | str) -> list[Event[Any]]:
        """Why did this happen: the event's causes, root first, ending with
        the event itself; ``[]`` for an unknown id. Safe from any thread.

        Follows ``causation_id`` while it names a stored event committed
        before the one it caused: a cause outside the store (a command, a
        request, a pruned event) ends the chain, and so does one that names
        a later event (ids are the caller's; this is what makes cycles
        impossible to walk). One indexed query, whatever the depth.

        Raises:
            InvalidQueryError: ``event_id`` is neither a UUID nor a string.
        """
        key = why_key(event_id, "event_id")
        if not isinstance(key, bytes):
            return []
        return self._reader_checked().causal_chain(key)

    def get_consequences(self, event_id: UUID | str) -> list[Event[Any]]:
        """What did this lead to: every event caused by it, directly or
        transitively, in commit order, the event itself excluded. Safe from
        any thread; one indexed query.

        ``event_id`` may also be an outside id (a command's, as the events
        it caused name it in ``causation_id``). A consequence counts only if
        it was committed after its cause (see :meth:`get_causal_chain`).

        Raises:
            InvalidQueryError: ``event_id`` is neither a UUID nor a string.
        """
        key = why_key(event_id, "event_id")
        if key is None:
            return []
        return self._reader_checked().consequences(key)

    def get_correlated(self, correlation_id: UUID | str) -> list[Event[Any]]:
        """Every event with this ``correlation_id``, in commit order. Safe
        from any thread; one indexed query.

        Raises:
            InvalidQueryError: ``correlation_id`` is neither a UUID nor a
                string.
        """
        if isinstance(correlation_id, UUID):
            correlation_id = str(correlation_id)
        if not isinstance(correlation_id, str):
            msg = f"correlation_id must be a UUID or a string, got {correlation_id!r}"
            raise InvalidQueryError(msg)
        return self._reader_checked().correlated(correlation_id)
