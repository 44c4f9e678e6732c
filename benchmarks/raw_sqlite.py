"""Raw ``sqlite3`` anchors: the library's table, pragmas and SQL, nothing else.

Writers open the connection with ``isolation_level=None``, run the library's
writer pragmas and schema, and wrap every transaction in explicit
``BEGIN``/``COMMIT``. Rows are pre-built before timing (encoding excluded).
Every function runs on the calling thread (the threaded writer starts and
joins its own threads) and closes its connections before returning.

Checkpointing: the library writer turns automatic checkpoints off and runs
them elsewhere. A bare program cannot do "nothing" (the WAL then grows
without bound and appends slow down 2-3x), so the WAL upkeep is a choice:

- ``"inline"`` (default): SQLite's stock automatic checkpoint every 1000 WAL
  pages, on the commit path; what a minimal raw program does (the only
  pragma that differs from the library's).
- ``"untimed"``: the library's pragmas; the writer itself runs a PASSIVE
  checkpoint every ~1000 WAL pages with the clock stopped. The bound for a
  writer whose checkpoints cost nothing.
- ``"none"``: the library's pragmas verbatim; the WAL grows all run long.
"""

from __future__ import annotations

import random
import threading
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any, Final, Literal

from benchmarks.closed_loop import run_closed_loop
from benchmarks.figures import (
    LatencyFigures,
    RateFigures,
    TxnFigures,
    latency_figures,
    rate,
    txn_figures,
)
from benchmarks.workload import (
    DATA_COLUMN,
    build_rows,
    envelope_decoder,
    fill_store,
    head,
    open_reader,
    open_writer,
    write_batches,
)
from swarmlog.schema.sql import INSERT_EVENT, SELECT_PAGE, SELECT_STREAM

if TYPE_CHECKING:
    import sqlite3
    import uuid
    from collections.abc import Callable, Sequence

    from benchmarks.workload import Row

__all__ = [
    "Checkpointing",
    "raw_batch_txn",
    "raw_causal_chain",
    "raw_paged_scan_decode",
    "raw_single_event_txn",
    "raw_single_event_txn_threads",
    "raw_stream_read",
]

Checkpointing = Literal["inline", "untimed", "none"]

WAL_PAGES: Final = 1000  # SQLite's default automatic checkpoint threshold


