"""Who commits: the writer actor by default; with the opt-in
``caller_commits``, an appending thread other than the main thread when the
writer is idle. One turn serialises both, in queue order."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

from swarmlog import (
    NO_STREAM,
    WriterStoppedError,
    create_agent_started_event,
    create_task_created_event,
)
from tests.store.conftest import OutsideWriter, outside_writer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from swarmlog import AppendFuture, Event, EventStore

TIMEOUT = 10.0


@pytest.fixture(params=[True, False], ids=["caller-commits", "writer-only"])
def caller_commits(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def leading(make_store: Callable[..., EventStore]) -> EventStore:
    """A store with the opt-in caller commits."""
    return make_store(caller_commits=True)


def _on_worker(work: Callable[[], object]) -> None:
    """Run ``work`` on a thread other than the main thread (callers commit
    only there) and re-raise what it raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(TIMEOUT * 3)
    assert not thread.is_alive(), "the worker hung"
    if errors:
        raise errors[0]


def _hold_write_lock(store: EventStore) -> OutsideWriter:
    """Take SQLite's write lock from another connection: the next commit
    waits (busy timeout: seconds) until the caller rolls back."""
    conn = outside_writer(store)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def _wait_in_flight(store: EventStore, count: int) -> None:
    """Block until ``count`` appends are queued or being committed."""
    done = threading.Event()
    for _ in range(int(TIMEOUT / 0.005)):
        if store.get_stats().appends_in_flight >= count:
            return
        done.wait(0.005)
    pytest.fail(f"never {count} appends in flight")


def _wait_taken(store: EventStore) -> None:
    """Block until the writer took every queued append (white box: the
    committer's queue is empty)."""
    committer = store._wiring.committer
    assert committer is not None
    done = threading.Event()
    for _ in range(int(TIMEOUT / 0.005)):
        if not committer._queue:
            return
        done.wait(0.005)
    pytest.fail("the writer never took the queued appends")


@pytest.fixture
def locked(store: EventStore) -> Iterator[OutsideWriter]:
    conn = _hold_write_lock(store)
    yield conn
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.close()


def _gap_free(store: EventStore, count: int) -> None:
    assert [e.position for e in store.replay()] == list(range(1, count + 1))


def test_lone_appends_commit_on_the_calling_thread(leading: EventStore) -> None:
    """caller_commits: appends of a worker thread that find the writer
    idle commit on that thread, one transaction each (an append that meets
    the writer thread still finishing other work goes to the writer, so on
    a loaded machine not every one does)."""
    store = leading

    def work() -> None:
        for i in range(10):
            store.append(create_agent_started_event(f"a{i}"))
        store.append_many(
            [create_agent_started_event("b1"), create_agent_started_event("b2")]
        )

    _on_worker(work)
    stats = store.get_stats()
    assert stats.transactions == 11
    assert stats.caller_transactions >= 1
    _gap_free(store, 12)


def test_the_main_thread_never_commits(leading: EventStore) -> None:
    """caller_commits: appends of the main thread still go to the writer
    (a signal handler there could interrupt a commit)."""
    for i in range(20):
        leading.append(create_agent_started_event(f"a{i}"))
    stats = leading.get_stats()
    assert (stats.transactions, stats.caller_transactions) == (20, 0)


def test_callbacks_of_a_caller_commit_run_on_the_writer(leading: EventStore) -> None:
    """caller_commits: done-callbacks of what a caller committed run on the
    writer thread, never on the committing caller's own."""
    store = leading
    threads: list[int] = []
    done = threading.Event()

    def work() -> None:
        for i in range(20):
            store.append(create_agent_started_event(f"warm{i}"))
        future = store.append_async(create_agent_started_event("async"))
        future.add_done_callback(
            lambda _: (threads.append(threading.get_ident()), done.set())
        )
        store.append(create_agent_started_event("leader"))  # commits both
        assert done.wait(TIMEOUT)
        assert threading.get_ident() not in threads

    _on_worker(work)
    assert store.get_stats().caller_transactions >= 1


