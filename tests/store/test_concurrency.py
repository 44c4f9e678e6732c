"""Many threads at once: no lost update, no duplicate version, gap-free
positions, group commit."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlog import (
    NO_STREAM,
    ConcurrencyError,
    create_agent_started_event,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest

    from swarmlog import Event, EventStore

TIMEOUT = 30.0
THREADS = 16


def _run_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` on ``count`` threads released together."""
    barrier = threading.Barrier(count)

    def start(i: int) -> Any:
        barrier.wait(TIMEOUT)
        return work(i)

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(start, i) for i in range(count)]
        return [f.result(TIMEOUT) for f in futures]


def _assert_gap_free(store: EventStore, total: int) -> list[Event]:
    events = list(store.replay())
    assert [e.position for e in events] == list(range(1, total + 1))
    assert store.head_position == total
    return events


def test_optimistic_increments_lose_no_update(
    make_store: Callable[..., EventStore], synchronous: str
) -> None:
    """16 threads read-decide-append on 3 shared aggregates with exact
    expected versions: every success gets a distinct version, versions are
    1..n per aggregate, positions are 1..N, and each conflict reports the
    version that beat it."""
    store = make_store(synchronous=synchronous)
    aggregates = ["hot-0", "hot-1", "hot-2"]
    per_thread = 10

    def work(worker: int) -> tuple[list[Event], list[tuple[Any, ...]]]:
        won: list[Event] = []
        conflicts: list[tuple[Any, ...]] = []
        for n in range(per_thread):
            aggregate_id = aggregates[(worker + n) % len(aggregates)]
            version = len(store.get_events(aggregate_id))
            while True:
                try:
                    won.append(
                        store.append(
                            create_agent_started_event(aggregate_id),
                            expected_version=version,
                        )
                    )
                    break
                except ConcurrencyError as error:
                    conflicts.append((aggregate_id, version, error))
                    version = error.actual
        return won, conflicts

    results = _run_threads(THREADS, work)
    for aggregate_id, version, error in (c for _, cs in results for c in cs):
        assert (error.aggregate_id, error.expected) == (aggregate_id, version)
        assert error.actual > version
    won = [e for events, _ in results for e in events]
    assert len(won) == THREADS * per_thread
    events = _assert_gap_free(store, len(won))
    for aggregate_id in aggregates:
        versions = [e.version for e in events if e.aggregate_id == aggregate_id]
        assert versions == list(range(1, len(versions) + 1))
        mine = sorted(e.version for e in won if e.aggregate_id == aggregate_id)
        assert mine == versions
    assert len({(e.aggregate_id, e.version) for e in won}) == len(won)


def test_only_one_creator_wins_no_stream(store: EventStore) -> None:
    """16 threads creating the same aggregate with NO_STREAM: exactly one
    succeeds, the others get ConcurrencyError with actual 1."""

    def work(_: int) -> Any:
        try:
            return store.append(
                create_agent_started_event("singleton"), expected_version=NO_STREAM
            )
        except ConcurrencyError as error:
            return error

    results = _run_threads(THREADS, work)
    winners = [r for r in results if not isinstance(r, ConcurrencyError)]
    losers = [r for r in results if isinstance(r, ConcurrencyError)]
    assert len(winners) == 1
    assert winners[0].version == 1
    assert len(losers) == THREADS - 1
    assert {e.actual for e in losers} == {1}
    assert store.get_events("singleton") == winners


def test_distinct_aggregates_from_many_threads(store: EventStore) -> None:
    """Each thread on its own aggregate: versions 1..n each, positions
    gap-free overall, and each thread's positions increase."""
    per_thread = 30

    def work(worker: int) -> list[Event]:
        return [
            store.append(create_agent_started_event(f"own-{worker}"))
            for _ in range(per_thread)
        ]

    results = _run_threads(THREADS, work)
    _assert_gap_free(store, THREADS * per_thread)
    for worker, stored in enumerate(results):
        assert [e.version for e in stored] == list(range(1, per_thread + 1))
        positions = [e.position for e in stored]
        assert positions == sorted(positions)
        assert store.get_events(f"own-{worker}") == stored


