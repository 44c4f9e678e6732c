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


def test_a_lone_writer_takes_no_lock_rounds_until_another_commits(
    make_pg_store: Callable[..., EventStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer nobody else writes beside appends without lock rounds (one
    statement that checks the head); once another store commits it goes
    through rounds, and back to none after a round that found nobody else."""
    from swarmlog.actors.postgres.write import PostgresWriteStorage

    rounds = []
    begin = PostgresWriteStorage.begin_round

    def counted(self: PostgresWriteStorage, *args: Any, **kwargs: Any) -> int:
        rounds.append(self)
        return begin(self, *args, **kwargs)

    monkeypatch.setattr(PostgresWriteStorage, "begin_round", counted)
    one = _deaf(make_pg_store())
    for i in range(20):
        one.append(_created(i))
    assert rounds == []
    two = make_pg_store()
    two.append(_created(100))  # two's first write: its cache is cold
    mine = len(rounds)
    stored = one.append(_created(101))  # runs into the moved head
    assert stored.position == 22
    assert len(rounds) == mine + 1
    one.append(_created(102))  # that round saw others: one more
    assert len(rounds) == mine + 2
    for i in range(5):  # the last round found nobody else: none again
        one.append(_created(200 + i))
    assert len(rounds) == mine + 2
    assert [e.position for e in two.replay()] == list(range(1, 29))
