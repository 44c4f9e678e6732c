"""Anchors: bare programs doing the library's physical work, nothing around it.

The figures the library is judged against (``shared/reference/
performance-targets.md``), all measured on this machine in the same run:
raw ``sqlite3`` on the library's own table, pragmas and SQL
(:mod:`benchmarks.raw_sqlite`), bare msgspec, thread and pykka round trips
(:mod:`benchmarks.runtime`) and the peer library ``eventsourcing``
(:mod:`benchmarks.peer`). This module re-exports them and runs them all::

    python -m benchmarks.anchors          # quick: about 5 s
    python -m benchmarks.anchors --full   # report sizes: 30-40 s
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING

from benchmarks.peer import (
    eventsourcing_load,
    eventsourcing_pragmas,
    eventsourcing_saves,
)
from benchmarks.raw_sqlite import (
    Checkpointing,
    raw_batch_txn,
    raw_paged_scan_decode,
    raw_single_event_txn,
    raw_single_event_txn_threads,
    raw_stream_read,
)
from benchmarks.runtime import msgspec_codec, pykka_ask, pykka_tell, thread_round_trip
from benchmarks.workload import N_STREAMS, fill_store

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from benchmarks.figures import Figures

__all__ = [
    "FULL",
    "QUICK",
    "Checkpointing",
    "Sizes",
    "eventsourcing_load",
    "eventsourcing_pragmas",
    "eventsourcing_saves",
    "main",
    "msgspec_codec",
    "pykka_ask",
    "pykka_tell",
    "raw_batch_txn",
    "raw_paged_scan_decode",
    "raw_single_event_txn",
    "raw_single_event_txn_threads",
    "raw_stream_read",
    "run_all",
    "thread_round_trip",
]


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much work each anchor does in one run of :func:`run_all`.

    Attributes:
        txn: One-event transactions timed, per ``synchronous`` level
            (``"full"``, ``"normal"``), single thread and threaded alike.
        threads: Closed-loop threads of the concurrent anchors.
        batches: 1000-event transactions timed.
        prefill: Events in the grown-table batch anchors (each variant
            starts from a copy of that store; the paged scan reads it).
        stream_samples: Stream reads timed, per stream length.
        streams_100: Streams of the 100-event stream-read store.
        streams_1000: Streams of the 1000-event stream-read store.
        codec: Payloads encoded and decoded per pass.
        round_trips: Round trips timed (bare threads, pykka ask).
        tells: Messages told.
        es_saves: ``eventsourcing`` saves timed, per ``synchronous`` level.
        es_loads: ``eventsourcing`` 1000-event loads timed.
        es_interleave: Aggregates built side by side for the load.
    """

    txn: dict[str, int]
    threads: int
    batches: int
    prefill: int
    stream_samples: int
    streams_100: int
    streams_1000: int
    codec: int
    round_trips: int
    tells: int
    es_saves: dict[str, int]
    es_loads: int
    es_interleave: int


QUICK = Sizes(
    txn={"full": 300, "normal": 1000},
    threads=16,
    batches=10,
    prefill=20_000,
    stream_samples=100,
    streams_100=100,
    streams_1000=12,
    codec=20_000,
    round_trips=2000,
    tells=20_000,
    es_saves={"full": 300, "normal": 600},
    es_loads=10,
    es_interleave=12,
)
"""Seconds: enough to see every anchor work and the rough figures."""

FULL = Sizes(
    txn={"full": 5000, "normal": 20_000},
    threads=16,
    batches=50,
    prefill=200_000,
    stream_samples=300,
    streams_100=N_STREAMS,
    streams_1000=100,
    codec=200_000,
    round_trips=20_000,
    tells=200_000,
    es_saves={"full": 3000, "normal": 6000},
    es_loads=30,
    es_interleave=20,
)
"""The report sizes (the workload of ``performance-targets.md``)."""


