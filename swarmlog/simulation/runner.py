"""The entry point: prepare the file, play the phases, prove the engine.

:func:`run_simulation` opens the store, starts the four projections, plays
the coordinator's phases in order, then rebuilds every projection from the
log and compares it with the live ones. It reports progress through a plain
callback; showing it (a progress bar, tables) is the caller's business.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from typing import TYPE_CHECKING, Any

import msgspec

from swarmlog.actors.sqlite.files import FileLock
from swarmlog.schema.envelope import Snapshot
from swarmlog.schema.errors import InvalidConfigError, StoreOpenError
from swarmlog.simulation.closing import complete, review
from swarmlog.simulation.coordinator import Coordinator, LiveModels
from swarmlog.simulation.crew import ThreadCrew
from swarmlog.simulation.execution import execute
from swarmlog.simulation.llm import RUN_ID
from swarmlog.simulation.opening import initialize, plan
from swarmlog.simulation.processes import START_METHODS, ProcessCrew
from swarmlog.simulation.results import DatabaseExistsError, SimulationReport
from swarmlog.simulation.world import COORDINATOR, EPOCH
from swarmlog.store import EventStore
from swarmlog.summary import collect_read_models, fingerprint

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from swarmlog.effects import Effects
    from swarmlog.simulation.crew import Crew
    from swarmlog.simulation.messages import EffectsFactory
    from swarmlog.simulation.processes import StartMethod
    from swarmlog.simulation.results import RoundProgress
    from swarmlog.summary import ReadModels

__all__ = [
    "check_parameters",
    "check_processes",
    "play",
    "prepare_path",
    "run_simulation",
]

PHASES: tuple[Callable[[Coordinator], None], ...] = (
    initialize,
    plan,
    execute,
    review,
    complete,
)
"""The coordinator's phases, in the order they run."""


def prepare_path(db_path: str, overwrite: bool) -> str:
    """Refuse an existing file unless ``overwrite``; then remove it (only a
    swarmlog store, or an empty file, not held by a writer)."""
    if db_path == ":memory:":
        return db_path
    path = os.path.abspath(db_path)
    if not os.path.exists(path):
        return path
    if not overwrite:
        raise DatabaseExistsError(path)
    if os.path.isdir(path):
        raise StoreOpenError(path, "it is a directory")
    if os.path.getsize(path) > 0:
        # Only a swarmlog store may be replaced, and never one in use.
        with EventStore(path, read_only=True):
            pass
        lock = FileLock(path)
        lock.acquire()
        try:
            _remove(path)
        finally:
            lock.release()
    else:
        _remove(path)
    return path


def _remove(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)


def _save_snapshots(
    store: EventStore, models: ReadModels, agent_ids: Sequence[str]
) -> None:
    """Snapshot each agent (its projected state) and the swarm."""
    states = {a.id: a for a in models.agents}
    targets: list[tuple[str, str, Any]] = [
        (agent_id, "agent", states.get(agent_id)) for agent_id in agent_ids
    ]
    targets.append(("swarm", "swarm", models.swarm))
    for aggregate_id, aggregate_type, state in targets:
        events = store.get_events(aggregate_id)
        if not events or state is None:
            continue
        store.save_snapshot(
            Snapshot(
                aggregate_id,
                aggregate_type,
                events[-1].version,
                msgspec.to_builtins(state),
                models.now,
            )
        )


