"""Two processes on one store file: one writer at a time, read-only watchers.

A second writing store is refused with ``StoreLockedError`` (never two
writers assigning the same positions or versions), whether the other writer
lives in another process or in this one; a SIGKILLed writer leaves no stale
lock; a ``read_only`` store (what ``swarmlog tail`` uses) works while
another process writes and sees the new events.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog import (
    EventStore,
    ReadOnlyStoreError,
    StoreLockedError,
    create_task_created_event,
)

from .support import open_refused

if TYPE_CHECKING:
    from swarmlog import Event

PEER = Path(__file__).with_name("peer_child.py")
TIMEOUT = 30.0


class Peer:
    """Another process with the store open, driven one command at a time."""

    def __init__(self, path: str, *, read_only: bool = False) -> None:
        args = [sys.executable, str(PEER), path]
        if read_only:
            args.append("read_only")
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.opened = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(TIMEOUT)
            assert self.proc.stderr is not None
            pytest.fail(f"peer died: {self.proc.stderr.read()[-3000:]}")
        return msgspec.json.decode(line)  # type: ignore[no-any-return]

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(msgspec.json.encode(command).decode() + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None and self.opened.get("open") == "ok":
            assert self.ask(op="exit") == {"closed": True}
        self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(TIMEOUT)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(BrokenPipeError):
                    stream.close()


def _created(i: int) -> Event:
    return create_task_created_event(f"here-{i}", "build", f"T{i}", "", "high")


def _positions(path: str) -> list[int]:
    with EventStore(path, read_only=True) as store:
        return [e.position for e in store.replay()]


def test_second_writer_in_another_process_is_refused(tmp_path: Path) -> None:
    """While this process writes, another process's writer gets StoreLockedError."""
    path = str(tmp_path / "shared.db")
    with EventStore(path) as store:
        for i in range(3):
            store.append(_created(i))
        peer = Peer(path)
        try:
            assert peer.opened["open"] == "error"
            assert peer.opened["t"] == "StoreLockedError"
            assert peer.opened["path"] == path
            assert "read_only=True" in peer.opened["m"]
        finally:
            peer.kill()
        assert store.append(_created(3)).position == 4  # this writer unharmed
    peer = Peer(path)  # the lock is free again after shutdown
    try:
        assert peer.opened == {"open": "ok", "head": 4}
        assert peer.ask(op="append", n=2, agg="peer")["positions"] == [5, 6]
    finally:
        peer.close()
    assert _positions(path) == [1, 2, 3, 4, 5, 6]


def test_writer_in_another_process_refuses_this_one(tmp_path: Path) -> None:
    """While another process writes, a writer here gets StoreLockedError."""
    path = str(tmp_path / "shared.db")
    peer = Peer(path)
    try:
        assert peer.ask(op="append", n=5, agg="peer")["positions"] == [1, 2, 3, 4, 5]
        refused = open_refused(path, StoreLockedError, "locked by another")
        assert isinstance(refused, StoreLockedError)
        assert refused.path == path
        assert peer.ask(op="append", n=2, agg="peer")["positions"] == [6, 7]
    finally:
        peer.close()
    with EventStore(path) as store:
        assert store.append(_created(0)).position == 8
    assert _positions(path) == list(range(1, 9))


def test_second_writer_in_this_process_is_refused(tmp_path: Path) -> None:
    """Two writing stores on one file in one process: the second is refused."""
    path = str(tmp_path / "shared.db")
    with EventStore(path) as first:
        first.append(_created(0))
        open_refused(path, StoreLockedError)
        assert first.append(_created(1)).position == 2


def test_sigkilled_writer_leaves_no_stale_lock(tmp_path: Path) -> None:
    """After the writing process is SIGKILLed the file opens at once, intact."""
    path = str(tmp_path / "shared.db")
    peer = Peer(path)
    ids = peer.ask(op="append", n=5, agg="peer")["ids"]
    peer.kill()
    with EventStore(path) as store:
        assert [e.id.hex for e in store.replay()] == ids
        assert store.append(_created(0)).position == 6


def test_read_only_process_follows_this_writer(tmp_path: Path) -> None:
    """A read_only store in another process sees new events and cannot write."""
    path = str(tmp_path / "shared.db")
    store = EventStore(path).initialize()
    ids = [store.append(_created(i)).id.hex for i in range(2)]
    watcher = Peer(path, read_only=True)
    try:
        assert watcher.opened == {"open": "ok", "head": 2}
        for round_no in range(3):
            ids += [
                store.append(_created(100 * round_no + i)).id.hex for i in range(20)
            ]
            seen = watcher.ask(op="wait_head", n=len(ids))
            assert seen == {"head": len(ids), "ids": ids}
        refused = watcher.ask(op="try_append")
        assert refused["t"] == ReadOnlyStoreError.__name__
        ids.append(store.append(_created(999)).id.hex)  # the writer is unharmed
        store.shutdown()  # checkpoints the WAL while the watcher is open
        seen = watcher.ask(op="wait_head", n=len(ids))
        assert seen == {"head": len(ids), "ids": ids}
    finally:
        store.shutdown()
        watcher.close()


def test_read_only_store_here_while_another_process_writes(tmp_path: Path) -> None:
    """Reads here during another process's appends see gap-free, growing prefixes."""
    path = str(tmp_path / "shared.db")
    writer = Peer(path)
    try:
        writer.ask(op="append", n=1, agg="first")
        with EventStore(path, read_only=True) as reader:
            assert writer.proc.stdin is not None
            writer.proc.stdin.write('{"op": "append_loop", "n": 1500}\n')
            writer.proc.stdin.flush()
            heads = []
            while writer.proc.poll() is None and (not heads or heads[-1] < 1501):
                events = list(reader.replay())
                positions = [e.position for e in events]
                assert positions == list(range(1, len(positions) + 1))
                assert not heads or len(positions) >= heads[-1]
                heads.append(len(positions))
                if len(heads) > 10_000:
                    break
            done = writer._read()
            assert done == {"done": 1500, "head": 1501}
            assert reader.head_position == 1501
            assert len(set(heads)) > 1  # it saw the log grow
            with pytest.raises(ReadOnlyStoreError):
                reader.append(_created(0))
    finally:
        writer.close()
