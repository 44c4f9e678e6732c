"""Awaitable store reads: ``await store.aio.get_events("a1")``.

Each read is the blocking method of :class:`~swarmlog.EventStore` run on a
worker thread: reads are short SQLite transactions on the reader pool, so
the event loop only waits for the worker's answer. Arguments, results and
errors are those of the blocking form. A replay reads one page per worker
call and keeps only that page in memory.

The worker is one thread of its own (``READ_WORKERS``), not the loop's
default executor: decoding rows needs the GIL, and every extra thread that
wants it makes the loop thread wait up to one more switch interval (5 ms)
before it runs again. Measured with 50 coroutines reading while a
projection caught up over 100k events (2 vCPUs): the loop woke up to
50-90 ms late with the default pool, 50-75 ms with two workers, 15-30 ms
with one (12 ms with the catch-up alone). Awaited reads therefore run one
at a time, in call order: scan big ranges with ``replay`` (one page per
call), not one huge ``query``.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Iterator
    from datetime import datetime
    from uuid import UUID

    from swarmlog.schema.envelope import Event, Snapshot
    from swarmlog.stats import EventStoreStats

__all__ = ["AsyncReplay", "AsyncStoreReads", "StoreReads"]

REPLAY_PAGE_SIZE = 1000  # events per worker call: one read transaction
READ_WORKERS = 1  # threads running awaited reads (see the module docstring)

P = ParamSpec("P")
R = TypeVar("R")

_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def _read_pool() -> ThreadPoolExecutor:
    """The shared read pool, made on first use (and again in a forked
    child, whose copy has no threads)."""
    global _pool, _pool_pid  # noqa: PLW0603 - one pool per process
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(READ_WORKERS, "swarmlog-aio-read")
            _pool_pid = os.getpid()
        return _pool


async def _off_loop(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``function(*args, **kwargs)`` on the read pool, awaited."""
    loop = asyncio.get_running_loop()
    call = functools.partial(function, *args, **kwargs)
    return await loop.run_in_executor(_read_pool(), call)


class StoreReads(Protocol):
    """The blocking reads of :class:`~swarmlog.EventStore` used here."""

    @property
    def head_position(self) -> int: ...

    def get_events(
        self,
        aggregate_id: str,
        from_version: int | None = None,
        *,
        limit: int | None = None,
        backwards: bool = False,
    ) -> list[Event[Any]]: ...

    def get_version(self, aggregate_id: str) -> int: ...

    def get_events_by_type(self, event_type: str) -> list[Event[Any]]: ...

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
    ) -> list[Event[Any]]: ...

    def replay(
        self, from_position: int = 0, *, page_size: int = ...
    ) -> Iterator[Event[Any]]: ...

    def get_snapshot(
        self, aggregate_id: str, *, type: Any = None
    ) -> Snapshot | None: ...

    def get_stats(self) -> EventStoreStats: ...

    def get_event(self, event_id: UUID | str) -> Event[Any] | None: ...

    def get_causal_chain(self, event_id: UUID | str) -> list[Event[Any]]: ...

    def get_consequences(self, event_id: UUID | str) -> list[Event[Any]]: ...

    def get_correlated(self, correlation_id: UUID | str) -> list[Event[Any]]: ...

    def _aio_subscribe(
        self, name: str, from_position: int | Literal["end"] | None
    ) -> AsyncIterator[Event[Any]]: ...