def run_simulation(
    db_path: str | os.PathLike[str] = "swarm.db",
    *,
    agents: int = 8,
    tasks: int = 40,
    seed: int = 42,
    failure_rate: float | None = None,
    overwrite: bool = False,
    on_progress: Callable[[RoundProgress], None] | None = None,
    processes: int = 0,
    start_method: StartMethod = "spawn",
    compare_threaded: bool = True,
) -> SimulationReport:
    """Run the swarm simulation into ``db_path`` and prove the engine.

    Runs on the calling thread (the coordinator); each agent runs on its own
    thread, of this process or (``processes``) of a worker process.
    ``on_progress`` is called on the calling thread after each step
    (``swarmlog.cli.render.simulation_progress`` turns it into a progress
    bar); an exception it raises ends the run, after every agent thread has
    been stopped. Every simulated model call is recorded in the store
    (``store.effects``, run ``"simulation"``), so the run can be replayed
    (:func:`~swarmlog.simulation.replay_simulation`) or continued with a
    parameter changed (:func:`~swarmlog.simulation.what_if`).

    With ``processes=N`` the agents run in ``N`` worker processes
    (:class:`~swarmlog.simulation.processes.ProcessCrew`), each appending
    through its own ``EventStore(db_path, multi_process=True)``, while the
    coordinator appends and follows the live projections through another
    one in this process. The outcome does not depend on where the agents
    ran: with ``compare_threaded`` the same seed is then also run with the
    agents on threads (into a ``:memory:`` store, about the cost of the run
    itself) and the report carries both fingerprints.

    Args:
        db_path: The store file (``":memory:"`` for a throw-away store,
            threads only).
        agents: Worker agents to spawn at first (>= 1).
        tasks: Tasks to plan (>= 1).
        seed: Seed of every random choice.
        failure_rate: Probability that a task attempt fails, for every task
            type (default: each type's own, 8% to 20%).
        overwrite: Replace an existing swarmlog store at ``db_path``.
        on_progress: Called on the calling thread after each step.
        processes: Worker processes the agents run in (0: threads of this
            process).
        start_method: How worker processes start: ``"spawn"`` (default,
            everywhere), ``"fork"`` or ``"forkserver"`` (POSIX).
        compare_threaded: With ``processes``, also run the seed on threads
            and report its fingerprint (``threaded_fingerprint``).

    Returns:
        Counts, throughput, the final read models and their fingerprint,
        and whether a rebuild from the log matched the live projections.

    Raises:
        DatabaseExistsError: ``db_path`` exists and ``overwrite`` is false.
        IncompatibleStoreError: ``overwrite`` would replace a file that is
            not a swarmlog store.
        StoreOpenError: ``db_path`` is a directory or cannot be opened.
        StoreLockedError: Another process is writing to ``db_path``.
        InvalidConfigError: ``agents`` or ``tasks`` is below 1,
            ``failure_rate`` is not a probability, ``processes`` is below 0
            or given with ``":memory:"``, or ``start_method`` is unknown or
            not available here.
        SimulationError: An agent thread or worker process failed or hung.
    """
    check_parameters(agents, tasks, seed, failure_rate)
    check_processes(processes, start_method, os.fspath(db_path))
    path = prepare_path(os.fspath(db_path), overwrite)
    if processes == 0:
        with EventStore(path) as store:

            def effects(agent_id: str, clock: Callable[[], datetime]) -> Effects:
                return store.effects(RUN_ID, "record", clock=clock, source=agent_id)

            return play(
                store,
                agents=agents,
                tasks=tasks,
                seed=seed,
                failure_rate=failure_rate,
                effects=effects,
                on_progress=on_progress,
            )
    # The worker processes start before this process opens its store: a
    # forked child then inherits no store threads (it opens its own).
    crew = ProcessCrew(path, processes, seed=seed, start_method=start_method)
    try:
        with EventStore(path, multi_process=True) as store:
            report = play(
                store,
                agents=agents,
                tasks=tasks,
                seed=seed,
                failure_rate=failure_rate,
                crew=crew,
                on_progress=on_progress,
            )
    finally:
        crew.stop()
    report = msgspec.structs.replace(
        report, processes=processes, start_method=start_method
    )
    if not compare_threaded:
        return report
    threaded = run_simulation(
        ":memory:",
        agents=agents,
        tasks=tasks,
        seed=seed,
        failure_rate=failure_rate,
    )
    return msgspec.structs.replace(
        report,
        threaded_fingerprint=threaded.fingerprint,
        matches_threaded=threaded.fingerprint == report.fingerprint,
    )


def check_processes(processes: int, start_method: str, db_path: str) -> None:
    """Refuse a process count or start method a simulation cannot run with.

    Raises:
        InvalidConfigError: ``processes`` is no int or below 0, given with
            ``":memory:"``, or ``start_method`` is unknown or not available
            on this platform.
    """
    if isinstance(processes, bool) or not isinstance(processes, int):
        msg = f"processes must be an int, got {processes!r}"
        raise InvalidConfigError(msg)
    if processes < 0:
        msg = f"processes must be >= 0, got {processes}"
        raise InvalidConfigError(msg)
    if start_method not in START_METHODS:
        known = ", ".join(START_METHODS)
        msg = f"start_method must be one of {known}, got {start_method!r}"
        raise InvalidConfigError(msg)
    if processes == 0:
        return
    if start_method not in multiprocessing.get_all_start_methods():
        msg = f"start method {start_method!r} is not available on this platform"
        raise InvalidConfigError(msg)
    if db_path == ":memory:":
        msg = "agents in worker processes need a database file, not ':memory:'"
        raise InvalidConfigError(msg)


