"""Run the seeded swarm simulation (what ``swarmlog simulate`` runs).

A coordinator spawns worker agents, each in its own thread, plans tasks with
dependencies and assigns them; the agents start, complete, fail and retry
tasks, use shared memory, crash and restart; the swarm scales, changes
phase and reaches milestones. Four projections follow the store live. At the
end the read models are printed, rebuilt from the log and compared with the
live ones::

    python examples/swarm_simulation.py              # swarm.db, 8 agents, 40 tasks
    python examples/swarm_simulation.py run.db --agents 16 --tasks 120 --seed 7
    python examples/swarm_simulation.py --overwrite  # replace an earlier swarm.db

The same seed always gives the same final read models (compare the printed
fingerprint), however the agent threads interleave. Needs the ``cli`` extra
for the tables (``pip install 'swarmlog[cli]'``); without it, it prints a
plain summary.
"""

from __future__ import annotations

import argparse

from swarmlog import SwarmlogError
from swarmlog.simulation import SimulationReport, run_simulation


def simulate(
    db_path: str = "swarm.db",
    *,
    agents: int = 8,
    tasks: int = 40,
    seed: int = 42,
    overwrite: bool = False,
    show: bool = True,
) -> SimulationReport:
    """Run the simulation into ``db_path`` and return its report.

    With ``show``, the command line's own pieces draw it: a progress bar fed
    by ``on_progress`` (``simulation_progress``), then ``render_simulation``.
    """
    if show:
        try:
            from rich.console import Console

            from swarmlog.cli import render_simulation, simulation_progress
        except ImportError:  # no cli extra: the plain summary below still works
            pass
        else:
            console = Console()
            with simulation_progress(console, tasks) as progress:
                report = run_simulation(
                    db_path,
                    agents=agents,
                    tasks=tasks,
                    seed=seed,
                    overwrite=overwrite,
                    on_progress=progress,
                )
            render_simulation(console, report)
            return report
    report = run_simulation(
        db_path, agents=agents, tasks=tasks, seed=seed, overwrite=overwrite
    )
    if show:
        models = report.read_models
        print(f"{report.events} events in {report.elapsed_seconds:.2f} s")
        print(f"  {report.events_per_second:,.0f} events/s")
        print(f"tasks by status: {models.tasks_by_status}")
        print(f"average task duration: {models.average_task_duration:,.0f} ms")
        print(
            f"success rate {models.success_rate:.1%}, failure {models.failure_rate:.1%}"
        )
        for namespace, usage in models.namespace_usage.items():
            print(f"memory {namespace}: {usage.entries} entries, {usage.bytes} bytes")
        print(f"rebuilt from the log == live: {report.rebuilt_matches}")
        print(f"fingerprint: {report.fingerprint}")
    return report


def main() -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", nargs="?", default="swarm.db", help="store file")
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing store"
    )
    args = parser.parse_args()
    try:
        simulate(
            args.db,
            agents=args.agents,
            tasks=args.tasks,
            seed=args.seed,
            overwrite=args.overwrite,
        )
    except SwarmlogError as e:
        parser.exit(1, f"error: {e}\n")


if __name__ == "__main__":
    main()
