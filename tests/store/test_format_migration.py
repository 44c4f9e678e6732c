"""Store format 2: files of format 1 are migrated once, all or nothing."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest

from swarmlog import (
    EventStore,
    IncompatibleStoreError,
    create_agent_spawned_event,
    create_agent_started_event,
)
from swarmlog.actors import sqlite_storage
from swarmlog.schema import sql

if TYPE_CHECKING:
    from pathlib import Path

    from swarmlog import Event

_DOWNGRADE_2_TO_1 = ("DROP TABLE lineage",)
"""Undo what format 2 added to format 1."""


def _format_1(path: Path) -> list[Event]:
    """A store file as format 1 wrote it: no lineage table (built from a
    current file by undoing what format 2 added)."""
    with EventStore(path) as store:
        spawned = store.append(create_agent_spawned_event("a1", "coder", "core"))
        started = store.append(
            create_agent_started_event("a1", causation_id=str(spawned.id))
        )
        events = [spawned, started]
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
        assert "lineage" in names


def test_a_read_only_store_refuses_a_format_1_file(tmp_path: Path) -> None:
    """Read-only stores never migrate: an IncompatibleStoreError saying how
    to migrate, and the file stays at format 1."""
    path = tmp_path / "old.db"
    _format_1(path)
    with pytest.raises(IncompatibleStoreError, match="open it once with a writing"):
        EventStore(path, read_only=True).initialize()
    assert _layout(path)[0] == 1


def test_a_failing_migration_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that fails (here after the real ones) rolls the whole
    migration back: format 1, no lineage table, every event kept."""
    path = tmp_path / "old.db"
    events = _format_1(path)

    def explode(conn: sqlite3.Connection) -> None:
        raise RuntimeError("migration step failed")

    steps = (*sqlite_storage._MIGRATIONS[1], explode)
    monkeypatch.setitem(sqlite_storage._MIGRATIONS, 1, steps)
    store = EventStore(path)
    try:
        with pytest.raises(RuntimeError, match="migration step failed"):
            store.initialize()
    finally:
        store.shutdown()
    version, names = _layout(path)
    assert version == 1
    assert "lineage" not in names
    monkeypatch.undo()
    with EventStore(path) as store:
        assert list(store.replay()) == events
