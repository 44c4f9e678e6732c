"""The projection engine: catch-up, live updates, ordering, snapshots,
failure isolation, rebuild, time travel, consistency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog import (
    EngineThreadWaitError,
    Event,
    EventStore,
    Projection,
    ProjectionFailedError,
    ProjectionStateError,
    ProjectionTimeoutError,
    StoreClosedError,
    TaskCompleted,
    TaskCreated,
    create_task_completed_event,
    create_task_created_event,
    handles,
    query,
)
from tests.backends import BACKENDS, location

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


class Journal(Projection):
    """Records every task event position it sees, in order."""

    name = "journal"
    state_version = 1
    state_type = list[int]

    def reset_state(self) -> None:
        self._positions: list[int] = []

    @handles(TaskCreated, "task:completed")
    def _on_task(self, event: Event) -> None:
        self._positions.append(event.position)

    def snapshot_state(self) -> list[int]:
        return self._positions

    def restore_state(self, state: list[int]) -> None:
        self._positions = list(state)

    @query
    def positions(self) -> list[int]:
        return list(self._positions)

    @query
    def count(self) -> int:
        return len(self._positions)


class Exploding(Projection):
    """Fails on every task:completed whose result says so (until fixed)."""

    name = "exploding"
    fixed = False

    def reset_state(self) -> None:
        self.seen = 0

    @handles(TaskCompleted)
    def _on_completed(self, event: Event) -> None:
        if event.payload.result == "boom" and not self.fixed:
            raise RuntimeError("boom")
        self.seen += 1

    @query
    def get_seen(self) -> int:
        return self.seen


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """The projection engine on each backend."""
    path, options = location(request, request.param, tmp_path, "e.db")
    with EventStore(path, projection_snapshot_every=50, **options) as s:
        yield s


def _created(i: int) -> Event:
    return create_task_created_event(f"t{i}", "build", f"T{i}", "", "high")


def test_catch_up_then_live(store: EventStore) -> None:
    """Events before initialize() are caught up, later ones arrive live."""
    for i in range(30):
        store.append(_created(i))
    journal = Journal(store).initialize()
    assert journal.positions() == list(range(1, 31))
    store.append(_created(30))
    assert journal.count() == 31
    assert journal.status == "live"


def test_initialize_is_idempotent(store: EventStore) -> None:
    """initialize() returns the projection and starts one actor only."""
    journal = Journal(store)
    assert journal.initialize() is journal
    assert journal.initialize() is journal
    store.append(_created(1))
    assert journal.count() == 1


def test_duplicate_name_is_refused(store: EventStore) -> None:
    """Two running projections may not share a name."""
    Journal(store).initialize()
    with pytest.raises(ProjectionStateError):
        Journal(store).initialize()


def test_query_before_initialize_is_a_typed_error(store: EventStore) -> None:
    """A projection that was never started says so."""
    with pytest.raises(ProjectionStateError):
        Journal(store).count()


def test_read_your_writes_across_threads(store: EventStore) -> None:
    """A query made after another thread's append returned sees that event."""
    journal = Journal(store).initialize()
    appended = threading.Event()

    def writer() -> None:
        store.append(_created(1))
        appended.set()

    threading.Thread(target=writer).start()
    assert appended.wait(10)
    assert journal.count() == 1


def test_catch_up_to_live_with_16_appenders(store: EventStore) -> None:
    """Every event is applied exactly once across the catch-up/live switch."""
    for i in range(500):
        store.append(_created(i))
    journal = Journal(store)
    start = threading.Barrier(17)

    def appender(k: int) -> None:
        start.wait()
        for i in range(60):
            store.append(_created(1000 + k * 100 + i))

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(appender, k) for k in range(16)]
        start.wait()
        journal.initialize()
        for f in futures:
            f.result(60)
    head = store.head_position
    assert head == 500 + 16 * 60
    journal.wait_for(head)
    assert journal.positions() == list(range(1, head + 1))
    replayed = [e.position for e in store.replay() if e.type == "task:created"]
    assert journal.positions() == replayed


def test_live_only_projection_sees_every_event_in_order(store: EventStore) -> None:
    """With many racing appenders a live projection never skips or repeats."""
    journal = Journal(store).initialize()

    def appender(k: int) -> None:
        for i in range(50):
            store.append_many([_created(k * 1000 + i), _created(k * 1000 + 500 + i)])

    with ThreadPoolExecutor(16) as pool:
        for f in [pool.submit(appender, k) for k in range(16)]:
            f.result(60)
    assert journal.positions() == list(range(1, 16 * 100 + 1))


