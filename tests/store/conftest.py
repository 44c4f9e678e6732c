"""Fixtures for the EventStore contract suite.

Every contract test takes ``store`` (or ``make_store``), which is
parametrised over a private ``":memory:"`` store and a file in ``tmp_path``,
so the whole suite runs once against each configuration. Tests where the
durability level matters also take ``synchronous`` ("full" and "normal").
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import EventStore
from swarmlog.actors.sqlite import storage as sqlite_storage

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Iterator
    from pathlib import Path

TIMEOUT = 10.0
"""Seconds a wait may take before the test is declared hung (never a delay)."""


class Recorder:
    """A listener callback that records its calls and can be waited on.

    Records the single argument (or ``None`` for argument-less
    notifications) and the thread each call ran on.
    """

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.threads: set[int] = set()
        self._cond = threading.Condition()

    def __call__(self, *args: Any) -> None:
        with self._cond:
            self.calls.append(args[0] if len(args) == 1 else (args or None))
            self.threads.add(threading.get_ident())
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = TIMEOUT) -> list[Any]:
        """Block until at least ``count`` calls were recorded; return them."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.calls) >= count, timeout)
            calls = list(self.calls)
        assert ok, f"only {len(calls)} of {count} listener calls within {timeout}s"
        return calls


@pytest.fixture(params=["memory", "file"])
def store_path(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database path of the configuration under test."""
    if request.param == "memory":
        return ":memory:"
    return str(tmp_path / "events.db")


@pytest.fixture(params=["full", "normal"])
def synchronous(request: pytest.FixtureRequest) -> str:
    """The SQLite durability level, for tests where it matters."""
    return str(request.param)


@pytest.fixture
def make_store(store_path: str) -> Iterator[Callable[..., EventStore]]:
    """Build initialised stores on the configuration's path; shut them all
    down after the test.

    ``make_store(**options)`` passes options to ``EventStore``;
    ``make_store(initialize=False)`` returns a store not yet initialised.
    """
    stores: list[EventStore] = []

    def make(*, initialize: bool = True, **options: Any) -> EventStore:
        store = EventStore(store_path, **options)
        stores.append(store)
        return store.initialize() if initialize else store

    yield make
    for store in reversed(stores):
        store.shutdown()


@pytest.fixture
def store(make_store: Callable[..., EventStore]) -> EventStore:
    """An initialised store with default options."""
    return make_store()


@pytest.fixture
def recorder() -> Callable[[], Recorder]:
    """Make listener callbacks that record their calls (see ``Recorder``)."""
    return Recorder


@pytest.fixture
def failed_migration() -> Callable[[Path, int], None]:
    """``fail(path, version)``: open ``path`` with one more migration step
    from ``version`` that raises after the others ran, and check that
    ``initialize()`` passes the error on (the steps are restored after)."""

    def fail(path: Path, version: int) -> None:
        def explode(conn: sqlite3.Connection) -> None:
            raise RuntimeError("migration step failed")

        original = sqlite_storage._MIGRATIONS[version]
        sqlite_storage._MIGRATIONS[version] = (*original, explode)
        store = EventStore(path)
        try:
            with pytest.raises(RuntimeError, match="migration step failed"):
                store.initialize()
        finally:
            store.shutdown()
            sqlite_storage._MIGRATIONS[version] = original

    return fail
