"""Helpers shared by the reliability tests (fixtures live in conftest.py)."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import EventStore
from tests.backends import location

if TYPE_CHECKING:
    from pathlib import Path

    from swarmlog import Event, SwarmlogError

TIMEOUT = 10.0
"""Seconds a wait may take before the test is declared hung (never a delay)."""
CRASH_TIMEOUT = 30.0
"""Seconds a crash test's wait for a killed child may take (a hang guard)."""


def open_refused(
    path: str, error: type[SwarmlogError], match: str | None = None, **options: Any
) -> SwarmlogError:
    """Assert that opening ``path`` raises ``error``; return it.

    The store is shut down whatever happens, so that a store that opens by
    mistake cannot leave its (non-daemon) actor threads behind.
    """
    store = EventStore(path, **options)
    try:
        with pytest.raises(error, match=match) as info:
            store.initialize()
    finally:
        store.shutdown()
    return info.value


def assert_intact(store: EventStore, known: list[Event]) -> None:
    """Exactly the known events are stored: nothing lost, nothing added."""
    assert list(store.replay()) == known
    assert store.head_position == len(known)


class Recorder:
    """A listener callback that records its calls and can be waited on."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, *args: Any) -> None:
        with self._cond:
            self.calls.append(args[0] if len(args) == 1 else args)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = TIMEOUT) -> list[Any]:
        """Block until at least ``count`` calls were recorded; return them."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.calls) >= count, timeout)
            calls = list(self.calls)
        assert ok, f"only {len(calls)} of {count} listener calls within {timeout}s"
        return calls


class CrashTarget:
    """Where a crash test's stores live, on one backend (``kind``: ``file``
    or ``postgres``, see ``tests/backends.py``), and what a SIGKILLed child
    leaves behind there.

    On PostgreSQL the server may still commit what a killed process sent
    last (it notices the closed socket only when it answers):
    :meth:`settle` waits until the child's sessions ended before the test
    looks. Each store after the first gets a fresh schema, dropped at
    :meth:`close`.
    """

    def __init__(self, request: pytest.FixtureRequest, kind: str, folder: Path) -> None:
        self.kind = kind
        self._request = request
        self._folder = folder
        self._schemas: list[str] = []
        self._used = False

    @property
    def postgres(self) -> bool:
        """Whether the stores are on PostgreSQL."""
        return self.kind == "postgres"

    def store(self, name: str) -> tuple[str, dict[str, Any]]:
        """``(path or URL, options)`` of a new empty store."""
        if self.postgres and self._used:
            server = self._request.getfixturevalue("pg_server")
            schema = server.fresh_schema()
            self._schemas.append(schema)
            return server.url, {"pg_schema": schema}
        self._used = True
        return location(self._request, self.kind, self._folder, name)

    def sessions(self) -> frozenset[int]:
        """The server's swarmlog sessions now (nothing on SQLite): take it
        before starting a child, hand it to :meth:`settle` after the kill."""
        if not self.postgres:
            return frozenset()
        return frozenset(self._swarmlog_sessions())

    def settle(self, before: frozenset[int]) -> None:
        """Block (bounded) until the swarmlog sessions opened since
        ``before`` ended: a killed child's last commit is decided."""
        if not self.postgres:
            return
        pause = threading.Event()
        deadline = time.monotonic() + CRASH_TIMEOUT
        while left := self._swarmlog_sessions() - before:
            assert time.monotonic() < deadline, f"sessions {left} never ended"
            pause.wait(0.01)

    def _swarmlog_sessions(self) -> set[int]:
        import psycopg

        url = self._request.getfixturevalue("pg_server").url
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity "
                "WHERE application_name LIKE 'swarmlog%%'"
            ).fetchall()
        return {int(row[0]) for row in rows}

    def projection_position(self, path: str, options: dict[str, Any], name: str) -> int:
        """The position of projection ``name``'s stored snapshot (0: none),
        read beside the store."""
        if self.postgres:
            import psycopg

            schema = options["pg_schema"]
            with psycopg.connect(path, autocommit=True) as conn:
                row = conn.execute(
                    f'SELECT position FROM "{schema}".projection_checkpoints '
                    "WHERE name = %s",
                    (name.encode(),),
                ).fetchone()
        else:
            sqlite = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                row = sqlite.execute(
                    "SELECT position FROM projection_checkpoints WHERE name = ?",
                    (name,),
                ).fetchone()
            finally:
                sqlite.close()
        return 0 if row is None else int(str(row[0]))

    def check_integrity(self, path: str) -> None:
        """SQLite's ``PRAGMA integrity_check`` passes (the server keeps
        PostgreSQL's pages: nothing to check from outside)."""
        if self.postgres:
            return
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            conn.close()

    def close(self) -> None:
        """Drop the schemas made after the first (the fixture drops that)."""
        if self._schemas:
            server = self._request.getfixturevalue("pg_server")
            for schema in self._schemas:
                server.drop_schema(schema)
