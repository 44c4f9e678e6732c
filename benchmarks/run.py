"""The benchmark suite: every library figure next to its anchor, in one run.

::

    python -m benchmarks.run            # full: the report sizes, ~3-5 min
    python -m benchmarks.run --quick    # small sizes, ~15 s (the smoke test)
    python -m benchmarks.run --json out.json --dir /some/disk

Each library measurement (:mod:`benchmarks.library`) runs in the same process
as its anchor (:mod:`benchmarks.anchors`), on the same table sizes, right
next to it; the write figures that move most on a shared VM are measured
``rounds`` times, anchor and library alternating, and the median counts.
The run prints one table (id, metric, library, anchor, ratio, must, goal,
result) for the targets W1-W8, R1-R5, M1 of
``shared/reference/performance-targets.md`` and MP1-MP3 of issue 13
(several processes on one file, :mod:`benchmarks.multiprocess`), and writes
the same as JSON, with machine notes, to ``benchmarks/results/latest.json``
(full runs) or to ``--json``. M1 (no anchor) runs in fresh child processes,
since RSS growth needs a clean baseline; MP1-MP3 in spawned processes of
their own. Lines marked ``*`` are context
(e.g. W7 against bare msgspec of the whole stored envelope, R2 against
``eventsourcing``), not judged.

WAL checkpoints: the library's writer turns SQLite's automatic checkpoints
off and runs a PASSIVE checkpoint itself, on its own connection and thread,
after 200 commits when idle (forced at 2000); the time it takes is on the
writer's clock. The raw write anchors therefore run in checkpoint mode
``"inline"``: SQLite's stock automatic checkpoint every 1000 WAL pages
(about every 170-200 one-event commits) on the writing connection, on the
clock: the same physical work. ``"untimed"`` figures (checkpoints off the
clock) are recorded in the JSON for reference, not judged.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import json
import multiprocessing
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from statistics import median
from time import perf_counter
from typing import TYPE_CHECKING, Any

from benchmarks.anchors import FULL, QUICK, Sizes
from benchmarks.figures import TxnFigures
from benchmarks.library import (
    add_causal_chains,
    library_append_async,
    library_append_many,
    library_appends,
    library_appends_threads,
    library_catch_up,
    library_causal_chain,
    library_codec,
    library_commit_to_handler,
    library_memory,
    library_stream_read,
)
from benchmarks.loop_lag import loop_lag, loop_lag_rows
from benchmarks.multiprocess import (
    can_pin,
    cross_process_visibility,
    multiprocess_appends,
)
from benchmarks.peer import (
    eventsourcing_load,
    eventsourcing_pragmas,
    eventsourcing_saves,
)
from benchmarks.raw_sqlite import (
    raw_batch_txn,
    raw_causal_chain,
    raw_paged_scan_decode,
    raw_single_event_txn,
    raw_single_event_txn_threads,
    raw_stream_read,
)
from benchmarks.runtime import msgspec_codec, pykka_ask, pykka_tell, thread_round_trip
from benchmarks.workload import fill_store

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "FULL_RUN",
    "METRIC_IDS",
    "QUICK_RUN",
    "Row",
    "RunSizes",
    "main",
    "run",
]

METRIC_IDS = (
    "W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8",
    "R1", "R2", "R3", "R4", "R5", "M1", "A1", "MP1", "MP2", "MP3",
)  # fmt: skip
"""Every target id; the table has at least one row for each."""

R5_DEPTH = 50  # links of each causal chain (R5)
R5_CHAINS = 50  # chains, appended interleaved: one chain's links lie 50 apart

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"
ANCHOR_CHECKPOINT = "inline"
SYNCS = ("full", "normal")


@dataclass(frozen=True, slots=True)
class RunSizes:
    """How much work one run does.

    Attributes:
        anchors: The anchor sizes (:data:`benchmarks.anchors.QUICK` or
            ``FULL``); the library twins use the same counts.
        rounds: Alternating anchor/library repetitions of the write figures
            (W1-W6, W8); the median round counts.
        concurrent: Appends timed per ``synchronous`` level by 4 and by 16
            library callers.
        async_window: ``append_async`` calls kept in flight (W5).
        r4_samples: Sequential appends timed for R4.
        m1_events: Events replayed and caught up for M1.
        scan_repeats: Passes of the raw scan and the library catch-up (R3).
        a1_events: Events a new projection catches up over during A1.
        mp2_samples: Cross-process visibility samples (MP2).
    """

    anchors: Sizes
    rounds: int
    concurrent: dict[str, int]
    async_window: int
    r4_samples: int
    m1_events: int
    scan_repeats: int
    a1_events: int = 100_000
    mp2_samples: int = 500


QUICK_RUN = RunSizes(
    anchors=QUICK,
    rounds=1,
    concurrent={"full": 800, "normal": 2000},
    async_window=2000,
    r4_samples=200,
    m1_events=50_000,
    scan_repeats=3,
    a1_events=10_000,
    mp2_samples=50,
)
"""Seconds: every measurement path, small sizes (figures are rough)."""

FULL_RUN = RunSizes(
    anchors=FULL,
    rounds=3,
    concurrent={"full": 10_000, "normal": 20_000},
    async_window=2000,
    r4_samples=1000,
    m1_events=1_000_000,
    scan_repeats=3,
)
"""The report sizes: the workload of ``performance-targets.md``."""


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the report.

    Attributes:
        id: Target id (``W1`` ... ``M1``); ``*`` marks an unjudged line.
        metric: What the line measures.
        library: The library figure, in ``unit``.
        anchor: The anchor figure, in ``anchor_unit`` (None: no anchor).
        value: The judged number: a ratio to the anchor, or (W2) the
            latency overhead in round trips, or (W6, M1) the figure itself.
        must: The floor, as text.
        goal: The goal, as text.
        must_ok: Whether ``value`` meets the must (None: not judged).
        goal_ok: Whether ``value`` meets the goal (None: not judged).
        unit: Unit of ``library``: ``ev/s``, ``us``, ``MB`` or ``x``.
        anchor_unit: Unit of ``anchor``.
        value_unit: Unit of ``value``: ``x``, ``RT`` or ``MB``.
        anchor_name: Which anchor result the line compares with.
        library_name: Which library result the line reads.
    """

    id: str
    metric: str
    library: float
    anchor: float | None
    value: float
    must: str
    goal: str
    must_ok: bool | None
    goal_ok: bool | None
    unit: str
    anchor_unit: str
    value_unit: str
    anchor_name: str
    library_name: str

    @property
    def result(self) -> str:
        """``goal``, ``pass``, ``FAIL`` or ``info``."""
        if self.must_ok is None:
            return "info"
        if not self.must_ok:
            return "FAIL"
        return "goal" if self.goal_ok else "pass"


