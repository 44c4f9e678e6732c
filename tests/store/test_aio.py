"""Awaitable store reads (``store.aio``): the blocking reads' answers and
errors, each read off the event loop's thread."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import (
    Event,
    InvalidQueryError,
    Snapshot,
    StoreClosedError,
    create_task_completed_event,
    create_task_created_event,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from swarmlog import EventStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _created(i: int) -> Event:
    return create_task_created_event(f"t{i % 7}", "build", f"T{i}", "", "high")


@pytest.fixture
def filled(store: EventStore) -> EventStore:
    """A store with 2,500 events over 7 aggregates and a snapshot."""
    store.append_many([_created(i) for i in range(2500)])
    store.append(create_task_completed_event("t1", {"ok": True}))
    store.save_snapshot(Snapshot("t1", "task", 3, {"n": 3}, T0))
    return store


def test_reads_match_the_blocking_forms(filled: EventStore) -> None:
    """get_events, get_events_by_type, query, get_snapshot, get_stats and
    head_position give the blocking forms' answers."""
    store = filled

    async def main() -> tuple[Any, ...]:
        aio = store.aio
        return (
            await aio.get_events("t1"),
            await aio.get_events("t1", from_version=300),
            await aio.get_events_by_type("task:completed"),
            await aio.query(event_types=["task:created"], limit=5, offset=2),
            await aio.query(aggregate_ids=["t3"], from_position=2000),
            await aio.get_snapshot("t1"),
            await aio.get_snapshot("nobody"),
            (await aio.get_stats()).total_events,
            aio.head_position,
        )

    assert asyncio.run(main()) == (
        store.get_events("t1"),
        store.get_events("t1", from_version=300),
        store.get_events_by_type("task:completed"),
        store.query(event_types=["task:created"], limit=5, offset=2),
        store.query(aggregate_ids=["t3"], from_position=2000),
        store.get_snapshot("t1"),
        None,
        2501,
        2501,
    )


def test_replay_pages_through_every_event(filled: EventStore) -> None:
    """``async for`` over aio.replay yields the blocking replay's events."""
    store = filled

    async def main(start: int, size: int) -> list[int]:
        return [e.position async for e in store.aio.replay(start, page_size=size)]

    assert asyncio.run(main(0, 1000)) == list(range(1, 2502))
    assert asyncio.run(main(2400, 7)) == list(range(2400, 2502))
    assert asyncio.run(main(5000, 10)) == []


def test_replay_reads_each_page_off_the_loop(
    filled: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every stored page is read on a worker thread, one page per read, so
    at most one page is held at a time."""
    store = filled
    reader = store.projection_host.reader()
    original = type(reader).read_page
    threads: list[threading.Thread] = []

    def read_page(self: Any, after: int, limit: int, **kw: Any) -> Any:
        threads.append(threading.current_thread())
        return original(self, after, limit, **kw)

    monkeypatch.setattr(type(reader), "read_page", read_page)

    async def main() -> tuple[threading.Thread, int]:
        count = 0
        async for _ in store.aio.replay(0, page_size=500):
            count += 1
        return threading.current_thread(), count

    loop_thread, count = asyncio.run(main())
    assert count == 2501
    assert len(threads) == 6  # 5 full pages, then the short last one
    assert loop_thread not in threads


def test_reads_run_off_the_loop(
    filled: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read runs on a worker thread while the loop stays free."""
    store = filled
    inside = threading.Event()
    release = threading.Event()
    blocking = store.get_stats

    def slow_stats() -> Any:
        inside.set()
        assert release.wait(10)
        return blocking()

    monkeypatch.setattr(store, "get_stats", slow_stats)

    async def main() -> int:
        task = asyncio.ensure_future(store.aio.get_stats())
        assert await asyncio.to_thread(inside.wait, 10)  # the loop is free
        assert not task.done()
        release.set()
        return (await task).total_events

    assert asyncio.run(main()) == 2501


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.aio.get_events(7), InvalidQueryError),
        (lambda s: s.aio.get_events("t1", from_version=-1), InvalidQueryError),
        (lambda s: s.aio.get_events_by_type(None), InvalidQueryError),
        (lambda s: s.aio.query(limit=-1), InvalidQueryError),
        (lambda s: s.aio.get_snapshot(3), InvalidQueryError),
    ],
)
def test_bad_arguments_are_the_typed_errors(
    store: EventStore, call: Callable[[Any], Any], error: type[Exception]
) -> None:
    """Wrong arguments raise what the blocking forms raise."""

    async def main() -> None:
        await call(store)

    with pytest.raises(error):
        asyncio.run(main())


