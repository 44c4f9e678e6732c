"""What a simulation run reports: its progress and its final report, and the
errors that stop it."""

from __future__ import annotations

import msgspec

from swarmlog.schema.errors import SwarmlogError
from swarmlog.summary import ReadModels  # noqa: TC001 - msgspec resolves it at runtime

__all__ = [
    "DatabaseExistsError",
    "RoundProgress",
    "SimulationError",
    "SimulationReport",
]


class SimulationError(SwarmlogError):
    """The simulation could not run to its end (an agent thread failed or
    stopped answering)."""


class DatabaseExistsError(SimulationError):
    """The simulation's database file already exists and ``overwrite`` was
    not given.

    Attributes:
        path: The database file.
    """

    def __init__(self, path: str) -> None:
        self._init_args = (path,)
        self.path = path
        msg = (
            f"{path!r} already exists; pass --overwrite (overwrite=True) to replace it"
        )
        super().__init__(msg)


class SimulationReport(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`run_simulation` returns.

    Attributes:
        db_path: The store file.
        seed: The seed.
        agents: Worker agents requested (the swarm may scale above it).
        tasks: Tasks created.
        agents_spawned: Worker agents spawned in total (scaling included).
        rounds: Execution rounds.
        tasks_completed: Tasks that completed.
        tasks_failed: Tasks that failed for good.
        retries: Task attempts after a failure.
        agent_failures: Agent crashes.
        events: Events appended.
        events_by_type: Event type -> count.
        elapsed_seconds: Wall-clock time of the run (open to terminate).
        events_per_second: ``events / elapsed_seconds``.
        simulated_seconds: Simulated time from start to termination.
        fingerprint: A digest of the final read models (equal for equal
            seeds and sizes, whatever the thread interleaving).
        rebuilt_matches: Whether projections rebuilt from the log equal the
            live ones.
        rebuild_seconds: Wall-clock time of that rebuild.
        read_models: The final read models.
        failure_rate: The failure probability every task type was run
            with (None: each type's own).
        llm_calls: Simulated model calls really made (0 in a replay: every
            answer came from the recording).
        replayed_from: The recorded store a replay or what-if read its
            model answers from (None for a plain run).
        processes: Worker processes the agents ran in (0: threads of the
            coordinator's process).
        start_method: How those processes started (None: no processes).
        threaded_fingerprint: With processes: the fingerprint of the same
            seed run with the agents on threads (None: not compared).
        matches_threaded: Whether ``fingerprint`` equals it (None: not
            compared).
    """

    db_path: str
    seed: int
    agents: int
    tasks: int
    agents_spawned: int
    rounds: int
    tasks_completed: int
    tasks_failed: int
    retries: int
    agent_failures: int
    events: int
    events_by_type: dict[str, int]
    elapsed_seconds: float
    events_per_second: float
    simulated_seconds: float
    fingerprint: str
    rebuilt_matches: bool
    rebuild_seconds: float
    read_models: ReadModels
    failure_rate: float | None = None
    llm_calls: int = 0
    replayed_from: str | None = None
    processes: int = 0
    start_method: str | None = None
    threaded_fingerprint: str | None = None
    matches_threaded: bool | None = None


class RoundProgress(msgspec.Struct, frozen=True, kw_only=True):
    """Progress after each step, for a progress bar.

    Attributes:
        phase: The swarm's phase.
        round: The execution round (0 before execution).
        finished: Tasks completed or failed for good.
        total: Tasks in the plan.
        events: Events committed so far.
        active_agents: Agents ``active`` in the live agent projection.
    """

    phase: str
    round: int
    finished: int
    total: int
    events: int
    active_agents: int
