"""MP1-MP3: several processes appending to one ``multi_process=True`` file.

- **MP1**: ``processes`` x ``threads`` (4 x 4) closed-loop appenders, each
  process with its own ``EventStore(path, multi_process=True)``, each
  thread appending its own pre-built events one at a time: the W3/W4
  workload (1000 aggregates shared by every process, so versions are
  contended across processes). Total events/s, from the first thread's
  start to the last one's end in any process (``time.monotonic_ns``: one
  system-wide clock). Anchor: one ordinary store (``multi_process=False``)
  in one process with ``processes x threads`` threads, measured right
  before, on the same sizes. FULL and NORMAL.
- **MP1\\***: one multi-process store alone, same thread count (info: what
  the mode costs when no other process writes).
- **MP1p**: MP1 again with each process pinned to one CPU, round robin
  (``os.sched_setaffinity``, Linux; info: the README's advice for several
  writing processes on a few cores).
- **MP2**: cross-process visibility. Process A appends an event; once the
  append returned, A sends its id and the instant through a pipe to process
  B, which at once runs a strong query on a live projection
  (``AgentStateProjection.get_agent``) and answers how long after A's
  return the query came back, and whether it saw the event. One event at a
  time (ping-pong), B otherwise idle: p50 and p99, pipe transfer included.
- **MP3**: how long the processes wait during MP1 (FULL): the longest
  wait for the store-wide write lock of any process (the engine's
  ``get_stats().lock_wait_max``; the warm-up included) and, since the
  engine keeps no percentiles, the append latency measured around each
  ``append`` call (lock wait plus commit, an upper bound of the wait): its
  p99 over all appends and the worst process's own p99.

Run alone::

    python -m benchmarks.multiprocess            # full sizes, 3 rounds, ~1 min;
                                                 # writes results/multiprocess.json
    python -m benchmarks.multiprocess --quick --rounds 1   # seconds
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import platform
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median
from time import monotonic_ns
from typing import TYPE_CHECKING, Any, Final

from benchmarks.figures import (
    LatencyFigures,
    TxnFigures,
    WaitFigures,
    latency_figures,
    percentile_us,
    txn_figures,
)
from benchmarks.library import library_appends_threads, make_events
from benchmarks.workload import register_workload_types
from swarmlog import AgentStateProjection, EventStore, create_agent_spawned_event

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier

__all__ = [
    "CHILD_TIMEOUT",
    "can_pin",
    "cross_process_visibility",
    "main",
    "multiprocess_appends",
    "pin_to_one_cpu",
]

DEFAULT_JSON: Final = Path(__file__).resolve().parent / "results" / "multiprocess.json"
CHILD_TIMEOUT: Final = 600.0  # seconds; guards against a hung child only
START_METHOD: Final = "spawn"  # every platform; no inherited threads

# -- MP1, MP3 -------------------------------------------------------------------


def _appender(
    path: str,
    synchronous: str,
    index: int,
    threads: int,
    n: int,
    warmup: int,
    barrier: Barrier,
    out: Queue[Any],
    pin: bool = False,
) -> None:
    """One appending process of MP1 (its main thread starts the threads);
    with ``pin``, on one CPU (see :func:`pin_to_one_cpu`)."""
    try:
        if pin:
            pin_to_one_cpu(index)
        register_workload_types()
        store = EventStore(
            path, synchronous=synchronous, multi_process=True
        ).initialize()
        try:
            events = make_events(warmup + n, start=index * (warmup + n))
            append = store.append
            for event in events[:warmup]:
                append(event)
            timed = events[warmup:]
            shares = [timed[t::threads] for t in range(threads)]
            samples: list[list[int]] = [[] for _ in range(threads)]
            spans = [[0, 0] for _ in range(threads)]
            go = threading.Barrier(threads + 1)

            def work(t: int) -> None:
                out_t = samples[t]
                go.wait()
                spans[t][0] = monotonic_ns()
                for event in shares[t]:
                    t0 = monotonic_ns()
                    append(event)
                    out_t.append(monotonic_ns() - t0)
                spans[t][1] = monotonic_ns()

            workers = [
                threading.Thread(target=work, args=(t,), name=f"mp-appender-{t}")
                for t in range(threads)
            ]
            for worker in workers:
                worker.start()
            barrier.wait(CHILD_TIMEOUT)  # every process warmed up
            go.wait()
            for worker in workers:
                worker.join()
            flat = [s for per_thread in samples for s in per_thread]
            stats = store.get_stats()
            out.put(
                (
                    index,
                    min(s for s, _ in spans),
                    max(e for _, e in spans),
                    flat,
                    stats.lock_waits,
                    stats.lock_wait_max,
                )
            )
        finally:
            store.shutdown()
    except BaseException as e:  # reported to the parent, which raises
        barrier.abort()
        out.put((index, "error", f"{type(e).__name__}: {e}"))


def can_pin() -> bool:
    """Whether this platform lets a process choose its CPUs (Linux)."""
    return hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity")


def pin_to_one_cpu(index: int) -> None:
    """Keep this process (and the threads it starts from now on) on one
    of the CPUs it may use: the ``index``-th, round robin. What the README
    suggests for several writing processes on a few cores."""
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[index % len(cpus)]})


def multiprocess_appends(
    path: str,
    synchronous: str,
    *,
    processes: int = 4,
    threads: int = 4,
    n: int = 10_000,
    warmup: int = 100,
    pin: bool = False,
) -> tuple[TxnFigures, WaitFigures]:
    """``n`` awaited appends from ``processes`` x ``threads`` closed-loop
    threads, each process with its own multi-process store (MP1, MP3).

    Args:
        path: Database file (created here first, so no process races to
            create it).
        synchronous: ``"full"`` or ``"normal"``.
        processes: Appending processes (spawned).
        threads: Appending threads per process.
        n: Appends timed, all processes together.
        warmup: Untimed appends per process first.
        pin: Each process on one CPU (round robin; :func:`pin_to_one_cpu`).

    Returns:
        Total events/s and append latency p50/p99 (µs, every process's
        samples), and the waits (MP3).

    Raises:
        RuntimeError: A process failed.
    """
    register_workload_types()
    EventStore(
        path, synchronous=synchronous, multi_process=True
    ).initialize().shutdown()
    context = multiprocessing.get_context(START_METHOD)
    barrier = context.Barrier(processes)
    out: Queue[Any] = context.Queue()
    share = n // processes
    children = [
        context.Process(  # type: ignore[attr-defined]
            target=_appender,
            args=(path, synchronous, k, threads, share, warmup, barrier, out, pin),
            name=f"mp1-process-{k}",
            daemon=True,
        )
        for k in range(processes)
    ]
    for child in children:
        child.start()
    try:
        answers = [out.get(timeout=CHILD_TIMEOUT) for _ in children]
    finally:
        for child in children:
            child.join(CHILD_TIMEOUT)
    failed = [a for a in answers if a[1] == "error"]
    if failed:
        msg = "; ".join(f"process {a[0]}: {a[2]}" for a in failed)
        raise RuntimeError(msg)
    start = min(a[1] for a in answers)
    end = max(a[2] for a in answers)
    per_process = [sorted(a[3]) for a in answers]
    samples = sorted(s for latencies in per_process for s in latencies)
    waits = WaitFigures(
        lock_wait_max_us=max(a[5] for a in answers) * 1e6,
        lock_waits=sum(a[4] for a in answers),
        latency_p99_us=percentile_us(samples, 0.99),
        worst_process_latency_p99_us=max(
            percentile_us(latencies, 0.99) for latencies in per_process
        ),
        n=len(samples),
    )
    return txn_figures(share * processes, end - start, samples), waits


# -- MP2 ------------------------------------------------------------------------


def _observer(path: str, conn: Connection) -> None:
    """Process B of MP2: answer each id with how long its query took to
    reflect it, counted from A's return."""
    try:
        store = EventStore(path, multi_process=True).initialize()
        try:
            agents = AgentStateProjection(store).initialize()
            conn.send("ready")
            while (message := conn.recv()) is not None:
                agent_id, returned_ns = message
                seen = agents.get_agent(agent_id) is not None
                conn.send((monotonic_ns() - returned_ns, seen))
        finally:
            store.shutdown()
    except BaseException as e:  # reported to the parent, which raises
        conn.send(f"{type(e).__name__}: {e}")


