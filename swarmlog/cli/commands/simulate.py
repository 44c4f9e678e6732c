"""``swarmlog simulate``: run the seeded swarm simulation into a new store,
replay a recorded one, or fork one and continue it with a parameter changed."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, cast

import typer

from swarmlog.cli.common import (
    UsageError,
    check_count,
    fail,
    help_text,
    make_console,
    simulate_into,
    user_errors,
    write_json,
)
from swarmlog.cli.options import JsonOpt
from swarmlog.cli.render import render_simulation, simulation_progress
from swarmlog.cli.render_diff import render_rerun
from swarmlog.simulation import (
    KEEP,
    RerunReport,
    RoundProgress,
    replay_simulation,
    run_simulation,
    what_if,
)
from swarmlog.simulation.processes import START_METHODS

if TYPE_CHECKING:
    from swarmlog.simulation.processes import StartMethod

__all__ = ["register", "simulate"]


def _check_rate(failure_rate: float | None) -> None:
    if failure_rate is not None and not 0.0 <= failure_rate <= 1.0:
        msg = f"--failure-rate must be from 0 to 1, got {failure_rate}"
        raise UsageError(msg)


def _check_modes(replay: str | None, what: str | None, at: int | None) -> None:
    if replay is not None and what is not None:
        msg = "--replay and --what-if cannot be combined"
        raise UsageError(msg)
    if what is not None and at is None:
        msg = "--what-if needs --at N (the position to fork at)"
        raise UsageError(msg)
    if what is None and at is not None:
        msg = "--at goes with --what-if"
        raise UsageError(msg)
    check_count(at, "--at")


def _check_processes(
    processes: int,
    start_method: str,
    replay: str | None,
    what: str | None,
    db: str | None,
) -> None:
    if start_method not in START_METHODS:
        msg = (
            f"--start-method must be one of {', '.join(START_METHODS)}, "
            f"got {start_method!r}"
        )
        raise UsageError(msg)
    if not processes:
        return
    if replay is not None or what is not None:
        msg = "--processes goes with a plain run, not --replay or --what-if"
        raise UsageError(msg)
    if db == ":memory:":
        msg = "--processes needs a database file, not ':memory:'"
        raise UsageError(msg)


def simulate(
    agents: Annotated[
        int | None,
        typer.Option(
            help=(
                "Worker agents to spawn at first [default: 8]. With --what-if: "
                "the changed parameter (the swarm scales to it at the fork)."
            ),
            show_default=False,
        ),
    ] = None,
    tasks: Annotated[int, typer.Option(help="Tasks to plan.")] = 40,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 42,
    db: Annotated[
        str | None,
        typer.Option(
            help=(
                "Store file to create (default: swarm.db; with --replay an "
                "in-memory store; with --what-if what-if.db, the fork)."
            ),
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace an existing swarmlog store at --db."),
    ] = False,
    failure_rate: Annotated[
        float | None,
        typer.Option(
            "--failure-rate",
            help=(
                "Probability that a task attempt fails, for every task type "
                "(default: each type's own). With --what-if: the changed "
                "parameter."
            ),
            metavar="P",
        ),
    ] = None,
    replay: Annotated[
        str | None,
        typer.Option(
            "--replay",
            help=(
                "Run the simulation recorded in this store again, every model "
                "answer replayed from its recording; check the fingerprint."
            ),
            metavar="DB",
        ),
    ] = None,
    what_if_db: Annotated[
        str | None,
        typer.Option(
            "--what-if",
            help=(
                "Fork the simulation recorded in this store at --at, continue "
                "it with --failure-rate and/or --agents, and diff the read "
                "models."
            ),
            metavar="DB",
        ),
    ] = None,
    at: Annotated[
        int | None,
        typer.Option(
            "--at",
            help="With --what-if: the position to fork at (a round's start).",
            metavar="N",
        ),
    ] = None,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            help=(
                "Run the agents in N worker processes, each with its own "
                "multi-process store on --db (0: threads of this process); "
                "the same seed is also run on threads and the fingerprints "
                "compared."
            ),
            metavar="N",
        ),
    ] = 0,
    start_method: Annotated[
        str,
        typer.Option(
            "--start-method",
            help="With --processes: spawn, fork or forkserver (POSIX).",
        ),
    ] = "spawn",
    json: JsonOpt = False,
) -> None:
    """Run the simulation: a progress bar and the final tables, or JSON."""
    with user_errors():
        check_count(agents, "--agents", 1)
        check_count(tasks, "--tasks", 1)
        check_count(processes, "--processes")
        _check_rate(failure_rate)
        _check_modes(replay, what_if_db, at)
        _check_processes(processes, start_method, replay, what_if_db, db)
        if replay is not None or what_if_db is not None:
            _rerun(replay, what_if_db, at, db, failure_rate, agents, overwrite, json)
            return
        path = "swarm.db" if db is None else db
        agents = 8 if agents is None else agents
        method = cast("StartMethod", start_method)
        if json:
            report = simulate_into(
                path,
                run_simulation,
                agents=agents,
                tasks=tasks,
                seed=seed,
                failure_rate=failure_rate,
                overwrite=overwrite,
                processes=processes,
                start_method=method,
            )
            write_json(report)
        else:
            console = make_console()
            with simulation_progress(console, tasks) as show:
                report = simulate_into(
                    path,
                    run_simulation,
                    agents=agents,
                    tasks=tasks,
                    seed=seed,
                    failure_rate=failure_rate,
                    overwrite=overwrite,
                    on_progress=show,
                    processes=processes,
                    start_method=method,
                )
            render_simulation(console, report)
        if not report.rebuilt_matches:
            fail("projections rebuilt from the log differ from the live ones")
        if report.matches_threaded is False:
            fail("the fingerprint differs from the threaded run of the same seed")


def _rerun(
    replay: str | None,
    what_if_db: str | None,
    at: int | None,
    db: str | None,
    failure_rate: float | None,
    agents: int | None,
    overwrite: bool,
    json: bool,
) -> None:
    """``--replay`` or ``--what-if``: run, print, and fail a replay whose
    fingerprint differs from the recording's."""

    def run(show: Callable[[RoundProgress], None] | None = None) -> RerunReport:
        if replay is not None:
            return replay_simulation(
                replay,
                ":memory:" if db is None else db,
                overwrite=overwrite,
                on_progress=show,
            )
        assert what_if_db is not None
        assert at is not None
        return what_if(
            what_if_db,
            "what-if.db" if db is None else db,
            at_position=at,
            failure_rate=KEEP if failure_rate is None else failure_rate,
            agents=agents,
            overwrite=overwrite,
            on_progress=show,
        )

    if json:
        result = run()
        write_json(result)
    else:
        console = make_console()
        with simulation_progress(console, 1) as show:
            result = run(show)
        render_rerun(console, result)
    if result.kind == "replay" and not result.identical:
        fail("the replayed run's fingerprint differs from the recorded one")
    if not result.run.rebuilt_matches:
        fail("projections rebuilt from the log differ from the live ones")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command(
        **help_text(
            "Run the seeded, deterministic swarm simulation into a new store; "
            "replay a recorded one; or fork one and continue it (what-if).",
            "swarmlog simulate",
            "swarmlog simulate --agents 16 --tasks 100 --seed 7 --db big.db",
            "swarmlog simulate --overwrite",
            "swarmlog simulate --db run.db --json | jq .fingerprint",
            "swarmlog simulate --processes 4 --db mp.db --overwrite",
            "swarmlog simulate --replay run.db",
            "swarmlog simulate --what-if run.db --at 150 --failure-rate 0.4",
            "swarmlog simulate --what-if run.db --at 150 --agents 8",
        )
    )(simulate)