def test_group_commit_batches_concurrent_appends(
    make_store: Callable[..., EventStore],
) -> None:
    """Under 16 concurrent appenders the writer commits several requests per
    transaction (behaviour, not timing: fewer transactions than appends)."""
    store = make_store(synchronous="full")
    per_thread = 40

    def work(worker: int) -> None:
        for _ in range(per_thread):
            store.append(create_agent_started_event(f"g{worker % 4}"))

    _run_threads(THREADS, work)
    stats = store.get_stats()
    assert stats.appends == THREADS * per_thread
    assert stats.transactions < stats.appends
    assert stats.mean_batch_size > 1
    _assert_gap_free(store, THREADS * per_thread)


def test_one_wake_on_its_way_at_a_time(
    make_store: Callable[..., EventStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a shared store (``multi_process``, PostgreSQL), appenders that
    find the writer idle send it one Wake between them, not one each: while
    a Wake waits in the writer's inbox nobody sends another (the writer
    looks at the whole queue when it takes it). A store nobody else writes
    keeps one Wake per such appender (fewer lengthened its latency tail,
    W6). Every append commits once the writer runs."""
    from swarmlog.actors import writer as writer_module

    store = make_store(synchronous="normal")
    committer: Any = store._wiring.committer
    gate = threading.Event()
    sent: list[int] = []
    wake, receive = committer._wake, writer_module.WriterActor.on_receive

    def counted_wake() -> None:
        sent.append(1)
        wake()

    def held_receive(self: Any, message: Any) -> Any:
        if isinstance(message, writer_module.Wake):
            gate.wait(TIMEOUT)  # the writer busy elsewhere, its turn free
        return receive(self, message)

    committer._wake = counted_wake
    monkeypatch.setattr(writer_module.WriterActor, "on_receive", held_receive)
    appenders = 8
    with ThreadPoolExecutor(appenders) as pool:
        futures = [
            pool.submit(store.append, create_agent_started_event(f"w{worker}"))
            for worker in range(appenders)
        ]
        deadline = time.monotonic() + TIMEOUT
        while len(committer._queue) < appenders and time.monotonic() < deadline:
            time.sleep(0.001)
        queued, wakes = len(committer._queue), len(sent)
        gate.set()
        for future in futures:
            future.result(TIMEOUT)
    assert queued == appenders
    if committer._shared is not None:
        assert wakes <= 2, wakes  # one (two if two callers raced to the check)
    else:
        assert wakes == appenders, wakes
    assert store.get_stats().appends == appenders
    _assert_gap_free(store, appenders)


def test_mixed_singles_batches_and_async(store: EventStore) -> None:
    """append, append_many and append_async from many threads at once all
    commit; versions per aggregate and positions stay gap-free."""

    def work(worker: int) -> int:
        aggregate_id = f"m{worker % 5}"
        if worker % 3 == 0:
            store.append_many(
                [create_agent_started_event(aggregate_id) for _ in range(7)]
            )
            return 7
        if worker % 3 == 1:
            futures = [
                store.append_async(create_agent_started_event(aggregate_id))
                for _ in range(7)
            ]
            for f in futures:
                f.get(TIMEOUT)
            return 7
        for _ in range(7):
            store.append(create_agent_started_event(aggregate_id))
        return 7

    total = sum(_run_threads(THREADS, work))
    events = _assert_gap_free(store, total)
    counts = Counter(e.aggregate_id for e in events)
    for aggregate_id, count in counts.items():
        versions = [e.version for e in events if e.aggregate_id == aggregate_id]
        assert versions == list(range(1, count + 1))


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    plan=st.lists(
        st.lists(st.integers(1, 4), min_size=1, max_size=6), min_size=2, max_size=6
    )
)
def test_positions_gap_free_under_any_concurrent_plan(
    store: EventStore, plan: list[list[int]]
) -> None:
    """Property: whatever mix of batch sizes threads append concurrently,
    the new positions continue the head without gaps, and each batch is
    contiguous."""
    start = store.head_position

    def work(worker: int) -> list[list[Event]]:
        return [
            store.append_many(
                [create_agent_started_event(f"p{worker}") for _ in range(size)]
            )
            for size in plan[worker]
        ]

    batches = [b for result in _run_threads(len(plan), work) for b in result]
    total = sum(len(b) for b in batches)
    positions = sorted(e.position for b in batches for e in b)
    assert positions == list(range(start + 1, start + total + 1))
    for batch in batches:
        first = batch[0].position
        assert [e.position for e in batch] == list(range(first, first + len(batch)))
    assert store.head_position == start + total
