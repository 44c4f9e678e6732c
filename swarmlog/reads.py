"""EventReads: the store's event reads (streams, filters, replay).

Mixed into :class:`~swarmlog.EventStore`. Every read runs on a pooled reader
connection as one short read transaction, never queued behind the writer;
safe from any thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from swarmlog.actors.projection_actor import PAGE_SIZE
from swarmlog.actors.storage import EventQuery
from swarmlog.schema.errors import InvalidQueryError
from swarmlog.validation import (
    check_aggregate_id,
    check_count,
    check_instant,
    check_strings,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from datetime import datetime

    from swarmlog.actors.storage import ReadStorage
    from swarmlog.schema.envelope import Event

__all__ = ["EventReads"]


class EventReads:
    """Reads of stored events (see each method)."""

    __slots__ = ()
    if TYPE_CHECKING:  # what EventStore provides (a mixin never imports
        # the store: that would be an import cycle)

        def _reader_checked(self) -> ReadStorage: ...

    def get_events(
        self,
        aggregate_id: str,
        from_version: int | None = None,
        *,
        limit: int | None = None,
        backwards: bool = False,
    ) -> list[Event[Any]]:
        """An aggregate's events in version order; ``[]`` for an unknown
        aggregate. Safe from any thread.

        Args:
            aggregate_id: The aggregate.
            from_version: The lowest version included (default: the first).
            limit: At most this many events, counted from the end read
                first: the oldest ones, or with ``backwards`` the newest.
            backwards: Newest first. ``get_events(a, limit=10,
                backwards=True)`` is an aggregate's last ten events, read
                from an index without touching the rest of the stream.

        Raises:
            InvalidQueryError: Wrongly typed arguments.
            EventDecodeError: A stored row cannot be decoded.
        """
        check_aggregate_id(aggregate_id)
        start = check_count(from_version, "from_version") or 1
        count = check_count(limit, "limit")
        if not isinstance(backwards, bool):
            msg = f"backwards must be True or False, got {backwards!r}"
            raise InvalidQueryError(msg)
        if count is None and not backwards:
            return self._reader_checked().read_stream(aggregate_id, start)
        return self._reader_checked().read_stream(
            aggregate_id, start, limit=count, backwards=backwards
        )

    def get_version(self, aggregate_id: str) -> int:
        """An aggregate's current version: 0 when it has no events. Safe
        from any thread; answered from an index, without reading the
        stream (use it for ``expected_version``).

        Raises:
            InvalidQueryError: ``aggregate_id`` is not a string.
        """
        check_aggregate_id(aggregate_id)
        return self._reader_checked().version(aggregate_id)

    def get_events_by_type(self, event_type: str) -> list[Event[Any]]:
        """Every event of one type, in commit order."""
        if not isinstance(event_type, str):
            msg = f"event_type must be a string, got {event_type!r}"
            raise InvalidQueryError(msg)
        return self._reader_checked().query(EventQuery(event_types=(event_type,)))

    def query(
        self,
        *,
        aggregate_ids: Iterable[str] | None = None,
        aggregate_types: Iterable[str] | None = None,
        event_types: Iterable[str] | None = None,
        after_timestamp: datetime | None = None,
        before_timestamp: datetime | None = None,
        from_version: int | None = None,
        from_position: int | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Event[Any]]:
        """Events matching every given filter, in commit order.

        Time bounds are strict; ``from_version`` and ``from_position`` are
        inclusive; ``limit=0`` gives ``[]``; ``offset`` works without
        ``limit``. Filter values are always bound parameters.

        Raises:
            InvalidQueryError: A filter has the wrong type or is negative.
        """
        spec = EventQuery(
            aggregate_ids=check_strings(aggregate_ids, "aggregate_ids"),
            aggregate_types=check_strings(aggregate_types, "aggregate_types"),
            event_types=check_strings(event_types, "event_types"),
            after_timestamp=check_instant(after_timestamp, "after_timestamp"),
            before_timestamp=check_instant(before_timestamp, "before_timestamp"),
            from_version=check_count(from_version, "from_version"),
            from_position=check_count(from_position, "from_position"),
            limit=check_count(limit, "limit"),
            offset=check_count(offset, "offset") or 0,
        )
        return self._reader_checked().query(spec)

    def replay(
        self, from_position: int = 0, *, page_size: int = PAGE_SIZE
    ) -> Iterator[Event[Any]]:
        """Every event with ``position >= from_position``, in commit order.

        Reads in keyset pages, each its own short read transaction, so a
        replay of millions of events holds constant memory and never pins
        the WAL. Abandoning the generator early leaks nothing.
        """
        start = check_count(from_position, "from_position")
        size = check_count(page_size, "page_size", minimum=1)
        if start is None or size is None:
            msg = "from_position and page_size must be ints, not None"
            raise InvalidQueryError(msg)
        self._reader_checked()
        return self._replay(max(start - 1, 0), size)

    def _replay(self, after: int, size: int) -> Iterator[Event[Any]]:
        while True:
            page = self._reader_checked().read_page(after, size)
            if not page:
                return
            yield from page
            if len(page) < size:
                return
            after = page[-1].position
