"""The peer library ``eventsourcing`` (9.x) with its SQLite persistence.

``eventsourcing.sqlite`` opens every pooled connection in WAL mode and sets
no other pragma, and it reads no environment variable for one
(``SQLITE_DBNAME``, ``SQLITE_LOCK_TIMEOUT``, ``SINGLE_ROW_TRACKING``,
``ORIGINATOR_ID_TYPE``, ``CREATE_TABLE`` only). It therefore runs with the
build's defaults: ``synchronous`` FULL (``DEFAULT_WAL_SYNCHRONOUS=2``), a
2 MB page cache and automatic checkpoints every 1000 WAL pages, on the
commit path. To compare at the same ``synchronous``, :class:`_PragmaPool`
runs ``PRAGMA synchronous`` on each connection the pool creates;
``synchronous=None`` leaves the library untouched. The event attributes are
the benchmark payload's fields (~290 bytes of JSON as ``eventsourcing``
stores them, against ~200 bytes of msgpack).
"""

from __future__ import annotations

from time import perf_counter_ns
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteFactory

from benchmarks.closed_loop import run_closed_loop
from benchmarks.figures import LatencyFigures, TxnFigures, latency_figures, txn_figures
from benchmarks.workload import N_STREAMS, make_payload

if TYPE_CHECKING:
    from collections.abc import Callable

    from eventsourcing.persistence import InfrastructureFactory
    from eventsourcing.utils import Environment

__all__ = [
    "eventsourcing_load",
    "eventsourcing_pragmas",
    "eventsourcing_saves",
    "timed_saves",
]


class BenchStream(Aggregate):
    """One stream of benchmark events, as an ``eventsourcing`` aggregate."""

    @event("Created")
    def __init__(self) -> None:
        self.count = 0

    @event("Recorded")
    def record(
        self,
        *,
        agent_id: str,
        task_id: str,
        status: str,
        detail: str,
        attempt: int,
        score: float,
        labels: list[str],
    ) -> None:
        """Trigger one ``Recorded`` event (the benchmark payload's fields)."""
        self.count += 1


class _PragmaPool(SQLiteConnectionPool):
    """eventsourcing's pool, plus ``PRAGMA synchronous`` on new connections."""

    def __init__(self, *, synchronous: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._synchronous = synchronous.upper()

    def _create_connection(self) -> SQLiteConnection:
        conn = super()._create_connection()
        conn._sqlite_conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        return conn


class _PragmaSQLiteFactory(SQLiteFactory):
    """``eventsourcing.sqlite``'s factory with a :class:`_PragmaPool`."""

    def __init__(self, env: Environment, synchronous: str) -> None:
        super().__init__(env)
        old = self.datastore.pool  # no connection made yet
        self.datastore.pool = _PragmaPool(
            synchronous=synchronous,
            db_name=old.db_name,
            lock_timeout=old.lock_timeout,
            pool_size=old.pool_size,
            max_overflow=old.max_overflow,
            pool_timeout=old.pool_timeout,
            max_age=old.max_age,
            pre_ping=old.pre_ping,
        )
        old.close()


class _BenchApp(Application[UUID]):
    """An ``eventsourcing`` application on SQLite at a chosen ``synchronous``."""

    def __init__(self, path: str, synchronous: str | None) -> None:
        self._synchronous = synchronous
        super().__init__(
            env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path}
        )

    def construct_factory(self, env: Environment) -> InfrastructureFactory[Any]:
        if self._synchronous is None:
            return super().construct_factory(env)
        return _PragmaSQLiteFactory(env, self._synchronous)


def _record_kwargs(i: int) -> dict[str, Any]:
    fields = msgspec.structs.asdict(make_payload(i))
    fields["labels"] = list(fields["labels"])
    return fields


def eventsourcing_pragmas(path: str, synchronous: str | None = None) -> dict[str, Any]:
    """The pragmas ``eventsourcing`` connections run with (for the report).

    Returns:
        ``journal_mode``, ``synchronous`` (0 off, 1 normal, 2 full),
        ``cache_size`` and ``wal_autocheckpoint`` of a pooled connection.
    """
    app = _BenchApp(path, synchronous)
    try:
        pool = app.factory.datastore.pool  # type: ignore[attr-defined]
        conn = pool.get_connection()
        try:
            raw = conn._sqlite_conn
            names = ("journal_mode", "synchronous", "cache_size", "wal_autocheckpoint")
            return {name: raw.execute(f"PRAGMA {name}").fetchone()[0] for name in names}
        finally:
            pool.put_connection(conn)
    finally:
        app.close()


