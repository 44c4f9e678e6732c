"""The harness of the PostgreSQL fault-under-load tests (test_load_faults):
``PROCESSES`` ``load_child.py`` processes on one store, the server's
sessions, and the check of every promise after the load.

:func:`verify` checks: positions exactly ``1..N``; every acknowledged
event stored once, at the position and version it was acknowledged with;
nothing stored that nobody acknowledged (except what a killed process had
in flight); contiguous versions per aggregate; and each live process's
projection got exactly ``1..N`` and its listener every position from its
first (``1`` for the appenders, which open before any append).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import psycopg

from swarmlog import EventStore, create_agent_started_event
from swarmlog.actors.postgres.feed import FEED_APPLICATION

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "PROCESSES",
    "STEP",
    "TIMEOUT",
    "TYPED_FAULTS",
    "Load",
    "LoadChild",
    "append_extra",
    "listen_sessions",
    "running_load",
    "swarmlog_sessions",
    "terminate_listen_sessions",
    "verify",
    "wait_listen_sessions",
]

CHILD = Path(__file__).with_name("load_child.py")
ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 4
TIMEOUT = 60.0
"""Seconds any wait on the children may take (a hang guard, never a delay)."""
STEP = 40
"""Acknowledged events each process makes between two phases of a test."""
TYPED_FAULTS = frozenset(
    {
        "StorageError",
        "StorageTimeoutError",
        "CommitOutcomeUnknownError",
        "LockTimeoutError",
    }
)
"""The errors an append may meet while the server or a connection fails."""


class LoadChild:
    """One ``load_child.py`` process and the JSON lines it reported."""

    def __init__(
        self,
        url: str,
        schema: str,
        index: int,
        stderr: Path,
        *,
        follower: bool,
        lock_timeout: float | None = None,
    ) -> None:
        config = {
            "url": url,
            "schema": schema,
            "index": index,
            "max_seconds": 240,
            "follower": follower,
            "lock_timeout": lock_timeout,
        }
        with stderr.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(CHILD), msgspec.json.encode(config).decode()],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        self.index = index
        self.follower = follower
        self.killed = False
        self.stderr = stderr
        self.acks: list[dict[str, Any]] = []
        self.faults: Counter[str] = Counter()  # typed errors of appends
        self.read_faults: Counter[str] = Counter()  # and of reads
        self.errors: list[dict[str, Any]] = []
        self.records: dict[str, dict[str, Any]] = {}  # last of each other kind
        self.eof = False
        self.cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, name=f"load-{index}")
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            record = msgspec.json.decode(line)
            with self.cond:
                kind = record["k"]
                if kind == "ack":
                    self.acks.append(record)
                elif kind == "fault":
                    self.faults[record["t"]] += 1
                elif kind == "rfault":
                    self.read_faults[record["t"]] += 1
                elif kind == "err":
                    self.errors.append(record)
                else:
                    self.records[kind] = record
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def wait_until(self, what: str, predicate: Callable[[LoadChild], bool]) -> None:
        """Block until ``predicate(self)`` (fail on an error report, an
        early exit, or TIMEOUT)."""
        with self.cond:
            ok = self.cond.wait_for(
                lambda: predicate(self) or bool(self.errors) or self.eof, TIMEOUT
            )
            errors, eof = list(self.errors), self.eof and not predicate(self)
        context = f"child {self.index} waiting for {what}"
        assert not errors, f"{context}: unexpected errors {errors[:3]}"
        assert not eof, f"{context}: exited early; {self._tail()}"
        assert ok, f"{context}: hung ({len(self.acks)} acks); {self._tail()}"

    def _tail(self) -> str:
        return f"stderr: {self.stderr.read_text()[-2000:]}"

    def close(self) -> None:
        """Kill the child if it still runs; collect its output."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


class Load:
    """``PROCESSES`` load children on one store."""

    def __init__(
        self, url: str, schema: str, folder: Path, lock_timeout: float | None = None
    ) -> None:
        with EventStore(url, pg_schema=schema):
            pass  # the schema exists before they race
        self._url, self._schema = url, schema
        self.head = 0  # the head the children were told to expect
        self._stderr = folder / "children.stderr"
        self.children = [
            LoadChild(
                url,
                schema,
                index,
                self._stderr,
                follower=False,
                lock_timeout=lock_timeout,
            )
            for index in range(PROCESSES)
        ]

    @property
    def live(self) -> list[LoadChild]:
        """The children not killed."""
        return [child for child in self.children if not child.killed]

    @property
    def appenders(self) -> list[LoadChild]:
        """The live children that append."""
        return [child for child in self.live if not child.follower]

    def kill(self, child: LoadChild) -> None:
        """SIGKILL ``child`` now; what it reported stays."""
        os.kill(child.proc.pid, signal.SIGKILL)
        child.close()
        child.killed = True

    def add_follower(self) -> LoadChild:
        """Start a read-only process now (mid-load); wait until it runs."""
        child = LoadChild(
            self._url, self._schema, len(self.children), self._stderr, follower=True
        )
        self.children.append(child)
        child.wait_until("ready", lambda c: "ready" in c.records)
        child.send("go")
        return child

    def wait_all(self, what: str, predicate: Callable[[LoadChild], bool]) -> None:
        for child in self.live:
            child.wait_until(what, predicate)

    def wait_more_acks(self, count: int) -> None:
        """Block until every appending process acknowledged ``count`` more
        events."""
        marks = {child.index: len(child.acks) for child in self.appenders}
        for child in self.appenders:
            child.wait_until(
                f"{count} more acks", lambda c: len(c.acks) >= marks[c.index] + count
            )

    def finish(self) -> None:
        """Stop appending (each operation in progress completes first)."""
        for child in self.live:
            child.send("finish")
        self.wait_all("appended", lambda c: "appended" in c.records)

    def expect(self, head: int) -> None:
        """Let each process wait until its listener and projection saw
        ``head`` (by its change watcher alone), then exit."""
        self.head = head
        for child in self.live:
            child.send(f"expect {head}")
        self.wait_all("done", lambda c: "done" in c.records)
        for child in self.live:
            assert child.proc.wait(TIMEOUT) == 0, child._tail()

    def faults(self) -> Counter[str]:
        """The typed errors the children's appends and reads met, by type."""
        found: Counter[str] = Counter()
        for child in self.children:
            found.update(child.faults)
            found.update(child.read_faults)
        return found

    def close(self) -> None:
        for child in self.children:
            child.close()


