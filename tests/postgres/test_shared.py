"""Two writing stores on one PostgreSQL schema (as two processes would
be): each one's projections and listeners follow every commit in position
order, and a strong query reflects an append made by the other."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import (
    ConcurrencyError,
    Event,
    EventStore,
    create_task_created_event,
    create_task_started_event,
)
from tests.multiprocess.worker import Journal
from tests.postgres.conftest import TIMEOUT

if TYPE_CHECKING:
    from collections.abc import Callable


def _created(i: int) -> Event:
    return create_task_created_event(f"t{i}", "build", "T", "", "high")


def _updated(task: str, n: int) -> Event:
    return create_task_started_event(task, f"agent-{n}")


@pytest.fixture
def two_stores(
    make_pg_store: Callable[..., EventStore],
) -> tuple[EventStore, EventStore]:
    """Two writing stores on this test's schema, each watching the other's
    commits (skipped until the wiring watches PostgreSQL stores)."""
    one, two = make_pg_store(), make_pg_store()
    if getattr(two._wiring, "watcher", None) is None:
        pytest.skip(
            "needs the shared-writer wiring (a change watcher with "
            "backend.open_postgres_probe, issue 13's seam)"
        )
    return one, two


def test_a_projection_started_mid_load_gets_exactly_every_position(
    two_stores: tuple[EventStore, EventStore],
) -> None:
    """Store one appends while store two starts a projection midway: the
    projection holds 1..N, once each, in order."""
    one, two = two_stores
    halfway = threading.Event()

    def load() -> None:
        for i in range(200):
            one.append(_created(i))
            if i == 100:
                halfway.set()

    loader = threading.Thread(target=load)
    loader.start()
    assert halfway.wait(TIMEOUT)
    journal = Journal(two).initialize()
    loader.join(TIMEOUT * 3)
    assert journal.positions() == list(range(1, 201))  # strong: reads the head


def test_listeners_see_both_stores_commits_in_order(
    two_stores: tuple[EventStore, EventStore],
) -> None:
    """Each store's listeners get every event of both, in position order."""
    one, two = two_stores
    seen: dict[str, list[int]] = {"one": [], "two": []}
    done = {name: threading.Event() for name in seen}

    def listen(name: str) -> Callable[[Event], None]:
        def on_event(event: Event) -> None:
            seen[name].append(event.position)
            if len(seen[name]) == 100:
                done[name].set()

        return on_event

    one.on("event:appended", listen("one"))
    two.on("event:appended", listen("two"))

    def load(store: EventStore, start: int) -> None:
        for i in range(start, start + 50):
            store.append(_created(i))

    loaders = [
        threading.Thread(target=load, args=(store, start))
        for store, start in ((one, 0), (two, 50))
    ]
    for loader in loaders:
        loader.start()
    for loader in loaders:
        loader.join(TIMEOUT * 3)
    for name, positions in seen.items():
        assert done[name].wait(TIMEOUT), name
        assert positions == list(range(1, 101))


def test_a_retry_through_the_other_store_is_idempotent(
    two_stores: tuple[EventStore, EventStore],
) -> None:
    """An event stored through one store, appended again through the
    other, resolves to the stored copy: no duplicate, no error."""
    one, two = two_stores
    event = _created(1)
    stored = one.append(event)
    assert two.append(event) == stored
    assert [e.position for e in two.replay()] == [1]


def _record(store: EventStore, count: int) -> tuple[list[int], threading.Event]:
    """The positions ``store``'s listeners get, and an event set once
    ``count`` of them arrived."""
    seen: list[int] = []
    arrived = threading.Event()

    def on_event(event: Event) -> None:
        seen.append(event.position)
        if len(seen) == count:
            arrived.set()

    store.on("event:appended", on_event)
    return seen, arrived


def _deaf(store: EventStore) -> EventStore:
    """``store`` with its change watcher stopped: its writer learns of the
    other store's commits only when a write of its own runs into them."""
    watcher = store._wiring.watcher
    assert watcher is not None
    watcher.stop()
    return store


def test_a_refusal_from_a_stale_cache_is_not_given(
    two_stores: tuple[EventStore, EventStore],
) -> None:
    """Store one's cache says the task is at version 1; store two moved it
    to 2. ``expected_version=2`` through store one succeeds: a refusal its
    cache suggests is settled only under the head's lock."""
    one, two = two_stores
    _deaf(one)
    first = one.append(_created(1))
    two.append(_updated(first.aggregate_id, 2))
    stored = one.append(_updated(first.aggregate_id, 3), expected_version=2)
    assert (stored.version, stored.position) == (3, 3)


def test_a_conflict_on_a_stale_cache_reports_the_true_version(
    two_stores: tuple[EventStore, EventStore],
) -> None:
    """Store one's cache says version 1; store two wrote versions 2 and 3.
    A write through store one planned on its cache is not stored, and the
    refusal names the committed version, 3."""
    one, two = two_stores
    _deaf(one)
    first = one.append(_created(1))
    two.append(_updated(first.aggregate_id, 2))
    two.append(_updated(first.aggregate_id, 3))
    with pytest.raises(ConcurrencyError) as caught:
        one.append(_updated(first.aggregate_id, 4), expected_version=1)
    assert caught.value.actual == 3
    again = one.append(_updated(first.aggregate_id, 4))  # any version: goes on
    assert (again.version, again.position) == (4, 4)
    versions = [e.version for e in two.get_events(first.aggregate_id)]
    assert versions == [1, 2, 3, 4]


