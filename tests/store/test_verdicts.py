"""No verdict names uncommitted state (issue 16).

Requests that share a group-commit round are planned against versions of
earlier requests in the round, which are tentative until COMMIT. These tests
hold the writer busy (SQLite's write lock taken by another connection) so
that the requests queued meanwhile share one round, then check that every
refusal is given only after what it is based on committed.
"""

from __future__ import annotations

import contextlib
import random
import threading
from typing import TYPE_CHECKING

import msgspec
import pytest

from swarmlog import (
    NO_STREAM,
    ConcurrencyError,
    DuplicateEventError,
    create_agent_started_event,
    create_task_created_event,
)
from tests.store.conftest import OutsideWriter, outside_writer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from swarmlog import AppendFuture, Event, EventStore

TIMEOUT = 10.0


def _task(task_id: str, title: str = "T") -> Event:
    return create_task_created_event(task_id, "build", title, "", "high")


@contextlib.contextmanager
def _holding(store: EventStore) -> Iterator[OutsideWriter]:
    """SQLite's write lock, taken by another connection: the writer's next
    commit waits (busy timeout) until the test rolls back."""
    conn = outside_writer(store)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


@pytest.fixture
def held(store: EventStore) -> Iterator[OutsideWriter]:
    """The write lock held for the whole test (see _holding)."""
    with _holding(store) as conn:
        yield conn


def _busy_writer(store: EventStore) -> AppendFuture[Event]:
    """Queue one append and wait until the writer took it (it then waits on
    the held lock): whatever is queued next shares one later round."""
    first = store.append_async(create_agent_started_event("busy"))
    committer = store._wiring.committer
    assert committer is not None
    done = threading.Event()
    for _ in range(int(TIMEOUT / 0.005)):
        if not committer._queue:
            return first
        done.wait(0.005)
    pytest.fail("the writer never took the first append")


@pytest.mark.parametrize("round_", range(5))
def test_a_conflict_waits_for_the_commit_it_names(
    store: EventStore, held: OutsideWriter, round_: int
) -> None:
    """A (3 events to x) and B (NO_STREAM on x) share a round: B's
    ConcurrencyError names version 3 only once A is committed, and a read
    made after the error sees those 3 events."""
    _busy_writer(store)
    a = store.append_many_async([_task("x", f"t{i}") for i in range(3)])
    b = store.append_many_async([_task("x", "late")], expected_version=NO_STREAM)
    seen: list[int] = []
    called = threading.Event()

    def on_b(future: object) -> None:  # runs right after settlement
        seen.append(len(store.get_events("x")))
        called.set()

    b.add_done_callback(on_b)
    held.execute("ROLLBACK")
    with pytest.raises(ConcurrencyError) as info:
        b.get(TIMEOUT)
    assert info.value.actual == 3
    assert a.done()
    assert [e.version for e in a.get(TIMEOUT)] == [1, 2, 3]
    assert called.wait(TIMEOUT)
    assert seen == [3], "the conflict was settled before its state was readable"


@pytest.mark.parametrize("round_", range(5))
def test_no_conflict_from_a_round_that_never_committed(
    store: EventStore, round_: int
) -> None:
    """A's second event reuses a stored id with other content: A fails with
    DuplicateEventError, and B (NO_STREAM on x) is not refused because of
    A's versions that never existed: B is stored at version 1."""
    stored = store.append(create_agent_started_event("other"))
    clash = msgspec.structs.replace(_task("x", "a2"), id=stored.id)
    with _holding(store):
        _busy_writer(store)
        a = store.append_many_async([_task("x", "a1"), clash])
        b = store.append_many_async([_task("x", "b")], expected_version=NO_STREAM)
    with pytest.raises(DuplicateEventError):
        a.get(TIMEOUT)
    [event] = b.get(TIMEOUT)
    assert (event.aggregate_id, event.version) == ("x", 1)
    assert [e.version for e in store.get_events("x")] == [1]


def test_contended_fast_forward(store: EventStore) -> None:
    """Many threads append to one aggregate with exact expected versions,
    retrying on conflict: after every ConcurrencyError a read shows at least
    ``actual`` events, and the stream ends gap-free."""
    threads, per_thread = 16, 8
    failures: list[str] = []

    def work(worker: int) -> None:
        for i in range(per_thread):
            expected = len(store.get_events("ff"))
            while True:
                try:
                    store.append(
                        _task("ff", f"w{worker}-{i}"), expected_version=expected
                    )
                    break
                except ConcurrencyError as error:
                    visible = len(store.get_events("ff"))
                    if visible < error.actual:
                        failures.append(f"actual {error.actual}, visible {visible}")
                    expected = error.actual

    workers = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(TIMEOUT * 6)
    assert not any(w.is_alive() for w in workers)
    assert failures == []
    versions = [e.version for e in store.get_events("ff")]
    assert versions == list(range(1, threads * per_thread + 1))


def test_every_refusal_rechecked_against_the_log(
    store: EventStore, held: OutsideWriter
) -> None:
    """Model check: a random mix of appends with expected versions shares
    rounds; each refusal is re-checked against the log once the round
    settled: the aggregate had at least ``actual`` events, and the stored
    stream is what the accepted appends say."""
    rng = random.Random(16)
    _busy_writer(store)
    futures: list[tuple[str, object, AppendFuture[list[Event]]]] = []
    for i in range(200):
        aggregate = f"m{rng.randrange(4)}"
        expected = rng.choice([NO_STREAM, 0, 1, 2, 3, 4, 5])
        count = rng.randrange(1, 3)
        events = [_task(aggregate, f"{i}-{k}") for k in range(count)]
        futures.append(
            (
                aggregate,
                expected,
                store.append_many_async(events, expected_version=expected),
            )
        )
    checked: list[str] = []

    def recheck(aggregate: str, future: AppendFuture[list[Event]]) -> None:
        error = future.exception()
        if isinstance(error, ConcurrencyError):
            visible = len(store.get_events(aggregate))
            if visible < error.actual:
                checked.append(f"{aggregate}: actual {error.actual}, visible {visible}")

    for aggregate, _, future in futures:
        future.add_done_callback(lambda f, a=aggregate: recheck(a, f))
    held.execute("ROLLBACK")
    accepted: dict[str, int] = {}
    for aggregate, _, future in futures:
        with contextlib.suppress(ConcurrencyError):
            accepted[aggregate] = accepted.get(aggregate, 0) + len(future.get(TIMEOUT))
    assert checked == []
    for aggregate, count in accepted.items():
        assert [e.version for e in store.get_events(aggregate)] == list(
            range(1, count + 1)
        )