def test_wait_for_timeout(store: EventStore) -> None:
    """Waiting for a position nobody appends raises ProjectionTimeoutError."""
    journal = Journal(store).initialize()
    with pytest.raises(ProjectionTimeoutError) as info:
        journal.wait_for(10, timeout=0.05)
    assert isinstance(info.value, TimeoutError)
    assert info.value.position == 10


def test_eventual_consistency_answers_at_once(store: EventStore) -> None:
    """An eventual projection answers with what it has."""
    journal = Journal(store, consistency="eventual").initialize()
    store.append(_created(1))
    assert journal.count() in (0, 1)
    journal.wait_for(1)
    assert journal.count() == 1


def test_snapshot_restart_replays_fewer_events(tmp_path: Path) -> None:
    """After a restart the projection resumes from its snapshot."""
    path = str(tmp_path / "s.db")
    with EventStore(path, projection_snapshot_every=50) as store:
        journal = Journal(store).initialize()
        for i in range(120):
            store.append(_created(i))
        journal.wait_for(120)
        before = journal.positions()
    with EventStore(path, projection_snapshot_every=50) as store:
        for i in range(5):
            store.append(_created(200 + i))
        journal = Journal(store).initialize()
        assert journal.positions() == [*before, *range(121, 126)]
        status = journal.get_status()
        # Shutdown took a final snapshot at 120: only 5 events replayed.
        assert status.events_handled == 5
        assert status.position == 125


def test_state_version_change_rebuilds(tmp_path: Path) -> None:
    """A snapshot of another state_version is ignored (full rebuild)."""
    path = str(tmp_path / "v.db")
    with EventStore(path) as store:
        Journal(store).initialize()
        for i in range(10):
            store.append(_created(i))

    class JournalV2(Journal):
        state_version = 2

    with EventStore(path) as store:
        journal = JournalV2(store).initialize()
        assert journal.count() == 10
        assert journal.get_status().events_handled == 10


def test_failing_projection_is_isolated(store: EventStore) -> None:
    """A raising handler stops only its projection; appends and others go on."""
    exploding = Exploding(store, max_retries=1, retry_backoff=0).initialize()
    journal = Journal(store).initialize()
    store.append(create_task_completed_event("t1", "ok"))
    store.append(create_task_completed_event("t2", "boom"))
    store.append(create_task_completed_event("t3", "ok"))
    assert journal.count() == 3
    with pytest.raises(ProjectionFailedError) as info:
        exploding.get_seen()
    assert info.value.position == 2
    assert exploding.status == "failed"
    stats = store.get_stats().projections
    assert stats["exploding"].status == "failed"
    assert stats["journal"].status == "live"


def test_skip_policy_records_dead_letters(store: EventStore) -> None:
    """With on_failure='skip' the event becomes a dead letter and it goes on."""
    exploding = Exploding(store, on_failure="skip").initialize()
    store.append(create_task_completed_event("t1", "boom"))
    store.append(create_task_completed_event("t2", "ok"))
    assert exploding.get_seen() == 1
    letters = exploding.get_dead_letters()
    assert [(d.position, d.event_type) for d in letters] == [(1, "task:completed")]
    assert "boom" in letters[0].error
    assert store.get_stats().projections["exploding"].dead_letters == 1
    assert exploding.retry_dead_letters() == 0  # still failing
    assert len(exploding.get_dead_letters()) == 1


def test_retry_then_skip_retries_first(store: EventStore) -> None:
    """A handler that fails once then succeeds is not a dead letter."""
    calls: list[int] = []

    class Flaky(Projection):
        name = "flaky"

        def reset_state(self) -> None:
            self.n = 0

        @handles(TaskCompleted)
        def _on(self, event: Event) -> None:
            calls.append(event.position)
            if len(calls) == 1:
                raise RuntimeError("transient")
            self.n += 1

        @query
        def get_n(self) -> int:
            return self.n

    flaky = Flaky(store, on_failure="retry-then-skip", retry_backoff=0).initialize()
    store.append(create_task_completed_event("t1", None))
    assert flaky.get_n() == 1
    assert flaky.get_dead_letters() == []
    assert calls == [1, 1]


def test_rebuild_swaps_in_a_fresh_model(store: EventStore) -> None:
    """rebuild() replays from 0 while queries go on, then swaps atomically."""
    journal = Journal(store).initialize()
    for i in range(2500):
        store.append(_created(i)) if i % 500 else store.append_many([_created(i)])
    progress: list[tuple[int, int]] = []
    journal.rebuild(
        timeout=30, on_progress=lambda done, total: progress.append((done, total))
    )
    assert journal.positions() == list(range(1, 2501))
    assert progress[-1][0] == progress[-1][1] == 2500
    assert len(progress) >= 3  # paged