def cross_process_visibility(
    path: str, *, samples: int = 500, warmup: int = 20
) -> tuple[LatencyFigures, int]:
    """Append in this process (A), query at once in another (B) (MP2).

    Returns:
        The latency from A's append returning to B's strong query returning
        (µs), and how many queries did not reflect the append (0 unless
        read-your-writes across processes is broken).

    Raises:
        RuntimeError: Process B failed.
    """
    context = multiprocessing.get_context(START_METHOD)
    with EventStore(path, multi_process=True) as store:
        mine, theirs = context.Pipe()
        observer = context.Process(  # type: ignore[attr-defined]
            target=_observer, args=(path, theirs), name="mp2-observer", daemon=True
        )
        observer.start()
        try:
            if not mine.poll(CHILD_TIMEOUT) or (hello := mine.recv()) != "ready":
                msg = f"observer process: {hello if mine.poll(0) else 'no answer'}"
                raise RuntimeError(msg)
            timings: list[int] = []
            missed = 0
            for k in range(warmup + samples):
                agent_id = f"mp2-agent-{k}"
                store.append(create_agent_spawned_event(agent_id, "coder", "core"))
                mine.send((agent_id, monotonic_ns()))
                if not mine.poll(CHILD_TIMEOUT):
                    msg = "observer process did not answer"
                    raise RuntimeError(msg)
                answer = mine.recv()
                if isinstance(answer, str):
                    raise RuntimeError(f"observer process: {answer}")
                if k >= warmup:
                    timings.append(answer[0])
                    missed += not answer[1]
        finally:
            mine.send(None)
            observer.join(CHILD_TIMEOUT)
    return latency_figures(timings), missed


