"""Awaitable projection queries (``projection.aio``): same answers and
errors as the blocking forms, and the event loop never blocks."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import (
    AgentStateProjection,
    Event,
    EventStore,
    InvalidConfigError,
    MemoryIndexProjection,
    Projection,
    ProjectionFailedError,
    ProjectionStateError,
    ProjectionTimeoutError,
    SwarmProjection,
    TaskCompleted,
    TaskCreated,
    TaskHistoryProjection,
    create_task_completed_event,
    create_task_created_event,
    handles,
    query,
)
from tests.backends import BACKENDS, location

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

GUARD = 10.0  # seconds: only guards against a hang


class Gated(Projection):
    """Counts task:created events; each handler run waits for ``gate``
    (set by default) and announces itself on ``entered``."""

    name = "gated"

    def reset_state(self) -> None:
        self._count = 0
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    @handles(TaskCreated)
    def _on_created(self, event: Event) -> None:
        self.entered.set()
        assert self.gate.wait(GUARD)
        self._count += 1

    @handles(TaskCompleted)
    def _on_completed(self, event: Event) -> None:
        if event.payload.result == "boom":
            raise RuntimeError("boom")

    @query
    def count(self, plus: int = 0) -> int:
        """The number of task:created events seen, plus ``plus``."""
        return self._count + plus


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    path, options = location(request, request.param, tmp_path, "a.db")
    with EventStore(path, **options) as s:
        yield s


def _created(i: int) -> Event:
    return create_task_created_event(f"t{i}", "build", f"T{i}", "", "high")


def _blocked(store: EventStore, **options: Any) -> Gated:
    """A live projection whose handler is now stuck in the gate on the
    store's next event (already appended)."""
    projection = Gated(store, **options).initialize()
    projection.wait_for(store.head_position, timeout=GUARD)
    projection.gate.clear()
    projection.entered.clear()
    store.append(_created(store.head_position + 1))
    assert projection.entered.wait(GUARD)
    return projection


class TestForms:
    """What ``aio`` exposes."""

    @pytest.mark.parametrize(
        "kind",
        [
            AgentStateProjection,
            TaskHistoryProjection,
            SwarmProjection,
            MemoryIndexProjection,
            Gated,
        ],
    )
    def test_every_query_has_a_coroutine_form(
        self, store: EventStore, kind: type[Projection]
    ) -> None:
        """Each @query is a coroutine function with the same signature and
        docstring; nothing else is."""
        projection = kind(store)
        queries = {
            name
            for name in dir(kind)
            if getattr(getattr(kind, name), "__swarmlog_query__", False)
        }
        assert queries
        aio = projection.aio
        for name in queries:
            form = getattr(aio, name)
            blocking = getattr(projection, name)
            assert inspect.iscoroutinefunction(form), name
            assert inspect.signature(form) == inspect.signature(blocking), name
            assert form.__doc__ == blocking.__doc__, name
        with pytest.raises(AttributeError):
            _ = aio.reset_state
        with pytest.raises(AttributeError):
            _ = aio.no_such_query

    def test_answers_match_the_blocking_forms(self, store: EventStore) -> None:
        """Built-in and user-defined queries give the same answers."""
        store.append_many([_created(i) for i in range(5)])
        tasks = TaskHistoryProjection(store).initialize()
        gated = Gated(store).initialize()

        async def main() -> tuple[Any, ...]:
            return (
                await gated.aio.count(),
                await gated.aio.count(plus=2),
                await tasks.aio.get_task("t3"),
                await tasks.aio.get_tasks_by_status("pending"),
            )

        assert asyncio.run(main()) == (
            5,
            7,
            tasks.get_task("t3"),
            tasks.get_tasks_by_status("pending"),
        )

    def test_wait_for_reaches_the_head(self, store: EventStore) -> None:
        """aio.wait_for returns once the projection applied the position."""
        store.append_many([_created(i) for i in range(3000)])
        gated = Gated(store).initialize()

        async def main() -> int:
            await gated.aio.wait_for(3000, timeout=GUARD)
            return gated.position

        assert asyncio.run(main()) == 3000

    def test_wait_for_checks_its_argument(self, store: EventStore) -> None:
        """A non-int position is a typed error, as in the blocking form."""
        gated = Gated(store).initialize()
        with pytest.raises(InvalidConfigError):
            asyncio.run(gated.aio.wait_for("3"))  # type: ignore[arg-type]

    def test_not_running_is_a_typed_error(self, store: EventStore) -> None:
        """A projection that was never started says so."""
        with pytest.raises(ProjectionStateError):
            asyncio.run(Gated(store).aio.count())

    def test_failed_projection_is_a_typed_error(self, store: EventStore) -> None:
        """A failed projection's queries raise its failure."""
        gated = Gated(store, max_retries=0).initialize()
        store.append(create_task_completed_event("t1", "boom"))
        with pytest.raises(ProjectionFailedError):
            gated.wait_for(1, timeout=GUARD)
        with pytest.raises(ProjectionFailedError):
            asyncio.run(gated.aio.count())
        with pytest.raises(ProjectionFailedError):
            asyncio.run(gated.aio.wait_for(1))


