"""A store that fails to open leaves no SQLite connection open behind it
(Python 3.13 reports each one as a ResourceWarning; a server process that
retries would leak file descriptors)."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import EventStore, IncompatibleStoreError
from swarmlog.actors.sqlite import reading, storage

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[sqlite3.Connection]:
    """Every connection the store's SQLite modules open from now on."""
    made: list[sqlite3.Connection] = []
    real = storage.connect

    def recording(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real(*args, **kwargs)
        made.append(conn)
        return conn

    monkeypatch.setattr(storage, "connect", recording)
    monkeypatch.setattr(reading, "connect", recording)
    return made


def _closed(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


def _not_a_store(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("read_only", [False, True])
def test_a_refused_file_leaves_no_connection_open(
    tmp_path: Path, opened: list[sqlite3.Connection], read_only: bool
) -> None:
    path = tmp_path / "other.db"
    _not_a_store(path)
    store = EventStore(path, read_only=read_only)
    with pytest.raises(IncompatibleStoreError):
        store.initialize()
    store.shutdown()
    assert opened
    assert all(_closed(conn) for conn in opened)


def test_a_failing_open_step_leaves_no_connection_open(
    tmp_path: Path, opened: list[sqlite3.Connection], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the failure (here not an SQLite error) in the writer's open."""

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("open step failed")

    monkeypatch.setattr(storage, "check_format", explode)
    store = EventStore(tmp_path / "s.db")
    with pytest.raises(RuntimeError, match="open step failed"):
        store.initialize()
    store.shutdown()
    assert opened
    assert all(_closed(conn) for conn in opened)