# -- collecting figures -------------------------------------------------------


class _Results:
    """Figures by name, every round kept; medians for the report."""

    def __init__(self, verbose: bool) -> None:
        self.rounds: dict[str, list[Any]] = {}
        self.side: dict[str, str] = {}
        self.extra: dict[str, dict[str, Any]] = {}
        self._verbose = verbose

    def keep(self, side: str, name: str, figures: Any) -> Any:
        self.rounds.setdefault(name, []).append(figures)
        self.side[name] = side
        if self._verbose:
            line = f"  {side:7} {name:34} {_brief(figures)}"
            print(line, file=sys.stderr, flush=True)
        return figures

    def get(self, name: str) -> Any:
        """The median over rounds (field by field) of result ``name``."""
        runs = self.rounds[name]
        if len(runs) == 1:
            return runs[0]
        if isinstance(runs[0], TxnFigures):
            return TxnFigures(
                events_per_s=median(r.events_per_s for r in runs),
                p50_us=median(r.p50_us for r in runs),
                p99_us=median(r.p99_us for r in runs),
                n=sum(r.n for r in runs),
            )
        kind = type(runs[0])
        fields = runs[0].as_dict()
        merged = {
            key: (
                sum(getattr(r, key) for r in runs)
                if key == "n"
                else median(getattr(r, key) for r in runs)
            )
            for key in fields
        }
        return kind(**merged)

    def tail_ratio(self, name: str) -> float:
        """Median over rounds of p99 / p50."""
        return median(r.p99_us / r.p50_us for r in self.rounds[name])

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"anchors": {}, "library": {}}
        for name, runs in self.rounds.items():
            entry: dict[str, Any] = {"median": self.get(name).as_dict()}
            if len(runs) > 1:
                entry["rounds"] = [r.as_dict() for r in runs]
            if name in self.extra:
                entry["extra"] = self.extra[name]
            out["anchors" if self.side[name] == "anchor" else "library"][name] = entry
        return out


def _brief(figures: Any) -> str:
    parts: list[str] = []
    for key, value in figures.as_dict().items():
        if key.endswith("per_s"):
            parts.append(f"{key}={value / 1000:,.1f}k")
        elif key.endswith(("_us", "_mb")):
            parts.append(f"{key}={value:,.1f}")
        elif isinstance(value, float):
            parts.append(f"{key}={value:.3g}")
        else:
            parts.append(f"{key}={value}")
    return "  ".join(parts)