def test_rebuild_recovers_a_failed_projection(store: EventStore) -> None:
    """After the cause is fixed, rebuild() brings a failed projection back."""
    exploding = Exploding(store, max_retries=0).initialize()
    store.append(create_task_completed_event("t1", "boom"))
    with pytest.raises(ProjectionFailedError):
        exploding.get_seen()
    with pytest.raises(ProjectionFailedError):
        exploding.rebuild(timeout=10)  # the cause is still there
    Exploding.fixed = True  # "deploy a fix"
    try:
        exploding.rebuild(timeout=10)
        assert exploding.get_seen() == 1
        assert exploding.status == "live"
        store.append(create_task_completed_event("t2", "ok"))
        assert exploding.get_seen() == 2
    finally:
        Exploding.fixed = False


def test_reset_then_initialize_starts_over(store: EventStore) -> None:
    """reset() empties the model and forgets the snapshot; initialize() works."""
    journal = Journal(store).initialize()
    for i in range(60):
        store.append(_created(i))
    assert journal.count() == 60
    journal.reset()
    assert journal.status == "stopped"
    journal.initialize()
    assert journal.count() == 60
    assert journal.get_status().events_handled == 60


def test_as_of_is_time_travel(store: EventStore) -> None:
    """as_of(position) answers as of that position and leaves the live one."""
    journal = Journal(store).initialize()
    for i in range(10):
        store.append(_created(i))
    past = Journal.as_of(store, 4)
    assert past.positions() == [1, 2, 3, 4]
    assert journal.count() == 10
    with pytest.raises(ProjectionStateError):
        past.initialize()


def test_wait_inside_a_handler_is_a_typed_error(store: EventStore) -> None:
    """A strong query from inside another projection's handler raises."""
    journal = Journal(store).initialize()
    errors: list[BaseException] = []

    class Nosy(Projection):
        name = "nosy"

        @handles(TaskCompleted)
        def _on(self, event: Event) -> None:
            try:
                journal.wait_for(event.position + 1000, timeout=5)
            except EngineThreadWaitError as e:
                errors.append(e)

    nosy = Nosy(store).initialize()
    store.append(create_task_completed_event("t1", None))
    store.append(_created(1))
    journal.wait_for(2)
    nosy.wait_for(2)  # its own thread: the journal being there says nothing
    assert len(errors) == 1


def test_wait_inside_a_listener_is_a_typed_error(store: EventStore) -> None:
    """A strong wait from a listener callback raises instead of deadlocking."""
    journal = Journal(store).initialize()
    outcome: list[Any] = []
    done = threading.Event()

    def listener(event: Event) -> None:
        try:
            journal.wait_for(event.position + 1, timeout=5)
        except EngineThreadWaitError as e:
            outcome.append(e)
        done.set()

    store.on("event:appended", listener)
    store.append(_created(1))
    assert done.wait(10)
    assert isinstance(outcome[0], EngineThreadWaitError)


def test_shutdown_takes_final_snapshots(tmp_path: Path) -> None:
    """Shutdown lets projections apply everything committed and snapshot it."""
    path = str(tmp_path / "f.db")
    with EventStore(path, projection_snapshot_every=10_000) as store:
        Journal(store).initialize()
        for i in range(37):
            store.append_async(_created(i))
    with EventStore(path) as store:
        journal = Journal(store).initialize()
        assert journal.count() == 37
        assert journal.get_status().snapshot_position == 37
        assert journal.get_status().events_handled == 0


def test_stopped_projection_refuses_queries(store: EventStore) -> None:
    """stop() makes queries fail with a typed error; initialize() resumes."""
    journal = Journal(store).initialize()
    store.append(_created(1))
    journal.stop()
    with pytest.raises(ProjectionStateError):
        journal.count()
    store.append(_created(2))
    journal.initialize()
    assert journal.positions() == [1, 2]


def test_queries_after_store_shutdown(tmp_path: Path) -> None:
    """Store shutdown stops every projection."""
    store = EventStore(str(tmp_path / "x.db")).initialize()
    journal = Journal(store).initialize()
    store.shutdown()
    assert journal.status == "stopped"
    with pytest.raises(StoreClosedError):
        journal.count()


def test_snapshot_state_is_msgspec_encodable(store: EventStore) -> None:
    """A projection's snapshot is plain msgpack, decoded with state_type."""
    Journal(store).initialize()
    store.append(_created(1))
    past = Journal.as_of(store, 1)
    blob = msgspec.msgpack.encode(past.snapshot_state())
    assert msgspec.msgpack.decode(blob, type=Journal.state_type) == [1]


