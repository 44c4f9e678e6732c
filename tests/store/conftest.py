"""Fixtures for the EventStore contract suite.

Every contract test takes ``store`` (or ``make_store``), which is
parametrised over the backends: SQLite (a private ``":memory:"`` store and
a file in ``tmp_path``) and PostgreSQL (a fresh schema on the session's
server, see ``tests/conftest.py``), so the whole suite runs once against
each configuration. A test about SQLite alone (its file, pragmas, WAL)
says so with ``@pytest.mark.sqlite_only("reason")`` and runs only on the
SQLite configurations. Tests where the durability level matters also take
``synchronous`` ("full" and "normal").
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import EventStore
from swarmlog.actors.postgres.url import is_postgres_url
from swarmlog.actors.sqlite import storage as sqlite_storage

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tests.pg_server import PgServer

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


SQLITE_CONFIGURATIONS = ("memory", "file")
CONFIGURATIONS = (*SQLITE_CONFIGURATIONS, "postgres")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test taking ``store_path`` once per configuration (SQLite
    ones only for a test marked ``sqlite_only``, which must say why)."""
    if "store_path" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("sqlite_only")
    if marker is not None and not (marker.args and marker.args[0]):
        msg = f"{metafunc.definition.nodeid}: sqlite_only needs a reason"
        raise pytest.UsageError(msg)
    names = SQLITE_CONFIGURATIONS if marker is not None else CONFIGURATIONS
    metafunc.parametrize("store_path", names, indirect=True)


@pytest.fixture
def store_path(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database path (or URL) of the configuration under test."""
    if request.param == "memory":
        return ":memory:"
    if request.param == "postgres":
        server: PgServer = request.getfixturevalue("pg_server")
        return server.url
    return str(tmp_path / "events.db")


@pytest.fixture
def backend(store_path: str) -> str:
    """The backend under test: ``"sqlite"`` or ``"postgres"``."""
    return "postgres" if is_postgres_url(store_path) else "sqlite"


@pytest.fixture
def store_options(request: pytest.FixtureRequest, backend: str) -> dict[str, Any]:
    """Options every store of the configuration needs (PostgreSQL: a fresh
    schema for this test)."""
    if backend == "postgres":
        return {"pg_schema": request.getfixturevalue("pg_schema")}
    return {}


@pytest.fixture(params=["full", "normal"])
def synchronous(request: pytest.FixtureRequest) -> str:
    """The SQLite durability level, for tests where it matters."""
    return str(request.param)


@pytest.fixture
def make_store(
    store_path: str, store_options: dict[str, Any]
) -> Iterator[Callable[..., EventStore]]:
    """Build initialised stores on the configuration's path; shut them all
    down after the test.

    ``make_store(**options)`` passes options to ``EventStore``;
    ``make_store(initialize=False)`` returns a store not yet initialised.
    """
    stores: list[EventStore] = []

    def make(*, initialize: bool = True, **options: Any) -> EventStore:
        store = EventStore(store_path, **{**store_options, **options})
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


class OutsideWriter:
    """Another connection to a store's database that can take the store's
    write lock, whatever the backend: ``execute("BEGIN IMMEDIATE")`` takes
    SQLite's write lock, or on PostgreSQL opens a transaction locking the
    events table against inserts; the store's next commit then waits until
    ``execute("ROLLBACK")``. Other statements pass through."""

    def __init__(self, store: EventStore) -> None:
        config = store.config
        self._pg: Any = None
        self._sqlite: sqlite3.Connection | None = None
        if is_postgres_url(config.database_path):
            import psycopg

            self._pg = psycopg.connect(config.database_path, autocommit=True)
            # Blocks inserts, not reads nor the head row: the writer waits
            # where SQLite's would, at its commit, with its request taken.
            self._lock = (
                f'LOCK TABLE "{config.pg_schema}".events IN SHARE ROW EXCLUSIVE MODE'
            )
        else:
            import sqlite3

            self._sqlite = sqlite3.connect(
                store.path, isolation_level=None, check_same_thread=False
            )

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open."""
        if self._sqlite is not None:
            return self._sqlite.in_transaction
        return bool(self._pg.info.transaction_status != 0)  # 0: idle

    def execute(self, statement: str) -> Any:
        """Run ``statement`` (``BEGIN IMMEDIATE``: take the write lock)."""
        if self._sqlite is not None:
            return self._sqlite.execute(statement)
        if statement == "BEGIN IMMEDIATE":
            self._pg.execute("BEGIN")
            return self._pg.execute(self._lock)
        return self._pg.execute(statement)

    def close(self) -> None:
        """Close the connection (rolling back what is open)."""
        if self._sqlite is not None:
            self._sqlite.close()
        else:
            self._pg.close()


def outside_writer(store: EventStore) -> OutsideWriter:
    """Another connection that can hold ``store``'s write lock (see
    :class:`OutsideWriter`)."""
    return OutsideWriter(store)