def run_all(
    sizes: Sizes,
    workdir: str,
    *,
    report: Callable[[str, Figures], None] | None = None,
) -> dict[str, Figures]:
    """Run every anchor once, each on fresh files in ``workdir``.

    Args:
        sizes: :data:`QUICK`, :data:`FULL` or your own.
        workdir: An empty directory for the database files.
        report: Called with each name and result as soon as it is measured.

    Returns:
        Results by name, in the order they ran.
    """
    results: dict[str, Figures] = {}

    def keep(name: str, figures: Figures) -> None:
        results[name] = figures
        if report is not None:
            report(name, figures)

    def db(name: str) -> str:
        return os.path.join(workdir, f"{name}.db")

    keep("msgspec_codec", msgspec_codec(sizes.codec))
    keep("thread_rt_queue", thread_round_trip(sizes.round_trips, kind="queue"))
    keep("thread_rt_simplequeue", thread_round_trip(sizes.round_trips, kind="simple"))
    keep("pykka_ask", pykka_ask(sizes.round_trips))
    keep("pykka_tell", pykka_tell(sizes.tells))

    threads = sizes.threads
    for sync, n in sizes.txn.items():
        keep(f"raw_1txn_{sync}", raw_single_event_txn(db(f"1txn_{sync}"), sync, n))
        keep(
            f"raw_1txn_{sync}_untimed_ckpt",
            raw_single_event_txn(db(f"1txn_u_{sync}"), sync, n, checkpoint="untimed"),
        )
        keep(
            f"raw_1txn_{threads}t_{sync}",
            raw_single_event_txn_threads(
                db(f"1txn_t_{sync}"), sync, threads=threads, n=n
            ),
        )

    grown = db("grown")
    fill_store(grown, sizes.prefill)
    grown_name = f"{sizes.prefill // 1000}k"
    modes: tuple[tuple[Checkpointing, str], ...] = (
        ("inline", ""),
        ("untimed", "_untimed_ckpt"),
    )
    for sync in ("full", "normal"):
        keep(
            f"raw_batch_fresh_{sync}",
            raw_batch_txn(db(f"batch_{sync}"), sync, n_batches=sizes.batches),
        )
        for mode, suffix in modes:
            copy = db(f"grown_{sync}_{mode}")
            shutil.copyfile(grown, copy)  # each variant starts at ``prefill`` rows
            keep(
                f"raw_batch_{grown_name}_{sync}{suffix}",
                raw_batch_txn(copy, sync, n_batches=sizes.batches, checkpoint=mode),
            )
            for leftover in (copy, copy + "-wal", copy + "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(leftover)
    keep("raw_scan_decode", raw_paged_scan_decode(grown))

    for stream_len, n_streams in ((100, sizes.streams_100), (1000, sizes.streams_1000)):
        path = db(f"streams_{stream_len}")
        fill_store(path, stream_len * n_streams, n_streams=n_streams)
        keep(
            f"raw_stream_{stream_len}",
            raw_stream_read(path, stream_len, sizes.stream_samples),
        )

    for sync, n in sizes.es_saves.items():
        for count in (1, threads):
            keep(
                f"es_saves_{count}t_{sync}",
                eventsourcing_saves(
                    db(f"es_{count}_{sync}"), threads=count, n=n, synchronous=sync
                ),
            )
    keep(
        "es_load_1000",
        eventsourcing_load(
            db("es_load"), samples=sizes.es_loads, interleave=sizes.es_interleave
        ),
    )
    return results


def _format(figures: Figures) -> str:
    parts: list[str] = []
    for key, value in figures.as_dict().items():
        if key.endswith("per_s"):
            parts.append(f"{key}={value / 1000:,.1f}k")
        elif key.endswith("_us"):
            parts.append(f"{key}={value:,.1f}")
        elif isinstance(value, float):
            parts.append(f"{key}={value:.3g}")
        else:
            parts.append(f"{key}={value}")
    return "  ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Run all anchors and print one line per figure set (main thread).

    Returns:
        The process exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.anchors")
    parser.add_argument("--full", action="store_true", help="report sizes")
    parser.add_argument("--json", metavar="FILE", help="also write results as JSON")
    parser.add_argument(
        "--dir", metavar="DIR", help="put the temporary databases under DIR"
    )
    args = parser.parse_args(argv)
    sizes = FULL if args.full else QUICK

    def report(name: str, figures: Figures) -> None:
        print(f"{name:36} {_format(figures)}", flush=True)

    started = perf_counter()
    with tempfile.TemporaryDirectory(prefix="swarmlog-anchors-", dir=args.dir) as tmp:
        pragmas = eventsourcing_pragmas(os.path.join(tmp, "es_pragmas.db"))
        print(f"{'eventsourcing pragmas':36} {pragmas}", flush=True)
        results = run_all(sizes, tmp, report=report)
    print(f"{'total':36} {perf_counter() - started:.1f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            payload = {name: fig.as_dict() for name, fig in results.items()}
            json.dump({"eventsourcing_pragmas": pragmas, **payload}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
