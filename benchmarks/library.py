"""Library measurements: swarmlog doing the physical work of each anchor.

Each function here is the library-side twin of an anchor in
:mod:`benchmarks.raw_sqlite`, :mod:`benchmarks.runtime` or
:mod:`benchmarks.peer`: the same table definition (the library's own), the
same workload (the 25 tagged ~200-byte payload types of
:mod:`benchmarks.workload`, registered as swarmlog event types of aggregate
type ``"bench"``, round-robin over 1000 aggregates), the same table sizes.

Events (envelopes around pre-built payloads) are made before timing, as the
raw anchors pre-build their rows; everything the library then does
(validation, encoding, the hop to the writer, group commit, the future,
decoding rows into typed :class:`~swarmlog.Event` objects, dispatch to
projections) is inside the clock. Every function opens its own
:class:`~swarmlog.EventStore` on the calling thread and shuts it down
(untimed) before returning.
"""

from __future__ import annotations

import gc
import random
import sqlite3
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from statistics import median
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
import psutil

from benchmarks.closed_loop import run_closed_loop
from benchmarks.figures import (
    CodecFigures,
    LatencyFigures,
    RateFigures,
    TxnFigures,
    latency_figures,
    rate,
    txn_figures,
)
from benchmarks.workload import (
    DATA_COLUMN,
    EVENT_TYPES,
    N_STREAMS,
    SOURCE,
    build_rows,
    envelope_decoder,
    make_payload,
    register_workload_types,
    stream_id,
)
from swarmlog import EventStore, Projection, create_event, handles
from swarmlog.schema.codec import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    EVENT_COLUMNS,
    INSERT_COLUMNS,
    decode_row,
    prepare_event,
)

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable, Sequence

    from swarmlog import Event

__all__ = [
    "MemoryFigures",
    "NoOpProjection",
    "add_causal_chains",
    "library_append_async",
    "library_append_many",
    "library_appends",
    "library_appends_threads",
    "library_catch_up",
    "library_causal_chain",
    "library_codec",
    "library_commit_to_handler",
    "library_memory",
    "library_stream_read",
    "make_events",
    "register_workload_types",
    "time_appends",
    "time_catch_up",
]

_MB = 1024 * 1024
_WAIT_S = 600.0  # guards waits against hangs only


def make_events(n: int, *, start: int = 0, n_streams: int = N_STREAMS) -> list[Event]:
    """Events ``start .. start + n - 1`` of the workload, not yet stored.

    Event ``i`` carries the workload's payload ``i`` and goes to aggregate
    ``stream_id(i % n_streams)``; the store assigns versions and positions.
    """
    register_workload_types()
    return [
        create_event(
            make_payload(i, n_streams), stream_id(i % n_streams), source=SOURCE
        )
        for i in range(start, start + n)
    ]


def _open(path: str, synchronous: str, **options: Any) -> EventStore:
    register_workload_types()
    return EventStore(path, synchronous=synchronous, **options).initialize()


# -- writes ---------------------------------------------------------------------


def library_appends(
    path: str,
    synchronous: str,
    n: int,
    *,
    warmup: int = 100,
    caller_commits: bool = False,
) -> TxnFigures:
    """``n`` awaited ``append()`` calls from one caller, closed loop (W1, W2).

    Args:
        path: Database file; created if missing, appended to if not.
        synchronous: ``"full"`` or ``"normal"``.
        n: Appends timed (after ``warmup`` untimed ones).
        warmup: Untimed appends first.
        caller_commits: Measure the opt-in path instead of the default
            (the writer commits): the caller then runs on a thread of its
            own, since the opt-in never commits on the main thread.

    Returns:
        Events/s and append latency p50/p99 (µs); ``n`` = appends timed.
    """
    if caller_commits:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(
                _appends, path, synchronous, n, warmup, caller_commits=True
            ).result()
    return _appends(path, synchronous, n, warmup)


def _appends(
    path: str, synchronous: str, n: int, warmup: int, **options: Any
) -> TxnFigures:
    store = _open(path, synchronous, **options)
    try:
        events = make_events(warmup + n, start=store.head_position)
        append = store.append
        for event in events[:warmup]:
            append(event)
        samples: list[int] = []
        start = perf_counter_ns()
        for event in events[warmup:]:
            t0 = perf_counter_ns()
            append(event)
            samples.append(perf_counter_ns() - t0)
        elapsed = perf_counter_ns() - start
        return txn_figures(n, elapsed, samples)
    finally:
        store.shutdown()


