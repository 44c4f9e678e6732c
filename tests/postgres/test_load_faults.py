"""Faults inside a multi-process load on PostgreSQL: 4 processes x 4
threads append on contended aggregates (``load_child.py``) while the test
drops every LISTEN connection, or restarts the server.

After the load every promise holds: positions exactly ``1..N``, every
acknowledged event stored once at the position and version it was
acknowledged with and nothing stored that nobody acknowledged, contiguous
versions per aggregate, and each process's listener and projection got
exactly ``1..N``, in order, with no gap and no duplicate.

The restart test stops and starts a server of its own
(:func:`tests.pg_server.start_server`), never the session's.
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
import pytest

from swarmlog import EventStore, create_agent_started_event
from swarmlog.actors.postgres.feed import FEED_APPLICATION
from tests.pg_server import PgServer, start_server

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.slow

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


class LoadChild:
    """One ``load_child.py`` process and the JSON lines it reported."""

    def __init__(
        self, url: str, schema: str, index: int, stderr: Path, *, follower: bool
    ) -> None:
        config = {
            "url": url,
            "schema": schema,
            "index": index,
            "max_seconds": 240,
            "follower": follower,
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
        self.faults: Counter[str] = Counter()
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

    def __init__(self, url: str, schema: str, folder: Path) -> None:
        with EventStore(url, pg_schema=schema):
            pass  # the schema exists before they race
        self._url, self._schema = url, schema
        self.head = 0  # the head the children were told to expect
        self._stderr = folder / "children.stderr"
        self.children = [
            LoadChild(url, schema, index, self._stderr, follower=False)
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

    def close(self) -> None:
        for child in self.children:
            child.close()


@contextlib.contextmanager
def running_load(url: str, schema: str, folder: Path) -> Iterator[Load]:
    """A started :class:`Load`, every child reaped at the end."""
    load = Load(url, schema, folder)
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


def _append_extra(url: str, schema: str, count: int) -> list[str]:
    with EventStore(url, pg_schema=schema) as store:
        return [
            store.append(create_agent_started_event(f"extra{i}")).id.hex
            for i in range(count)
        ]


def _drop_listen_mid_load(url: str, schema: str, folder: Path, drops: int) -> None:
    with running_load(url, schema, folder) as load:
        load.wait_more_acks(STEP)
        assert len(terminate_listen_sessions(url)) >= PROCESSES
        load.add_follower()
        for _ in range(drops - 1):
            load.wait_more_acks(STEP)
            terminate_listen_sessions(url)  # those that listen again by now
        load.wait_more_acks(STEP)
        load.finish()
        # Idle now: another process's commits reach them only through
        # their change watchers, which listen again (a busy process's
        # watcher looks only once its head stands still) and whose LISTEN
        # sessions end here once more.
        wait_listen_sessions(url, PROCESSES + 1)
        assert len(terminate_listen_sessions(url)) >= PROCESSES + 1
        extra = _append_extra(url, schema, 3)
        load.expect(len(extra) + sum(len(c.acks) for c in load.children))
    assert verify(url, schema, load, extra) == load.head


def test_dropped_listen_connections_mid_load(
    pg_server: PgServer, pg_schema: str, tmp_path: Path
) -> None:
    """Every LISTEN session is ended mid-load, and again once the processes
    are idle: each process's listener and projection still get exactly
    ``1..N``, including what others committed after the drop. A read-only
    process started mid-load (its projection catches up, then follows)
    gets exactly ``1..N`` too."""
    _drop_listen_mid_load(pg_server.url, pg_schema, tmp_path, drops=1)


@pytest.mark.soak
@pytest.mark.timeout(0)  # scales with SWARMLOG_SOAK_DROPS; every wait has its own
def test_dropped_listen_soak(
    pg_server: PgServer, pg_schema: str, tmp_path: Path
) -> None:
    """The LISTEN test with SWARMLOG_SOAK_DROPS (default 50) drops in one load."""
    drops = int(os.environ.get("SWARMLOG_SOAK_DROPS", "50"))
    _drop_listen_mid_load(pg_server.url, pg_schema, tmp_path, drops)


def test_kill_9_of_one_process_mid_load(
    pg_server: PgServer, pg_schema: str, tmp_path: Path
) -> None:
    """One of the four appending processes is SIGKILLed mid-load (its
    writer busy, often holding the head row): the others go on, nothing it
    acknowledged is lost, it leaves no hole, and the other processes'
    listeners and projections still get exactly ``1..N``."""
    url = pg_server.url
    with running_load(url, pg_schema, tmp_path) as load:
        load.wait_more_acks(STEP)
        load.kill(load.appenders[0])
        load.wait_more_acks(STEP)  # the others go on: the head row is free
        load.finish()
        # This append queues behind anything the dead process's session
        # still had open on the head row: the head read after it is final.
        extra = _append_extra(url, pg_schema, 3)
        with EventStore(url, pg_schema=pg_schema, read_only=True) as store:
            head = store.head_position
        load.expect(head)
    assert verify(url, pg_schema, load, extra) == head


def _all_sessions(url: str) -> set[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'swarmlog%%'"
        ).fetchall()
    return {int(row[0]) for row in rows}


def _terminate_mid_load(url: str, schema: str, folder: Path, rounds: int) -> None:
    with running_load(url, schema, folder) as load:
        load.add_follower()
        for round_no in range(rounds):
            load.wait_more_acks(STEP)
            pids = _all_sessions(url)
            # a writer and a watcher each; later, writers at least (a busy
            # process's watcher reconnects once its head stands still)
            assert len(pids) >= PROCESSES * (1 if round_no else 2)
            with psycopg.connect(url, autocommit=True) as conn:
                for pid in pids:
                    conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        load.wait_more_acks(STEP)
        load.finish()
        extra = _append_extra(url, schema, 3)
        load.expect(len(extra) + sum(len(c.acks) for c in load.children))
    faults: Counter[str] = Counter()
    for child in load.children:
        faults.update(child.faults)
    assert set(faults) <= TYPED_FAULTS, faults
    assert verify(url, schema, load, extra) == load.head


def test_every_session_terminated_mid_load(
    pg_server: PgServer, pg_schema: str, tmp_path: Path
) -> None:
    """Every swarmlog session on the server (writers mid-commit, readers,
    LISTEN) is ended twice mid-load: appends meet typed errors at most,
    retried with the same events; nothing acknowledged is lost or doubled,
    no hole, and each process's listener and projection get ``1..N``."""
    _terminate_mid_load(pg_server.url, pg_schema, tmp_path, rounds=2)


