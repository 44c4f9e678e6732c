"""``swarmlog simulate``: run the seeded swarm simulation into a new store."""

from typing import Annotated

import typer

from swarmlog.cli.common import (
    check_count,
    fail,
    help_text,
    make_console,
    user_errors,
    write_json,
)
from swarmlog.cli.options import JsonOpt
from swarmlog.cli.render import render_simulation, simulation_progress
from swarmlog.simulation import run_simulation

__all__ = ["register", "simulate"]


def simulate(
    agents: Annotated[int, typer.Option(help="Worker agents to spawn at first.")] = 8,
    tasks: Annotated[int, typer.Option(help="Tasks to plan.")] = 40,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 42,
    db: Annotated[str, typer.Option(help="Store file to create.")] = "swarm.db",
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace an existing swarmlog store at --db."),
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Run the simulation: a progress bar and the final tables, or JSON."""
    with user_errors():
        check_count(agents, "--agents", 1)
        check_count(tasks, "--tasks", 1)
        if json:
            report = run_simulation(
                db, agents=agents, tasks=tasks, seed=seed, overwrite=overwrite
            )
            write_json(report)
        else:
            console = make_console()
            with simulation_progress(console, tasks) as show:
                report = run_simulation(
                    db,
                    agents=agents,
                    tasks=tasks,
                    seed=seed,
                    overwrite=overwrite,
                    on_progress=show,
                )
            render_simulation(console, report)
        if not report.rebuilt_matches:
            fail("projections rebuilt from the log differ from the live ones")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command(
        **help_text(
            "Run the seeded, deterministic swarm simulation into a new store.",
            "swarmlog simulate",
            "swarmlog simulate --agents 16 --tasks 100 --seed 7 --db big.db",
            "swarmlog simulate --overwrite",
            "swarmlog simulate --db run.db --json | jq .fingerprint",
        )
    )(simulate)