def test_writers_take_lock_rounds_only_to_settle_what_the_cache_cannot(
    make_pg_store: Callable[..., EventStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Appends beside another writer take no lock round (one statement
    places them after the other's commits, which are published first); a
    clash with the other writer is written again after catching up, and a
    refusal the cache suggests is settled in a lock round."""
    from swarmlog.actors.postgres.write import PostgresWriteStorage

    rounds = []
    begin = PostgresWriteStorage.begin_round

    def counted(self: PostgresWriteStorage, *args: Any, **kwargs: Any) -> int:
        rounds.append(self)
        return begin(self, *args, **kwargs)

    monkeypatch.setattr(PostgresWriteStorage, "begin_round", counted)
    one = _deaf(make_pg_store())
    seen, all_seen = _record(one, 6)
    first = one.append(_created(1))
    two = make_pg_store()  # opens on a stored event: reads versions it needs
    two.append(_updated(first.aggregate_id, 2))
    two.append(_created(2))
    stored = one.append(_created(3))  # planned at 2, stored at 4
    assert stored.position == 4
    assert [e.position for e in one.get_events(stored.aggregate_id)] == [4]
    assert rounds == []
    with pytest.raises(ConcurrencyError):  # its cache says version 1: a round
        one.append(_updated(first.aggregate_id, 3), expected_version=5)
    assert len(rounds) == 1
    two.append(_updated(first.aggregate_id, 4))  # version 3, which one knows not
    clash = one.append(_updated(first.aggregate_id, 5))  # planned as 3: clashes
    assert (clash.version, clash.position) == (4, 6)
    assert len(rounds) == 1  # caught up, then written without a round
    assert all_seen.wait(TIMEOUT)  # theirs published before its own, in order
    assert seen == [1, 2, 3, 4, 5, 6]


def test_a_round_whose_predecessors_cannot_be_read_is_published_later_in_order(
    make_pg_store: Callable[..., EventStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write lands after another writer's commit, and reading that commit
    fails: the append still returns its stored position, and the next
    catch-up publishes the other's event and then it, in order."""
    from swarmlog.actors.postgres.write import PostgresWriteStorage
    from swarmlog.schema.errors import StorageError

    one = _deaf(make_pg_store())
    seen, three_seen = _record(one, 3)
    one.append(_created(1))
    two = make_pg_store()
    two.append(_created(2))
    versions_after = PostgresWriteStorage.versions_after
    read_after = PostgresWriteStorage.read_after

    def failing(*args: Any) -> Any:
        raise StorageError("the server went away")

    monkeypatch.setattr(PostgresWriteStorage, "versions_after", failing)
    monkeypatch.setattr(PostgresWriteStorage, "read_after", failing)
    stored = one.append(_created(3))
    assert stored.position == 3
    assert not three_seen.is_set()
    monkeypatch.setattr(PostgresWriteStorage, "versions_after", versions_after)
    monkeypatch.setattr(PostgresWriteStorage, "read_after", read_after)
    assert one.get_stats().total_events == 3
    one.append(_created(4))  # lands after its held-back round: publishes it
    assert three_seen.wait(TIMEOUT)
    assert seen[:3] == [1, 2, 3]


@pytest.mark.parametrize("listening", [False, True])
def test_publishing_others_events_never_lowers_a_known_version(
    make_pg_store: Callable[..., EventStore], listening: bool
) -> None:
    """A writer reads an aggregate's version beyond its head while
    planning, lands after the other writer's commits to it, then publishes
    those older events: the version it keeps is its own, so its next
    append to the aggregate plans the next version instead of clashing."""
    two = make_pg_store()
    first = two.append(_created(1))
    one = _deaf(make_pg_store())  # opens at head 1: reads versions it needs
    if listening:
        one.on("event:appended", lambda event: None)
    two.append(_updated(first.aggregate_id, 2))
    two.append(_updated(first.aggregate_id, 3))
    third = one.append(_updated(first.aggregate_id, 4))  # read v3, planned v4
    assert (third.version, third.position) == (4, 4)
    fourth = one.append(_updated(first.aggregate_id, 5))
    assert (fourth.version, fourth.position) == (5, 5)


def test_a_busy_writer_stops_listening_and_hears_again_when_idle(
    two_stores: tuple[EventStore, EventStore],
) -> None:
    """While store one appends without pause its watcher's session stops
    listening (every commit of every process would wake it on the server);
    store two's commit right after still reaches one's listeners, in
    order, and once one has been idle a while it listens again."""
    one, two = two_stores
    watcher = one._wiring.watcher
    assert watcher is not None
    probe: Any = watcher._probe
    seen: list[int] = []
    arrived = threading.Event()

    def on_event(event: Event) -> None:
        seen.append(event.position)
        if event.aggregate_id == "task-from-two":
            arrived.set()

    one.on("event:appended", on_event)
    rested = False
    appended = 0
    while appended < 5000:  # ~1 ms each: the watcher rests after ~50 ms
        one.append(_created(appended))
        appended += 1
        if probe.resting:
            rested = True
            break
    assert rested, "the watcher never rested while its writer was busy"
    two.append(create_task_created_event("task-from-two", "build", "T", "", "high"))
    assert arrived.wait(TIMEOUT)
    assert seen == list(range(1, appended + 2))
    pause = threading.Event()
    for _ in range(int(TIMEOUT / 0.01)):  # idle for ~50 ms: listening again
        if not probe.resting:
            break
        pause.wait(0.01)
    assert not probe.resting
