"""fork() with an open store, and one lock per real file.

After ``os.fork()`` the child must never use the parent's connections or
lock: every call on the inherited store raises ``ForkedStoreError`` (a
``StoreClosedError``), its ``shutdown()`` and the exit hook do nothing, and
the inherited lock descriptor is closed without unlocking, so the parent
goes on appending, shuts down and reopens the file while the child lives.
The child opens a store of its own once the parent let go of the file.

The lock is taken on the real path: a symlinked spelling of an open store's
file is refused with ``StoreLockedError`` instead of becoming a second
writer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from swarmlog import EventStore, StoreLockedError, create_task_created_event

from .support import open_refused

CHILD = Path(__file__).with_name("fork_child.py")
TIMEOUT = 60.0

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def test_a_forked_child_never_uses_the_parents_store(tmp_path: Path) -> None:
    """Every call in the child raises ForkedStoreError; the parent appends,
    shuts down and reopens while the child lives; then the child writes
    through a store of its own; nothing is lost or duplicated."""
    path = str(tmp_path / "fork.db")
    done = subprocess.run(
        [sys.executable, str(CHILD), path],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = msgspec.json.decode(done.stdout.strip().splitlines()[-1])
    child = record["child"]
    refused = {k: v for k, v in child.items() if k not in _NOT_CALLS}
    assert refused == dict.fromkeys(refused, "ForkedStoreError") | {
        "projection_query": "StoreClosedError"
    }
    assert child["shutdown"] == "ok"
    assert child["closed"] is True
    assert child["own_store_while_parent_open"] == "StoreLockedError"
    assert child["own_store"] == "ok"
    assert record["status"] == 0
    assert record["ids"] == [f"p{i}" for i in range(11)] + ["c0"]


_NOT_CALLS = {"shutdown", "closed", "own_store_while_parent_open", "own_store"}


def test_a_symlinked_file_meets_the_same_lock(tmp_path: Path) -> None:
    """A symlink to an open store's file is the same store: StoreLockedError."""
    real = tmp_path / "real.db"
    link = tmp_path / "link.db"
    with EventStore(real) as store:
        store.append(create_task_created_event("t1", "b", "T", "", "low"))
        link.symlink_to(real)
        open_refused(str(link), StoreLockedError)
        assert store.path == os.path.realpath(real)


def test_a_symlinked_folder_meets_the_same_lock(tmp_path: Path) -> None:
    """The same file reached through a symlinked folder: StoreLockedError."""
    folder = tmp_path / "data"
    folder.mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(folder, target_is_directory=True)
    with EventStore(alias / "x.db") as store:
        assert store.path == os.path.realpath(folder / "x.db")
        open_refused(str(folder / "x.db"), StoreLockedError)
