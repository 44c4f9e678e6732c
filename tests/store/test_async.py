"""append_async / append_many_async: futures for threads and for asyncio."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import (
    NO_STREAM,
    ConcurrencyError,
    InvalidEventError,
    create_agent_started_event,
)
from tests.store.conftest import OutsideWriter, outside_writer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from swarmlog import AppendFuture, EventStore

TIMEOUT = 10.0


@pytest.fixture
def write_lock(store: EventStore) -> Iterator[OutsideWriter]:
    """Hold SQLite's write lock on the store's file from another connection,
    so the writer's next transaction waits (its busy timeout is seconds)
    until the test rolls back. Deterministic, no sleeps."""
    conn = outside_writer(store)
    conn.execute("BEGIN IMMEDIATE")
    yield conn
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.close()


def test_get_returns_the_stored_event(store: EventStore) -> None:
    """The future resolves to the stored copy, as append would return."""
    future = store.append_async(create_agent_started_event("a1"))
    stored = future.get(timeout=TIMEOUT)
    assert (stored.version, stored.position) == (1, 1)
    assert future.done()
    assert store.get_events("a1") == [stored]


def test_append_many_async(store: EventStore) -> None:
    """append_many_async resolves to the stored list, all or nothing."""
    future = store.append_many_async(
        [create_agent_started_event("a1") for _ in range(3)]
    )
    assert [e.version for e in future.get(timeout=TIMEOUT)] == [1, 2, 3]
    assert store.append_many_async([]).get(timeout=TIMEOUT) == []


def test_storage_outcomes_arrive_through_the_future(store: EventStore) -> None:
    """A version conflict is raised by get(), typed."""
    store.append(create_agent_started_event("a1"))
    future = store.append_async(
        create_agent_started_event("a1"), expected_version=NO_STREAM
    )
    with pytest.raises(ConcurrencyError):
        future.get(timeout=TIMEOUT)


def test_validation_errors_raise_at_the_call(store: EventStore) -> None:
    """A malformed event is refused before a future exists."""
    with pytest.raises(InvalidEventError):
        store.append_async(create_agent_started_event("a1", source=""))
    assert store.head_position == 0


def test_many_async_appends_keep_submission_order(store: EventStore) -> None:
    """Futures from one thread commit in the order they were made."""
    futures = [store.append_async(create_agent_started_event("a1")) for _ in range(50)]
    stored = [f.get(timeout=TIMEOUT) for f in futures]
    assert [e.position for e in stored] == list(range(1, 51))
    assert [e.version for e in stored] == list(range(1, 51))


def test_get_timeout_raises_builtin_timeout_error(
    store: EventStore, write_lock: OutsideWriter
) -> None:
    """get(timeout) on a pending append raises the builtin TimeoutError; the
    append still completes later."""
    future = store.append_async(create_agent_started_event("a1"))
    with pytest.raises(TimeoutError) as info:
        future.get(timeout=0.05)
    assert isinstance(info.value, TimeoutError)
    assert not future.done()
    write_lock.execute("ROLLBACK")
    assert future.get(timeout=TIMEOUT).position == 1


def test_add_done_callback(store: EventStore) -> None:
    """A done callback gets the settled future."""
    settled = threading.Event()
    seen: list[Any] = []

    def done(future: AppendFuture[Any]) -> None:
        seen.append(future.get(timeout=0))
        settled.set()

    store.append_async(create_agent_started_event("a1")).add_done_callback(done)
    assert settled.wait(TIMEOUT)
    assert seen[0].position == 1


def test_await_in_asyncio(store: EventStore) -> None:
    """An append future is awaitable and returns the stored event."""

    async def main() -> list[Any]:
        one = await store.append_async(create_agent_started_event("a1"))
        many = await store.append_many_async(
            [create_agent_started_event("a1") for _ in range(2)]
        )
        return [one, *many]

    stored = asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    assert [e.version for e in stored] == [1, 2, 3]


def test_await_raises_typed_errors(store: EventStore) -> None:
    """A failed append raises its typed error at the await."""
    store.append(create_agent_started_event("a1"))

    async def main() -> None:
        await store.append_async(create_agent_started_event("a1"), expected_version=0)

    with pytest.raises(ConcurrencyError):
        asyncio.run(asyncio.wait_for(main(), TIMEOUT))


def test_gather_many_appends(store: EventStore) -> None:
    """Many awaited appends run concurrently and all commit."""

    async def main() -> list[Any]:
        futures = [
            store.append_async(create_agent_started_event(f"a{i % 4}"))
            for i in range(40)
        ]
        return list(await asyncio.gather(*(_wait(f) for f in futures)))

    stored = asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    assert sorted(e.position for e in stored) == list(range(1, 41))


async def _wait(future: AppendFuture[Any]) -> Any:
    return await future


def test_await_does_not_block_the_event_loop(
    store: EventStore, write_lock: OutsideWriter
) -> None:
    """While an awaited append waits for the writer, other coroutines run.

    The writer is held by an SQLite write lock that only a ticking coroutine
    on the same loop releases: if awaiting blocked the loop, the ticker could
    never release it and the append would fail after the writer's busy
    timeout instead.
    """

    async def main() -> tuple[Any, int]:
        pending = asyncio.ensure_future(
            _wait(store.append_async(create_agent_started_event("a1")))
        )
        ticks = 0
        while not pending.done():
            ticks += 1
            if ticks == 5:
                write_lock.execute("ROLLBACK")
            await asyncio.sleep(0)  # yield to the loop, not a delay
        return await pending, ticks

    stored, ticks = asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    assert stored.position == 1
    assert ticks >= 5