class TestNeverBlocksTheLoop:
    """Waiting for a projection parks a message, not the loop."""

    def test_read_your_writes(self, store: EventStore) -> None:
        """The handler is stuck until the query has been sent; the loop
        keeps running meanwhile, and the query answers with the state after
        the append."""
        gated = _blocked(store, query_timeout=GUARD)
        appended = store.head_position

        async def main() -> tuple[int, int]:
            task = asyncio.ensure_future(gated.aio.count())
            ticks = 0
            for _ in range(3):  # the query is sent; the loop still runs
                await asyncio.sleep(0)
                ticks += 1
            assert not task.done()
            gated.gate.set()
            return await asyncio.wait_for(task, GUARD), ticks

        assert asyncio.run(main()) == (appended, 3)
        assert gated.count() == appended

    def test_wait_for_parks_too(self, store: EventStore) -> None:
        """aio.wait_for of a position the handler has not applied yet lets
        the loop run, then returns once it is applied."""
        gated = _blocked(store)
        target = store.head_position

        async def main() -> int:
            task = asyncio.ensure_future(gated.aio.wait_for(target, timeout=GUARD))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            assert not task.done()
            gated.gate.set()
            await asyncio.wait_for(task, GUARD)
            return gated.position

        assert asyncio.run(main()) == target

    def test_timeouts_are_the_typed_errors(self, store: EventStore) -> None:
        """A query or wait that the stuck projection cannot answer in time
        raises ProjectionTimeoutError, as the blocking forms do."""
        gated = _blocked(store, query_timeout=0.05)
        target = store.head_position

        async def main() -> list[BaseException]:
            errors: list[BaseException] = []
            for call in (gated.aio.count(), gated.aio.wait_for(target, timeout=0.05)):
                try:
                    await call
                except ProjectionTimeoutError as e:
                    errors.append(e)
            return errors

        try:
            errors = asyncio.run(main())
        finally:
            gated.gate.set()
        assert len(errors) == 2
        assert all(isinstance(e, TimeoutError) for e in errors)
        gated.wait_for(target, timeout=GUARD)
        assert gated.count() == target
        assert gated.status == "live"

    def test_cancelling_abandons_the_wait(self, store: EventStore) -> None:
        """A cancelled query leaves the projection live and answering."""
        gated = _blocked(store)
        target = store.head_position

        async def main() -> None:
            task = asyncio.ensure_future(gated.aio.count())
            waiter = asyncio.ensure_future(gated.aio.wait_for(target))
            await asyncio.sleep(0)
            task.cancel()
            waiter.cancel()
            for cancelled in (task, waiter):
                with pytest.raises(asyncio.CancelledError):
                    await cancelled

        try:
            asyncio.run(main())
        finally:
            gated.gate.set()
        gated.wait_for(target, timeout=GUARD)
        store.append(_created(target + 1))
        assert gated.count() == target + 1
        assert gated.status == "live"

    def test_answer_after_the_loop_closed_is_harmless(
        self, store: EventStore, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A query still parked when ``asyncio.run`` ends (its loop closed)
        is answered later without an error on the projection's thread."""
        gated = _blocked(store)
        target = store.head_position
        started: list[asyncio.Future[Any]] = []

        async def main() -> None:
            started.append(asyncio.ensure_future(gated.aio.count()))
            started.append(asyncio.ensure_future(gated.aio.wait_for(target)))
            await asyncio.sleep(0)

        with caplog.at_level(logging.WARNING):
            try:
                asyncio.run(main())  # cancels the pending awaits, closes the loop
            finally:
                gated.gate.set()
            gated.wait_for(target, timeout=GUARD)
            assert gated.count() == target  # after the parked answers ran
        assert all(f.cancelled() for f in started)
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
        assert gated.status == "live"

    def test_many_concurrent_queries(self, store: EventStore) -> None:
        """Fifty coroutines querying while the projection is stuck all get
        the post-append answer once it goes on."""
        gated = _blocked(store)
        target = store.head_position

        async def main() -> list[int]:
            tasks = [asyncio.ensure_future(gated.aio.count()) for _ in range(50)]
            await asyncio.sleep(0)
            assert not any(t.done() for t in tasks)
            gated.gate.set()
            return await asyncio.wait_for(asyncio.gather(*tasks), GUARD)

        assert asyncio.run(main()) == [target] * 50


def test_time_travel_copy_answers_directly(store: EventStore) -> None:
    """An ``as_of`` copy's aio queries run at once on the loop's thread."""
    store.append_many([_created(i) for i in range(4)])
    past = Gated.as_of(store, 2)
    assert asyncio.run(past.aio.count()) == 2