def check_parameters(
    agents: int, tasks: int, seed: int, failure_rate: float | None
) -> None:
    """Refuse parameters a simulation cannot run with.

    Raises:
        InvalidConfigError: A count below 1, a seed that is no int, a
            failure rate that is not a probability.
    """
    for name, value in (("agents", agents), ("tasks", tasks), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int):
            msg = f"{name} must be an int, got {value!r}"
            raise InvalidConfigError(msg)
    if agents < 1 or tasks < 1:
        msg = f"agents and tasks must be >= 1, got {agents} and {tasks}"
        raise InvalidConfigError(msg)
    if failure_rate is not None and (
        isinstance(failure_rate, bool)
        or not isinstance(failure_rate, int | float)
        or not 0.0 <= failure_rate <= 1.0
    ):
        msg = f"failure_rate must be a probability from 0 to 1, got {failure_rate!r}"
        raise InvalidConfigError(msg)


def play(
    store: EventStore,
    *,
    agents: int,
    tasks: int,
    seed: int,
    failure_rate: float | None,
    on_progress: Callable[[RoundProgress], None] | None,
    effects: EffectsFactory | None = None,
    crew: Crew | None = None,
    before_round: Callable[[Coordinator], None] | None = None,
) -> SimulationReport:
    """Play every phase into ``store`` and report (calling thread).

    The agents run in ``crew``, or (default) on threads of this process,
    appending to ``store`` with the recorded ``effects``. ``before_round``
    may move the coordinator to another store between two rounds (a
    what-if): the report is then of the store the run ended in.
    """
    if crew is None:
        if effects is None:
            msg = "play() needs effects for its thread crew, or a crew"
            raise InvalidConfigError(msg)
        crew = ThreadCrew(store, effects, seed=seed)
    started = time.perf_counter()
    coordinator = Coordinator(
        store,
        LiveModels.start(store),
        agents=agents,
        tasks=tasks,
        seed=seed,
        on_progress=on_progress,
        crew=crew,
        failure_rate=None if failure_rate is None else float(failure_rate),
        before_round=before_round,
    )
    try:
        for phase in PHASES:
            phase(coordinator)
    finally:
        coordinator.shutdown_agents()
    store = coordinator.store
    live = coordinator.projections
    head = store.head_position
    for projection in live:
        projection.wait_for(head)
    elapsed = time.perf_counter() - started
    now = coordinator.clock
    models = collect_read_models(*live, now=now, memory_ids=coordinator.memory_ids)
    rebuild_started = time.perf_counter()
    rebuilt = collect_read_models(
        *LiveModels.as_of(store, head),
        now=now,
        memory_ids=coordinator.memory_ids,
    )
    rebuild_seconds = time.perf_counter() - rebuild_started
    events_by_type = dict(sorted(store.get_stats().events_by_type.items()))
    _save_snapshots(store, models, [COORDINATOR, *(w.id for w in coordinator.workers)])
    completed = models.tasks_by_status.get("completed", 0)
    return SimulationReport(
        db_path=store.path,
        seed=seed,
        agents=agents,
        tasks=tasks,
        agents_spawned=coordinator.spawned,
        rounds=coordinator.round,
        tasks_completed=completed,
        tasks_failed=models.tasks_by_status.get("failed", 0),
        retries=coordinator.retries,
        agent_failures=coordinator.agent_failures,
        events=head,
        events_by_type=events_by_type,
        elapsed_seconds=elapsed,
        events_per_second=head / elapsed if elapsed > 0 else 0.0,
        simulated_seconds=(now - EPOCH).total_seconds(),
        fingerprint=fingerprint(models),
        rebuilt_matches=models == rebuilt,
        rebuild_seconds=rebuild_seconds,
        read_models=models,
        failure_rate=failure_rate,
        llm_calls=crew.llm_calls(),
    )
