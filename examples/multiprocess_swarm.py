"""Many processes, one file: a pool of agent processes appending to one store
while the parent follows live projections.

The parent opens ``EventStore(path, multi_process=True)``, starts the four
built-in projections and plans the tasks. A ``multiprocessing`` pool then
runs the agents: each pool job is a team of agents (one thread each) in a
store of its own (``EventStore(path, multi_process=True)``, opened in the
job; a store opened before ``fork()`` is unusable in the child). The agents
race for the tasks: an agent claims a task by appending ``task:started``
with ``expected_version=2`` (created, queued), so exactly one agent in any
process wins each task and the others get ``ConcurrencyError``. Meanwhile
the parent queries its live projections (strong queries: each reflects
every append that returned in any process before it). At the end the
parent checks that every acknowledged event is in the log, that every task
was won once, and that its live read models equal a rebuild from the log::

    python examples/multiprocess_swarm.py                  # temporary dir, spawn
    python examples/multiprocess_swarm.py --fork some/dir  # fork, keep the file
    python examples/multiprocess_swarm.py --processes 8 --agents 16 --tasks 400
    python examples/multiprocess_swarm.py --pin            # each worker on one CPU

``--pin`` (Linux) keeps each pool process on one CPU, round robin, from
its start (the pool's initializer): with more writing processes than
cores, a process's threads then stop hopping between cores, which the
README measures (Several processes).

``main(...)`` returns the figures as a dict (the tests check them).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swarmlog import (
    AgentStateProjection,
    ConcurrencyError,
    EventStore,
    MemoryIndexProjection,
    SwarmProjection,
    TaskHistoryProjection,
    create_agent_spawned_event,
    create_agent_started_event,
    create_agent_stopped_event,
    create_agent_task_completed_event,
    create_memory_stored_event,
    create_swarm_initialized_event,
    create_task_completed_event,
    create_task_created_event,
    create_task_queued_event,
    create_task_started_event,
)
from swarmlog.simulation import collect_read_models, fingerprint

if TYPE_CHECKING:
    from multiprocessing.sharedctypes import Synchronized

ROLES = ("coder", "tester", "reviewer", "security-architect")


def can_pin() -> bool:
    """Whether this platform lets a process choose its CPUs (Linux)."""
    return hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity")


def pin_to_one_cpu(index: int) -> None:
    """Keep this process (and the threads it starts from now on) on the
    ``index``-th of the CPUs it may use, round robin."""
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[index % len(cpus)]})


def pin_worker(ranks: Synchronized[int]) -> None:
    """The pool's initializer with ``--pin``: each worker takes the next
    rank and pins itself to that CPU before any job opens a store."""
    with ranks.get_lock():
        rank = ranks.value
        ranks.value += 1
    pin_to_one_cpu(rank)


@dataclass(frozen=True)
class TeamJob:
    """A team of agents run by one pool process (pickled to it)."""

    path: str
    agents: tuple[tuple[str, str, tuple[str, ...]], ...]  # id, role, task order


@dataclass(frozen=True)
class AgentResult:
    """What one agent did, as its appends acknowledged it."""

    agent_id: str
    pid: int
    cpus: tuple[int, ...]  # the CPUs its process may run on
    acknowledged: int
    won: tuple[str, ...]
    lost: int


def run_team(job: TeamJob) -> list[AgentResult]:
    """A team: open the store in this process, one thread per agent.

    Runs in a pool process. The store is the job's own: opened here (never
    inherited: a store opened before ``fork()`` is unusable in the child),
    shared by the team's threads (one writer, group commit), and shut down
    before the results go back, whatever way the pool's processes exit.
    """
    with (
        EventStore(job.path, multi_process=True) as store,
        ThreadPoolExecutor(len(job.agents)) as threads,
    ):
        return list(threads.map(lambda agent: run_agent(store, *agent), job.agents))


def run_agent(
    store: EventStore, me: str, role: str, task_ids: tuple[str, ...]
) -> AgentResult:
    """One agent (a thread of a pool process): race for the tasks.

    It skips a task the log shows started (a cheap read), then claims it
    with ``expected_version=2`` (created, queued): if an agent of any
    process claimed it meanwhile, the claim is a ``ConcurrencyError`` and
    stores nothing.
    """
    acknowledged = 0
    won: list[str] = []
    lost = 0

    def append(event: Any, expected_version: int | None = None) -> None:
        nonlocal acknowledged
        if expected_version is None:
            store.append(event)
        else:
            store.append(event, expected_version=expected_version)
        acknowledged += 1

    append(create_agent_spawned_event(me, role, "core"))
    append(create_agent_started_event(me))
    for task_id in task_ids:
        if len(store.get_events(task_id)) > 2:
            continue  # already claimed
        try:
            append(create_task_started_event(task_id, me), expected_version=2)
        except ConcurrencyError:
            lost += 1  # another agent, maybe in another process, was first
            continue
        append(
            create_memory_stored_event(
                f"{me}/{task_id}", "task-results", task_id, "semantic", 1024
            )
        )
        append(
            create_task_completed_event(task_id, {"by": me}, 40),
            expected_version=3,
        )
        append(
            create_agent_task_completed_event(
                me, task_id, {"success": True}, datetime.now(UTC), 40
            )
        )
        won.append(task_id)
    append(create_agent_stopped_event(me, "no task left"))
    cpus = tuple(sorted(os.sched_getaffinity(0))) if can_pin() else ()
    return AgentResult(me, os.getpid(), cpus, acknowledged, tuple(won), lost)


def _jobs(path: str, processes: int, agents: int, task_ids: list[str]) -> list[TeamJob]:
    """Agents dealt round-robin into one team per process; each agent
    starts on its own slice of the tasks and wraps around."""
    teams: list[list[tuple[str, str, tuple[str, ...]]]] = [[] for _ in range(processes)]
    for k in range(agents):
        start = k * len(task_ids) // agents
        order = tuple(task_ids[start:] + task_ids[:start])
        teams[k % processes].append(
            (f"agent-{k + 1:02d}", ROLES[k % len(ROLES)], order)
        )
    return [TeamJob(path, tuple(team)) for team in teams if team]


def _pool_options(context: Any, *, pin: bool) -> dict[str, Any]:
    """The pool's initializer and its arguments with ``pin`` (where the
    platform allows it), else nothing."""
    if not (pin and can_pin()):
        return {}
    return {"initializer": pin_worker, "initargs": (context.Value("i", 0),)}


def main(
    directory: str | Path | None = None,
    *,
    processes: int = 4,
    agents: int = 8,
    tasks: int = 200,
    start_method: str = "spawn",
    pin: bool = False,
    verbose: bool = True,
) -> dict[str, Any]:
    """Run the swarm under ``directory`` (default: a temporary one);
    with ``pin``, each pool process on one CPU (:func:`pin_worker`).

    Returns:
        The figures: events, tasks won per agent, conflicts, processes
        seen, and whether the live read models equal a rebuild.
    """

    def say(line: str) -> None:
        if verbose:
            print(line, flush=True)

    if directory is None:
        with tempfile.TemporaryDirectory() as temporary:
            return main(
                temporary,
                processes=processes,
                agents=agents,
                tasks=tasks,
                start_method=start_method,
                pin=pin,
                verbose=verbose,
            )
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    path = str(root / "swarm.db")
    context = multiprocessing.get_context(start_method)
    pinning = _pool_options(context, pin=pin)
    with EventStore(path, multi_process=True) as store:
        live = (
            AgentStateProjection(store).initialize(),
            TaskHistoryProjection(store).initialize(),
            MemoryIndexProjection(store).initialize(),
            SwarmProjection(store).initialize(),
        )
        agent_model, task_model = live[0], live[1]
        task_ids = [f"task-{i:04d}" for i in range(1, tasks + 1)]
        store.append(create_swarm_initialized_event("mesh", agents, None))
        for task_id in task_ids:
            store.append(
                create_task_created_event(
                    task_id, "implementation", task_id, "", "high"
                )
            )
            store.append(create_task_queued_event(task_id, "high"))
        parent_events = 1 + 2 * tasks
        say(
            f"{path}: {tasks} tasks planned; {agents} agents in {processes} "
            f"{start_method} processes race for them"
            + (", each pinned to one CPU" if pinning else "")
        )
        started = time.perf_counter()
        # With fork, the children inherit this open store: it is fenced
        # there (ForkedStoreError); each job opens its own.
        with context.Pool(processes, **pinning) as pool:
            jobs = _jobs(path, processes, agents, task_ids)
            pending = pool.map_async(run_team, jobs, chunksize=1)
            while not pending.ready():
                done = len(task_model.get_tasks_by_status("completed"))
                known = len(agent_model.get_all_agents())
                say(f"  live: {done}/{tasks} tasks completed, {known} agents seen")
                pending.wait(0.1)
            results = [r for team in pending.get() for r in team]
        elapsed = time.perf_counter() - started
        acknowledged = parent_events + sum(r.acknowledged for r in results)
        # Read-your-writes across processes: every job's appends returned
        # before its result reached us, so a strong query reflects them
        # (it reads the file's committed head and catches up to it; this
        # store's head_position is then that head too).
        completed = len(task_model.get_tasks_by_status("completed"))
        head = store.head_position
        now = datetime.now(UTC)
        models = collect_read_models(*live, now=now)
        rebuilt = collect_read_models(
            AgentStateProjection.as_of(store, head),
            TaskHistoryProjection.as_of(store, head),
            MemoryIndexProjection.as_of(store, head),
            SwarmProjection.as_of(store, head),
            now=now,
        )
        won = {
            r.agent_id: len(r.won) for r in sorted(results, key=lambda r: r.agent_id)
        }
        claims = sorted(t for r in results for t in r.won)
        versions = {len(store.get_events(t)) for t in task_ids}
        figures = {
            "path": path,
            "processes": processes,
            "start_method": start_method,
            "worker_pids": len({r.pid for r in results}),
            "worker_cpus": {r.pid: r.cpus for r in results},
            "acknowledged": acknowledged,
            "head": head,
            "tasks": tasks,
            "completed": completed,
            "won": won,
            "each_task_won_once": claims == task_ids,
            "task_versions": sorted(versions),
            "conflicts": sum(r.lost for r in results),
            "rebuilt_matches": models == rebuilt,
            "fingerprint": fingerprint(models),
            "events_per_second": (head - parent_events) / elapsed,
        }
    say(
        f"{acknowledged} events acknowledged by {figures['worker_pids']} worker "
        f"processes and the parent; the log's head is {head}"
    )
    say(
        f"{completed}/{tasks} tasks completed, each won by exactly one agent: "
        f"{figures['each_task_won_once']} ({figures['conflicts']} lost claims "
        "answered with ConcurrencyError)"
    )
    say(
        f"tasks won per agent: {won}"
        + (f"; worker CPUs: {sorted({r.cpus for r in results})}" if pinning else "")
    )
    say(
        f"live read models equal a rebuild from the log: {figures['rebuilt_matches']}"
        f" (fingerprint {figures['fingerprint']})"
    )
    return figures


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", help="keep the store file here")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument(
        "--fork",
        action="store_true",
        help="start the pool with fork (POSIX) instead of spawn",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="keep each pool process on one CPU, round robin (Linux)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = _arguments(sys.argv[1:])
    figures = main(
        args.directory,
        processes=args.processes,
        agents=args.agents,
        tasks=args.tasks,
        start_method="fork" if args.fork else "spawn",
        pin=args.pin,
    )
    ok = (
        figures["rebuilt_matches"]
        and figures["each_task_won_once"]
        and figures["acknowledged"] == figures["head"]
    )
    sys.exit(0 if ok else 1)
