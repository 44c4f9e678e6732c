"""A1: how late an asyncio event loop wakes while swarmlog works beside it.

Fifty coroutines append (``await store.append_async(e)``) and query
(``await projection.aio.count()``, ``await store.aio.get_events(...)``)
on one event loop while a projection started on that loop catches up over
``n`` stored events. A probe coroutine sleeps 1 ms in a loop and records
how late it wakes: anything that blocks the loop thread (a blocking query,
a back-pressure wait, a long ``initialize()``) shows as lag.

Run alone: ``python -m benchmarks.loop_lag [n]``.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from benchmarks.library import make_events
from benchmarks.workload import (
    EVENT_TYPES,
    N_STREAMS,
    fill_store,
    register_workload_types,
    stream_id,
)
from swarmlog import Event, EventStore, Projection, handles, query

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["LagFigures", "loop_lag", "loop_lag_rows"]

R = TypeVar("R")

PROBE_S = 0.001  # the probe's sleep
MUST_US = 50_000.0  # the loop may wake at most 50 ms late
GOAL_US = 5_000.0
COROUTINES = 50
REPEATS = 3  # catch-ups measured, one after the other (samples pooled)
MIN_ROUNDS = 20  # appends (and queries) per coroutine, at least
STREAM_TAIL = 95  # store reads fetch a stream's events from this version on
_GUARD_S = 600.0  # guards the run against a hang only


@dataclass(frozen=True, slots=True)
class LagFigures:
    """Event-loop lag while appending and querying during a catch-up.

    Attributes:
        max_us: The latest wake-up of the 1 ms probe, beyond its 1 ms.
        p99_us: 99th percentile of the probe's lateness.
        p50_us: Median lateness.
        samples: Probe wake-ups measured.
        n: Events the new projection caught up over.
        appends: ``append_async`` calls awaited.
        queries: ``aio`` queries awaited.
        initialize_us: Longest time ``projection.initialize()`` held the
            loop.
        catch_up_s: Mean seconds from ``initialize()`` to the projection
            reaching the head it started from.
    """

    max_us: float
    p99_us: float
    p50_us: float
    samples: int
    n: int
    appends: int
    queries: int
    initialize_us: float
    catch_up_s: float

    def as_dict(self) -> dict[str, Any]:
        """The fields as a ``dict`` (field name -> value)."""
        return asdict(self)


class CountingProjection(Projection):
    """Counts workload events (its own thread); one query."""

    name: ClassVar[str] = "bench-loop-lag"

    def reset_state(self) -> None:
        self._count = 0

    @handles(*EVENT_TYPES)
    def _on_event(self, event: Event) -> None:
        self._count += 1

    @query
    def count(self) -> int:
        """Events applied."""
        return self._count


async def _probe(lateness: list[float], stop: asyncio.Event) -> None:
    clock = time.perf_counter
    while not stop.is_set():
        start = clock()
        await asyncio.sleep(PROBE_S)
        lateness.append(clock() - start - PROBE_S)


async def _worker(
    k: int,
    store: EventStore,
    projection: CountingProjection,
    caught_up: asyncio.Event,
    counts: list[int],
) -> None:
    rounds = 0
    stream = stream_id(k % N_STREAMS)
    start = store.head_position + k * 1_000_000  # payloads differ per worker
    while rounds < MIN_ROUNDS or not caught_up.is_set():
        (event,) = make_events(1, start=start + rounds)
        await store.append_async(event)
        if rounds % 2:
            await store.aio.get_events(stream, from_version=STREAM_TAIL)
        else:
            await projection.aio.count()
        rounds += 1
    counts[k] = rounds


async def _one_catch_up(
    store: EventStore, name: str, lateness: list[float]
) -> tuple[int, float, float, int]:
    """One fresh projection catching up under load, the probe running.

    Returns:
        The head it caught up to, ``initialize()``'s time in µs, the
        catch-up's in seconds, and the appends made.
    """
    stop = asyncio.Event()
    probe = asyncio.ensure_future(_probe(lateness, stop))
    await asyncio.sleep(0.05)  # the probe is running before the load starts
    head = store.head_position
    kind = type(f"Counting_{name}", (CountingProjection,), {"name": name})
    t0 = time.perf_counter()
    projection = kind(store).initialize()
    initialize_us = (time.perf_counter() - t0) * 1e6
    caught_up = asyncio.Event()
    counts = [0] * COROUTINES
    workers = [
        asyncio.ensure_future(_worker(k, store, projection, caught_up, counts))
        for k in range(COROUTINES)
    ]
    await projection.aio.wait_for(head, timeout=_GUARD_S)
    catch_up_s = time.perf_counter() - t0
    caught_up.set()
    await asyncio.wait_for(asyncio.gather(*workers), _GUARD_S)
    stop.set()
    await probe
    projection.stop()
    return head, initialize_us, catch_up_s, sum(counts)


async def _run(store: EventStore, repeats: int) -> LagFigures:
    lateness: list[float] = []
    runs = [
        await _one_catch_up(store, f"bench-loop-lag-{k}", lateness)
        for k in range(repeats)
    ]
    ordered = sorted(lateness)
    appends = sum(r[3] for r in runs)
    return LagFigures(
        max_us=ordered[-1] * 1e6,
        p99_us=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6,
        p50_us=ordered[len(ordered) // 2] * 1e6,
        samples=len(ordered),
        n=runs[0][0],
        appends=appends,
        queries=appends,
        initialize_us=max(r[1] for r in runs),
        catch_up_s=sum(r[2] for r in runs) / repeats,
    )


def loop_lag(path: str, n: int, repeats: int = REPEATS) -> LagFigures:
    """Fill ``path`` to ``n`` events, then measure the loop lag (A1) over
    ``repeats`` fresh projections catching up one after the other (their
    probe samples pooled).

    Runs the event loop on the calling thread; the store is shut down
    before returning.
    """
    register_workload_types()
    fill_store(path, n)
    store = EventStore(path, synchronous="normal").initialize()
    try:
        return asyncio.run(_run(store, repeats))
    finally:
        store.shutdown()


def loop_lag_rows(figures: LagFigures, row: Callable[..., R]) -> list[R]:
    """The report's A1 lines (max and p99 lateness), made by ``row``
    (:class:`benchmarks.run.Row`)."""
    metric = f"event-loop lag: {COROUTINES} coroutines, catch-up of {figures.n:,}"
    return [
        row(
            id="A1",
            metric=f"{metric}, {label}",
            library=value,
            anchor=None,
            value=value,
            must="<=50 ms",
            goal="<=5 ms",
            must_ok=value <= MUST_US,
            goal_ok=value <= GOAL_US,
            unit="us",
            anchor_unit="",
            value_unit="us",
            anchor_name="-",
            library_name=f"lib_loop_lag.{key}",
        )
        for label, key, value in (
            ("max", "max_us", figures.max_us),
            ("p99", "p99_us", figures.p99_us),
        )
    ]


def main(argv: list[str] | None = None) -> int:
    """Print the A1 figures for ``n`` events (default 100,000)."""
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        figures = loop_lag(str(Path(tmp) / "lag.db"), n)
    for key, value in figures.as_dict().items():
        print(
            f"{key:14} {value:,.1f}"
            if isinstance(value, float)
            else f"{key:14} {value}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
