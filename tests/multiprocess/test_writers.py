"""Several processes append to one file at once (``multi_process=True``).

Each worker process runs threads that append to a few contended aggregates
with exact ``expected_version``s; afterwards every guarantee is checked on
the file: positions gap-free ``1..N`` in commit order, versions contiguous,
every acknowledged event stored exactly once, and each process's live
projection equal to a rebuild from the log.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog import EventStore, create_task_created_event

from .support import TIMEOUT, Worker

if TYPE_CHECKING:
    from collections.abc import Callable


def _run_loads(
    group: list[Worker], threads: int, n: int, aggs: int
) -> list[tuple[list[list[Any]], dict[str, Any]]]:
    """Start the load in every worker at once; collect acks and counts."""
    results: list[Any] = [None] * len(group)

    def collect(index: int) -> None:
        results[index] = group[index].load_results()

    readers = [threading.Thread(target=collect, args=(i,)) for i in range(len(group))]
    for reader in readers:
        reader.start()
    for index, worker in enumerate(group):
        worker.send(op="load", threads=threads, n=n, aggs=aggs, tag=f"p{index}")
    for reader in readers:
        reader.join(TIMEOUT * 4)
        assert not reader.is_alive(), "a worker's load did not finish"
    return results


def check_log(path: str, acks: list[list[Any]]) -> list[Any]:
    """Every guarantee on the stored log; returns the events."""
    with EventStore(path, read_only=True) as reader:
        events = list(reader.replay())
    assert [e.position for e in events] == list(range(1, len(events) + 1))
    versions: dict[str, list[int]] = defaultdict(list)
    for e in events:
        versions[e.aggregate_id].append(e.version)
    for aggregate, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), aggregate
    stored = {e.id.hex: (e.position, e.aggregate_id, e.version) for e in events}
    assert len(stored) == len(events)  # every id once
    for event_id, position, aggregate, version in acks:
        assert stored[event_id] == (position, aggregate, version)
    return events


def _check_contended(
    workers: Callable[..., Worker], db: str, processes: int, threads: int, n: int
) -> None:
    group = [workers() for _ in range(processes)]
    assert all(w.opened["open"] == "ok" for w in group)
    results = _run_loads(group, threads, n, aggs=6)
    acks = [ack for worker_acks, _ in results for ack in worker_acks]
    for worker_acks, counts in results:
        assert counts["done"] == threads * n == len(worker_acks)
        assert counts["wrong_actual"] == 0
    assert sum(counts["conflicts"] for _, counts in results) > 0  # contended
    assert sum(counts["lock_waits"] for _, counts in results) > 0  # measured
    assert max(counts["lock_wait_max"] for _, counts in results) > 0
    events = check_log(db, acks)
    assert len(events) == len(acks) == processes * threads * n
    for worker in group:
        checked = worker.ask(op="check")
        assert checked == {"head": len(events), "journal_ok": True}


def test_four_processes_four_threads_contended(
    workers: Callable[..., Worker], db: str
) -> None:
    """4 processes x 4 threads with exact expected versions: gap-free
    positions, contiguous versions, every ack stored once, projections
    equal to a rebuild in every process."""
    _check_contended(workers, db, processes=4, threads=4, n=40)


@pytest.mark.soak
def test_four_processes_four_threads_contended_soak(
    workers: Callable[..., Worker], db: str
) -> None:
    """The same, 40 times longer."""
    _check_contended(workers, db, processes=4, threads=4, n=1600)


def test_stores_coming_and_going_beside_busy_writers(
    workers: Callable[..., Worker], db: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A process that opens a store, appends and closes it, over and over
    (a CLI beside a service, a recycled worker), while two processes keep
    appending with a small checkpoint threshold (the WAL folds and restarts
    all along) and a read-only store in this process keeps reading: no
    process logs a warning, every guarantee holds, and SQLite finds the
    file intact."""
    small_wal = {"wal_checkpoint_bytes": 64 << 10}
    group = [workers(small_wal) for _ in range(2)]
    loads: list[Any] = []
    loader = threading.Thread(target=lambda: loads.extend(_run_loads(group, 2, 150, 6)))
    caplog.set_level(logging.WARNING, logger="swarmlog")
    acks: list[Any] = []
    with EventStore(db, read_only=True) as reader:
        loader.start()
        seen = 0
        for cycle in range(12):
            with EventStore(db, multi_process=True, **small_wal) as store:
                for i in range(5):
                    task = create_task_created_event(
                        f"c{cycle}-{i}", "churn", "T", "", "low"
                    )
                    stored = store.append(task)
                    ack = (stored.id.hex, stored.position, stored.aggregate_id)
                    acks.append([*ack, stored.version])
            head = reader.get_stats().head_position
            assert head >= seen
            seen = head
            assert len(reader.get_events(f"c{cycle}-0")) == 1
        loader.join(TIMEOUT * 4)
    assert not loader.is_alive()
    for worker_acks, counts in loads:
        assert counts["done"] == 2 * 150 == len(worker_acks)
        acks += worker_acks
    events = check_log(db, acks)
    assert len(events) == len(acks) == 2 * 2 * 150 + 12 * 5
    for worker in group:
        assert worker.ask(op="exit") == {"closed": True}
        assert worker.proc.stderr is not None
        assert worker.proc.stderr.read() == ""  # nothing logged, nothing raised
        worker.stop()
    assert [r.getMessage() for r in caplog.records] == []
    check = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        check.close()