# -- alone ------------------------------------------------------------------------


def measure(
    workdir: str,
    *,
    n: dict[str, int],
    mp2_samples: int,
    rounds: int = 1,
    processes: int = 4,
    threads: int = 4,
) -> dict[str, Any]:
    """MP1 (with its anchor and MP1*) and MP3 ``rounds`` times, anchor and
    multi-process runs alternating; MP2 once.

    Returns:
        Figures by name: the median over rounds of each field (``n``
        summed), the rounds themselves under ``"rounds"``.
    """
    runs: dict[str, list[dict[str, Any]]] = {}
    counter = iter(range(10_000))

    def fresh(name: str) -> str:
        return os.path.join(workdir, f"{next(counter):04d}-{name}.db")

    def keep(name: str, figures: Any) -> None:
        runs.setdefault(name, []).append(figures.as_dict())

    callers = processes * threads
    grid = f"{processes}x{threads}"
    for _ in range(rounds):
        for sync in ("full", "normal"):
            keep(
                f"lib_{callers}callers_{sync}_1process",
                library_appends_threads(
                    fresh(f"anchor-{sync}"), sync, threads=callers, n=n[sync]
                ),
            )
            alone, _ = multiprocess_appends(
                fresh(f"alone-{sync}"), sync, processes=1, threads=callers, n=n[sync]
            )
            keep(f"mp_1x{callers}_{sync}", alone)
            total, waits = multiprocess_appends(
                fresh(f"mp-{sync}"),
                sync,
                processes=processes,
                threads=threads,
                n=n[sync],
            )
            keep(f"mp_{grid}_{sync}", total)
            keep(f"mp_{grid}_{sync}_waits", waits)
            if can_pin():  # info: the README's advice for a few cores
                pinned, _ = multiprocess_appends(
                    fresh(f"mp-pinned-{sync}"),
                    sync,
                    processes=processes,
                    threads=threads,
                    n=n[sync],
                    pin=True,
                )
                keep(f"mp_{grid}_{sync}_pinned", pinned)
    visibility, missed = cross_process_visibility(fresh("mp2"), samples=mp2_samples)
    keep("mp2_visibility", visibility)
    figures: dict[str, Any] = {
        name: {
            key: sum(r[key] for r in found)
            if key == "n"
            else median(r[key] for r in found)
            for key in found[0]
        }
        for name, found in runs.items()
    }
    figures["mp2_missed"] = missed
    figures["rounds"] = runs
    return figures