def library_appends_threads(
    path: str,
    synchronous: str,
    *,
    threads: int = 16,
    n: int = 4000,
    warmup: int = 100,
    stats: dict[str, Any] | None = None,
) -> TxnFigures:
    """``n`` awaited ``append()`` calls from ``threads`` closed-loop threads.

    The twin of :func:`benchmarks.raw_sqlite.raw_single_event_txn_threads`
    (W3, W4, W6): each thread appends its own pre-built events one at a
    time; the writer group-commits whatever is queued.

    Args:
        path: Database file; created if missing, appended to if not.
        synchronous: ``"full"`` or ``"normal"``.
        threads: Appending threads.
        n: Appends timed, split evenly over the threads.
        warmup: Untimed appends first (calling thread).
        stats: If given, ``mean_batch_size`` (append requests per
            transaction, warm-up included) is appended to its list there.

    Returns:
        Events/s and append latency p50/p99 (µs); ``n`` = appends timed.
    """
    store = _open(path, synchronous)
    try:
        figures = time_appends(store, threads=threads, n=n, warmup=warmup)
        if stats is not None:
            batch = store.get_stats().mean_batch_size
            stats.setdefault("mean_batch_size", []).append(batch)
        return figures
    finally:
        store.shutdown()


def time_appends(
    store: EventStore, *, threads: int, n: int, warmup: int, name: str = "lib-appender"
) -> TxnFigures:
    """``warmup`` untimed appends on the calling thread, then ``n`` timed
    one-event ``append()`` calls split over ``threads`` closed-loop threads
    (each appending its own pre-built events one at a time)."""
    events = make_events(warmup + n, start=store.head_position)
    append = store.append
    for event in events[:warmup]:
        append(event)
    timed = events[warmup:]
    shares = [timed[t::threads] for t in range(threads)]

    def work(index: int, begin: Callable[[], list[int]]) -> None:
        mine = shares[index]
        out = begin()
        for event in mine:
            t0 = perf_counter_ns()
            append(event)
            out.append(perf_counter_ns() - t0)

    elapsed, samples = run_closed_loop(threads, work, name=name)
    return txn_figures(n, elapsed, samples)


def library_append_many(
    path: str,
    synchronous: str,
    *,
    batch: int = 1000,
    n_batches: int = 50,
    warmup_batches: int = 1,
) -> TxnFigures:
    """``n_batches`` awaited ``append_many()`` calls of ``batch`` events (W5).

    The twin of :func:`benchmarks.raw_sqlite.raw_batch_txn`: one caller,
    closed loop, one transaction per call. Pass a copy of a filled store as
    ``path`` for the grown-table variant.

    Returns:
        Events/s and latency p50/p99 (µs) of one call; ``n`` = calls timed.
    """
    store = _open(path, synchronous)
    try:
        events = make_events(
            (warmup_batches + n_batches) * batch, start=store.head_position
        )
        append_many = store.append_many
        for lo in range(0, warmup_batches * batch, batch):
            append_many(events[lo : lo + batch])
        samples: list[int] = []
        start = perf_counter_ns()
        for lo in range(warmup_batches * batch, len(events), batch):
            chunk = events[lo : lo + batch]
            t0 = perf_counter_ns()
            append_many(chunk)
            samples.append(perf_counter_ns() - t0)
        elapsed = perf_counter_ns() - start
        return txn_figures(n_batches * batch, elapsed, samples)
    finally:
        store.shutdown()