@contextlib.contextmanager
def running_load(
    url: str, schema: str, folder: Path, lock_timeout: float | None = None
) -> Iterator[Load]:
    """A started :class:`Load`, every child reaped at the end."""
    load = Load(url, schema, folder, lock_timeout)
    try:
        load.wait_all("ready", lambda c: "ready" in c.records)
        for child in load.children:
            child.send("go")
        yield load
    finally:
        load.close()


def listen_sessions(url: str) -> set[int]:
    """The server sessions that LISTEN for swarmlog's hints."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
            "OR query ILIKE 'LISTEN %%'",
            (FEED_APPLICATION,),
        ).fetchall()
    return {int(row[0]) for row in rows}


def wait_listen_sessions(url: str, count: int) -> None:
    """Block until ``count`` LISTEN sessions exist (bounded)."""
    pause = threading.Event()
    deadline = time.monotonic() + TIMEOUT
    while len(found := listen_sessions(url)) < count:
        assert time.monotonic() < deadline, f"only {len(found)} LISTEN sessions"
        pause.wait(0.01)


def terminate_listen_sessions(url: str) -> set[int]:
    """End every LISTEN session on the server; the pids ended."""
    pids = listen_sessions(url)
    with psycopg.connect(url, autocommit=True) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    return pids


def verify(url: str, schema: str, load: Load, extra: list[str]) -> int:
    """Check every promise after the load (``extra``: ids the test itself
    appended); return the head."""
    acked: dict[str, dict[str, Any]] = {}
    for child in load.children:
        for ack in child.acks:
            assert ack["id"] not in acked, f"{ack} acknowledged twice"
            acked[ack["id"]] = ack
    with EventStore(url, pg_schema=schema, read_only=True) as store:
        events = list(store.replay())
    head = len(events)
    assert [e.position for e in events] == list(range(1, head + 1)), "positions gap"
    by_id = {e.id.hex: e for e in events}
    assert len(by_id) == head, "an event is stored twice"
    for event_id, ack in acked.items():
        stored = by_id.get(event_id)
        assert stored is not None, f"acknowledged event lost: {ack}"
        assert (stored.position, stored.version, stored.aggregate_id) == (
            ack["p"],
            ack["v"],
            ack["a"],
        ), f"stored {stored} differs from its acknowledgement {ack}"
    # Only a killed process may have stored what it never acknowledged:
    # what its threads had in flight (at most a batch of 3 each).
    unacknowledged = Counter(
        by_id[event_id].metadata.get("c")
        for event_id in set(by_id) - set(acked) - set(extra)
    )
    killed = {child.index for child in load.children if child.killed}
    assert set(unacknowledged) <= killed, f"unacknowledged events: {unacknowledged}"
    assert all(n <= 4 * 3 for n in unacknowledged.values()), unacknowledged
    versions: dict[str, list[int]] = {}
    for event in events:
        versions.setdefault(event.aggregate_id, []).append(event.version)
    for aggregate, found in versions.items():
        assert found == list(range(1, len(found) + 1)), f"{aggregate}: {found}"
    assert max(len(found) for found in versions.values()) > STEP  # contended
    expected = list(range(1, head + 1))
    for child in load.live:
        seen = child.records["seen"]
        heard = seen["listener"]
        if child.follower:  # opened mid-load: it hears what came after
            assert heard, f"follower {child.index} heard nothing"
            expected_heard = list(range(heard[0], head + 1))
        else:
            expected_heard = expected
        assert heard == expected_heard, f"child {child.index}: listener"
        assert seen["projection"] == expected, f"child {child.index}: projection"
    return head


def append_extra(url: str, schema: str, count: int) -> list[str]:
    """Append ``count`` events from this process; their ids."""
    with EventStore(url, pg_schema=schema) as store:
        return [
            store.append(create_agent_started_event(f"extra{i}")).id.hex
            for i in range(count)
        ]


def swarmlog_sessions(url: str) -> set[int]:
    """Every swarmlog session on the server (writers, readers, LISTEN)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'swarmlog%%'"
        ).fetchall()
    return {int(row[0]) for row in rows}
