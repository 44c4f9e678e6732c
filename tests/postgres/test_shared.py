"""Two writing stores on one PostgreSQL schema (as two processes would
be): each one's projections and listeners follow every commit in position
order, and a strong query reflects an append made by the other."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

from swarmlog import (
    Event,
    EventStore,
    create_task_created_event,
)
from tests.multiprocess.worker import Journal
from tests.postgres.conftest import TIMEOUT

if TYPE_CHECKING:
    from collections.abc import Callable


def _created(i: int) -> Event:
    return create_task_created_event(f"t{i}", "build", "T", "", "high")


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
