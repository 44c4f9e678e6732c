"""Crash safety: SIGKILL a writing process at random moments, then check the log.

Each round starts ``crash_child.py`` on the same store (a SQLite file, or a
schema on the session's PostgreSQL server: one parametrised test), lets it
append from several threads (single appends, idempotent retries,
expected-version appends, ``append_many`` batches, async bursts, aggregate
snapshots, and a live projection that snapshots every few events), and
kills it with SIGKILL at a seeded random moment: while it opens and
recovers, while it appends, or in the middle of a clean shutdown. The
parent then (on PostgreSQL once the dead child's sessions ended) reopens
the store and checks every promise:

- every acknowledged event is present with the same position, version and
  content, also after later crashes;
- positions are gap-free ``1..head``;
- no batch is partially visible, and its events keep their order;
- versions per aggregate are contiguous and follow position order;
- acknowledged aggregate snapshots are never lost or replaced by older ones;
- the projection restored from its snapshot plus catch-up equals a
  from-scratch rebuild (``as_of(store, head)``) and the events themselves;
- a SQLite file passes ``PRAGMA integrity_check``.

Events a killed run reported as intended but never acknowledged are handed
to the next run, which appends them again: a retry after a crash stores
each event exactly once, whether or not the crash came after its commit.

The default run makes 20 kills per SQLite ``synchronous`` level and 10 on
PostgreSQL (seeded; set ``SWARMLOG_CRASH_SEED`` to vary it). The soak
variant (``-m soak``) makes ``SWARMLOG_SOAK_KILLS`` (default 1000) kills per
configuration. A process crash is what both SQLite levels must survive;
``"full"`` also promises power-loss durability, which a process kill cannot
simulate. On PostgreSQL ``synchronous`` only sets the server's
``synchronous_commit``, which a client crash does not touch: it runs once.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog import EventStore

from .crash_child import TICK_TYPE, TallyProjection, digest
from .support import CrashTarget

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from swarmlog import Event

CHILD = Path(__file__).with_name("crash_child.py")
DEFAULT_KILLS = 20
PG_KILLS = 10  # each PostgreSQL round also waits for the dead sessions
SEED = int(os.environ.get("SWARMLOG_CRASH_SEED", "20240607"))
TIMEOUT = 30.0
"""Seconds a wait for the child may take before the test is declared hung."""
NORMAL = {"synchronous": "normal"}


class ChildRun:
    """One crash child and the JSON lines it reported before it died."""

    def __init__(self, config: dict[str, Any], stderr_path: Path) -> None:
        with stderr_path.open("ab") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, str(CHILD), msgspec.json.encode(config).decode()],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        self.stderr_path = stderr_path
        self.records: list[dict[str, Any]] = []
        self.acks = 0
        self.ready = False
        self.eof = False
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="crash-reader")
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not line.endswith(b"\n"):
                break  # cut short by the kill: not a report
            record = msgspec.json.decode(line)
            with self._cond:
                self.records.append(record)
                if record["k"] == "e":
                    self.acks += 1
                elif record["k"] == "ready":
                    self.ready = True
                self._cond.notify_all()
        with self._cond:
            self.eof = True
            self._cond.notify_all()

    def wait_until(self, predicate: Callable[[ChildRun], bool]) -> None:
        """Block until ``predicate(self)`` holds (or the child exited)."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: predicate(self) or self.eof, timeout=TIMEOUT
            )
        assert ok, f"crash child hung; see {self.stderr_path}"
        if self.eof and not predicate(self):
            self.kill()
            pytest.fail(
                f"crash child exited early (code {self.proc.returncode}): "
                f"{self.stderr_path.read_text()[-3000:]}"
            )

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass

    def kill(self) -> None:
        """SIGKILL the child (if still running) and collect its last lines."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


class History:
    """What the children reported about one store file, across rounds."""

    def __init__(self) -> None:
        self.acked: dict[str, dict[str, Any]] = {}
        self.snapshots: dict[str, int] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.rounds_with_restore = 0

    def absorb(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            kind = record["k"]
            if kind == "i":
                self.intents[record["id"]] = record
            elif kind == "e":
                previous = self.acked.setdefault(record["id"], record)
                assert (previous["p"], previous["v"], previous["d"]) == (
                    record["p"],
                    record["v"],
                    record["d"],
                ), f"one event acknowledged twice differently: {previous} {record}"
            elif kind == "s" and record["v"] > self.snapshots.get(record["a"], 0):
                self.snapshots[record["a"]] = record["v"]

    def pending(self) -> list[dict[str, Any]]:
        """Intents never acknowledged, whole batches only (bounded)."""
        singles: list[dict[str, Any]] = []
        batches: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event_id, intent in self.intents.items():
            if event_id in self.acked:
                continue
            if intent["b"] is None:
                singles.append(intent)
            else:
                batches[intent["b"]].append(intent)
        chosen = singles[-150:]
        for members in list(batches.values())[-20:]:
            if len(members) == members[0]["m"]["size"]:
                chosen.extend(members)
        keep = {intent["id"] for intent in chosen}
        self.intents = {k: v for k, v in self.intents.items() if k in keep}
        return chosen


def _fail_on_child_errors(records: list[dict[str, Any]], context: str) -> None:
    errors = [r for r in records if r["k"] == "err"]
    assert not errors, f"{context}: the child reported errors: {errors[:5]}"


def _expected_tally(events: list[Event]) -> dict[str, Any]:
    aggregates: dict[str, list[int]] = {}
    position_sum = count = 0
    for event in events:
        if event.type != TICK_TYPE:
            continue
        entry = aggregates.setdefault(event.aggregate_id, [0, 0, 0])
        entry[0] += 1
        entry[1] = event.version
        entry[2] += event.payload.n
        count += 1
        position_sum += event.position
    return {
        "aggregates": aggregates,
        "events": count,
        "position_sum": position_sum,
        "anomalies": 0,
    }


def verify_store(
    target: CrashTarget,
    path: str,
    options: dict[str, Any],
    history: History,
    context: str,
) -> int:
    """Reopen the store after a kill and check every promise; return the head."""
    with EventStore(path, **options) as store:
        events = list(store.replay())
        head = store.head_position
        positions = [e.position for e in events]
        assert positions == list(range(1, head + 1)), f"{context}: positions gap"

        by_id = {e.id.hex: e for e in events}
        assert len(by_id) == len(events), f"{context}: an id is stored twice"
        for event_id, ack in history.acked.items():
            stored = by_id.get(event_id)
            assert stored is not None, f"{context}: acknowledged event lost: {ack}"
            got = (stored.position, stored.version, digest(stored))
            assert got == (ack["p"], ack["v"], ack["d"]), f"{context}: {ack} != {got}"

        batches: dict[str, list[Event]] = defaultdict(list)
        streams: dict[str, list[int]] = defaultdict(list)
        for event in events:
            streams[event.aggregate_id].append(event.version)
            if "batch" in event.metadata:
                batches[event.metadata["batch"]].append(event)
        for batch, members in batches.items():
            size = members[0].metadata["size"]
            indexes = [e.metadata["i"] for e in members]
            assert indexes == list(range(size)), (
                f"{context}: batch {batch} partially visible or reordered: {indexes}"
            )
        for aggregate, versions in streams.items():
            assert versions == list(range(1, len(versions) + 1)), (
                f"{context}: versions of {aggregate} not contiguous: {versions}"
            )

        for aggregate, version in history.snapshots.items():
            snapshot = store.get_snapshot(aggregate)
            assert snapshot is not None, f"{context}: snapshot of {aggregate} lost"
            assert version <= snapshot.version <= len(streams[aggregate]), context
            assert snapshot.state == {"v": snapshot.version}, context

        restored_from = target.projection_position(path, options, TallyProjection.name)
        if 0 < restored_from < head:
            history.rounds_with_restore += 1
        tally = TallyProjection(store).initialize()
        tally.wait_for(head, timeout=TIMEOUT)
        live = tally.state()
        rebuilt = TallyProjection.as_of(store, head).state()
        assert live == rebuilt, f"{context}: snapshot+catch-up != rebuild"
        assert live == _expected_tally(events), f"{context}: projection != events"

    target.check_integrity(path)
    return head


def run_crash_rounds(
    target: CrashTarget,
    directory: Path,
    synchronous: str | None,
    kills: int,
    seed: int,
    *,
    rounds_per_file: int,
) -> dict[str, Any]:
    """Kill ``kills`` children at seeded random moments, verifying after each
    (``synchronous``: SQLite's level, None on PostgreSQL)."""
    rng = random.Random(seed)
    history = History()
    path, options = "", {}
    summary = {"kills": 0, "files": 0, "events": 0, "acked": 0, "restores": 0}
    stderr_path = directory / "children.stderr"
    for round_no in range(kills):
        if round_no % rounds_per_file == 0:
            summary["acked"] += len(history.acked)
            summary["restores"] += history.rounds_with_restore
            history = History()
            path, options = target.store(f"crash-{round_no}.db")
            if synchronous is not None:
                options["synchronous"] = synchronous
            summary["files"] += 1
        context = f"seed {seed}, {target.kind} {synchronous}, round {round_no}"
        retry_file = ""
        pending = history.pending()
        if pending:
            retry_file = str(directory / "retry.json")
            Path(retry_file).write_bytes(msgspec.json.encode(pending))
        seed = rng.randrange(2**32)
        snapshot_every = rng.choice((3, 5, 8))
        persist_interval = rng.choice((0.0, 0.02, 0.2))  # SQLite's WAL only
        if not target.postgres:
            options = {**options, "auto_persist_interval": persist_interval}
        config = {
            "path": path,
            "options": options,
            "seed": seed,
            "snapshot_every": snapshot_every,
            "retry_file": retry_file,
            "max_seconds": 120.0,
        }
        sessions = target.sessions()
        child = ChildRun(config, stderr_path)
        moment = rng.random()
        try:
            if moment < 0.1:  # while opening, recovering, retrying, catching up
                time.sleep(rng.uniform(0.0, 0.4))
            elif moment < 0.25:  # in the middle of a clean shutdown
                acks = rng.randrange(1, 200)
                child.wait_until(lambda c, n=acks: c.ready and c.acks >= n)
                child.send("shutdown")
                time.sleep(rng.uniform(0.0, 0.03))
            else:  # while appending
                acks = rng.randrange(1, 400)
                child.wait_until(lambda c, n=acks: c.ready and c.acks >= n)
        finally:
            child.kill()
        target.settle(sessions)
        _fail_on_child_errors(child.records, context)
        history.absorb(child.records)
        summary["events"] = verify_store(target, path, options, history, context)
        summary["kills"] += 1
    summary["acked"] += len(history.acked)
    summary["restores"] += history.rounds_with_restore
    return summary


CONFIGURATIONS = [
    pytest.param("file", "full", DEFAULT_KILLS, id="file-full"),
    pytest.param("file", "normal", DEFAULT_KILLS, id="file-normal"),
    pytest.param("postgres", None, PG_KILLS, id="postgres"),
]
"""(backend, SQLite synchronous level, default kills) of the crash tests."""


@pytest.fixture
def crash_target(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[CrashTarget]:
    """The stores of a crash test on the backend ``request.param`` names."""
    target = CrashTarget(request, request.param, tmp_path)
    yield target
    target.close()


@pytest.mark.parametrize(
    ("crash_target", "synchronous", "kills"), CONFIGURATIONS, indirect=["crash_target"]
)
def test_sigkill_loses_no_acknowledged_event(
    crash_target: CrashTarget, tmp_path: Path, synchronous: str | None, kills: int
) -> None:
    """SIGKILL at random moments loses nothing acknowledged and corrupts nothing."""
    summary = run_crash_rounds(
        crash_target, tmp_path, synchronous, kills, SEED, rounds_per_file=kills
    )
    assert summary["kills"] == kills
    assert summary["acked"] > kills  # the children really wrote
    assert summary["restores"] > 0  # some round restored a snapshot, then caught up


class TestTheCheckerItself:
    """The verification would notice damage (it is not vacuous; on SQLite,
    whose file the test can damage directly: the checker is the same code
    on both backends)."""

    @staticmethod
    def _crashed_store(
        request: pytest.FixtureRequest, tmp_path: Path
    ) -> tuple[CrashTarget, str, History]:
        target = CrashTarget(request, "file", tmp_path)
        history = History()
        path = str(tmp_path / "checked.db")
        config = {
            "path": path,
            "options": {"synchronous": "normal", "auto_persist_interval": 0.0},
            "seed": 7,
            "snapshot_every": 5,
            "retry_file": "",
            "max_seconds": 60.0,
        }
        child = ChildRun(config, tmp_path / "child.stderr")
        try:
            child.wait_until(lambda c: c.ready and c.acks >= 150)
        finally:
            child.kill()
        history.absorb(child.records)
        verify_store(target, path, NORMAL, history, "before damage")
        return target, path, history

    @staticmethod
    def _delete(path: str, where: str, params: tuple[Any, ...]) -> None:
        conn = sqlite3.connect(path)
        try:
            conn.execute(f"DELETE FROM events WHERE {where}", params)
            conn.commit()
        finally:
            conn.close()

    def test_a_lost_acknowledged_event_is_noticed(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> None:
        """Deleting the last acknowledged event fails the check."""
        target, path, history = self._crashed_store(request, tmp_path)
        last = max(history.acked.values(), key=lambda ack: ack["p"])
        self._delete(path, "position >= ?", (last["p"],))
        with pytest.raises(AssertionError, match="acknowledged event lost"):
            verify_store(target, path, NORMAL, history, "after damage")

    def test_a_partial_batch_is_noticed(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> None:
        """Deleting the last event of a batch (a torn batch) fails the check."""
        target, path, history = self._crashed_store(request, tmp_path)
        history.acked.clear()  # only the batch check should speak
        conn = sqlite3.connect(path)
        try:
            (head,) = conn.execute("SELECT max(position) FROM events").fetchone()
        finally:
            conn.close()
        with EventStore(path) as store:
            batched = [e for e in store.replay() if "batch" in e.metadata]
        last = batched[-1]
        first_of_batch = next(
            e for e in batched if e.metadata["batch"] == last.metadata["batch"]
        )
        self._delete(path, "position > ?", (first_of_batch.position,))
        assert head >= last.position
        with pytest.raises(AssertionError, match="partially visible"):
            verify_store(target, path, NORMAL, history, "after damage")


@pytest.mark.soak
@pytest.mark.timeout(0)  # scales with SWARMLOG_SOAK_KILLS; every wait has its own
@pytest.mark.parametrize(
    ("crash_target", "synchronous", "kills"), CONFIGURATIONS, indirect=["crash_target"]
)
def test_sigkill_soak(
    crash_target: CrashTarget, tmp_path: Path, synchronous: str | None, kills: int
) -> None:
    """The crash test with SWARMLOG_SOAK_KILLS (default 1000) kills."""
    kills = int(os.environ.get("SWARMLOG_SOAK_KILLS", "1000"))
    started = time.monotonic()
    summary = run_crash_rounds(
        crash_target, tmp_path, synchronous, kills, SEED, rounds_per_file=50
    )
    elapsed = time.monotonic() - started
    # the soak result the README quotes (shown with -s)
    print(
        f"\nsoak {crash_target.kind} synchronous={synchronous} seed={SEED}: "
        f"{summary['kills']} kills, "
        f"{summary['acked']} acknowledged events verified, "
        f"{summary['restores']} snapshot restores, {elapsed:.0f}s"
    )
    assert summary["kills"] == kills