def library_append_async(
    path: str,
    synchronous: str,
    *,
    n: int = 50_000,
    window: int = 2000,
    warmup: int = 1000,
    stats: dict[str, Any] | None = None,
) -> RateFigures:
    """``n`` one-event ``append_async()`` calls, ``window`` kept in flight (W5).

    One caller submits events one by one; once ``window`` futures are
    pending it waits for the oldest before submitting the next. Timed from
    the first submission until the last future has settled.

    Args:
        path: Database file; created if missing, appended to if not.
        synchronous: ``"full"`` or ``"normal"``.
        n: Appends timed.
        window: Appends in flight at most.
        warmup: Untimed appends first (same scheme).
        stats: If given, ``mean_batch_size`` (append requests per
            transaction, warm-up included) is appended to its list there.

    Returns:
        Events/s; ``n`` = appends timed.
    """
    store = _open(path, synchronous)
    try:
        events = make_events(warmup + n, start=store.head_position)
        append_async = store.append_async

        def pump(chunk: list[Event]) -> None:
            in_flight: deque[Any] = deque()
            for event in chunk:
                if len(in_flight) >= window:
                    in_flight.popleft().get(_WAIT_S)
                in_flight.append(append_async(event))
            while in_flight:
                in_flight.popleft().get(_WAIT_S)

        pump(events[:warmup])
        t0 = perf_counter_ns()
        pump(events[warmup:])
        elapsed = perf_counter_ns() - t0
        if stats is not None:
            batch = store.get_stats().mean_batch_size
            stats.setdefault("mean_batch_size", []).append(batch)
        return RateFigures(rate(n, elapsed), n, elapsed / 1e9)
    finally:
        store.shutdown()


# -- codec ----------------------------------------------------------------------


def _time_interleaved(
    passes: dict[str, tuple[Callable[[list[Any]], list[Any]], list[Any]]],
    page: int,
    repeats: int,
) -> dict[str, tuple[int, list[Any]]]:
    """Median ns of ``repeats`` passes of each function over its items, a
    page at a time, and each one's last page.

    The functions take turns page by page (a page is a few milliseconds of
    work), each page timed on its own and the pages summed: a noisy moment
    of the machine (this kind of VM has bursts of stolen time) hits all of
    them alike instead of one whole pass.
    """
    times: dict[str, list[int]] = {name: [] for name in passes}
    last: dict[str, list[Any]] = {}
    pages = max(len(items) for _, items in passes.values())
    for _ in range(repeats):
        gc.collect()
        spent = dict.fromkeys(passes, 0)
        for lo in range(0, pages, page):
            for name, (function, items) in passes.items():
                chunk = items[lo : lo + page]
                if not chunk:
                    continue
                t0 = perf_counter_ns()
                out = function(chunk)
                spent[name] += perf_counter_ns() - t0
                last[name] = out
        for name, ns in spent.items():
            times[name].append(ns)
    return {name: (round(median(times[name])), last[name]) for name in passes}