class _Workdir:
    """Fresh database paths under one temporary directory."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._count = 0

    def path(self, name: str) -> str:
        self._count += 1
        return os.path.join(self.root, f"{self._count:03d}-{name}.db")

    def copy(self, source: str, name: str) -> str:
        target = self.path(name)
        shutil.copyfile(source, target)
        return target

    @staticmethod
    def remove(path: str) -> None:
        for leftover in (path, path + "-wal", path + "-shm", path + ".lock"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(leftover)


# -- the run ------------------------------------------------------------------


def _writes_round(
    sizes: RunSizes, results: _Results, work: _Workdir, first: bool
) -> None:
    """One round of the closed-loop write figures, anchor and library
    alternating (W1-W4, W6, W8)."""
    a = sizes.anchors
    threads = a.threads

    def once(side: str, name: str, measure: Callable[[str], Any]) -> None:
        path = work.path(name)
        try:
            results.keep(side, name, measure(path))
        finally:
            work.remove(path)

    for sync in SYNCS:
        n = a.txn[sync]
        once(
            "anchor",
            f"raw_1txn_{sync}",
            lambda p, s=sync, n=n: raw_single_event_txn(
                p, s, n, checkpoint=ANCHOR_CHECKPOINT
            ),
        )
        once(
            "library",
            f"lib_1caller_{sync}",
            lambda p, s=sync, n=n: library_appends(p, s, n),
        )
        once(
            "library",
            f"lib_1caller_optin_{sync}",
            lambda p, s=sync, n=n: library_appends(p, s, n, caller_commits=True),
        )
        if first:
            once(
                "anchor",
                f"raw_1txn_{sync}_untimed_ckpt",
                lambda p, s=sync, n=n: raw_single_event_txn(
                    p, s, n, checkpoint="untimed"
                ),
            )
    for sync in SYNCS:
        for callers in (threads, 4):
            name = f"lib_{callers}callers_{sync}"
            stats = results.extra.setdefault(name, {})
            once(
                "library",
                name,
                lambda p, s=sync, c=callers, st=stats: library_appends_threads(
                    p, s, threads=c, n=sizes.concurrent[s], stats=st
                ),
            )
        once(
            "anchor",
            f"raw_1txn_{threads}t_{sync}",
            lambda p, s=sync: raw_single_event_txn_threads(
                p, s, threads=threads, n=a.txn[s], checkpoint=ANCHOR_CHECKPOINT
            ),
        )
    for sync in SYNCS:
        for count in (1, threads):
            once(
                "anchor",
                f"es_saves_{count}t_{sync}",
                lambda p, s=sync, c=count: eventsourcing_saves(
                    p, threads=c, n=a.es_saves[s], synchronous=s
                ),
            )


def _saturated_round(
    sizes: RunSizes, results: _Results, work: _Workdir, grown: str, first: bool
) -> None:
    """One round of W5: 1000-event transactions against the library's batch
    API and against many appends in flight, on a fresh and a grown table."""
    a = sizes.anchors
    grown_name = f"{a.prefill // 1000}k"
    n_events = a.batches * 1000
    for table in ("fresh", grown_name):

        def path_for(name: str, table: str = table) -> str:
            return work.path(name) if table == "fresh" else work.copy(grown, name)

        runs: list[tuple[str, str, Callable[[str], Any]]] = [
            (
                "anchor",
                f"raw_batch_{table}_full",
                lambda p: raw_batch_txn(
                    p, "full", n_batches=a.batches, checkpoint=ANCHOR_CHECKPOINT
                ),
            ),
            (
                "library",
                f"lib_append_many_{table}_full",
                lambda p: library_append_many(p, "full", n_batches=a.batches),
            ),
            (
                "library",
                f"lib_append_async_{table}_full",
                lambda p, t=table: library_append_async(
                    p,
                    "full",
                    n=n_events,
                    window=sizes.async_window,
                    stats=results.extra.setdefault(f"lib_append_async_{t}_full", {}),
                ),
            ),
        ]
        if first:
            runs.append(
                (
                    "anchor",
                    f"raw_batch_{table}_full_untimed_ckpt",
                    lambda p: raw_batch_txn(
                        p, "full", n_batches=a.batches, checkpoint="untimed"
                    ),
                )
            )
        for side, name, measure in runs:
            path = path_for(name)
            try:
                results.keep(side, name, measure(path))
            finally:
                work.remove(path)


MP_PROCESSES = 4  # MP1: processes x threads, against one process with both
MP_THREADS = 4


def _multiprocess_round(sizes: RunSizes, results: _Results, work: _Workdir) -> None:
    """One round of MP1 (and MP3, its lock waits): per ``synchronous``
    level, one ordinary store with 16 threads (the anchor), one
    multi-process store alone with 16 threads (info), then 4 processes x 4
    threads, each with its own multi-process store on one file, then the
    same with each process pinned to one CPU (info, where the platform
    allows it)."""
    callers = MP_PROCESSES * MP_THREADS
    for sync in SYNCS:
        n = sizes.concurrent[sync]
        path = work.path(f"mp_anchor_{sync}")
        results.keep(
            "anchor",
            f"lib_{callers}callers_{sync}_mp_anchor",
            library_appends_threads(path, sync, threads=callers, n=n),
        )
        work.remove(path)
        path = work.path(f"mp_1x{callers}_{sync}")
        alone, _ = multiprocess_appends(path, sync, processes=1, threads=callers, n=n)
        results.keep("library", f"mp_1x{callers}_{sync}", alone)
        work.remove(path)
        grid = f"{MP_PROCESSES}x{MP_THREADS}"
        path = work.path(f"mp_{grid}_{sync}")
        total, waits = multiprocess_appends(
            path, sync, processes=MP_PROCESSES, threads=MP_THREADS, n=n
        )
        results.keep("library", f"mp_{grid}_{sync}", total)
        results.keep("library", f"mp_{grid}_{sync}_waits", waits)
        work.remove(path)
        if can_pin():  # info (MP1p): the README's advice for a few cores
            path = work.path(f"mp_{grid}_{sync}_pinned")
            pinned, _ = multiprocess_appends(
                path, sync, processes=MP_PROCESSES, threads=MP_THREADS, n=n, pin=True
            )
            results.keep("library", f"mp_{grid}_{sync}_pinned", pinned)
            work.remove(path)


def run(
    sizes: RunSizes, workdir: str, *, verbose: bool = True
) -> tuple[list[Row], dict[str, Any]]:
    """Run every anchor and library measurement once (writes: ``rounds``).

    Args:
        sizes: :data:`QUICK_RUN`, :data:`FULL_RUN` or your own.
        workdir: An empty directory for the database files.
        verbose: Print each figure to stderr as it is measured.

    Returns:
        The report rows and every figure (``{"anchors": ..., "library":
        ...}``, medians and rounds).
    """
    results = _Results(verbose)
    work = _Workdir(workdir)
    a = sizes.anchors
    keep = results.keep

    def say(what: str) -> None:
        if verbose:
            print(f"{what} ...", file=sys.stderr, flush=True)

    say("codec (W7)")
    keep("anchor", "msgspec_codec", msgspec_codec(a.codec))
    codecs = library_codec(a.codec)
    keep("library", "lib_codec", codecs["lib_codec"])
    keep("anchor", "bare_envelope_codec", codecs["bare_envelope_codec"])
    keep("anchor", "bare_envelope_validate", codecs["bare_envelope_validate"])

    say("thread round trips")
    keep("anchor", "thread_rt_queue", thread_round_trip(a.round_trips, kind="queue"))
    keep(
        "anchor",
        "thread_rt_simplequeue",
        thread_round_trip(a.round_trips, kind="simple"),
    )
    keep("anchor", "pykka_ask", pykka_ask(a.round_trips))
    keep("anchor", "pykka_tell", pykka_tell(a.tells))

    for k in range(sizes.rounds):
        say(f"closed-loop writes, round {k + 1}/{sizes.rounds} (W1-W4, W6, W8)")
        _writes_round(sizes, results, work, first=k == 0)

    for k in range(sizes.rounds):
        say(f"several processes, round {k + 1}/{sizes.rounds} (MP1, MP3)")
        _multiprocess_round(sizes, results, work)
    say("cross-process visibility (MP2)")
    path = work.path("mp2")
    visibility, missed = cross_process_visibility(path, samples=sizes.mp2_samples)
    keep("library", "mp2_visibility", visibility)
    results.extra["mp2_visibility"] = {"not_reflected": missed}
    work.remove(path)

    say(f"filling the {a.prefill:,}-event table")
    grown = work.path("grown")
    fill_store(grown, a.prefill)
    for k in range(sizes.rounds):
        say(f"saturated writes, round {k + 1}/{sizes.rounds} (W5)")
        _saturated_round(sizes, results, work, grown, first=k == 0)

    say("catch-up (R3)")
    keep(
        "anchor",
        "raw_scan_decode",
        raw_paged_scan_decode(grown, repeats=sizes.scan_repeats),
    )
    keep("library", "lib_catch_up", library_catch_up(grown, repeats=sizes.scan_repeats))

    say("aggregate reads (R1, R2)")
    for stream_len, n_streams in ((100, a.streams_100), (1000, a.streams_1000)):
        path = work.path(f"streams_{stream_len}")
        fill_store(path, stream_len * n_streams, n_streams=n_streams)
        keep(
            "anchor",
            f"raw_stream_{stream_len}",
            raw_stream_read(path, stream_len, a.stream_samples),
        )
        keep(
            "library",
            f"lib_get_events_{stream_len}",
            library_stream_read(path, stream_len, a.stream_samples),
        )
        work.remove(path)
    path = work.path("es_load")
    keep(
        "anchor",
        "es_load_1000",
        eventsourcing_load(path, samples=a.es_loads, interleave=a.es_interleave),
    )
    work.remove(path)

    say("commit -> projection handler (R4)")
    keep("anchor", "thread_rt_queue_r4", thread_round_trip(a.round_trips, kind="queue"))
    path = work.path("r4")
    r4 = library_commit_to_handler(path, sizes.r4_samples)
    keep("library", "lib_commit_to_handler", r4)
    work.remove(path)

    say(f"memory (M1): filling to {sizes.m1_events:,} events")
    fill_store(grown, sizes.m1_events)
    say("memory (M1): replay and catch-up, in a fresh child process")
    keep("library", "lib_replay_rss", _in_child(library_memory, grown, "replay"))
    keep("library", "lib_catch_up_rss", _in_child(library_memory, grown, "catch_up"))

    say(f"causal chains (R5): {R5_DEPTH} deep, {sizes.m1_events:,}-event store")
    ends = add_causal_chains(grown, depth=R5_DEPTH, chains=R5_CHAINS)
    keep("anchor", "raw_causal_chain", raw_causal_chain(grown, ends, R5_DEPTH))
    keep("library", "lib_causal_chain", library_causal_chain(grown, ends, R5_DEPTH))
    work.remove(grown)

    say(f"event-loop lag (A1): {sizes.a1_events:,} events, in a fresh child process")
    keep(
        "library", "lib_loop_lag", _in_child(loop_lag, work.path("a1"), sizes.a1_events)
    )
    return _rows(sizes, results), results.as_json()


def _in_child(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a fresh (spawned) Python process.

    RSS growth is only meaningful from a clean start: this process has
    freed, but kept, hundreds of MB of allocator arenas by now, which a
    replay would reuse without growing.
    """
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


