"""Fixtures for the reliability suite: stores on a file and on ``:memory:``,
a store already holding known events; soak tests skipped unless selected."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import EventStore, create_task_created_event, create_task_started_event

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from swarmlog import Event


@pytest.fixture(params=["file", "memory"])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., EventStore]]:
    """Build initialised stores (``make_store(**options)``) on a file in
    ``tmp_path`` or on ``:memory:``; shut them all down after the test."""
    path = str(tmp_path / "events.db") if request.param == "file" else ":memory:"
    stores: list[EventStore] = []

    def make(**options: Any) -> EventStore:
        store = EventStore(path, **options)
        stores.append(store)
        return store.initialize()

    yield make
    for store in reversed(stores):
        store.shutdown()


@pytest.fixture
def store(make_store: Callable[..., EventStore]) -> EventStore:
    """An initialised store with default options."""
    return make_store()


@pytest.fixture
def known(store: EventStore) -> list[Event]:
    """Events stored before the hostile input arrives (what must not be lost)."""
    events = [
        create_task_created_event("task-1", "build", "One", "first", "high"),
        create_task_created_event("task-2", "test", "Two", "second", "low"),
        create_task_started_event("task-1", "agent-1"),
    ]
    return store.append_many(events)


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Skip this folder's soak tests unless ``-m`` names the soak marker
    (``-m soak`` runs them; ``-m "not soak"`` deselects them anyway)."""
    if "soak" in (config.getoption("markexpr", "") or ""):
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="soak test: run with -m soak")
    for item in items:
        if "soak" in item.keywords and here in item.path.parents:
            item.add_marker(skip)