def library_codec(
    n: int = 100_000, *, repeats: int = 5, page: int = 1000
) -> dict[str, CodecFigures]:
    """The library's own codec over ``n`` workload events (W7).

    Encode is :func:`swarmlog.schema.codec.prepare_event` (what ``append``
    does on the caller's thread: validate the event, encode the payload and
    the envelope); decode is :func:`swarmlog.schema.codec.decode_row` on
    rows as the library SELECTs them (envelope and typed payload into an
    :class:`~swarmlog.Event`). Both go a page at a time with only the
    current page's results alive, as ``append_many`` and catch-up hold
    them; the pre-built inputs are frozen out of the garbage collector
    (``gc.freeze``), as the bare anchor's inputs are untracked (``gc=False``
    payloads, bytes). Each figure is the median of ``repeats`` passes, the
    library and the anchors taking turns pass by pass.

    Also times bare msgspec on the same objects and bytes: one
    ``Encoder(uuid_format="bytes")`` encode of the whole event, one typed
    decode of the stored envelope (:class:`benchmarks.workload.BenchEnvelope`),
    and an encode followed by that typed decode (what validating an event
    with msgspec costs at the least: the judged W7 encode anchor).

    Returns:
        ``{"lib_codec": ..., "bare_envelope_codec": ...}``: encodes/s,
        decodes/s, mean stored ``data`` size; ``n`` = events.
    """
    events = make_events(n)
    stored = [c.strip() for c in INSERT_COLUMNS.split(",")]
    picks = [stored.index(c.strip()) for c in EVENT_COLUMNS.split(",")]
    rows = [tuple(row[k] for k in picks) for row in build_rows(n)]  # as SELECTed
    mean_bytes = sum(len(row[DATA_COLUMN]) for row in rows) / n
    limit = DEFAULT_MAX_PAYLOAD_BYTES
    bare_encode = msgspec.msgpack.Encoder(uuid_format="bytes").encode
    bare_decode = envelope_decoder().decode
    gc.collect()
    gc.freeze()
    try:
        timed = _time_interleaved(
            {
                "lib_enc": (
                    lambda chunk: [prepare_event(e, limit) for e in chunk],
                    events,
                ),
                "bare_val": (
                    lambda chunk: [bare_decode(bare_encode(e)) for e in chunk],
                    events,
                ),
                "lib_dec": (lambda chunk: [decode_row(row) for row in chunk], rows),
                "bare_dec": (
                    lambda chunk: [bare_decode(row[DATA_COLUMN]) for row in chunk],
                    rows,
                ),
                "bare_enc": (lambda chunk: [bare_encode(e) for e in chunk], events),
            },
            page,
            repeats,
        )
    finally:
        gc.unfreeze()
    lib_enc, prepared = timed["lib_enc"]
    lib_dec, decoded = timed["lib_dec"]
    bare_enc = timed["bare_enc"][0]
    bare_val = timed["bare_val"][0]
    bare_dec, envelopes = timed["bare_dec"]
    expected = make_payload(n - 1)
    if decoded[-1].payload != expected or envelopes[-1].payload != expected:
        msg = "a codec round trip changed a payload"
        raise AssertionError(msg)
    if prepared[-1].data[-40:] != rows[-1][DATA_COLUMN][-40:]:
        msg = "prepare_event and the stored rows disagree"
        raise AssertionError(msg)
    return {
        "lib_codec": CodecFigures(rate(n, lib_enc), rate(n, lib_dec), mean_bytes, n),
        "bare_envelope_codec": CodecFigures(
            rate(n, bare_enc), rate(n, bare_dec), mean_bytes, n
        ),
        # encode + typed decode back: the physical work of validating with
        # msgspec, which append must do (Struct.__init__ does not validate)
        "bare_envelope_validate": CodecFigures(
            rate(n, bare_val), rate(n, bare_dec), mean_bytes, n
        ),
    }


# -- reads ------------------------------------------------------------------------


def library_stream_read(
    path: str, stream_len: int = 100, samples: int = 200, *, warmup: int = 20
) -> LatencyFigures:
    """``get_events()`` of one aggregate's last ``stream_len`` events (R1, R2).

    The twin of :func:`benchmarks.raw_sqlite.raw_stream_read`: the same
    store, the same random picks (same seed), typed events out.

    Returns:
        Latency of one ``get_events`` call (µs).

    Raises:
        ValueError: No aggregate in the store has ``stream_len`` events.
    """
    conn = sqlite3.connect(path)
    try:
        heads = conn.execute(
            "SELECT aggregate_id, max(version) FROM events GROUP BY aggregate_id"
        ).fetchall()
    finally:
        conn.close()
    eligible = [(agg, top - stream_len + 1) for agg, top in heads if top >= stream_len]
    if not eligible:
        msg = f"no stream in {path} has {stream_len} events"
        raise ValueError(msg)
    rng = random.Random(20240601)
    picks = [rng.choice(eligible) for _ in range(warmup + samples)]
    store = _open(path, "normal")
    try:
        get_events = store.get_events
        timings: list[int] = []
        for k, (aggregate_id, first) in enumerate(picks):
            t0 = perf_counter_ns()
            events = get_events(aggregate_id, first)
            t1 = perf_counter_ns()
            if len(events) != stream_len:
                msg = f"read {len(events)} events of {aggregate_id}, not {stream_len}"
                raise AssertionError(msg)
            if k >= warmup:
                timings.append(t1 - t0)
        return latency_figures(timings)
    finally:
        store.shutdown()


def add_causal_chains(
    path: str, *, depth: int = 50, chains: int = 50
) -> list[uuid.UUID]:
    """Append ``chains`` causal chains ``depth`` events deep to the store at
    ``path`` (untimed; R5's setup), interleaved round-robin: the links of
    one chain lie ``chains`` positions apart. Returns each chain's last id.
    """
    store = _open(path, "normal")
    try:
        last: list[Event | None] = [None] * chains
        for level in range(depth):
            for k in range(chains):
                cause = last[k]
                last[k] = store.append(
                    create_event(
                        make_payload(level * chains + k),
                        stream_id(k),
                        source=SOURCE,
                        causation_id=None if cause is None else str(cause.id),
                    )
                )
        return [event.id for event in last if event is not None]
    finally:
        store.shutdown()