def eventsourcing_saves(
    path: str,
    *,
    threads: int = 1,
    n: int = 2000,
    synchronous: str | None = "full",
    warmup: int = 50,
) -> TxnFigures:
    """``n`` saves of one new event each, from ``threads`` closed-loop threads.

    1000 aggregates are created and saved first (untimed, one transaction);
    thread ``t`` owns every ``threads``-th of them. A timed operation triggers
    one ``Recorded`` event on the next owned aggregate (round-robin) and
    saves it: one event, one transaction, as ``Application.save`` does it.

    Args:
        path: Database file (created).
        threads: Saving threads sharing one ``Application``.
        n: Saves timed, split evenly over the threads.
        synchronous: ``"full"``/``"normal"``, or ``None`` for the
            library's own settings (FULL in this build).
        warmup: Untimed saves per thread first.

    Returns:
        Events/s and save latency p50/p99 (µs); ``n`` = saves timed.
    """
    app = _BenchApp(path, synchronous)
    try:
        return timed_saves(app, threads=threads, n=n, warmup=warmup, name="es-saver")
    finally:
        app.close()


def timed_saves(
    app: Any, *, threads: int, n: int, warmup: int, name: str
) -> TxnFigures:
    """``n`` timed saves of one new event each on ``app`` (an
    ``eventsourcing`` application, any persistence) from ``threads``
    closed-loop threads: 1000 aggregates saved first (untimed, one
    transaction), thread ``t`` owning every ``threads``-th of them."""
    streams = [BenchStream() for _ in range(N_STREAMS)]
    app.save(*streams)
    shares = [n // threads + (t < n % threads) for t in range(threads)]

    def work(index: int, begin: Callable[[], list[int]]) -> None:
        mine = streams[index::threads]
        first = index * (warmup + n)
        calls = [_record_kwargs(first + k) for k in range(warmup + shares[index])]
        save = app.save
        for k in range(warmup):
            stream = mine[k % len(mine)]
            stream.record(**calls[k])
            save(stream)
        out = begin()
        for k in range(warmup, warmup + shares[index]):
            stream = mine[k % len(mine)]
            t0 = perf_counter_ns()
            stream.record(**calls[k])
            save(stream)
            out.append(perf_counter_ns() - t0)

    elapsed, samples = run_closed_loop(threads, work, name=name)
    return txn_figures(n, elapsed, samples)


def eventsourcing_load(
    path: str,
    *,
    events: int = 1000,
    samples: int = 30,
    interleave: int = 20,
    warmup: int = 3,
) -> LatencyFigures:
    """``repository.get`` of an aggregate with ``events`` events (no cache).

    ``interleave`` aggregates are built side by side (untimed; each save
    holds one new event of every aggregate), so each aggregate's events lie
    interleaved with the others' as in the raw stream-read anchor.

    Args:
        path: Database file (created).
        events: Events per aggregate (its ``Created`` event included).
        samples: Loads timed (after ``warmup`` untimed ones).
        interleave: Aggregates built side by side.
        warmup: Untimed loads first.

    Returns:
        Load latency (µs).
    """
    app = _BenchApp(path, "normal")  # synchronous only matters while building
    try:
        streams = [BenchStream() for _ in range(interleave)]
        app.save(*streams)
        for i in range(events - 1):
            for stream in streams:
                stream.record(**_record_kwargs(i))
            app.save(*streams)
        ids = [stream.id for stream in streams]
        get = app.repository.get
        timings: list[int] = []
        for k in range(warmup + samples):
            aggregate_id = ids[k % len(ids)]
            t0 = perf_counter_ns()
            loaded: BenchStream = get(aggregate_id)
            t1 = perf_counter_ns()
            if loaded.version != events:
                msg = f"loaded version {loaded.version}, expected {events}"
                raise AssertionError(msg)
            if k >= warmup:
                timings.append(t1 - t0)
        return latency_figures(timings)
    finally:
        app.close()
