"""User pragmas tune the store; they never override what it relies on.

``pragmas`` that would change durability, journaling, locking, checkpoints,
the schema's rules or the file's identity raise ``InvalidConfigError`` at
``initialize()`` (before any connection is made, leaving no lock); the
writing connection's effective settings are read back to prove it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import EventStore, InvalidConfigError, create_task_created_event
from swarmlog.actors.sqlite.storage import RESERVED_PRAGMAS, SQLiteWriteStorage

if TYPE_CHECKING:
    from pathlib import Path

_RELIED_ON = {
    "synchronous": "OFF",
    "journal_mode": "DELETE",
    "locking_mode": "EXCLUSIVE",
    "query_only": 1,
    "wal_autocheckpoint": 1000,
    "foreign_keys": 1,
    "ignore_check_constraints": 1,
    "writable_schema": 1,
    "application_id": 7,
    "user_version": 9,
    "schema_version": 3,
}


@pytest.mark.parametrize(("name", "value"), _RELIED_ON.items(), ids=repr)
def test_a_pragma_the_store_relies_on_is_refused(
    tmp_path: Path, name: str, value: Any
) -> None:
    """InvalidConfigError names the pragma; the file stays free to open."""
    path = tmp_path / "p.db"
    store = EventStore(path, pragmas={name: value})
    with pytest.raises(InvalidConfigError, match=name):
        store.initialize()
    store.shutdown()
    with EventStore(path) as again:
        assert again.append(create_task_created_event("t", "b", "T", "", "low"))


def test_every_relied_on_pragma_is_listed() -> None:
    """The test covers the whole reserved list and the list covers the issue's."""
    assert set(_RELIED_ON) == set(RESERVED_PRAGMAS)


def test_names_are_refused_in_any_case(tmp_path: Path) -> None:
    """SQLite pragma names are case-insensitive, so is the check."""
    store = EventStore(tmp_path / "p.db", pragmas={"Synchronous": "OFF"})
    with pytest.raises(InvalidConfigError, match="Synchronous"):
        store.initialize()
    store.shutdown()


def test_the_issue_example_is_refused(tmp_path: Path) -> None:
    """The combination that once silently turned durability off."""
    pragmas = {
        "synchronous": "OFF",
        "journal_mode": "DELETE",
        "locking_mode": "EXCLUSIVE",
    }
    store = EventStore(tmp_path / "p.db", pragmas=pragmas)
    with pytest.raises(InvalidConfigError):
        store.initialize()
    store.shutdown()


@pytest.mark.parametrize(("synchronous", "level"), [("full", 2), ("normal", 1)])
def test_effective_pragmas_of_the_writing_connection(
    tmp_path: Path, synchronous: str, level: int
) -> None:
    """With tuning pragmas given, the writer still runs WAL, the configured
    synchronous level, normal locking, writable, no auto-checkpoint, no
    foreign keys; the tuning pragma took effect."""
    EventStore(tmp_path / "p.db").initialize().shutdown()  # create the file
    storage = SQLiteWriteStorage(
        str(tmp_path / "p.db"), synchronous, {"cache_size": -4000, "mmap_size": 0}
    )
    try:
        effective = storage.effective_pragmas(
            [
                "journal_mode",
                "synchronous",
                "locking_mode",
                "query_only",
                "wal_autocheckpoint",
                "foreign_keys",
                "cache_size",
            ]
        )
    finally:
        storage.close()
    assert effective == {
        "journal_mode": "wal",
        "synchronous": level,
        "locking_mode": "normal",
        "query_only": 0,
        "wal_autocheckpoint": 0,
        "foreign_keys": 0,
        "cache_size": -4000,
    }