def test_caller_commits_off_keeps_every_commit_on_the_writer(
    make_store: Callable[..., EventStore],
) -> None:
    """caller_commits=False (the default): every commit on the writer."""
    store = make_store()
    assert store.config.caller_commits is False
    stored = [store.append(create_agent_started_event(f"a{i}")) for i in range(10)]
    assert [e.position for e in stored] == list(range(1, 11))
    stats = store.get_stats()
    assert (stats.transactions, stats.caller_transactions) == (10, 0)


def test_async_then_sync_from_one_thread_keep_their_order(
    make_store: Callable[..., EventStore], caller_commits: bool
) -> None:
    """An append_async followed by an append on one thread commit in that
    order, whoever commits them (a reordering would break the versions)."""
    store = make_store(caller_commits=caller_commits)
    for i in range(200):
        first = store.append_async(
            create_task_created_event(f"t{i}", "build", "T", "", "high"),
            expected_version=NO_STREAM,
        )
        second = store.append(
            create_task_created_event(f"t{i}", "build", "T2", "", "high"),
            expected_version=1,
        )
        stored = first.get(TIMEOUT)
        assert (stored.version, second.version) == (1, 2)
        assert stored.position + 1 == second.position
    _gap_free(store, 400)


def test_appends_queued_behind_the_writer_commit_as_one_batch(
    store: EventStore, locked: OutsideWriter
) -> None:
    """While the writer holds the turn (stuck on SQLite's lock), appending
    threads queue instead of committing; the writer then commits all they
    queued in one transaction."""
    first = store.append_async(create_agent_started_event("first"))
    _wait_in_flight(store, 1)
    _wait_taken(store)  # the writer holds "first", stuck on the lock
    results: list[Event] = []
    threads = [
        threading.Thread(
            target=lambda i=i: results.append(
                store.append(create_agent_started_event(f"w{i}"))
            )
        )
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    _wait_in_flight(store, 5)
    locked.execute("ROLLBACK")
    for thread in threads:
        thread.join(TIMEOUT)
    assert first.get(TIMEOUT).position == 1
    assert sorted(e.position for e in results) == [2, 3, 4, 5]
    stats = store.get_stats()
    assert (stats.transactions, stats.appends) == (2, 5)
    assert stats.appends_in_flight == 0
    _gap_free(store, 5)


def test_a_committing_caller_hands_the_queue_to_the_writer(
    leading: EventStore,
) -> None:
    """A caller holding the turn commits its own append and leaves what
    others queued meanwhile to the writer: every append returns."""
    store = leading
    locked = _hold_write_lock(store)
    results: list[Event] = []

    def append(name: str) -> None:
        results.append(store.append(create_agent_started_event(name)))

    leader = threading.Thread(target=append, args=("leader",))
    leader.start()
    _wait_in_flight(store, 1)
    others = [threading.Thread(target=append, args=(f"w{i}",)) for i in range(4)]
    for thread in others:
        thread.start()
    _wait_in_flight(store, 5)
    locked.execute("ROLLBACK")
    locked.close()
    for thread in (leader, *others):
        thread.join(TIMEOUT)
    assert sorted(e.position for e in results) == [1, 2, 3, 4, 5]
    stats = store.get_stats()
    assert stats.caller_transactions >= 1
    assert stats.transactions < 5  # the queued ones went in a batch
    _gap_free(store, 5)


def test_a_done_callback_may_append(
    make_store: Callable[..., EventStore], caller_commits: bool
) -> None:
    """Done-callbacks run after the committer lets go of its turn, so one
    that appends (even on the writer's own thread) does not deadlock."""
    store = make_store(caller_commits=caller_commits)
    conn = _hold_write_lock(store)
    try:
        first = store.append_async(create_agent_started_event("a1"))
        appended: list[Event] = []
        done = threading.Event()

        def follow_up(_: object) -> None:
            appended.append(store.append(create_agent_started_event("a2")))
            done.set()

        first.add_done_callback(follow_up)
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    assert done.wait(TIMEOUT), "the appending callback never finished"
    assert [e.position for e in (first.get(TIMEOUT), *appended)] == [1, 2]


def test_shutdown_with_appends_queued_behind_a_stuck_commit(
    make_store: Callable[..., EventStore],
) -> None:
    """Appends queued while a commit waits are all settled by shutdown:
    committed once the lock goes, never left hanging."""
    store = make_store()
    conn = _hold_write_lock(store)
    futures = [
        store.append_async(create_agent_started_event(f"a{i}")) for i in range(20)
    ]
    _wait_in_flight(store, 20)
    conn.execute("ROLLBACK")
    conn.close()
    store.shutdown()
    assert [f.get(TIMEOUT).position for f in futures] == list(range(1, 21))


def test_a_full_batch_waiting_holds_back_append_async(
    make_store: Callable[..., EventStore],
) -> None:
    """Once max_batch appends wait in the queue (the writer busy with the
    previous transaction), append_async blocks until the writer takes them;
    then everything commits, in order."""
    store = make_store(max_batch=4)
    conn = _hold_write_lock(store)
    returned = threading.Event()
    futures: list[AppendFuture[Event]] = []

    def pump() -> None:
        for i in range(6):
            futures.append(store.append_async(create_agent_started_event(f"a{i}")))
        returned.set()

    try:
        futures.append(store.append_async(create_agent_started_event("first")))
        _wait_in_flight(store, 1)
        _wait_taken(store)  # the writer took it and waits on SQLite
        thread = threading.Thread(target=pump)
        thread.start()
        _wait_in_flight(store, 5)  # four queued behind it: a full batch
        assert not returned.wait(0.2), "append_async did not wait for room"
        assert store.get_stats().appends_in_flight == 5
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    assert returned.wait(TIMEOUT)
    thread.join(TIMEOUT)
    assert [f.get(TIMEOUT).position for f in futures] == list(range(1, 8))


def test_after_contention_callers_leave_commits_to_the_writer_for_a_while(
    leading: EventStore,
) -> None:
    """An append that finds others queued marks the store contended: the
    next appends go through the writer's group commit; once appends have
    come one at a time for a while, callers commit themselves again."""
    store = leading
    locked = _hold_write_lock(store)
    first = store.append_async(create_agent_started_event("first"))
    _wait_in_flight(store, 1)  # the writer holds the turn, stuck on SQLite
    second = store.append_async(create_agent_started_event("second"))
    waiter = threading.Thread(
        target=store.append, args=(create_agent_started_event("third"),)
    )
    waiter.start()  # finds "second" queued: contention
    _wait_in_flight(store, 3)
    locked.execute("ROLLBACK")
    locked.close()
    waiter.join(TIMEOUT)
    assert (first.get(TIMEOUT).position, second.get(TIMEOUT).position) == (1, 2)
    before = store.get_stats()

    def calm() -> None:  # one at a time, but the contention is recent
        for i in range(8):
            store.append(create_agent_started_event(f"calm{i}"))

    _on_worker(calm)
    after = store.get_stats()
    assert after.caller_transactions == before.caller_transactions

    def later() -> None:  # calm long enough: callers commit again
        for i in range(32):
            store.append(create_agent_started_event(f"later{i}"))

    _on_worker(later)
    assert store.get_stats().caller_transactions > after.caller_transactions
    _gap_free(store, 3 + 8 + 32)


def test_appends_after_the_writer_died_fail_instead_of_hanging(
    store: EventStore,
) -> None:
    """If the writer actor is gone (white box: stopped under the store's
    feet), appends fail with WriterStoppedError rather than wait forever,
    and get_stats() says so."""
    store.append(create_agent_started_event("before"))
    assert store.get_stats().writer_stopped is False
    store._wiring.writer.stop()  # type: ignore[union-attr]  # on_stop closes the committer
    with pytest.raises(WriterStoppedError):
        store.append_async(create_agent_started_event("async")).get(TIMEOUT)
    with pytest.raises(WriterStoppedError):
        store.append(create_agent_started_event("sync"))
    assert store.get_stats().writer_stopped is True
    store.shutdown()  # still completes
