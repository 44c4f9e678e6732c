"""PostgreSQL measurements: raw psycopg anchors, their swarmlog twins, and
the peer library ``eventsourcing`` on the same server.

Every measurement gets a fresh schema holding swarmlog's own tables (made
by a store's ``initialize()``), so anchor and library write the same table
layout, indexes included, from the same (empty) size. Raw rows are the
rows the library itself stores for the workload's events
(:func:`benchmarks.workload.build_rows`, encoded before timing), in
PostgreSQL's column layout. Process-level figures (PGW3) run in spawned
children that start together on a barrier; their spans are read on the
system-wide monotonic clock.
"""

from __future__ import annotations

import gc
import multiprocessing
import threading
import uuid
from time import monotonic_ns, perf_counter_ns
from typing import TYPE_CHECKING, Any, Final

import psycopg

from benchmarks.closed_loop import run_closed_loop
from benchmarks.figures import RateFigures, TxnFigures, rate, txn_figures
from benchmarks.library import make_events, time_appends, time_catch_up
from benchmarks.workload import DATA_COLUMN, build_rows, envelope_decoder
from swarmlog import EventStore
from swarmlog.actors.postgres.sql import PG_INSERT_COLUMNS
from swarmlog.schema.codec import EVENT_COLUMNS

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "Schema",
    "eventsourcing_pg_saves",
    "fill_schema",
    "library_append_many",
    "library_appends",
    "library_catch_up",
    "library_processes",
    "raw_batch",
    "raw_inserts",
    "raw_processes",
    "raw_scan_decode",
    "server_notes",
]

_WAIT_S: Final = 600.0  # guards waits against hangs only
_MARKS: Final = ", ".join(["%s"] * 12)
_BROKEN: Final = "another process failed to start"


class Schema:
    """A fresh schema with swarmlog's tables on ``url`` (dropped by
    :meth:`drop`)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = f"bench_{uuid.uuid4().hex[:10]}"
        EventStore(url, pg_schema=self.name).initialize().shutdown()
        self.insert = (
            f'INSERT INTO "{self.name}".events ({PG_INSERT_COLUMNS}) VALUES ({_MARKS})'
        )
        self.copy = f'COPY "{self.name}".events ({PG_INSERT_COLUMNS}) FROM STDIN'

    def drop(self) -> None:
        """Remove the schema and everything in it."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


def _pg_rows(n: int, start: int = 0) -> list[tuple[Any, ...]]:
    """The library's stored rows of workload events ``start..``, in
    PostgreSQL's column layout (``cause`` split; ids as UTF-8 bytes)."""
    out = []
    for r in build_rows(n, start=start):
        cause = r[9]
        out.append(
            (
                r[0], r[1], r[2], r[3].encode(), r[4], r[5], r[6], r[7], r[8],
                cause if isinstance(cause, bytes) else None,
                cause.encode() if isinstance(cause, str) else None,
                None if r[10] is None else r[10].encode(),
            )
        )  # fmt: skip
    return out


def _store(schema: Schema, **options: Any) -> EventStore:
    from benchmarks.workload import register_workload_types

    register_workload_types()
    return EventStore(schema.url, pg_schema=schema.name, **options).initialize()


# -- 1-event transactions (PGW1, PGW2) -------------------------------------------


def raw_inserts(
    schema: Schema, *, threads: int, n: int, warmup: int = 50, start: int = 0
) -> TxnFigures:
    """``n`` one-row INSERT transactions (autocommit: one statement, one
    round trip each) from ``threads`` closed-loop threads, each on its own
    connection."""
    rows = _pg_rows(warmup * threads + n, start)
    shares = [rows[t::threads] for t in range(threads)]

    def work(index: int, begin: Callable[[], list[int]]) -> None:
        mine = shares[index]
        with psycopg.connect(schema.url, autocommit=True) as conn:
            execute = conn.execute
            statement = schema.insert
            for row in mine[:warmup]:
                execute(statement, row, prepare=True)
            out = begin()
            for row in mine[warmup:]:
                t0 = perf_counter_ns()
                execute(statement, row, prepare=True)
                out.append(perf_counter_ns() - t0)

    elapsed, samples = run_closed_loop(threads, work, name="pg-raw")
    return txn_figures(len(samples), elapsed, samples)


def library_appends(
    schema: Schema, *, threads: int, n: int, warmup: int = 50, **options: Any
) -> TxnFigures:
    """``n`` awaited one-event ``append()`` calls from ``threads``
    closed-loop threads (never the main thread) on one store, opened with
    ``options`` (the writer group-commits)."""
    store = _store(schema, **options)
    try:
        return time_appends(store, threads=threads, n=n, warmup=warmup, name="pg-lib")
    finally:
        store.shutdown()


# -- several processes (PGW3) --------------------------------------------------------