def test_replay_checks_its_arguments_at_once(store: EventStore) -> None:
    """A bad replay argument raises at the call, before any iteration."""
    with pytest.raises(InvalidQueryError):
        store.aio.replay(-1)
    with pytest.raises(InvalidQueryError):
        store.aio.replay(0, page_size=0)


def test_closed_store_is_a_typed_error(
    make_store: Callable[..., EventStore],
) -> None:
    """Reads of a shut-down store raise StoreClosedError."""
    store = make_store()
    store.shutdown()

    async def main() -> None:
        await store.aio.get_events("t1")

    with pytest.raises(StoreClosedError):
        asyncio.run(main())
    with pytest.raises(StoreClosedError):
        store.aio.replay(0)


def test_abandoned_replay_can_be_closed(filled: EventStore) -> None:
    """Leaving an async replay early and closing it leaks nothing; the
    store goes on serving reads."""
    store = filled

    async def main() -> list[int]:
        replay = store.aio.replay(0, page_size=100)
        first = [e.position async for e, _ in _zip_range(replay, 3)]
        await replay.aclose()
        assert [e async for e in replay] == []
        return first

    assert asyncio.run(main()) == [1, 2, 3]
    assert len(store.get_events("t1")) > 0


async def _zip_range(replay: Any, n: int) -> Any:
    for i in range(n):
        yield await replay.__anext__(), i


def test_readme_asyncio_example_runs(tmp_path: Path) -> None:
    """The README's "Reading from asyncio" example runs as printed."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    section = readme.split("### Reading from asyncio", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["1 task:created", "pending 1 1 1"]


# Every read of EventStore that must have an awaitable form on store.aio.
# A new read goes here (and into AsyncStoreReads); the test below fails for
# a public get_* read missing from this list.
AIO_READS = (
    "get_events",
    "get_version",
    "get_events_by_type",
    "query",
    "replay",
    "get_snapshot",
    "get_event",
    "get_causal_chain",
    "get_consequences",
    "get_correlated",
    "get_stats",
)


def _parameters(function: Callable[..., Any]) -> list[tuple[Any, ...]]:
    return [
        (p.name, p.kind, p.default, p.annotation)
        for p in inspect.signature(function).parameters.values()
    ]


def test_every_read_has_an_aio_form_with_the_same_parameters() -> None:
    """Each listed read of EventStore exists on store.aio with the same
    parameters (names, kinds, defaults, annotations)."""
    from swarmlog import EventStore
    from swarmlog.aio import AsyncStoreReads

    public_gets = {name for name in dir(EventStore) if name.startswith("get_")}
    assert public_gets <= set(AIO_READS), public_gets - set(AIO_READS)
    for name in AIO_READS:
        blocking = getattr(EventStore, name)
        awaitable = getattr(AsyncStoreReads, name, None)
        assert awaitable is not None, f"store.aio.{name} is missing"
        assert _parameters(awaitable) == _parameters(blocking), name
    assert isinstance(AsyncStoreReads.head_position, property)


def test_newer_reads_pass_every_argument(filled: EventStore) -> None:
    """get_events(limit=, backwards=) and get_version match the blocking
    forms."""

    async def main() -> tuple[Any, ...]:
        return (
            await filled.aio.get_events("t1", limit=2, backwards=True),
            await filled.aio.get_events("t1", 2, limit=3),
            await filled.aio.get_version("t1"),
            await filled.aio.get_version("nobody"),
        )

    newest, middle, version, none = asyncio.run(asyncio.wait_for(main(), 30))
    assert newest == filled.get_events("t1", limit=2, backwards=True)
    assert len(newest) == 2
    assert middle == filled.get_events("t1", 2, limit=3)
    assert version == filled.get_version("t1") > 0
    assert none == 0
