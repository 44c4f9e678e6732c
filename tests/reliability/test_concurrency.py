"""Concurrency stress: many threads against one store, checked against a model.

A seeded, model-based test (an equivalent of a hypothesis state machine that
can run its steps concurrently): each thread draws operations from its own
seeded RNG -- appends with a freshly read or a deliberately stale expected
version, ``NO_STREAM`` races, idempotent retries (also with their original,
now stale, expected version), the same event appended by several threads at
once, ``append_many`` with per-aggregate expected versions, async bursts,
snapshot saves, reads, queries and strong-consistency projection queries --
and records every outcome in a model. At the end the store must agree with
the model: no lost update, no duplicate version, no gap in positions, every
refused append a ``ConcurrencyError`` that stored nothing, projections equal
the model and a rebuild.

Default: four seeds of 8 threads x 300 operations. Soak (``-m soak``):
``SWARMLOG_STRESS_SEEDS`` seeds (default 10) of 16 threads x 2000 operations.
"""

from __future__ import annotations

import os
import random
import threading
import traceback
from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import (
    ANY,
    NO_STREAM,
    ConcurrencyError,
    Event,
    EventStore,
    Snapshot,
    create_event,
)

from .crash_child import COUNTER_TYPE, CrashTick, TallyProjection

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable
    from pathlib import Path

    from tests.pg_server import PgServer

AGGREGATES = tuple(f"hot-{i}" for i in range(6))
FRESH_NAMES = 12  # aggregates created by NO_STREAM races
CONTESTED = 40  # events appended by several threads at once


class Model:
    """Every outcome the threads saw; thread-safe."""

    def __init__(self, contested: list[Event]) -> None:
        self.lock = threading.Lock()
        self.stored: dict[uuid.UUID, Event] = {}
        self.refused: set[uuid.UUID] = set()
        self.conflicts = 0
        self.snapshots: dict[str, int] = {}
        self.problems: list[str] = []
        self.contested = contested

    def succeeded(self, stored: Event) -> None:
        with self.lock:
            previous = self.stored.setdefault(stored.id, stored)
            if previous != stored:
                self.problems.append(f"one id, two outcomes: {previous} / {stored}")

    def refused_all(self, events: list[Event]) -> None:
        with self.lock:
            self.conflicts += 1
            self.refused.update(e.id for e in events)

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


