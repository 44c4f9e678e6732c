"""Fixtures for the PostgreSQL-specific tests: stores and raw write
storages on a fresh schema of the session's server (``tests/conftest.py``)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import EventStore, create_agent_started_event
from swarmlog.schema.codec import prepare_event

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import psycopg

    from swarmlog.actors.postgres.write import PostgresWriteStorage
    from tests.pg_server import PgServer

TIMEOUT = 10.0


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The session server's URL."""
    return pg_server.url


@pytest.fixture
def make_pg_store(pg_url: str, pg_schema: str) -> Iterator[Callable[..., EventStore]]:
    """``make(**options)``: an initialised store on this test's schema (all
    shut down after the test; ``initialize=False`` leaves it new)."""
    stores: list[EventStore] = []

    def make(*, initialize: bool = True, **options: Any) -> EventStore:
        options.setdefault("pg_schema", pg_schema)
        store = EventStore(options.pop("url", pg_url), **options)
        stores.append(store)
        return store.initialize() if initialize else store

    yield make
    for store in reversed(stores):
        store.shutdown()


@pytest.fixture
def make_writer(
    pg_url: str, pg_schema: str
) -> Iterator[Callable[..., PostgresWriteStorage]]:
    """``make(**options)``: a raw writing connection on this test's schema
    (closed after the test)."""
    from swarmlog.actors.postgres.write import PostgresWriteStorage

    writers: list[PostgresWriteStorage] = []

    def make(**options: Any) -> PostgresWriteStorage:
        writer = PostgresWriteStorage(pg_url, pg_schema, **options)
        writers.append(writer)
        return writer

    yield make
    for writer in writers:
        writer.close()


def rows(first: int, count: int, prefix: str = "a") -> list[tuple[Any, ...]]:
    """``count`` one-event rows at positions ``first``... (a new aggregate
    each, version 1)."""
    return [
        prepare_event(create_agent_started_event(f"{prefix}{first + i}"), 1 << 20).row(
            1, first + i
        )
        for i in range(count)
    ]


def lock_waiter(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """The pid of the swarmlog session waiting for a lock (bounded wait),
    seen through ``conn``."""
    done = threading.Event()
    for _ in range(int(TIMEOUT / 0.01)):
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'swarmlog' "
            "AND wait_event_type = 'Lock'"
        ).fetchone()
        if row is not None:
            return int(str(row[0]))
        done.wait(0.01)
    pytest.fail("the writer never waited for the head")