def test_engine_threads_may_append(store: EventStore) -> None:
    """A listener or a handler can append (a reaction) without deadlocking."""
    reacted = threading.Event()

    def react(event: Event) -> None:
        if event.type == "task:created" and event.payload.task_id == "t1":
            store.append(create_task_completed_event("t1", "auto"))
            reacted.set()

    store.on("event:appended", react)

    class Echo(Projection):
        name = "echo"

        @handles(TaskCompleted)
        def _on(self, event: Event) -> None:
            if event.payload.result == "auto":
                store.append(_created(99))

    Echo(store).initialize()
    journal = Journal(store).initialize()
    store.append(_created(1))
    assert reacted.wait(10)
    journal.wait_for(3, timeout=10)
    assert [e.type for e in store.replay()] == [
        "task:created",
        "task:completed",
        "task:created",
    ]


def test_read_only_store_projections_follow_a_writer(tmp_path: Path) -> None:
    """A projection on a read-only store sees what another store appends."""
    path = str(tmp_path / "watched.db")
    with EventStore(path) as writer:
        writer.append(_created(1))
        with EventStore(path, read_only=True, poll_interval=0.01) as watcher:
            journal = Journal(watcher).initialize()
            assert journal.positions() == [1]
            writer.append(_created(2))
            writer.append_many([_created(3), _created(4)])
            journal.wait_for(4, timeout=10)
            assert journal.positions() == [1, 2, 3, 4]
            assert watcher.head_position == 4
            assert watcher.get_stats().projections["journal"].lag == 0


def test_stopping_a_projection_from_a_listener_is_refused(store: EventStore) -> None:
    """stop()/reset() from an engine thread raise instead of deadlocking."""
    journal = Journal(store).initialize()
    outcome: list[BaseException] = []
    done = threading.Event()

    def listener(_: Event) -> None:
        for action in (journal.stop, journal.reset):
            try:
                action()
            except EngineThreadWaitError as e:
                outcome.append(e)
        done.set()

    store.on("event:appended", listener)
    store.append(_created(1))
    assert done.wait(10)
    assert len(outcome) == 2
    assert journal.count() == 1  # still running


class _Peer(Projection):
    """Counts task:created events; its handler asks its peer for a count."""

    state_version = 1
    ask_peer: Callable[[], int] | None = None
    barrier: threading.Barrier | None = None

    def reset_state(self) -> None:
        self._count = 0
        self.answers: list[int] = []
        self.errors: list[BaseException] = []
        self.failed = threading.Event()

    @handles(TaskCreated)
    def _on_created(self, event: Event) -> None:
        self._count += 1
        try:
            if self.barrier is not None and event.position == 1:
                self.barrier.wait()  # both handlers are running now
            assert self.ask_peer is not None
            self.answers.append(self.ask_peer())
        except BaseException as e:  # the test reads it
            self.errors.append(e)
            self.failed.set()

    @query
    def count(self) -> int:
        return self._count


class _PeerA(_Peer):
    name = "peer-a"


class _PeerB(_Peer):
    name = "peer-b"


def test_projections_querying_each_other_both_keep_up(store: EventStore) -> None:
    """Two eventual projections whose handlers query each other, both
    inside a handler at once: each answers the other while it waits, so
    neither stalls until the query timeout (guard: 10 s of a 60 s one)."""
    barrier = threading.Barrier(2, timeout=10)
    a = _PeerA(store, consistency="eventual", query_timeout=60)
    b = _PeerB(store, consistency="eventual", query_timeout=60)
    a.ask_peer, b.ask_peer = b.count, a.count
    a.barrier = b.barrier = barrier
    a.initialize()
    b.initialize()
    for i in range(20):
        store.append(_created(i))
    a.wait_for(20, timeout=10)
    b.wait_for(20, timeout=10)
    assert a.errors == []
    assert b.errors == []
    assert len(a.answers) == len(b.answers) == 20
    assert all(0 <= n <= 20 for n in a.answers + b.answers)
    assert a.count() == b.count() == 20


class _PeerC(_Peer):
    name = "peer-c"


def test_three_projections_querying_in_a_ring(store: EventStore) -> None:
    """A asks B, B asks C, C asks A, all three inside a handler at once:
    all keep up (guard: 10 s of a 60 s query timeout)."""
    barrier = threading.Barrier(3, timeout=10)
    ring = [
        kind(store, consistency="eventual", query_timeout=60)
        for kind in (_PeerA, _PeerB, _PeerC)
    ]
    for k, projection in enumerate(ring):
        projection.ask_peer = ring[(k + 1) % 3].count
        projection.barrier = barrier
        projection.initialize()
    for i in range(10):
        store.append(_created(i))
    for projection in ring:
        projection.wait_for(10, timeout=10)
        assert projection.errors == []
        assert len(projection.answers) == 10


