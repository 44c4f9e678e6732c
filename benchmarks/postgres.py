"""The PostgreSQL section of the benchmarks: PGW1-PGW4, PGR1, PGE.

::

    python -m benchmarks.postgres            # full sizes, ~2-4 min
    python -m benchmarks.postgres --quick    # small sizes, seconds
    SWARMLOG_BENCH_PG_URL=postgresql://me@host/db python -m benchmarks.postgres

Without ``SWARMLOG_BENCH_PG_URL`` it starts a throwaway server with the
tests' helper (``tests/pg_server.py``: initdb + pg_ctl from the machine's
PostgreSQL binaries, a private socket), restarted with the stock settings
(the tests turn fsync off; a benchmark must not), and removes it at the
end. ``python -m benchmarks.run`` runs this section after its own and
prints it as a second table in the same format (full runs; ``--postgres``
adds it to a ``--quick`` run, ``--no-postgres`` skips it). Each library
figure is measured next to its anchor on the same server, each in a fresh
schema of swarmlog's tables; writes alternate anchor and
library ``rounds`` times and the median counts. The targets are those of
``performance-targets.md`` (PGW1-PGW4, PGR1, PGE); the JSON records the
server's version and settings.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

__all__ = [
    "ENV_URL",
    "FULL",
    "METRIC_IDS",
    "QUICK",
    "PgSizes",
    "main",
    "run_section",
    "server",
]

ENV_URL: Final = "SWARMLOG_BENCH_PG_URL"
METRIC_IDS: Final = ("PGW1", "PGW2", "PGW3", "PGW4", "PGR1", "PGE")


@dataclass(frozen=True, slots=True)
class PgSizes:
    """How much work the section does.

    Attributes:
        rounds: Alternating anchor/library repetitions of the write figures.
        single: Appends timed at 1 caller (PGW1, PGE).
        threads: Closed-loop threads (PGW2, PGE).
        threaded: Appends timed over all threads (PGW2, PGE).
        processes: Processes of PGW3 (``threads_per_process`` each).
        threads_per_process: Threads in each PGW3 process.
        multi: Appends over all PGW3 processes.
        batch: Events per ``append_many`` / raw batch (PGW4).
        batches: Batches timed (PGW4).
        catch_up: Events in the catch-up table (PGR1).
        scan_repeats: Passes of PGR1 (median counts).
    """

    rounds: int
    single: int
    threads: int
    threaded: int
    processes: int
    threads_per_process: int
    multi: int
    batch: int
    batches: int
    catch_up: int
    scan_repeats: int


QUICK: Final = PgSizes(
    rounds=1,
    single=200,
    threads=16,
    threaded=800,
    processes=4,
    threads_per_process=4,
    multi=800,
    batch=1000,
    batches=3,
    catch_up=10_000,
    scan_repeats=1,
)
FULL: Final = PgSizes(
    rounds=3,
    single=2000,
    threads=16,
    threaded=8000,
    processes=4,
    threads_per_process=4,
    multi=8000,
    batch=1000,
    batches=20,
    catch_up=200_000,
    scan_repeats=3,
)


@contextlib.contextmanager
def server() -> Iterator[str]:
    """A server URL: ``SWARMLOG_BENCH_PG_URL``, else a throwaway server
    (removed at the end).

    Raises:
        RuntimeError: No URL given and no server can be started here.
    """
    url = os.environ.get(ENV_URL)
    if url:
        yield url
        return
    from tests.pg_server import PgServer, PgUnavailableError, start_server

    class DurableServer(PgServer):
        """The tests' throwaway server, restarted with the stock durability
        settings: the tests run theirs without fsync, which would flatter
        every commit figure."""

        def start(self) -> None:
            assert self.folder is not None
            options = f"-c listen_addresses='' -k {self.folder} -p 5432"
            log = os.path.join(self.folder, "server.log")
            self._pg_ctl("-w", "-t", "60", "-l", log, "-o", options, "start")

    try:
        started = start_server()
    except PgUnavailableError as e:
        msg = f"no PostgreSQL server: {e} (or set {ENV_URL})"
        raise RuntimeError(msg) from e
    durable = DurableServer(started.url, started.bindir, started.folder)
    try:
        started.stop()
        durable.start()
        yield durable.url
    finally:
        durable.remove()


def _measure(
    url: str, sizes: PgSizes, say: Callable[[str], None]
) -> tuple[dict[str, list[Any]], dict[str, str]]:
    """Every figure, by name (each write figure ``rounds`` times), and why
    any figure could not be measured (by name)."""
    from benchmarks import pg_measure as m

    figures: dict[str, list[Any]] = {}
    skipped: dict[str, str] = {}

    def keep(name: str, make: Callable[[m.Schema], Any]) -> None:
        schema = m.Schema(url)
        try:
            result = make(schema)
        except RuntimeError as e:  # a figure the library cannot give yet
            skipped[name] = str(e)
            say(f"  {name:28} not measured: {e}")
            return
        finally:
            schema.drop()
        figures.setdefault(name, []).append(result)
        say(f"  {name:28} {_brief(result)}")

    s = sizes
    t, n = s.threads, s.threaded
    procs = {"processes": s.processes, "threads": s.threads_per_process}
    for k in range(s.rounds):
        say(f"PostgreSQL writes, round {k + 1}/{s.rounds} (PGW1-PGW4, PGE)")
        keep("pg_raw_1", lambda x: m.raw_inserts(x, threads=1, n=s.single))
        keep("pg_lib_1", lambda x: m.library_appends(x, threads=1, n=s.single))
        keep(
            "pg_lib_1_caller_commits",
            lambda x: m.library_appends(x, threads=1, n=s.single, caller_commits=True),
        )
        keep("pg_es_1", lambda x: m.eventsourcing_pg_saves(x, threads=1, n=s.single))
        keep("pg_raw_threads", lambda x: m.raw_inserts(x, threads=t, n=n))
        keep("pg_lib_threads", lambda x: m.library_appends(x, threads=t, n=n))
        keep("pg_es_threads", lambda x: m.eventsourcing_pg_saves(x, threads=t, n=n))
        keep("pg_raw_procs", lambda x: m.raw_processes(x, n=s.multi, **procs))
        keep("pg_lib_procs", lambda x: m.library_processes(x, n=s.multi, **procs))
        for method in ("copy", "executemany"):
            keep(
                f"pg_raw_batch_{method}",
                lambda x, how=method: m.raw_batch(
                    x, batch=s.batch, n_batches=s.batches, method=how
                ),
            )
        keep(
            "pg_lib_append_many",
            lambda x: m.library_append_many(x, batch=s.batch, n_batches=s.batches),
        )
    say(f"PostgreSQL catch-up over {s.catch_up:,} events (PGR1)")
    schema = m.Schema(url)
    try:
        m.fill_schema(schema, s.catch_up)
        for name, measure in (
            ("pg_raw_scan", m.raw_scan_decode),
            ("pg_lib_catch_up", m.library_catch_up),
        ):
            result = measure(schema, repeats=s.scan_repeats)
            figures[name] = [result]
            say(f"  {name:28} {_brief(result)}")
    finally:
        schema.drop()
    return figures, skipped


def _brief(figures: Any) -> str:
    return ", ".join(
        f"{k}={v:,.1f}" if isinstance(v, float) else f"{k}={v}"
        for k, v in figures.as_dict().items()
    )


def _median(runs: Sequence[Any], field: str) -> float:
    return float(median(getattr(r, field) for r in runs))


# (id, metric, library figure, anchor figure(s), must, goal)
_TARGETS: Final = (
    ("PGW1", "1 caller, 1-event appends", "pg_lib_1", ("pg_raw_1",), 0.55, 0.75),
    (
        "PGW1*",
        "same, opt-in caller_commits=True (info)",
        "pg_lib_1_caller_commits",
        ("pg_raw_1",),
        None,
        None,
    ),
    (
        "PGW2",
        "16 threads, 1-event appends",
        "pg_lib_threads",
        ("pg_raw_threads",),
        1.5,
        3.0,
    ),
    (
        "PGW3",
        "4 processes x 4 threads, 1-event appends",
        "pg_lib_procs",
        ("pg_raw_procs",),
        0.5,
        0.8,
    ),
    (
        "PGW4",
        "append_many, 1000-event batches",
        "pg_lib_append_many",
        ("pg_raw_batch_copy", "pg_raw_batch_executemany"),
        0.5,
        0.8,
    ),
    ("PGR1", "projection catch-up", "pg_lib_catch_up", ("pg_raw_scan",), 0.5, 0.8),
    ("PGE", "vs eventsourcing PG, 1 thread", "pg_lib_1", ("pg_es_1",), 1.0, 1.5),
    (
        "PGE",
        "vs eventsourcing PG, 16 threads",
        "pg_lib_threads",
        ("pg_es_threads",),
        3.0,
        5.0,
    ),
)


def rows(figures: dict[str, list[Any]], row_type: Any) -> list[Any]:
    """The section's table rows (``row_type``: ``benchmarks.run.Row``). An
    anchor with two variants (PGW4: COPY and executemany) uses the faster."""
    out = []
    for id_, metric, lib_name, anchors, must, goal in _TARGETS:
        if lib_name not in figures or not all(a in figures for a in anchors):
            continue  # not measured: the section's JSON says why
        field = "events_per_s"
        lib = _median(figures[lib_name], field)
        best = max(anchors, key=lambda a: _median(figures[a], field))
        ref = _median(figures[best], field)
        value = lib / ref
        out.append(
            row_type(
                id=id_,
                metric=f"PostgreSQL {metric}",
                library=lib,
                anchor=ref,
                value=value,
                must="-" if must is None else f">={must:g}x",
                goal="-" if goal is None else f">={goal:g}x",
                must_ok=None if must is None else value >= must,
                goal_ok=None if goal is None else value >= goal,
                unit="ev/s",
                anchor_unit="ev/s",
                value_unit="x",
                anchor_name=f"{best}.{field}",
                library_name=f"{lib_name}.{field}",
            )
        )
    return out


def run_section(
    sizes: PgSizes, row_type: Any, *, verbose: bool = True
) -> tuple[list[Any], dict[str, Any]]:
    """Start (or reach) a server, measure, and return the rows and the JSON
    part (server notes, every figure).

    Raises:
        RuntimeError: No server can be reached or started.
    """
    from benchmarks.pg_measure import server_notes

    def say(what: str) -> None:
        if verbose:
            print(what, file=sys.stderr, flush=True)

    with server() as url:
        notes = server_notes(url)
        notes["url_from_env"] = bool(os.environ.get(ENV_URL))
        notes["loadavg_start"] = os.getloadavg()
        figures, skipped = _measure(url, sizes, say)
        notes["loadavg_end"] = os.getloadavg()
    section = {
        "server": notes,
        "not_measured": skipped,
        "sizes": dataclasses.asdict(sizes),
        "figures": {
            name: [r.as_dict() for r in runs] for name, runs in figures.items()
        },
    }
    return rows(figures, row_type), section


def describe(notes: dict[str, Any]) -> str:
    """One line naming the server and the settings that matter."""
    return (
        f"PostgreSQL {notes['server_version']}, synchronous_commit "
        f"{notes['synchronous_commit']}, fsync {notes['fsync']}, "
        f"shared_buffers {notes['shared_buffers']}, wal_sync_method "
        f"{notes['wal_sync_method']}, psycopg {notes['psycopg']}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the section alone, print its table, optionally write JSON."""
    from benchmarks.run import Row, format_table

    parser = argparse.ArgumentParser(prog="python -m benchmarks.postgres")
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds")
    parser.add_argument("--json", metavar="PATH", help="write the results here")
    parser.add_argument("--rounds", type=int, help="override the write rounds")
    parser.add_argument("-q", "--silent", action="store_true", help="table only")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.rounds:
        sizes = dataclasses.replace(sizes, rounds=args.rounds)
    started = perf_counter()
    table, section = run_section(sizes, Row, verbose=not args.silent)
    elapsed = perf_counter() - started
    mode = "quick" if args.quick else "full"
    print(
        f"\nswarmlog PostgreSQL benchmarks ({mode}, {sizes.rounds} round(s), "
        f"{elapsed:.0f} s; {os.cpu_count()} CPUs; {describe(section['server'])})"
    )
    print(format_table(table))
    failed = sorted({row.id for row in table if row.must_ok is False})
    print(f"musts failed: {', '.join(failed) if failed else 'none'}")
    for name, why in section["not_measured"].items():
        print(f"not measured: {name}: {why}")
    if args.json:
        report = {
            "mode": mode,
            "command": "python -m benchmarks.postgres"
            + (" --quick" if args.quick else ""),
            "elapsed_s": round(elapsed, 1),
            "rows": [{**dataclasses.asdict(r), "result": r.result} for r in table],
            **section,
        }
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n", "utf-8")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