def _raw_child(url: str, schema: str, threads: int, n: int, start: int) -> Any:
    rows = _pg_rows(n, start)
    shares = [rows[t::threads] for t in range(threads)]
    insert = f'INSERT INTO "{schema}".events ({PG_INSERT_COLUMNS}) VALUES ({_MARKS})'
    conns = [psycopg.connect(url, autocommit=True) for _ in range(threads)]

    def work(index: int) -> None:
        execute = conns[index].execute
        for row in shares[index]:
            execute(insert, row, prepare=True)

    def done() -> None:
        for conn in conns:
            conn.close()

    return work, done


def _lib_child(url: str, schema: str, threads: int, n: int, start: int) -> Any:
    from benchmarks.workload import register_workload_types

    register_workload_types()
    store = EventStore(url, pg_schema=schema).initialize()
    events = make_events(n + 1, start=start)
    store.append(events.pop())  # warm the connections
    shares = [events[t::threads] for t in range(threads)]

    def work(index: int) -> None:
        append = store.append
        for event in shares[index]:
            append(event)

    return work, store.shutdown


def _child(
    load: Callable[..., Any], args: tuple[Any, ...], barrier: Any, out: Any
) -> None:
    """One process of a several-process load: set up, meet the others at
    ``barrier``, run the threads, report ``(start, end, n)`` or an error."""
    try:
        work, done = load(*args)
    except BaseException as e:
        barrier.abort()
        out.put(("error", f"setup: {e!r}"))
        return
    threads, n = args[2], args[3]
    spans: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def run(index: int) -> None:
        t0 = monotonic_ns()
        try:
            work(index)
        except BaseException as e:
            errors.append(e)
        spans.append((t0, monotonic_ns()))

    try:
        barrier.wait(_WAIT_S)  # every process set up: go
    except threading.BrokenBarrierError:
        out.put(("error", _BROKEN))
        done()
        return
    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    done()
    if errors:
        out.put(("error", repr(errors[0])))
    else:
        out.put(("ok", min(s for s, _ in spans), max(e for _, e in spans), n))


def _processes(
    load: Callable[..., Any], schema: Schema, processes: int, threads: int, n: int
) -> RateFigures:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    out = context.Queue()
    share = n // processes
    children = [
        context.Process(
            target=_child,
            args=(
                load,
                (schema.url, schema.name, threads, share, k * (share + 1)),
                barrier,
                out,
            ),
        )
        for k in range(processes)
    ]
    for process in children:
        process.start()
    results = [out.get(timeout=_WAIT_S) for _ in children]
    for process in children:
        process.join(_WAIT_S)
    failed = sorted(
        (r[1] for r in results if r[0] == "error"),
        key=lambda why: why == _BROKEN,  # the cause first, its echoes last
    )
    if failed:
        msg = f"a benchmark process failed: {failed[0]}"
        raise RuntimeError(msg)
    begin = min(r[1] for r in results)
    end = max(r[2] for r in results)
    count = sum(r[3] for r in results)
    return RateFigures(rate(count, end - begin), count, (end - begin) / 1e9)


def raw_processes(
    schema: Schema, *, processes: int, threads: int, n: int
) -> RateFigures:
    """One-row INSERT transactions from ``processes`` x ``threads``
    connections, ``n`` in all."""
    return _processes(_raw_child, schema, processes, threads, n)


def library_processes(
    schema: Schema, *, processes: int, threads: int, n: int
) -> RateFigures:
    """One-event appends from ``processes`` stores x ``threads`` threads on
    one schema, ``n`` in all."""
    return _processes(_lib_child, schema, processes, threads, n)


# -- batches (PGW4) -----------------------------------------------------------------


def raw_batch(schema: Schema, *, batch: int, n_batches: int, method: str) -> TxnFigures:
    """``n_batches`` transactions of ``batch`` rows: ``executemany`` (psycopg
    pipelines it) or ``copy`` (``COPY ... FROM STDIN``)."""
    rows = _pg_rows((n_batches + 1) * batch)
    samples: list[int] = []
    with psycopg.connect(schema.url, autocommit=True) as conn:
        cursor = conn.cursor()

        def once(chunk: Sequence[tuple[Any, ...]]) -> None:
            with conn.transaction():
                if method == "copy":
                    with cursor.copy(schema.copy) as copy:
                        for row in chunk:
                            copy.write_row(row)
                else:
                    cursor.executemany(schema.insert, chunk)

        once(rows[:batch])  # warm-up
        start = perf_counter_ns()
        for lo in range(batch, len(rows), batch):
            t0 = perf_counter_ns()
            once(rows[lo : lo + batch])
            samples.append(perf_counter_ns() - t0)
        elapsed = perf_counter_ns() - start
    return txn_figures(n_batches * batch, elapsed, samples)