class Worker:
    """One thread's operations; everything it sees goes into the model."""

    def __init__(
        self, store: EventStore, tally: TallyProjection, model: Model, seed: int
    ) -> None:
        self.store = store
        self.tally = tally
        self.model = model
        self.rng = random.Random(seed)
        self.mine: list[tuple[Event, Event, Any]] = []  # (sent, stored, expected)
        self.known: dict[str, int] = defaultdict(int)  # highest version seen
        self.head = 0
        self.name = f"w{seed}"

    # -- helpers ----------------------------------------------------------------

    def event(self, aggregate: str) -> Event:
        return create_event(
            CrashTick(n=self.rng.randrange(100), writer=self.name), aggregate
        )

    def current(self, aggregate: str) -> int:
        # read from the highest version seen: versions only grow
        tail = self.store.get_events(aggregate, from_version=self.known[aggregate])
        version = tail[-1].version if tail else 0
        self.known[aggregate] = max(self.known[aggregate], version)
        return version

    def stored(self, sent: Event, stored: Event, expected: Any = ANY) -> None:
        if stored.id != sent.id or stored.aggregate_id != sent.aggregate_id:
            self.model.problem(f"append returned another event: {sent} -> {stored}")
        self.mine.append((sent, stored, expected))
        self.known[stored.aggregate_id] = max(
            self.known[stored.aggregate_id], stored.version
        )
        self.model.succeeded(stored)

    def refused(self, error: ConcurrencyError, aggregate: str, expected: Any) -> None:
        if error.aggregate_id != aggregate or error.expected != expected:
            self.model.problem(f"wrong conflict facts: {error!r} for {aggregate}")
        if error.actual == expected and isinstance(expected, int):
            self.model.problem(f"conflict although at the expected version: {error}")

    # -- operations -------------------------------------------------------------

    def expected_fresh(self) -> None:
        aggregate = self.rng.choice(AGGREGATES)
        current = self.current(aggregate)
        event = self.event(aggregate)
        try:
            stored = self.store.append(event, expected_version=current)
        except ConcurrencyError as error:
            self.refused(error, aggregate, current)
            if error.actual <= current:  # versions only grow
                self.model.problem(f"version went back: read {current}, {error}")
            self.model.refused_all([event])
            return
        if stored.version != current + 1:
            self.model.problem(f"expected {current}, stored {stored.version}")
        self.stored(event, stored, current)

    def expected_stale(self) -> None:
        aggregate = self.rng.choice(AGGREGATES)
        guess = self.rng.randint(
            max(0, self.known[aggregate] - 2), self.known[aggregate]
        )
        event = self.event(aggregate)
        try:
            stored = self.store.append(event, expected_version=guess)
        except ConcurrencyError as error:
            self.refused(error, aggregate, guess)
            self.model.refused_all([event])
            return
        if stored.version != guess + 1:
            self.model.problem(f"expected {guess}, stored {stored.version}")
        self.stored(event, stored, guess)

    def no_stream(self) -> None:
        aggregate = f"fresh-{self.rng.randrange(FRESH_NAMES)}"
        event = self.event(aggregate)
        try:
            stored = self.store.append(event, expected_version=NO_STREAM)
        except ConcurrencyError as error:
            self.refused(error, aggregate, NO_STREAM)
            if error.actual < 1:
                self.model.problem(f"NO_STREAM refused on an empty stream: {error}")
            self.model.refused_all([event])
            return
        if stored.version != 1:
            self.model.problem(f"NO_STREAM append stored version {stored.version}")
        self.stored(event, stored, NO_STREAM)

    def retry(self) -> None:
        if not self.mine:
            return
        sent, first, expected = self.rng.choice(self.mine)
        # the original expected version is stale by now: a retry still succeeds
        again = self.store.append(sent, expected_version=expected)
        if again != first:
            self.model.problem(f"retry returned {again}, first {first}")

    def contested(self) -> None:
        event = self.rng.choice(self.model.contested)
        self.stored(event, self.store.append(event))

    def batch(self) -> None:
        aggregates = [
            self.rng.choice(AGGREGATES) for _ in range(self.rng.randint(2, 6))
        ]
        events = [self.event(a) for a in aggregates]
        expected: dict[str, Any] = {}
        for aggregate in set(aggregates):
            if self.rng.random() < 0.6:
                expected[aggregate] = self.current(aggregate)
        try:
            stored = self.store.append_many(events, expected_version=expected)
        except ConcurrencyError as error:
            self.refused(error, error.aggregate_id, expected.get(error.aggregate_id))
            self.model.refused_all(events)
            return
        next_version = {a: v + 1 for a, v in expected.items()}
        for sent, got in zip(events, stored, strict=True):
            aggregate = sent.aggregate_id
            if aggregate in next_version:
                if got.version != next_version[aggregate]:
                    self.model.problem(f"batch version {got.version} for {aggregate}")
                next_version[aggregate] += 1
            self.stored(sent, got, ANY)
        positions = [e.position for e in stored]
        if positions != sorted(positions):
            self.model.problem(f"batch stored out of order: {positions}")

    def burst(self) -> None:
        events = [
            self.event(self.rng.choice(AGGREGATES))
            for _ in range(self.rng.randint(2, 10))
        ]
        futures = [self.store.append_async(e) for e in events]
        for event, future in zip(events, futures, strict=True):
            self.stored(event, future.get(timeout=30))

    def snapshot(self) -> None:
        if not self.mine:
            return
        _, stored, _ = self.rng.choice(self.mine)
        aggregate, version = stored.aggregate_id, stored.version
        self.store.save_snapshot(
            Snapshot(
                aggregate, COUNTER_TYPE, version, {"v": version}, datetime.now(UTC)
            )
        )
        with self.model.lock:
            self.model.snapshots[aggregate] = max(
                self.model.snapshots.get(aggregate, 0), version
            )
        snapshot = self.store.get_snapshot(aggregate)
        if snapshot is None or snapshot.version < version:
            self.model.problem(f"snapshot of {aggregate} at {version} replaced lower")

    def read(self) -> None:
        aggregate = self.rng.choice(AGGREGATES)
        stream = self.store.get_events(aggregate)
        versions = [e.version for e in stream]
        if versions != list(range(1, len(versions) + 1)):
            self.model.problem(f"{aggregate} versions not contiguous: {versions}")
        positions = [e.position for e in stream]
        if positions != sorted(set(positions)):
            self.model.problem(f"{aggregate} positions out of order")
        for _, stored, _ in self.mine:
            if stored.aggregate_id == aggregate and (
                stored.version > len(stream) or stream[stored.version - 1] != stored
            ):
                self.model.problem(f"own write not visible: {stored}")

    def project(self) -> None:
        aggregate = self.rng.choice(AGGREGATES)
        seen = self.known[aggregate]
        entry = self.tally.state()["aggregates"].get(aggregate, [0, 0, 0])
        if entry[1] < seen:  # strong consistency: read-your-writes, any thread
            self.model.problem(f"projection at v{entry[1]} < seen v{seen}")

    def query(self) -> None:
        head = self.store.head_position
        if head < self.head:
            self.model.problem(f"head went back: {self.head} -> {head}")
        self.head = head
        if head == 0:
            return
        start = max(1, head - 10)
        page = self.store.query(from_position=start)
        positions = [e.position for e in page]
        if positions[:1] != [start] or positions != list(
            range(start, start + len(positions))
        ):
            self.model.problem(f"query from {start} gave {positions[:12]}")
        if positions and positions[-1] < head:
            self.model.problem(f"query ended before head {head}: {positions[-1]}")

    OPERATIONS: tuple[tuple[str, int], ...] = (
        ("expected_fresh", 6),
        ("expected_stale", 4),
        ("no_stream", 2),
        ("retry", 3),
        ("contested", 3),
        ("batch", 3),
        ("burst", 2),
        ("snapshot", 2),
        ("read", 2),
        ("project", 2),
        ("query", 2),
    )

    def run(self, operations: int, start: threading.Barrier) -> None:
        names = [name for name, _ in self.OPERATIONS]
        weights = [weight for _, weight in self.OPERATIONS]
        try:
            start.wait(timeout=30)
            for _ in range(operations):
                operation: Callable[[], None] = getattr(
                    self, self.rng.choices(names, weights)[0]
                )
                operation()
        except BaseException:  # every other error is a finding
            self.model.problem(traceback.format_exc())


