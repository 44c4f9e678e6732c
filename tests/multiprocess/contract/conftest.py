"""Fixtures of the adopted contract suite: the ones ``tests/store`` gives its
tests, on one configuration, a file opened with ``multi_process=True``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import EventStore
from tests.store.conftest import Recorder

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

TIMEOUT = 10.0


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    """A store file (multi-process stores need one)."""
    return str(tmp_path / "events.db")


@pytest.fixture(params=["full", "normal"])
def synchronous(request: pytest.FixtureRequest) -> str:
    """The SQLite durability level, for tests where it matters."""
    return str(request.param)


@pytest.fixture
def make_store(store_path: str) -> Iterator[Callable[..., EventStore]]:
    """Initialised ``multi_process`` stores on the path; all shut down after
    the test (``make_store(initialize=False)``: not yet initialised)."""
    stores: list[EventStore] = []

    def make(*, initialize: bool = True, **options: Any) -> EventStore:
        options.setdefault("multi_process", True)
        store = EventStore(store_path, **options)
        stores.append(store)
        return store.initialize() if initialize else store

    yield make
    for store in reversed(stores):
        store.shutdown()


@pytest.fixture
def store(make_store: Callable[..., EventStore]) -> EventStore:
    """An initialised ``multi_process`` store with default options."""
    return make_store()


@pytest.fixture
def recorder() -> Callable[[], Recorder]:
    """Make listener callbacks that record their calls."""
    return Recorder