def test_query_from_a_handler_of_a_stuck_projection_times_out(
    store: EventStore,
) -> None:
    """A handler's query of a projection stuck in its own handler raises
    ProjectionTimeoutError after that projection's query_timeout; both go
    on afterwards."""

    class Stuck(_Gated):
        name = "stuck"
        gate = _EnteredGate()

    stuck = Stuck(store, consistency="eventual", query_timeout=0.05)
    asker = _PeerA(store, consistency="eventual")

    def ask_when_stuck() -> int:
        # The projections run on threads of their own: ask only once the
        # stuck one is inside its handler (else it may simply answer).
        assert Stuck.gate.entered.wait(10)
        return stuck.count()

    asker.ask_peer = ask_when_stuck
    stuck.initialize()
    asker.initialize()
    try:
        store.append(_created(1))  # stuck's first handler waits for the gate
        assert asker.failed.wait(10)
    finally:
        Stuck.gate.set()
    store.append(_created(2))
    asker.wait_for(2, timeout=10)
    stuck.wait_for(2, timeout=10)
    assert isinstance(asker.errors[0], ProjectionTimeoutError)
    assert asker.answers in ([1], [2])  # eventual: before or after event 2
    assert stuck.count() == 2


def test_eventual_query_of_a_failed_projection_from_a_handler(
    store: EventStore,
) -> None:
    """A handler's eventual query of a failed projection gets its typed
    failure at once."""
    broken = Exploding(store, on_failure="retry-then-stop", max_retries=0)
    broken.initialize()
    store.append(create_task_completed_event("t1", "boom"))
    with pytest.raises(ProjectionFailedError):
        broken.wait_for(1, timeout=10)
    a = _PeerA(store, consistency="eventual")
    a.ask_peer = broken.get_seen
    a.initialize()
    store.append(_created(1))
    a.wait_for(2, timeout=10)
    assert len(a.errors) == 1
    assert isinstance(a.errors[0], ProjectionFailedError)


def test_engine_wait_errors_recommend_what_works(store: EventStore) -> None:
    """The strong-query message recommends eventual consistency (which
    works from a handler); the wait_for message does not (it cannot help)."""
    gate = threading.Event()
    errors: list[BaseException] = []

    class Asker(Projection):
        name = "asker"

        @handles(TaskCompleted)
        def _on(self, event: Event) -> None:
            for call in (slow.count, lambda: slow.wait_for(event.position)):
                try:
                    call()
                except EngineThreadWaitError as e:
                    errors.append(e)

    class Slow(Journal):
        name = "slow"

        @handles(TaskCreated)
        def _slow(self, event: Event) -> None:
            gate.wait(10)

    slow = Slow(store).initialize()
    asker = Asker(store).initialize()
    store.append(_created(1))  # slow's handler blocks on the gate
    store.append(create_task_completed_event("t1", None))
    asker.wait_for(2, timeout=10)  # before the gate opens
    gate.set()
    slow.wait_for(2, timeout=10)
    assert len(errors) == 2
    assert "consistency='eventual'" in str(errors[0])
    assert "eventual" not in str(errors[1])


class _EnteredGate:
    """A gate that also says when a handler reached it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self._opened = threading.Event()

    def wait(self, timeout: float) -> bool:
        self.entered.set()
        return self._opened.wait(timeout)

    def set(self) -> None:
        self._opened.set()


class _Gated(Projection):
    """A handler that waits for a gate on the first event."""

    name = "gated"
    gate = threading.Event()

    def reset_state(self) -> None:
        self._count = 0

    @handles(TaskCreated)
    def _on(self, event: Event) -> None:
        if event.position == 1:
            type(self).gate.wait(10)
        self._count += 1

    @query
    def count(self) -> int:
        return self._count


def test_initialize_returns_before_the_catch_up(store: EventStore) -> None:
    """initialize() over many events returns while the catch-up is still
    blocked in its first handler (so it is safe on an event loop)."""
    store.append_many([_created(i) for i in range(3000)])

    class Gated(_Gated):
        gate = threading.Event()

    projection = Gated(store)
    try:
        assert projection.initialize() is projection
        assert projection.position == 0
        assert projection.status != "live"
    finally:
        Gated.gate.set()
    projection.wait_for(3000, timeout=30)
    assert projection.count() == 3000