def test_kill_9_of_one_writer_loses_nothing_acknowledged(
    workers: Callable[..., Worker], db: str
) -> None:
    """A writer killed with SIGKILL mid-load loses none of its
    acknowledged appends; the others go on; a restarted process resumes."""
    victim, *others = [workers() for _ in range(3)]
    results: list[Any] = [None] * len(others)

    def collect(index: int) -> None:
        results[index] = others[index].load_results()

    readers = [threading.Thread(target=collect, args=(i,)) for i in range(len(others))]
    for reader in readers:
        reader.start()
    victim.send(op="load", threads=4, n=100_000, aggs=4, tag="victim")
    for index, worker in enumerate(others):
        worker.send(op="load", threads=2, n=150, aggs=4, tag=f"o{index}")
    victim_acks = [victim.read()["ack"] for _ in range(50)]  # mid-load
    victim.kill()
    assert victim.proc.stdout is not None
    for line in victim.proc.stdout.read().splitlines():  # acks before the kill
        if line.startswith('{"ack"'):
            victim_acks.append(msgspec.json.decode(line)["ack"])
    for reader in readers:
        reader.join(TIMEOUT * 4)
        assert not reader.is_alive()
    acks = victim_acks + [ack for worker_acks, _ in results for ack in worker_acks]
    for worker_acks, counts in results:
        assert counts["done"] == len(worker_acks) == 300
    restarted = workers()
    restarted.send(op="load", threads=2, n=20, aggs=4, tag="again")
    more, counts = restarted.load_results()
    assert counts["done"] == 40
    events = check_log(db, acks + more)
    assert restarted.ask(op="check") == {"head": len(events), "journal_ok": True}


@pytest.mark.soak
def test_repeated_kill_9_soak(workers: Callable[..., Worker], db: str) -> None:
    """Five writers killed with SIGKILL one after another mid-load, each
    replaced by a fresh process, while a steady writer goes on: every
    acknowledged append of every process is stored exactly once."""
    steady = workers()
    done: list[Any] = []
    reader = threading.Thread(target=lambda: done.append(steady.load_results()))
    reader.start()
    steady.send(op="load", threads=2, n=3000, aggs=4, tag="steady")
    acks: list[list[Any]] = []
    for round_ in range(5):
        victim = workers()
        victim.send(op="load", threads=4, n=100_000, aggs=4, tag=f"victim{round_}")
        acks += [victim.read()["ack"] for _ in range(200)]
        victim.kill()
        assert victim.proc.stdout is not None
        for line in victim.proc.stdout.read().splitlines():
            if line.startswith('{"ack"'):
                acks.append(msgspec.json.decode(line)["ack"])
    reader.join(TIMEOUT * 10)
    assert not reader.is_alive()
    steady_acks, counts = done[0]
    assert counts["done"] == 6000
    events = check_log(db, acks + steady_acks)
    assert steady.ask(op="check") == {"head": len(events), "journal_ok": True}