@pytest.mark.soak
@pytest.mark.timeout(0)  # scales with SWARMLOG_SOAK_TERMINATIONS
def test_every_session_terminated_soak(
    pg_server: PgServer, pg_schema: str, tmp_path: Path
) -> None:
    """The termination test with SWARMLOG_SOAK_TERMINATIONS (default 50)
    rounds in one load."""
    rounds = int(os.environ.get("SWARMLOG_SOAK_TERMINATIONS", "50"))
    _terminate_mid_load(pg_server.url, pg_schema, tmp_path, rounds)


@pytest.fixture
def private_server(pg_server: PgServer) -> Iterator[PgServer]:
    """A throwaway server of this test's own, which it may restart (the
    session's server is never restarted under the other tests)."""
    if not pg_server.owned:
        pytest.skip(
            "restarting a server needs one the tests start themselves "
            f"(unset {'SWARMLOG_TEST_PG_URL'} to let them)"
        )
    server = start_server()
    try:
        yield server
    finally:
        server.remove()


def _restart_mid_load(server: PgServer, folder: Path, mode: str, times: int) -> None:
    schema = "restarted"
    url = server.url
    with running_load(url, schema, folder) as load:
        load.add_follower()  # a read-only process, too, lives through it
        for _ in range(times):
            load.wait_more_acks(STEP)
            marks = {c.index: sum(c.faults.values()) for c in load.children}
            server.stop(mode)
            try:
                # every process is appending: each meets the outage
                for child in load.appenders:
                    child.wait_until(
                        "a typed error during the outage",
                        lambda c, marks=marks: sum(c.faults.values()) > marks[c.index],
                    )
            finally:
                server.start()
            load.wait_more_acks(STEP)  # appends resumed in every process
        load.finish()
        # Once more while they are idle: what is committed after it reaches
        # every process through its reconnected watcher or follower.
        server.stop(mode)
        server.start()
        extra = _append_extra(url, schema, 3)
        load.expect(len(extra) + sum(len(c.acks) for c in load.children))
    faults: Counter[str] = Counter()
    for child in load.children:
        faults.update(child.faults)
    assert set(faults) <= TYPED_FAULTS, faults
    assert verify(url, schema, load, extra) == load.head


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_server_restart_mid_load(
    private_server: PgServer, tmp_path: Path, mode: str
) -> None:
    """The server stops (``fast``: sessions ended, open transactions rolled
    back; ``immediate``: a crash, recovered at start) while 16 threads in 4
    processes append: they get typed errors during the outage, retry the
    same events until stored, and nothing acknowledged is lost or doubled."""
    _restart_mid_load(private_server, tmp_path, mode, times=1)


@pytest.mark.soak
@pytest.mark.timeout(0)  # scales with SWARMLOG_SOAK_RESTARTS; every wait has its own
def test_server_restart_soak(private_server: PgServer, tmp_path: Path) -> None:
    """The restart test with SWARMLOG_SOAK_RESTARTS (default 20) restarts
    in one load, alternating fast and immediate stops."""
    restarts = int(os.environ.get("SWARMLOG_SOAK_RESTARTS", "20"))
    for round_no in range(restarts // 2):
        folder = tmp_path / f"r{round_no}"
        folder.mkdir()
        mode = ("fast", "immediate")[round_no % 2]
        _restart_mid_load(private_server, folder, mode, times=2)
        private_server.drop_schema("restarted")