def library_append_many(schema: Schema, *, batch: int, n_batches: int) -> TxnFigures:
    """``n_batches`` awaited ``append_many()`` calls of ``batch`` events."""
    store = _store(schema)
    try:
        events = make_events((n_batches + 1) * batch)
        store.append_many(events[:batch])
        samples: list[int] = []
        start = perf_counter_ns()
        for lo in range(batch, len(events), batch):
            t0 = perf_counter_ns()
            store.append_many(events[lo : lo + batch])
            samples.append(perf_counter_ns() - t0)
        elapsed = perf_counter_ns() - start
        return txn_figures(n_batches * batch, elapsed, samples)
    finally:
        store.shutdown()


# -- catch-up (PGR1) ----------------------------------------------------------------


def fill_schema(schema: Schema, n: int, chunk: int = 10_000) -> None:
    """Store ``n`` workload events (COPY, untimed) and move the head."""
    with psycopg.connect(schema.url, autocommit=True) as conn:
        for lo in range(0, n, chunk):
            rows = _pg_rows(min(chunk, n - lo), lo)
            with conn.transaction(), conn.cursor().copy(schema.copy) as copy:
                for row in rows:
                    copy.write_row(row)
        conn.execute(f'UPDATE "{schema.name}".head SET position = %s', (n,))
        conn.execute(f'ANALYZE "{schema.name}".events')


def raw_scan_decode(
    schema: Schema, *, page: int = 1000, repeats: int = 3
) -> RateFigures:
    """Keyset scan ``WHERE position > $1 ORDER BY position LIMIT page`` of
    the whole schema, each envelope decoded by one typed msgspec decoder."""
    select = (
        f'SELECT {EVENT_COLUMNS} FROM "{schema.name}".events WHERE position > %s '
        "ORDER BY position LIMIT %s"
    )
    decode = envelope_decoder().decode
    passes: list[tuple[int, int]] = []
    with psycopg.connect(schema.url, autocommit=True) as conn:
        for _ in range(repeats):
            count, after = 0, 0
            gc.collect()
            t0 = perf_counter_ns()
            while rows := conn.execute(select, (after, page), binary=True).fetchall():
                events = [decode(row[DATA_COLUMN]) for row in rows]
                count += len(events)
                after = rows[-1][0]
            passes.append((perf_counter_ns() - t0, count))
    elapsed, count = sorted(passes)[len(passes) // 2]
    return RateFigures(rate(count, elapsed), count, elapsed / 1e9)


def library_catch_up(schema: Schema, *, repeats: int = 3) -> RateFigures:
    """A no-op projection catching up from 0 to the head (a new one each
    pass, no snapshot): from ``initialize()`` to ``wait_for(head)``."""
    store = _store(schema, synchronous="normal")
    try:
        return time_catch_up(store, "pgr1", repeats)
    finally:
        store.shutdown()


# -- the peer (PGE) -------------------------------------------------------------------


def eventsourcing_pg_saves(
    schema: Schema, *, threads: int, n: int, warmup: int = 20
) -> TxnFigures:
    """``eventsourcing``'s PostgreSQL persistence: ``n`` saves of one new
    event each (1000 aggregates, one transaction per save, as
    ``Application.save`` does it) from ``threads`` closed-loop threads
    sharing one application (pool sized to the threads)."""
    from eventsourcing.application import Application
    from psycopg.conninfo import conninfo_to_dict

    from benchmarks.peer import timed_saves

    info = conninfo_to_dict(schema.url)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info.get("dbname", "postgres")),
        "POSTGRES_HOST": str(info.get("host", "localhost")),
        "POSTGRES_PORT": str(info.get("port", "5432")),
        "POSTGRES_USER": str(info.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(info.get("password", "")),
        "POSTGRES_SCHEMA": schema.name,
        "POSTGRES_POOL_SIZE": str(max(threads, 2)),
        "POSTGRES_MAX_OVERFLOW": "0",
    }
    app: Any = Application(env=env)
    try:
        return timed_saves(app, threads=threads, n=n, warmup=warmup, name="es-pg-saver")
    finally:
        app.close()


# -- the server ----------------------------------------------------------------------

_SETTINGS: Final = (
    "server_version",
    "synchronous_commit",
    "fsync",
    "wal_sync_method",
    "full_page_writes",
    "shared_buffers",
    "wal_buffers",
    "max_wal_size",
    "checkpoint_timeout",
    "max_connections",
)


def server_notes(url: str) -> dict[str, Any]:
    """The server's version and the settings that move write figures."""
    with psycopg.connect(url, autocommit=True) as conn:
        notes: dict[str, Any] = {
            "version": conn.execute("SELECT version()").fetchone()[0]  # type: ignore[index]
        }
        for name in _SETTINGS:
            notes[name] = conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
        notes["psycopg"] = psycopg.__version__
    return notes