def run_stress(
    path: str,
    seed: int,
    *,
    threads: int,
    operations: int,
    options: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Run the workers, then check the store against the model (``options``:
    more store options, e.g. a PostgreSQL store's ``pg_schema``)."""
    rng = random.Random(seed)
    config: dict[str, Any] = {
        "synchronous": rng.choice(("full", "normal")),
        "max_batch": rng.choice((1, 3, 64, 1024)),
        "projection_snapshot_every": rng.choice((4, 16, 1000)),
        # odd seeds let appending threads commit when the writer is idle
        "caller_commits": seed % 2 == 1,
    }
    contested = [
        create_event(
            CrashTick(n=i, writer="contested"), f"contested-{rng.randrange(4)}"
        )
        for i in range(CONTESTED)
    ]
    model = Model(contested)
    with EventStore(path, **config, **(options or {})) as store:
        tally = TallyProjection(store).initialize()
        start = threading.Barrier(threads)
        workers = [Worker(store, tally, model, seed * 1000 + k) for k in range(threads)]
        pool = [
            threading.Thread(target=w.run, args=(operations, start)) for w in workers
        ]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(timeout=300)
        assert not any(t.is_alive() for t in pool), "a stress thread hung"
        assert not model.problems, f"seed {seed} {config}:\n" + "\n".join(
            model.problems[:10]
        )
        check_against_model(store, tally, model, f"seed {seed} {config}")
        stats = store.get_stats()
        assert stats.total_events == stats.head_position == len(model.stored)
    return {"events": len(model.stored), "conflicts": model.conflicts}


def check_against_model(
    store: EventStore, tally: TallyProjection, model: Model, context: str
) -> None:
    """The store's final state equals what the threads were told."""
    events = list(store.replay())
    head = store.head_position
    assert [e.position for e in events] == list(range(1, head + 1)), context
    by_id = {e.id: e for e in events}
    assert len(by_id) == len(events), f"{context}: an id stored twice"
    # no lost update, and nothing stored that was not acknowledged
    assert set(by_id) == set(model.stored), f"{context}: stored != acknowledged"
    for event_id, acknowledged in model.stored.items():
        assert by_id[event_id] == acknowledged, context
    # a refused append stored nothing
    assert not (model.refused & set(by_id)), f"{context}: a refused event is stored"
    streams: dict[str, list[int]] = defaultdict(list)
    for event in events:
        streams[event.aggregate_id].append(event.version)
    for aggregate, versions in streams.items():
        assert versions == list(range(1, len(versions) + 1)), (
            f"{context}: {aggregate} has duplicate or missing versions"
        )
    for aggregate, version in model.snapshots.items():
        snapshot = store.get_snapshot(aggregate)
        assert snapshot is not None, context
        assert snapshot.version == version, f"{context}: highest snapshot lost"
    expected = {
        aggregate: [
            len(versions),
            len(versions),
            sum(e.payload.n for e in events if e.aggregate_id == aggregate),
        ]
        for aggregate, versions in streams.items()
    }
    tally.wait_for(head, timeout=30)
    live = tally.state()
    assert live["aggregates"] == expected, f"{context}: projection != model"
    assert live["anomalies"] == 0, context
    assert live == TallyProjection.as_of(store, head).state(), context
    assert len({(e.aggregate_id, e.version) for e in events}) == len(events)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_concurrent_appends_agree_with_the_model(tmp_path: Path, seed: int) -> None:
    """8 threads of mixed operations: the store ends exactly as the model says."""
    result = run_stress(str(tmp_path / "stress.db"), seed, threads=8, operations=300)
    assert result["events"] > 0
    assert result["conflicts"] > 0  # the run really raced


def test_concurrent_appends_on_memory_store() -> None:
    """The same stress against a ``:memory:`` store."""
    result = run_stress(":memory:", 4, threads=8, operations=80)
    assert result["conflicts"] > 0


@pytest.mark.parametrize("seed", [1, 2])
def test_concurrent_appends_on_postgres(
    pg_server: PgServer, pg_schema: str, seed: int
) -> None:
    """The same stress against a PostgreSQL store (shared rounds on the
    head row; both commit paths by the seed's parity)."""
    result = run_stress(
        pg_server.url, seed, threads=8, operations=150, options={"pg_schema": pg_schema}
    )
    assert result["events"] > 0
    assert result["conflicts"] > 0


@pytest.mark.soak
@pytest.mark.timeout(0)  # scales with SWARMLOG_STRESS_SEEDS; joins have their own
def test_concurrency_soak(tmp_path: Path) -> None:
    """SWARMLOG_STRESS_SEEDS seeds (default 10) of 16 threads x 2000 operations."""
    seeds = int(os.environ.get("SWARMLOG_STRESS_SEEDS", "10"))
    events = conflicts = 0
    for seed in range(100, 100 + seeds):
        result = run_stress(
            str(tmp_path / f"soak-{seed}.db"), seed, threads=16, operations=2000
        )
        events += result["events"]
        conflicts += result["conflicts"]
    # the soak result the README quotes (shown with -s)
    print(
        f"\nstress soak: {seeds} seeds x 16 threads x 2000 operations: "
        f"{events} events agree with the model, {conflicts} conflicts refused"
    )