def library_causal_chain(
    path: str,
    ends: Sequence[uuid.UUID],
    depth: int,
    samples: int = 200,
    *,
    warmup: int = 20,
) -> LatencyFigures:
    """``get_causal_chain()`` of a chain's last event (R5): the causes,
    root first, ``depth`` events, typed, read by one indexed query.

    Returns:
        Latency of one call (µs).
    """
    rng = random.Random(20240601)
    picks = [rng.choice(ends) for _ in range(warmup + samples)]
    store = _open(path, "normal")
    try:
        get_causal_chain = store.get_causal_chain
        timings: list[int] = []
        for k, event_id in enumerate(picks):
            t0 = perf_counter_ns()
            chain = get_causal_chain(event_id)
            t1 = perf_counter_ns()
            if len(chain) != depth or chain[-1].id != event_id:
                msg = f"a chain of {len(chain)} events, not {depth}"
                raise AssertionError(msg)
            if k >= warmup:
                timings.append(t1 - t0)
        return latency_figures(timings)
    finally:
        store.shutdown()


class NoOpProjection(Projection):
    """Handles every workload event type and does nothing (its own thread)."""

    name: ClassVar[str] = "bench-noop"

    @handles(*EVENT_TYPES)
    def _on_event(self, event: Event) -> None:
        return None


def _fresh_noop(tag: str) -> type[NoOpProjection]:
    """A subclass with a unique ``name`` (one running projection per name)."""
    return type(f"NoOp_{tag}", (NoOpProjection,), {"name": f"bench-noop-{tag}"})


def library_catch_up(path: str, *, repeats: int = 3) -> RateFigures:
    """A no-op projection catching up from position 0 to the head (R3).

    The twin of :func:`benchmarks.raw_sqlite.raw_paged_scan_decode`: timed
    from ``initialize()`` until ``wait_for(head)`` returns; each pass is a
    new projection (no snapshot). Median of ``repeats`` passes.

    Returns:
        Events/s of the median pass; ``n`` = events in one pass.
    """
    store = _open(path, "normal")
    try:
        return time_catch_up(store, "r3", repeats)
    finally:
        store.shutdown()


