"""The writer's idle-time WAL checkpoint: when it runs, and that it keeps
the WAL of a busy FULL store from growing without bound."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import EventStore, create_agent_spawned_event
from swarmlog.actors.wal_upkeep import WalUpkeep

if TYPE_CHECKING:
    from pathlib import Path


class _Storage:
    def __init__(self) -> None:
        self.checkpoints = 0

    def checkpoint_passive(self) -> None:
        self.checkpoints += 1


def _commit(upkeep: WalUpkeep, times: int) -> bool:
    forced = False
    for _ in range(times):
        forced = upkeep.committed()
    return forced


def test_idle_checkpoint_after_every_commits() -> None:
    upkeep, storage = WalUpkeep(), _Storage()
    upkeep.every = 10
    _commit(upkeep, 9)
    assert not upkeep.due
    upkeep.checkpoint_if_due(storage, busy=False)  # type: ignore[arg-type]
    assert storage.checkpoints == 0
    _commit(upkeep, 1)
    assert upkeep.due
    upkeep.checkpoint_if_due(storage, busy=True)  # type: ignore[arg-type]
    assert storage.checkpoints == 0  # somebody waits: not yet
    upkeep.checkpoint_if_due(storage, busy=False)  # type: ignore[arg-type]
    assert storage.checkpoints == 1
    assert not upkeep.due


def test_forced_at_twice_every_even_when_busy() -> None:
    upkeep, storage = WalUpkeep(), _Storage()
    upkeep.every = 1500
    assert not _commit(upkeep, 2999)
    upkeep.checkpoint_if_due(storage, busy=True)  # type: ignore[arg-type]
    assert storage.checkpoints == 0
    assert upkeep.committed()  # the 3000th commit forces it
    upkeep.checkpoint_if_due(storage, busy=True)  # type: ignore[arg-type]
    assert storage.checkpoints == 1


def test_never_forced_before_2000_commits() -> None:
    """A small idle-time figure (FULL: 250) makes idle checkpoints
    frequent, not forced ones: a forced one holds every waiting append."""
    upkeep, storage = WalUpkeep(), _Storage()
    upkeep.every = 250
    assert not _commit(upkeep, 1999)
    upkeep.checkpoint_if_due(storage, busy=True)  # type: ignore[arg-type]
    assert storage.checkpoints == 0
    upkeep.checkpoint_if_due(storage, busy=False)  # type: ignore[arg-type]
    assert storage.checkpoints == 1  # idle: long due
    assert not _commit(upkeep, 1999)
    assert upkeep.committed()  # the 2000th since
    upkeep.checkpoint_if_due(storage, busy=True)  # type: ignore[arg-type]
    assert storage.checkpoints == 2


def test_zero_means_never() -> None:
    upkeep, storage = WalUpkeep(), _Storage()
    upkeep.every = 0
    assert not _commit(upkeep, 5000)
    assert not upkeep.due
    upkeep.checkpoint_if_due(storage, busy=False)  # type: ignore[arg-type]
    assert storage.checkpoints == 0


@pytest.mark.parametrize(("synchronous", "every"), [("full", 250), ("normal", 1000)])
def test_sqlite_writer_folds_by_durability(
    tmp_path: Path, synchronous: str, every: int
) -> None:
    """FULL restarts the WAL sooner (each commit syncs it; a growing WAL
    also journals its size), NORMAL less often."""
    store = EventStore(str(tmp_path / "s.db"), synchronous=synchronous).initialize()
    try:
        committer: Any = store._wiring.committer
        assert committer._wal.every == every
    finally:
        store.shutdown()


def test_busy_full_store_keeps_its_wal_bounded(tmp_path: Path) -> None:
    """One caller appending 1200 events one by one: the writer restarts the
    WAL on its own (no interval, no size trigger), so the WAL holds a few
    hundred commits at most, not all 1200."""
    path = str(tmp_path / "s.db")
    store = EventStore(
        path,
        synchronous="full",
        auto_persist_interval=0,
        wal_checkpoint_bytes=1 << 40,
    ).initialize()
    try:
        first = store.append(create_agent_spawned_event("a", "coder", "x"))
        wal = path + "-wal"
        one_commit = os.path.getsize(wal)  # the first commit's frames
        for i in range(1200):
            store.append(create_agent_spawned_event(f"a{i}", "coder", "x"))
        assert first.position == 1
        assert os.path.getsize(wal) < 600 * one_commit
    finally:
        store.shutdown()