# -- judging ------------------------------------------------------------------


def _ratio_row(
    id_: str,
    metric: str,
    results: _Results,
    library: tuple[str, str],
    anchor: tuple[str, str],
    must: float | None,
    goal: float | None,
    *,
    higher_is_better: bool,
    unit: str,
) -> Row:
    lib_name, lib_field = library
    anchor_name, anchor_field = anchor
    lib = float(getattr(results.get(lib_name), lib_field))
    ref = float(getattr(results.get(anchor_name), anchor_field))
    value = lib / ref
    sign = ">=" if higher_is_better else "<="

    def ok(bound: float | None) -> bool | None:
        if bound is None:
            return None
        return value >= bound if higher_is_better else value <= bound

    return Row(
        id=id_,
        metric=metric,
        library=lib,
        anchor=ref,
        value=value,
        must="-" if must is None else f"{sign}{must:g}x",
        goal="-" if goal is None else f"{sign}{goal:g}x",
        must_ok=ok(must),
        goal_ok=ok(goal),
        unit=unit,
        anchor_unit=unit,
        value_unit="x",
        anchor_name=f"{anchor_name}.{anchor_field}",
        library_name=f"{lib_name}.{lib_field}",
    )


def _rows(sizes: RunSizes, results: _Results) -> list[Row]:
    a = sizes.anchors
    threads = a.threads
    rows: list[Row] = []

    def judged(higher_is_better: bool, default_unit: str) -> Callable[..., None]:
        def add(
            id_: str,
            metric: str,
            library: tuple[str, str],
            anchor: tuple[str, str],
            must: float | None,
            goal: float | None,
            unit: str = default_unit,
        ) -> None:
            rows.append(
                _ratio_row(
                    id_,
                    metric,
                    results,
                    library,
                    anchor,
                    must,
                    goal,
                    higher_is_better=higher_is_better,
                    unit=unit,
                )
            )

        return add

    at_least = judged(higher_is_better=True, default_unit="ev/s")
    at_most = judged(higher_is_better=False, default_unit="us")

    eps = "events_per_s"
    at_least(
        "W1",
        "1 caller, awaited append(), FULL",
        ("lib_1caller_full", eps),
        ("raw_1txn_full", eps),
        0.5,
        0.65,
    )
    at_least(
        "W1*",
        "same, opt-in caller_commits=True (info)",
        ("lib_1caller_optin_full", eps),
        ("raw_1txn_full", eps),
        None,
        None,
    )
    commit = results.get("raw_1txn_full").p50_us
    rt = results.get("thread_rt_queue").p50_us
    lib_p50 = results.get("lib_1caller_full").p50_us
    overhead = (lib_p50 - commit) / rt
    rows.append(
        Row(
            id="W2",
            metric="same, p50 latency (ratio: RTs over commit)",
            library=lib_p50,
            anchor=commit + rt,
            value=overhead,
            must="<=3 RT",
            goal="<=1.5 RT",
            must_ok=overhead <= 3,
            goal_ok=overhead <= 1.5,
            unit="us",
            anchor_unit="us",
            value_unit="RT",
            anchor_name="raw_1txn_full.p50_us + thread_rt_queue.p50_us",
            library_name="lib_1caller_full.p50_us",
        )
    )
    at_least(
        "W3",
        f"{threads} threads closed loop, FULL",
        (f"lib_{threads}callers_full", eps),
        ("raw_1txn_full", eps),
        1.6,
        2.3,
    )
    at_least(
        "W4",
        f"{threads} threads closed loop, NORMAL",
        (f"lib_{threads}callers_normal", eps),
        ("raw_1txn_normal", eps),
        0.6,
        0.9,
    )
    grown_name = f"{a.prefill // 1000}k"
    for table in ("fresh", grown_name):
        where = "fresh table" if table == "fresh" else f"{a.prefill:,}-event table"
        at_least(
            "W5",
            f"append_many x1000, {where}, FULL",
            (f"lib_append_many_{table}_full", eps),
            (f"raw_batch_{table}_full", eps),
            0.65,
            0.9,
        )
        at_least(
            "W5",
            f"append_async {sizes.async_window} in flight, {where}, FULL",
            (f"lib_append_async_{table}_full", eps),
            (f"raw_batch_{table}_full", eps),
            0.65,
            0.9,
        )
        at_least(
            "W5*",
            "append_many, same, vs raw with checkpoints off the clock (info)",
            (f"lib_append_many_{table}_full", eps),
            (f"raw_batch_{table}_full_untimed_ckpt", eps),
            None,
            None,
        )
    for sync, must, goal in (("full", 3.0, 2.0), ("normal", 5.0, 3.5)):
        raw = results.get(f"raw_1txn_{sync}")
        for callers in (4, threads):
            name = f"lib_{callers}callers_{sync}"
            tail = results.tail_ratio(name)
            rows.append(
                Row(
                    id="W6",
                    metric=f"p99/p50, {callers} callers, {sync.upper()}",
                    library=tail,
                    anchor=raw.p99_us / raw.p50_us,
                    value=tail,
                    must=f"<={must:g}",
                    goal=f"<={goal:g}",
                    must_ok=tail <= must,
                    goal_ok=tail <= goal,
                    unit="x",
                    anchor_unit="x",
                    value_unit="x",
                    anchor_name=f"raw_1txn_{sync} p99/p50 (1 thread, info)",
                    library_name=f"{name} p99/p50",
                )
            )
    # W7 compares the same physical work: the whole stored envelope
    # (payload embedded). Encoding in append means validating too, so its
    # anchor is a bare encode plus typed decode of the same event.
    at_least(
        "W7",
        "codec encode: prepare_event (validate + encode)",
        ("lib_codec", "encode_per_s"),
        ("bare_envelope_validate", "encode_per_s"),
        0.7,
        0.9,
    )
    at_least(
        "W7",
        "codec decode: decode_row (envelope + payload)",
        ("lib_codec", "decode_per_s"),
        ("bare_envelope_codec", "decode_per_s"),
        0.7,
        0.9,
    )
    at_least(
        "W7*",
        "encode vs bare encode of the envelope only (info)",
        ("lib_codec", "encode_per_s"),
        ("bare_envelope_codec", "encode_per_s"),
        None,
        None,
    )
    at_least(
        "W7*",
        "encode vs bare payload-only encode (info)",
        ("lib_codec", "encode_per_s"),
        ("msgspec_codec", "encode_per_s"),
        None,
        None,
    )
    at_least(
        "W7*",
        "decode vs bare payload-only decode (info)",
        ("lib_codec", "decode_per_s"),
        ("msgspec_codec", "decode_per_s"),
        None,
        None,
    )
    for sync in SYNCS:
        at_least(
            "W8",
            f"vs eventsourcing, 1 thread, {sync.upper()}",
            (f"lib_1caller_{sync}", eps),
            (f"es_saves_1t_{sync}", eps),
            # The writer commits every append: one thread hand-off costs
            # about a NORMAL commit here (issue 11), so NORMAL's must is 0.6x.
            0.8 if sync == "full" else 0.6,
            1.0,
        )
        at_least(
            "W8*",
            f"same, opt-in caller_commits=True (info), {sync.upper()}",
            (f"lib_1caller_optin_{sync}", eps),
            (f"es_saves_1t_{sync}", eps),
            None,
            None,
        )
        at_least(
            "W8",
            f"vs eventsourcing, {threads} threads, {sync.upper()}",
            (f"lib_{threads}callers_{sync}", eps),
            (f"es_saves_{threads}t_{sync}", eps),
            3.0,
            4.0,
        )
    at_most(
        "R1",
        "get_events, 100-event aggregate, p50",
        ("lib_get_events_100", "p50_us"),
        ("raw_stream_100", "p50_us"),
        1.3,
        1.1,
    )
    at_most(
        "R2",
        "get_events, 1000-event aggregate, p50",
        ("lib_get_events_1000", "p50_us"),
        ("raw_stream_1000", "p50_us"),
        1.5,
        1.2,
    )
    at_most(
        "R2*",
        "same vs eventsourcing load (info)",
        ("lib_get_events_1000", "p50_us"),
        ("es_load_1000", "p50_us"),
        None,
        None,
    )
    at_least(
        "R3",
        f"no-op projection catch-up, {a.prefill:,} events",
        ("lib_catch_up", eps),
        ("raw_scan_decode", eps),
        0.5,
        0.7,
    )
    at_most(
        "R4",
        "append() returns -> handler starts, p50",
        ("lib_commit_to_handler", "p50_us"),
        ("thread_rt_queue_r4", "p50_us"),
        2.0,
        1.0,
    )
    chain = results.get("lib_causal_chain")
    walk = results.get("raw_causal_chain")
    rows.append(
        Row(
            id="R5",
            metric=(
                f"get_causal_chain, {R5_DEPTH} deep, {sizes.m1_events:,}-event "
                "store, p50 (anchor: one lookup per link)"
            ),
            library=chain.p50_us,
            anchor=walk.p50_us,
            value=chain.p50_us,
            must="<=10 ms",
            goal="<=3 ms",
            must_ok=chain.p50_us <= 10_000,
            goal_ok=chain.p50_us <= 3_000,
            unit="us",
            anchor_unit="us",
            value_unit="us",
            anchor_name="raw_causal_chain",
            library_name="lib_causal_chain.p50_us",
        )
    )
    for name, what in (("lib_replay_rss", "replay"), ("lib_catch_up_rss", "catch-up")):
        m = results.get(name)
        bounded = m.late_growth_mb <= 16 and m.peak_growth_mb < 256
        rows.append(
            Row(
                id="M1",
                metric=(
                    f"{what} of {m.n:,} events: RSS growth "
                    f"(2nd half {m.late_growth_mb:+.1f} MB)"
                ),
                library=m.peak_growth_mb,
                anchor=None,
                value=m.peak_growth_mb,
                must="bounded",
                goal="<50 MB",
                must_ok=bounded,
                goal_ok=bounded and m.peak_growth_mb < 50,
                unit="MB",
                anchor_unit="",
                value_unit="MB",
                anchor_name="-",
                library_name=f"{name}.peak_growth_mb",
            )
        )
    rows.extend(loop_lag_rows(results.get("lib_loop_lag"), Row))
    rows.extend(_multiprocess_rows(results))
    return rows


