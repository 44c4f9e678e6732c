"""Store format 2: files of format 1 are migrated once, all or nothing."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest

from swarmlog import (
    EventDecodeError,
    EventStore,
    IncompatibleStoreError,
    create_agent_spawned_event,
    create_agent_started_event,
)
from swarmlog.schema import sql

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from swarmlog import Event

_DOWNGRADE_2_TO_1 = (
    "DROP TABLE lineage",
    "DROP INDEX events_by_cause",
    "DROP INDEX events_by_correlation",
    "ALTER TABLE events DROP COLUMN cause",
    "ALTER TABLE events DROP COLUMN correlation_id",
)
"""Undo what format 2 added to format 1."""


def _format_1(path: Path) -> list[Event]:
    """A store file as format 1 wrote it: no lineage table, no why-query
    columns or indexes (built from a current file by undoing what format 2
    added). Its events: a2 spawned, a1 spawned, then a1 started, caused by
    its spawn (under an upper-case spelling of its id) in conversation
    "c-1", and a2 started, caused by an outside command."""
    with EventStore(path) as store:
        other = store.append(create_agent_spawned_event("a2", "coder", "core"))
        spawned = store.append(
            create_agent_spawned_event("a1", "coder", "core", correlation_id="c-1")
        )
        started = store.append(
            create_agent_started_event(
                "a1", causation_id=str(spawned.id).upper(), correlation_id="c-1"
            )
        )
        by_command = store.append(
            create_agent_started_event("a2", causation_id="command-1")
        )
        events = [other, spawned, started, by_command]
    conn = sqlite3.connect(path)
    try:
        for statement in _DOWNGRADE_2_TO_1:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.commit()
    finally:
        conn.close()
    return events


def _layout(path: Path) -> tuple[int, set[str]]:
    conn = sqlite3.connect(path)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    return version, names


def test_a_format_1_file_is_migrated_once(tmp_path: Path) -> None:
    """A writing store migrates a format 1 file to the current format on
    open, keeping every event; later opens change nothing."""
    path = tmp_path / "old.db"
    events = _format_1(path)
    assert _layout(path)[0] == 1
    for _ in range(2):
        with EventStore(path) as store:
            assert list(store.replay()) == events
            assert store.get_stats().lineage == ()
        version, names = _layout(path)
        assert version == sql.FORMAT_VERSION
        assert {"lineage", "events_by_cause", "events_by_correlation"} <= names


def test_the_migration_fills_the_why_query_columns(tmp_path: Path) -> None:
    """Causes and correlations of events stored before format 2 are found
    by the why-queries after the migration."""
    path = tmp_path / "old.db"
    other, spawned, started, by_command = _format_1(path)
    with EventStore(path) as store:
        assert store.get_causal_chain(started.id) == [spawned, started]
        assert store.get_consequences(spawned.id) == [started]
        assert store.get_consequences("command-1") == [by_command]
        assert store.get_correlated("c-1") == [spawned, started]
        assert store.get_causal_chain(other.id) == [other]


def test_a_read_only_store_refuses_a_format_1_file(tmp_path: Path) -> None:
    """Read-only stores never migrate: an IncompatibleStoreError saying how
    to migrate, and the file stays at format 1."""
    path = tmp_path / "old.db"
    _format_1(path)
    with pytest.raises(IncompatibleStoreError, match="open it once with a writing"):
        EventStore(path, read_only=True).initialize()
    assert _layout(path)[0] == 1


def test_a_failing_migration_changes_nothing(
    tmp_path: Path, failed_migration: Callable[[Path, int], None]
) -> None:
    """A step that fails (here after the real ones) rolls the whole
    migration back: format 1, no lineage table, every event kept."""
    path = tmp_path / "old.db"
    events = _format_1(path)
    failed_migration(path, 1)
    version, names = _layout(path)
    assert version == 1
    assert not {"lineage", "events_by_cause"} & names
    with EventStore(path) as store:
        assert list(store.replay()) == events


def test_a_damaged_envelope_stops_the_migration(tmp_path: Path) -> None:
    """An envelope the backfill cannot read is an EventDecodeError naming
    its position; the file stays at format 1, unchanged."""
    path = tmp_path / "old.db"
    _format_1(path)
    conn = sqlite3.connect(path)
    try:
        conn.execute("UPDATE events SET data = x'c1' WHERE position = 2")
        conn.commit()
    finally:
        conn.close()
    store = EventStore(path)
    try:
        with pytest.raises(EventDecodeError) as caught:
            store.initialize()
    finally:
        store.shutdown()
    assert caught.value.position == 2
    assert _layout(path)[0] == 1
