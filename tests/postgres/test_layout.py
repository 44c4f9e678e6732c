"""The store's schema on PostgreSQL: created when missing, checked,
migrated all or nothing, refused when newer or foreign."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import psycopg
import pytest

from swarmlog import (
    EventStore,
    IncompatibleStoreError,
    StoreOpenError,
    create_agent_started_event,
)
from swarmlog.actors.postgres import layout

if TYPE_CHECKING:
    from collections.abc import Callable


def _execute(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def _format(url: str, schema: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(f'SELECT format FROM "{schema}".store_format').fetchone()
    assert row is not None
    return int(row[0])


def test_initialize_creates_the_schema_and_records_the_layout(
    make_pg_store: Callable[..., EventStore], pg_url: str, pg_schema: str
) -> None:
    """A missing schema is created with its tables and layout version; a
    second store finds it and appends after the first's events."""
    with make_pg_store(initialize=False) as store:
        store.append(create_agent_started_event("a1"))
    assert _format(pg_url, pg_schema) == layout.FORMAT_VERSION
    with make_pg_store(initialize=False) as again:
        assert again.append(create_agent_started_event("a1")).position == 2


def test_two_schemas_are_two_stores(
    make_pg_store: Callable[..., EventStore], pg_schema: str
) -> None:
    """Stores in different schemas of one database never see each other."""
    one = make_pg_store()
    two = make_pg_store(pg_schema=f"{pg_schema}_b")
    try:
        one.append(create_agent_started_event("a1"))
        assert two.get_stats().total_events == 0
        assert two.append(create_agent_started_event("a1")).position == 1
    finally:
        two.shutdown()
        _execute(one.config.database_path, f'DROP SCHEMA "{pg_schema}_b" CASCADE')


@pytest.mark.parametrize("read_only", [False, True])
def test_a_newer_layout_is_refused(
    make_pg_store: Callable[..., EventStore],
    pg_url: str,
    pg_schema: str,
    read_only: bool,
) -> None:
    """A layout newer than this code is never opened, not even to read."""
    make_pg_store().shutdown()
    _execute(pg_url, f'UPDATE "{pg_schema}".store_format SET format = 99')
    with pytest.raises(IncompatibleStoreError, match="newer"):
        make_pg_store(read_only=read_only)


def test_a_read_only_store_needs_an_existing_store(
    make_pg_store: Callable[..., EventStore],
) -> None:
    """read_only=True never creates the schema."""
    with pytest.raises(StoreOpenError, match="no swarmlog store"):
        make_pg_store(read_only=True)


def test_a_schema_holding_other_tables_is_refused(
    make_pg_store: Callable[..., EventStore], pg_url: str, pg_schema: str
) -> None:
    """Tables of something else under our names are never adopted."""
    _execute(pg_url, f'CREATE SCHEMA "{pg_schema}"')
    _execute(pg_url, f'CREATE TABLE "{pg_schema}".events (x int)')
    with pytest.raises(IncompatibleStoreError, match="not a swarmlog store"):
        make_pg_store()


class TestMigration:
    """An older layout is migrated once, in one transaction."""

    def test_an_older_layout_is_migrated(
        self,
        make_pg_store: Callable[..., EventStore],
        pg_url: str,
        pg_schema: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Opening with a newer layout runs the steps and records it."""
        with make_pg_store(initialize=False) as store:
            store.append(create_agent_started_event("a1"))
        step = f'CREATE TABLE "{pg_schema}".extra (x int)'
        monkeypatch.setattr(layout, "FORMAT_VERSION", 2)
        monkeypatch.setitem(layout.MIGRATIONS, 1, (step,))
        with make_pg_store(initialize=False) as store:
            assert store.get_stats().total_events == 1
        assert _format(pg_url, pg_schema) == 2

    def test_a_failed_migration_changes_nothing(
        self,
        make_pg_store: Callable[..., EventStore],
        pg_url: str,
        pg_schema: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A step that fails after others ran leaves the old layout whole."""
        make_pg_store().shutdown()

        def explode(conn: object, statements: object) -> None:
            raise RuntimeError("migration step failed")

        step = f'CREATE TABLE "{pg_schema}".extra (x int)'
        monkeypatch.setattr(layout, "FORMAT_VERSION", 2)
        monkeypatch.setitem(layout.MIGRATIONS, 1, (step, explode))
        with pytest.raises(RuntimeError, match="migration step failed"):
            make_pg_store()
        assert _format(pg_url, pg_schema) == 1
        with psycopg.connect(pg_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT to_regclass(%s)", (f'"{pg_schema}".extra',)
            ).fetchone()
        assert row == (None,)

    def test_an_older_layout_is_refused_read_only(
        self,
        make_pg_store: Callable[..., EventStore],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A read-only store never migrates: it asks for a writing store."""
        make_pg_store().shutdown()
        monkeypatch.setattr(layout, "FORMAT_VERSION", 2)
        with pytest.raises(IncompatibleStoreError, match="older"):
            make_pg_store(read_only=True)


def test_stores_opening_a_new_schema_at_once_all_succeed(
    make_pg_store: Callable[..., EventStore], pg_url: str, pg_schema: str
) -> None:
    """Several stores creating the same missing schema at once: one creates
    it (under an advisory lock), the others find it; none fails."""
    stores = [make_pg_store(initialize=False) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    failures: list[BaseException] = []

    def open_one(store: EventStore) -> None:
        try:
            barrier.wait(10)
            store.initialize()
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=open_one, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert _format(pg_url, pg_schema) == layout.FORMAT_VERSION