def _multiprocess_rows(results: _Results) -> list[Row]:
    """MP1 (ratios), MP2 (absolute, ms) and MP3 (absolute, info)."""
    rows: list[Row] = []
    callers = MP_PROCESSES * MP_THREADS
    grid = f"{MP_PROCESSES}x{MP_THREADS}"
    eps = "events_per_s"
    for sync in SYNCS:
        anchor = (f"lib_{callers}callers_{sync}_mp_anchor", eps)
        rows.append(
            _ratio_row(
                "MP1",
                f"{MP_PROCESSES} processes x {MP_THREADS} threads, one file, "
                f"{sync.upper()} (anchor: 1 process x {callers} threads)",
                results,
                (f"mp_{grid}_{sync}", eps),
                anchor,
                0.6,
                0.9,
                higher_is_better=True,
                unit="ev/s",
            )
        )
        rows.append(
            _ratio_row(
                "MP1*",
                f"same, 1 multi-process store alone x {callers} threads (info)",
                results,
                (f"mp_1x{callers}_{sync}", eps),
                anchor,
                None,
                None,
                higher_is_better=True,
                unit="ev/s",
            )
        )
        if f"mp_{grid}_{sync}_pinned" in results.rounds:
            rows.append(
                _ratio_row(
                    "MP1p",
                    "MP1 with each process pinned to one CPU (info: the "
                    "README's advice for a few cores)",
                    results,
                    (f"mp_{grid}_{sync}_pinned", eps),
                    anchor,
                    None,
                    None,
                    higher_is_better=True,
                    unit="ev/s",
                )
            )
    visibility = results.get("mp2_visibility")
    for field, label, must in (("p50_us", "p50", 5000.0), ("p99_us", "p99", None)):
        value = float(getattr(visibility, field))
        rows.append(
            Row(
                id="MP2" if must is not None else "MP2*",
                metric=(
                    f"append returns in A -> strong query in B reflects it, {label}"
                ),
                library=value,
                anchor=None,
                value=value,
                must="-" if must is None else f"<={must / 1000:g} ms",
                goal="-",
                must_ok=None if must is None else value <= must,
                goal_ok=None,
                unit="us",
                anchor_unit="",
                value_unit="us",
                anchor_name="-",
                library_name=f"mp2_visibility.{field}",
            )
        )
    waits = results.get(f"mp_{grid}_full_waits")
    for field, label in (
        ("lock_wait_max_us", "longest lock wait of any process (get_stats)"),
        ("worst_process_latency_p99_us", "worst process's append p99 (wait+commit)"),
    ):
        value = float(getattr(waits, field))
        rows.append(
            Row(
                id="MP3",
                metric=f"during MP1 FULL: {label}",
                library=value,
                anchor=None,
                value=value,
                must="-",
                goal="-",
                must_ok=None,
                goal_ok=None,
                unit="us",
                anchor_unit="",
                value_unit="us",
                anchor_name="-",
                library_name=f"mp_{grid}_full_waits.{field}",
            )
        )
    return rows