class AsyncStoreReads:
    """The awaitable reads of one store (``store.aio``).

    Call from a coroutine; each read runs on swarmlog's read worker
    thread (shared by every store in the process, one read at a time),
    never on the event loop's.

    Args:
        store: The store to read.
    """

    __slots__ = ("_store",)

    def __init__(self, store: StoreReads) -> None:
        self._store = store

    @property
    def head_position(self) -> int:
        """The highest committed position (no I/O on a writable store)."""
        return self._store.head_position

    async def get_events(
        self,
        aggregate_id: str,
        from_version: int | None = None,
        *,
        limit: int | None = None,
        backwards: bool = False,
    ) -> list[Event[Any]]:
        """:meth:`EventStore.get_events <swarmlog.EventStore.get_events>`,
        awaited (every argument passed through).

        Raises:
            InvalidQueryError: Wrongly typed arguments.
            EventDecodeError: A stored row cannot be decoded.
            StoreClosedError: The store is shut down.
        """
        return await _off_loop(
            self._store.get_events,
            aggregate_id,
            from_version,
            limit=limit,
            backwards=backwards,
        )

    async def get_version(self, aggregate_id: str) -> int:
        """An aggregate's current version, 0 when it has none (awaited; see
        :meth:`EventStore.get_version <swarmlog.EventStore.get_version>`).

        Raises:
            InvalidQueryError: ``aggregate_id`` is not a string.
            StoreClosedError: The store is shut down.
        """
        return await _off_loop(self._store.get_version, aggregate_id)

    async def get_events_by_type(self, event_type: str) -> list[Event[Any]]:
        """Every event of one type, in commit order (awaited)."""
        return await _off_loop(self._store.get_events_by_type, event_type)

    async def query(
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
        """:meth:`EventStore.query <swarmlog.EventStore.query>`, awaited.

        Raises:
            InvalidQueryError: A filter has the wrong type or is negative.
        """
        return await _off_loop(
            self._store.query,
            aggregate_ids=aggregate_ids,
            aggregate_types=aggregate_types,
            event_types=event_types,
            after_timestamp=after_timestamp,
            before_timestamp=before_timestamp,
            from_version=from_version,
            from_position=from_position,
            limit=limit,
            offset=offset,
        )

    async def get_snapshot(
        self, aggregate_id: str, *, type: Any = None
    ) -> Snapshot | None:
        """The highest-version snapshot of an aggregate, or None (awaited).

        Raises:
            EventDecodeError: The stored state does not decode as ``type``.
        """
        return await _off_loop(self._store.get_snapshot, aggregate_id, type=type)

    async def get_stats(self) -> EventStoreStats:
        """Counts, sizes, writer metrics and projection statuses (awaited)."""
        return await _off_loop(self._store.get_stats)

    async def get_event(self, event_id: UUID | str) -> Event[Any] | None:
        """The event with this id, or None (awaited; see
        :meth:`EventStore.get_event <swarmlog.EventStore.get_event>`)."""
        return await _off_loop(self._store.get_event, event_id)

    async def get_causal_chain(self, event_id: UUID | str) -> list[Event[Any]]:
        """The event's causes, root first, ending with it (awaited; see
        :meth:`EventStore.get_causal_chain
        <swarmlog.EventStore.get_causal_chain>`)."""
        return await _off_loop(self._store.get_causal_chain, event_id)

    async def get_consequences(self, event_id: UUID | str) -> list[Event[Any]]:
        """Every event it caused, in commit order (awaited; see
        :meth:`EventStore.get_consequences
        <swarmlog.EventStore.get_consequences>`)."""
        return await _off_loop(self._store.get_consequences, event_id)

    async def get_correlated(self, correlation_id: UUID | str) -> list[Event[Any]]:
        """Every event of the conversation, in commit order (awaited)."""
        return await _off_loop(self._store.get_correlated, correlation_id)

    def subscribe(
        self, name: str, from_position: int | Literal["end"] | None = None
    ) -> AsyncIterator[Event[Any]]:
        """A durable subscription's events: ``async for event in
        store.aio.subscribe("mailer"): ...`` (see ``EventStore.subscribe``).

        The position of an event is stored when the loop asks for the next
        one, so an event whose body was interrupted is delivered again
        after a restart. Pages are read on the read worker and positions
        written through the writer; the loop never blocks. Leaving the loop
        (``break``) frees the name once the iterator is closed: wrap it in
        ``contextlib.aclosing`` to free it at once.

        Raises:
            InvalidConfigError: A bad name or ``from_position``.
            SubscriptionActiveError: ``name`` is already running (raised by
                the first ``__anext__``).
        """
        return self._store._aio_subscribe(name, from_position)

    def replay(
        self, from_position: int = 0, *, page_size: int = REPLAY_PAGE_SIZE
    ) -> AsyncReplay:
        """Every event with ``position >= from_position``, in commit order:
        ``async for event in store.aio.replay(0): ...``.

        Arguments are checked here, at once (as by the blocking form);
        each page is then read on a worker thread, one short read
        transaction per page, so memory stays constant.

        Raises:
            InvalidQueryError: A wrongly typed or negative argument.
            StoreClosedError: The store is shut down.
        """
        events = self._store.replay(from_position, page_size=page_size)
        return AsyncReplay(events, page_size)


class AsyncReplay:
    """An async iterator over a replay, one page per worker call.

    Args:
        events: The blocking replay's iterator (resumed on worker threads,
            one call at a time).
        page_size: Events taken per worker call.
    """

    __slots__ = ("_events", "_page", "_page_size")

    def __init__(self, events: Iterator[Event[Any]], page_size: int) -> None:
        self._events = events
        self._page_size = page_size
        self._page: Iterator[Event[Any]] = iter(())

    def __aiter__(self) -> AsyncReplay:
        return self

    async def __anext__(self) -> Event[Any]:
        event = next(self._page, None)
        if event is not None:
            return event
        page = await _off_loop(self._next_page)
        if not page:
            raise StopAsyncIteration
        self._page = iter(page)
        return next(self._page)

    def _next_page(self) -> list[Event[Any]]:  # a worker thread
        return list(itertools.islice(self._events, self._page_size))

    async def aclose(self) -> None:
        """Stop early; releases nothing but the iterator (reads hold no
        transaction between pages)."""
        self._page = iter(())
        close = getattr(self._events, "close", None)
        if close is not None:
            close()