class _Upkeep:
    """Keeps the WAL short as ``mode`` says; counts the time it kept off the clock.

    Runs on whichever thread holds the connection (under the writer lock when
    several threads share it).
    """

    __slots__ = ("_conn", "_every", "_mode", "_since", "excluded_ns")

    def __init__(self, conn: sqlite3.Connection, mode: Checkpointing) -> None:
        if mode not in ("inline", "untimed", "none"):
            msg = f"checkpoint must be 'inline', 'untimed' or 'none', got {mode!r}"
            raise ValueError(msg)
        self._conn = conn
        self._mode = mode
        self._every = 16  # commits between untimed checkpoints; adapts below
        self._since = 0
        self.excluded_ns = 0
        if mode == "inline":
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_PAGES}")

    def after_commit(self) -> None:
        """Run an untimed PASSIVE checkpoint when ~1000 WAL pages have built up."""
        if self._mode != "untimed":
            return
        self._since += 1
        if self._since < self._every:
            return
        t0 = perf_counter_ns()
        _busy, frames, _done = self._conn.execute(
            "PRAGMA wal_checkpoint(PASSIVE)"
        ).fetchone()
        # The WAL restarted at the previous checkpoint: ``frames`` were written
        # by the last ``_since`` commits.
        self._every = max(1, self._since * WAL_PAGES // max(1, frames))
        self._since = 0
        self.excluded_ns += perf_counter_ns() - t0


def _commit_each(
    conn: sqlite3.Connection,
    rows: Sequence[Row],
    upkeep: _Upkeep,
    samples: list[int],
) -> None:
    execute = conn.execute
    for row in rows:
        t0 = perf_counter_ns()
        execute("BEGIN")
        execute(INSERT_EVENT, row)
        execute("COMMIT")
        samples.append(perf_counter_ns() - t0)
        upkeep.after_commit()


def raw_single_event_txn(
    path: str,
    synchronous: str,
    n: int,
    *,
    warmup: int = 100,
    checkpoint: Checkpointing = "inline",
) -> TxnFigures:
    """``n`` transactions of one event each, one thread, closed loop.

    Args:
        path: Database file; created if missing, appended to if not.
        synchronous: ``"full"`` or ``"normal"``.
        n: Transactions timed (after ``warmup`` untimed ones).
        warmup: Untimed transactions first.
        checkpoint: WAL upkeep (see the module docstring).

    Returns:
        Events/s and commit latency p50/p99 (µs); ``n`` = commits timed.
    """
    conn = open_writer(path, synchronous)
    try:
        upkeep = _Upkeep(conn, checkpoint)
        rows = build_rows(warmup + n, start=head(conn))
        _commit_each(conn, rows[:warmup], upkeep, [])
        samples: list[int] = []
        excluded0 = upkeep.excluded_ns
        t0 = perf_counter_ns()
        _commit_each(conn, rows[warmup:], upkeep, samples)
        elapsed = perf_counter_ns() - t0 - (upkeep.excluded_ns - excluded0)
        return txn_figures(n, elapsed, samples)
    finally:
        conn.close()


def raw_single_event_txn_threads(
    path: str,
    synchronous: str,
    *,
    threads: int = 16,
    n: int = 4000,
    warmup: int = 100,
    checkpoint: Checkpointing = "inline",
) -> TxnFigures:
    """``n`` one-event transactions from ``threads`` closed-loop threads.

    The threads share one connection guarded by a lock (what "raw 1-event
    transactions" means under concurrency: no group commit). Latency counts
    from before taking the lock to after COMMIT, so it includes the wait.

    Args:
        path: Database file; created if missing, appended to if not.
        synchronous: ``"full"`` or ``"normal"``.
        threads: Writer threads.
        n: Transactions timed, split evenly over the threads.
        warmup: Untimed transactions first (calling thread).
        checkpoint: WAL upkeep (see the module docstring); ``"untimed"``
            checkpoints are also taken off the latency of threads that were
            waiting for the lock meanwhile (approximately).

    Returns:
        Events/s and per-transaction latency p50/p99 (µs); ``n`` = commits.
    """
    conn = open_writer(path, synchronous, check_same_thread=False)
    try:
        upkeep = _Upkeep(conn, checkpoint)
        rows = build_rows(warmup + n, start=head(conn))
        _commit_each(conn, rows[:warmup], upkeep, [])
        pending = iter(rows[warmup:])
        lock = threading.Lock()
        shares = [n // threads + (t < n % threads) for t in range(threads)]
        execute = conn.execute

        def work(index: int, begin: Callable[[], list[int]]) -> None:
            out = begin()
            for _ in range(shares[index]):
                excluded_before = upkeep.excluded_ns
                t0 = perf_counter_ns()
                with lock:
                    waited_out = upkeep.excluded_ns - excluded_before
                    execute("BEGIN")
                    execute(INSERT_EVENT, next(pending))
                    execute("COMMIT")
                    out.append(perf_counter_ns() - t0 - waited_out)
                    upkeep.after_commit()

        excluded0 = upkeep.excluded_ns
        wall, samples = run_closed_loop(threads, work, name="raw-writer")
        elapsed = wall - (upkeep.excluded_ns - excluded0)
        return txn_figures(n, elapsed, samples)
    finally:
        conn.close()


def raw_batch_txn(
    path: str,
    synchronous: str,
    *,
    batch: int = 1000,
    n_batches: int = 50,
    prefill: int = 0,
    warmup_batches: int = 1,
    checkpoint: Checkpointing = "inline",
) -> TxnFigures:
    """``n_batches`` transactions of ``batch`` events (``executemany``).

    Args:
        path: Database file; created if missing, appended to if not.
        synchronous: ``"full"`` or ``"normal"``.
        batch: Events per transaction.
        n_batches: Transactions timed.
        prefill: First fill the store (untimed, then a TRUNCATE checkpoint)
            until it holds this many events; a store already that big is
            used as it is.
        warmup_batches: Untimed transactions before timing.
        checkpoint: WAL upkeep (see the module docstring).

    Returns:
        Events/s and commit latency p50/p99 (µs) of one batch;
        ``n`` = batches timed.
    """
    if prefill:
        fill_store(path, prefill, batch=batch)
    conn = open_writer(path, synchronous)
    try:
        upkeep = _Upkeep(conn, checkpoint)
        rows = build_rows((warmup_batches + n_batches) * batch, start=head(conn))
        write_batches(conn, rows[: warmup_batches * batch], batch)
        samples: list[int] = []
        excluded0 = upkeep.excluded_ns
        start = perf_counter_ns()
        execute = conn.execute
        executemany = conn.executemany
        for lo in range(warmup_batches * batch, len(rows), batch):
            t0 = perf_counter_ns()
            execute("BEGIN")
            executemany(INSERT_EVENT, rows[lo : lo + batch])
            execute("COMMIT")
            samples.append(perf_counter_ns() - t0)
            upkeep.after_commit()
        elapsed = perf_counter_ns() - start - (upkeep.excluded_ns - excluded0)
        return txn_figures(n_batches * batch, elapsed, samples)
    finally:
        conn.close()


def raw_paged_scan_decode(
    path: str, page: int = 1000, *, repeats: int = 3
) -> RateFigures:
    """Keyset scan of the whole store, ``page`` rows a query, typed decode.

    Every stored envelope (the ``data`` column: envelope fields and the
    payload) is decoded by one bare typed ``msgspec.msgpack.Decoder``
    (:class:`benchmarks.workload.BenchEnvelope`, the payload as the 25-type
    tagged union). The store must hold the benchmark workload (see
    :func:`benchmarks.workload.fill_store`).

    Args:
        path: A filled store.
        page: Rows per ``SELECT_PAGE`` query.
        repeats: Full passes; the median pass is reported.

    Returns:
        Events/s of the median pass; ``n`` = events in one pass.
    """
    conn = open_reader(path)
    decode = envelope_decoder().decode
    passes: list[tuple[int, int]] = []
    try:
        for _ in range(repeats):
            count = 0
            after = 0
            t0 = perf_counter_ns()
            while True:
                rows = conn.execute(SELECT_PAGE, (after, page)).fetchall()
                if not rows:
                    break
                events = [decode(row[DATA_COLUMN]) for row in rows]
                count += len(events)
                after = rows[-1][0]
            passes.append((perf_counter_ns() - t0, count))
    finally:
        conn.close()
    elapsed, count = sorted(passes)[len(passes) // 2]
    return RateFigures(rate(count, elapsed), count, elapsed / 1e9)


def raw_stream_read(
    path: str, stream_len: int = 100, samples: int = 200, *, warmup: int = 20
) -> LatencyFigures:
    """Read and decode the last ``stream_len`` events of one stream.

    Streams are picked at random (fixed seed) among those with at least
    ``stream_len`` events; their events lie interleaved with other streams'
    (round-robin), so with ~12 or more streams every event of a stream sits
    on its own table page. One ``SELECT_STREAM`` query, then a bare typed
    decode of each stored envelope (payload included).

    Args:
        path: A filled store (see :func:`benchmarks.workload.fill_store`; a
            1000-event stream needs ``n_streams * 1000`` events, e.g. 100
            streams).
        stream_len: Events read per sample.
        samples: Reads timed (after ``warmup`` untimed ones).
        warmup: Untimed reads first.

    Returns:
        Latency of one read+decode (µs).

    Raises:
        ValueError: No stream in the store has ``stream_len`` events.
    """
    conn = open_reader(path)
    decode = envelope_decoder().decode
    try:
        heads = conn.execute(
            "SELECT aggregate_id, max(version) FROM events GROUP BY aggregate_id"
        ).fetchall()
        eligible = [
            (agg, top - stream_len + 1) for agg, top in heads if top >= stream_len
        ]
        if not eligible:
            msg = f"no stream in {path} has {stream_len} events"
            raise ValueError(msg)
        rng = random.Random(20240601)
        picks = [rng.choice(eligible) for _ in range(warmup + samples)]
        timings: list[int] = []
        for k, params in enumerate(picks):
            t0 = perf_counter_ns()
            rows = conn.execute(SELECT_STREAM, params).fetchall()
            events = [decode(row[DATA_COLUMN]) for row in rows]
            t1 = perf_counter_ns()
            if len(events) != stream_len:
                msg = f"read {len(events)} events of {params[0]}, not {stream_len}"
                raise AssertionError(msg)
            if k >= warmup:
                timings.append(t1 - t0)
        return latency_figures(timings)
    finally:
        conn.close()


def raw_causal_chain(
    path: str,
    ends: Sequence[uuid.UUID],
    depth: int,
    samples: int = 200,
    *,
    warmup: int = 20,
) -> LatencyFigures:
    """The naive walk up a causal chain (R5's anchor): one indexed lookup by
    id per link (``cause`` names the next), then a bare typed decode of each
    stored envelope.

    Returns:
        Latency of one walk of ``depth`` links (µs).
    """
    conn = open_reader(path)
    decode = envelope_decoder().decode
    rng = random.Random(20240601)
    picks = [rng.choice(ends) for _ in range(warmup + samples)]
    lookup = "SELECT cause, data FROM events WHERE id = ?"
    try:
        timings: list[int] = []
        for k, event_id in enumerate(picks):
            t0 = perf_counter_ns()
            found = []
            key: Any = event_id.bytes
            while isinstance(key, bytes):
                row = conn.execute(lookup, (key,)).fetchone()
                if row is None:
                    break
                found.append(decode(row[1]))
                key = row[0]
            found.reverse()
            t1 = perf_counter_ns()
            if len(found) != depth:
                msg = f"walked {len(found)} links, not {depth}"
                raise AssertionError(msg)
            if k >= warmup:
                timings.append(t1 - t0)
        return latency_figures(timings)
    finally:
        conn.close()