def time_catch_up(store: EventStore, tag: str, repeats: int) -> RateFigures:
    """Median of ``repeats`` passes of a new no-op projection catching up
    on ``store`` from 0 to its head (``initialize()`` to ``wait_for``)."""
    passes: list[tuple[int, int]] = []
    head = store.head_position
    for k in range(repeats):
        projection = _fresh_noop(f"{tag}-{k}")(store)
        gc.collect()
        t0 = perf_counter_ns()
        projection.initialize()
        projection.wait_for(head, timeout=_WAIT_S)
        passes.append((perf_counter_ns() - t0, projection.position))
        projection.stop()
    elapsed, count = sorted(passes)[len(passes) // 2]
    return RateFigures(rate(count, elapsed), count, elapsed / 1e9)


class _StampProjection(Projection):
    """Records when its handler starts, per position (its own thread)."""

    name: ClassVar[str] = "bench-stamp"

    def reset_state(self) -> None:
        self.stamps: dict[int, int] = {}
        self.signal = threading.Event()

    @handles(*EVENT_TYPES)
    def _on_event(self, event: Event) -> None:
        self.stamps[event.position] = perf_counter_ns()
        self.signal.set()


def library_commit_to_handler(
    path: str, n: int = 1000, *, synchronous: str = "full", warmup: int = 50
) -> LatencyFigures:
    """Time from ``append()`` returning to the projection handler starting (R4).

    One caller appends sequentially; after each append it waits until the
    handler has run, then idles as long as the append took, so the writer
    is busy at most half the time (≤ 50 % load). The handler records
    ``perf_counter_ns()`` on entry; the sample is that minus the instant
    ``append()`` returned (negative when the handler started first: the
    writer hands the page to the dispatcher before it resolves the future).

    Returns:
        Latency (µs); ``n`` = appends timed.
    """
    store = _open(path, synchronous)
    try:
        projection = _StampProjection(store).initialize()
        projection.wait_for(store.head_position, timeout=_WAIT_S)
        signal = projection.signal
        stamps = projection.stamps
        events = make_events(warmup + n, start=store.head_position)
        append = store.append
        returned: list[tuple[int, int]] = []
        for k, event in enumerate(events):
            signal.clear()
            t0 = perf_counter_ns()
            stored = append(event)
            t1 = perf_counter_ns()
            if not signal.wait(_WAIT_S):
                msg = f"the handler never saw position {stored.position}"
                raise AssertionError(msg)
            if k >= warmup:
                returned.append((stored.position, t1))
            time.sleep((t1 - t0) / 1e9)
        return latency_figures([stamps[position] - t for position, t in returned])
    finally:
        store.shutdown()


# -- memory -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemoryFigures:
    """RSS of the process while a long read runs.

    Attributes:
        baseline_mb: RSS just before the run, in MiB.
        peak_growth_mb: Highest RSS during the run minus the baseline.
        late_growth_mb: Highest RSS in the second half of the run minus the
            highest in the first half (growth that scales with the events
            read; ~0 when memory is bounded).
        events_per_s: Events read per second.
        n: Events read.
        samples: RSS readings taken.
    """

    baseline_mb: float
    peak_growth_mb: float
    late_growth_mb: float
    events_per_s: float
    n: int
    samples: int

    def as_dict(self) -> dict[str, Any]:
        """The fields as a ``dict`` (field name -> value)."""
        return asdict(self)


class _RssSampler:
    """Reads this process's RSS every ``interval`` s with the run's progress."""

    def __init__(self, progress: Callable[[], float], interval: float = 0.01) -> None:
        self._progress = progress
        self._interval = interval
        self._process = psutil.Process()
        self._stop = threading.Event()
        self.readings: list[tuple[float, int]] = []
        self._thread = threading.Thread(target=self._loop, name="rss-sampler")

    def _read(self) -> None:
        self.readings.append((self._progress(), self._process.memory_info().rss))

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._read()

    def __enter__(self) -> _RssSampler:
        gc.collect()
        self.baseline = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._read()

    def figures(self, n: int, elapsed_ns: int) -> MemoryFigures:
        early = [rss for done, rss in self.readings if done < 0.5] or [self.baseline]
        late = [rss for done, rss in self.readings if done >= 0.5] or early
        peak = max(rss for _, rss in self.readings)
        return MemoryFigures(
            baseline_mb=self.baseline / _MB,
            peak_growth_mb=(peak - self.baseline) / _MB,
            late_growth_mb=(max(late) - max(early)) / _MB,
            events_per_s=rate(n, elapsed_ns),
            n=n,
            samples=len(self.readings),
        )


def library_memory(path: str, kind: str = "replay") -> MemoryFigures:
    """RSS growth while reading every event of the store at ``path`` (M1).

    ``kind`` is ``"replay"`` (iterate ``store.replay()``, keeping nothing)
    or ``"catch_up"`` (a no-op projection from position 0 to the head).
    Fill the store first, e.g. with :func:`benchmarks.workload.fill_store`;
    run each kind in a fresh process for a clean baseline.

    Raises:
        ValueError: ``kind`` is neither.
    """
    if kind not in ("replay", "catch_up"):
        msg = f"kind must be 'replay' or 'catch_up', got {kind!r}"
        raise ValueError(msg)
    store = _open(path, "normal")
    try:
        head = store.head_position
        if kind == "replay":
            done = [0]
            with _RssSampler(lambda: done[0] / head) as sampler:
                t0 = perf_counter_ns()
                count = 0
                for _event in store.replay():
                    count += 1
                    if not count & 1023:
                        done[0] = count
                elapsed = perf_counter_ns() - t0
                done[0] = count
            return sampler.figures(count, elapsed)
        projection = _fresh_noop("m1")(store)
        with _RssSampler(lambda: projection.position / head) as sampler:
            t0 = perf_counter_ns()
            projection.initialize()
            projection.wait_for(head, timeout=_WAIT_S)
            elapsed = perf_counter_ns() - t0
        projection.stop()
        return sampler.figures(projection.position, elapsed)
    finally:
        store.shutdown()