def main(argv: list[str] | None = None) -> int:
    """Print MP1-MP3 (main thread) and write the figures as JSON (full
    runs: :data:`DEFAULT_JSON`; any run: ``--json PATH``)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.multiprocess")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument(
        "--json",
        metavar="PATH",
        help=f"write the figures here (default for full runs: {DEFAULT_JSON})",
    )
    parser.add_argument("--dir", metavar="DIR", help="put the databases under DIR")
    parser.add_argument(
        "--rounds", type=int, default=3, help="MP1 repetitions; medians count"
    )
    args = parser.parse_args(argv)
    n = (
        {"full": 800, "normal": 2000}
        if args.quick
        else {"full": 10_000, "normal": 20_000}
    )
    samples = 50 if args.quick else 500
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="swarmlog-mp-", dir=args.dir) as tmp:
        figures = measure(tmp, n=n, mp2_samples=samples, rounds=args.rounds)
    for line in report_lines(figures):
        print(line)
    print(
        f"({args.rounds} round(s), medians; {time.perf_counter() - started:.0f} s, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})"
    )
    json_path = args.json or (None if args.quick else str(DEFAULT_JSON))
    if json_path:
        report = {
            "command": "python -m benchmarks.multiprocess"
            + (" --quick" if args.quick else "")
            + f" --rounds {args.rounds}",
            "started_at": started_at,
            "elapsed_s": round(time.perf_counter() - started, 1),
            "machine": {
                "cpu_count": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "sqlite": sqlite3.sqlite_version,
                "loadavg_start": load_start,
                "loadavg_end": os.getloadavg(),
            },
            "sizes": {"n": n, "mp2_samples": samples, "rounds": args.rounds},
            "lines": report_lines(figures),
            **figures,
        }
        out = Path(json_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", "utf-8")
        print(f"wrote {out}")
    return 0


def report_lines(
    figures: dict[str, Any], *, processes: int = 4, threads: int = 4
) -> list[str]:
    """MP1-MP3 as lines of text (from :func:`measure`'s figures)."""
    lines = []
    callers = processes * threads
    grid = f"{processes}x{threads}"
    for sync in ("full", "normal"):
        anchor = figures[f"lib_{callers}callers_{sync}_1process"]["events_per_s"]
        total = figures[f"mp_{grid}_{sync}"]["events_per_s"]
        alone = figures[f"mp_1x{callers}_{sync}"]["events_per_s"]
        lines.append(
            f"MP1  {processes} processes x {threads} threads, {sync.upper():6}: "
            f"{total:,.0f} ev/s vs 1 process x {callers} threads {anchor:,.0f} "
            f"ev/s = {total / anchor:.2f}x (must >=0.6x, goal >=0.9x)"
        )
        lines.append(
            f"MP1* 1 multi-process store x {callers} threads, {sync.upper():6}: "
            f"{alone:,.0f} ev/s = {alone / anchor:.2f}x (info)"
        )
        pinned = figures.get(f"mp_{grid}_{sync}_pinned")
        if pinned is not None:
            value = pinned["events_per_s"]
            lines.append(
                f"MP1p same, each process pinned to one CPU, {sync.upper():6}: "
                f"{value:,.0f} ev/s = {value / anchor:.2f}x (info)"
            )
    waits = figures[f"mp_{grid}_full_waits"]
    lines.append(
        f"MP3  during MP1 FULL: longest lock wait of any process "
        f"{waits['lock_wait_max_us'] / 1000:.2f} ms ({waits['lock_waits']:,} "
        f"waits); append latency (wait + commit) p99 "
        f"{waits['latency_p99_us'] / 1000:.2f} ms, worst process's p99 "
        f"{waits['worst_process_latency_p99_us'] / 1000:.2f} ms"
    )
    mp2 = figures["mp2_visibility"]
    lines.append(
        f"MP2  append returns in A -> strong query in B reflects it: p50 "
        f"{mp2['p50_us'] / 1000:.2f} ms, p99 {mp2['p99_us'] / 1000:.2f} ms "
        f"(must p50 <=5 ms); not reflected: {figures['mp2_missed']}"
    )
    return lines


if __name__ == "__main__":
    sys.exit(main())