# -- output -------------------------------------------------------------------


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ev/s":
        return f"{value / 1000:,.1f}k/s"
    if unit == "us":
        return f"{value:,.0f} us" if abs(value) >= 100 else f"{value:.1f} us"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "RT":
        return f"{value:+.2f} RT"
    return f"{value:.2f}x"


def format_table(rows: Sequence[Row]) -> str:
    """The report as a plain-text table."""
    header = ("id", "metric", "library", "anchor", "ratio", "must", "goal", "result")
    lines = [
        (
            row.id,
            row.metric,
            _figure(row.library, row.unit),
            _figure(row.anchor, row.anchor_unit),
            _figure(row.value, row.value_unit),
            row.must,
            row.goal,
            row.result,
        )
        for row in rows
    ]
    widths = [max(len(r[i]) for r in (header, *lines)) for i in range(len(header))]
    right = {2, 3, 4}

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(line) for line in lines)])


def _filesystem(path: str) -> dict[str, str]:
    notes: dict[str, str] = {}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["stat", "-f", "-c", "%T", path],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
        notes["stat_f"] = done.stdout.strip()
    with contextlib.suppress(OSError):
        best = ""
        real = os.path.realpath(path)
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) < 3:
                    continue
                point = parts[1]
                inside = real == point or real.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best = point
                    notes["mount"] = f"{parts[2]} on {point} ({parts[0]})"
    return notes


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_notes(workdir: str) -> dict[str, Any]:
    """What a reader needs to compare two runs: CPUs, versions, disk."""
    import psutil

    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "packages": {
            name: _version(name)
            for name in ("swarmlog", "msgspec", "pykka", "eventsourcing", "psutil")
        },
        "temp_dir": workdir,
        "filesystem": _filesystem(workdir),
        "loadavg_start": os.getloadavg(),
        "anchor_checkpoint": ANCHOR_CHECKPOINT,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite, print the table, write the JSON (main thread).

    Returns:
        The process exit status (0: the run completed; targets are
        reported, never enforced).
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds")
    parser.add_argument(
        "--json",
        metavar="PATH",
        help=f"write results here (default for full runs: {DEFAULT_JSON})",
    )
    parser.add_argument("--dir", metavar="DIR", help="put the databases under DIR")
    parser.add_argument("--rounds", type=int, help="override the write rounds")
    parser.add_argument("-q", "--silent", action="store_true", help="table only")
    parser.add_argument(
        "--postgres",
        action=argparse.BooleanOptionalAction,
        help="run the PostgreSQL section (default: in full runs, not with --quick)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK_RUN if args.quick else FULL_RUN
    if args.rounds:
        sizes = dataclasses.replace(sizes, rounds=args.rounds)
    json_path = args.json or (None if args.quick else str(DEFAULT_JSON))

    started = perf_counter()
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="swarmlog-bench-", dir=args.dir) as tmp:
        notes = machine_notes(tmp)
        pragmas = eventsourcing_pragmas(os.path.join(tmp, "es_pragmas.db"))
        rows, figures = run(sizes, tmp, verbose=not args.silent)
    elapsed = perf_counter() - started
    notes["loadavg_end"] = os.getloadavg()
    notes["eventsourcing_pragmas"] = pragmas

    mode = "quick" if args.quick else "full"
    print(
        f"\nswarmlog benchmarks ({mode}, {sizes.rounds} round(s) of writes, "
        f"{elapsed:.0f} s; {notes['cpu_count']} CPUs, SQLite {notes['sqlite']}, "
        f"{notes['filesystem'].get('mount', notes['filesystem'].get('stat_f', '?'))}"
        f"; raw write anchors checkpoint {ANCHOR_CHECKPOINT})"
    )
    print(format_table(rows))
    failed = sorted({row.id for row in rows if row.must_ok is False})
    print(f"musts failed: {', '.join(failed) if failed else 'none'}")
    with_pg = not args.quick if args.postgres is None else args.postgres
    pg_section = _postgres(args.quick, args.silent) if with_pg else None

    if json_path:
        report = {
            "mode": mode,
            "command": "python -m benchmarks.run" + (" --quick" if args.quick else ""),
            "started_at": started_at,
            "elapsed_s": round(elapsed, 1),
            "machine": notes,
            "sizes": _fields(sizes),
            "rows": [{**asdict(row), "result": row.result} for row in rows],
            **figures,
            "postgres": pg_section,
        }
        out = Path(json_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n", "utf-8")
        print(f"wrote {out}")
    return 0


def _postgres(quick: bool, silent: bool) -> dict[str, Any]:
    """The PostgreSQL section (:mod:`benchmarks.postgres`): its own table,
    or why it did not run (no server here)."""
    from benchmarks import postgres

    sizes = postgres.QUICK if quick else postgres.FULL
    try:
        rows, section = postgres.run_section(sizes, Row, verbose=not silent)
    except RuntimeError as e:
        print(f"\nPostgreSQL section skipped: {e}")
        return {"skipped": str(e)}
    print(f"\nPostgreSQL ({postgres.describe(section['server'])})")
    print(format_table(rows))
    failed = sorted({row.id for row in rows if row.must_ok is False})
    print(f"PostgreSQL musts failed: {', '.join(failed) if failed else 'none'}")
    for name, why in section["not_measured"].items():
        print(f"not measured: {name}: {why}")
    section["rows"] = [{**asdict(row), "result": row.result} for row in rows]
    return section


def _fields(sizes: RunSizes) -> dict[str, Any]:
    return {
        "anchors": asdict(sizes.anchors),
        "rounds": sizes.rounds,
        "concurrent": sizes.concurrent,
        "async_window": sizes.async_window,
        "r4_samples": sizes.r4_samples,
        "m1_events": sizes.m1_events,
        "scan_repeats": sizes.scan_repeats,
        "mp2_samples": sizes.mp2_samples,
    }


if __name__ == "__main__":
    sys.exit(main())
