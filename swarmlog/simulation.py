"""A seeded, deterministic simulation of an agent swarm, recorded in swarmlog.

:func:`run_simulation` (what ``swarmlog simulate`` runs) plays a whole swarm
into a store file while the four built-in projections follow it live:

1. **initialization**: the coordinator initialises the swarm, spawns ``N``
   worker agents (coder, tester, reviewer, security-architect, ...), each
   running in **its own thread** and appending its own events.
2. **planning**: it seeds a shared knowledge base in memory and creates
   ``M`` tasks with dependencies: a task with unfinished dependencies is
   ``blocked``, the others are ``queued``.
3. **execution**, in rounds of 30 simulated seconds: the coordinator
   expires memory past its TTL, re-queues failed tasks (one retry),
   unblocks tasks whose dependencies completed (and fails those whose
   dependencies failed for good), scales the swarm up on a backlog and down
   when demand drops, restarts crashed agents and **assigns** queued tasks
   to idle agents. The agents then work concurrently: start the task, read
   their inputs and the knowledge base, keep scratch notes, and complete
   it, fail it, or crash. Milestones mark each quarter of the work.
4. **review**: the coordinator reads the key results and deletes leftover
   scratch memory.
5. **completion**: every agent stops, the swarm scales to 0 and terminates.

**Determinism.** Every timestamp and duration comes from a simulated clock
(never the wall clock), every agent draws from its own ``random.Random``
derived from the seed, and only the coordinator decides (from reports it
sorts by agent) what happens next. Threads interleave differently on every
run, so positions differ, but the business outcome does not: the same seed
gives the same final read models, which :attr:`SimulationReport.fingerprint`
summarises.

At the end the simulation proves the engine: it rebuilds every projection
from the log (:meth:`~swarmlog.Projection.as_of` at the head) and checks the
result equals the live read models.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec

from swarmlog.actors.read_models import (
    AgentHealth,
    AgentState,
    AgentStateProjection,
    MemoryEntry,
    MemoryIndexProjection,
    NamespaceUsage,
    SwarmProjection,
    SwarmState,
    TaskHistoryProjection,
    TaskState,
)
from swarmlog.schema.envelope import Snapshot
from swarmlog.schema.errors import (
    InvalidConfigError,
    StoreOpenError,
    SwarmlogError,
)
from swarmlog.schema.factories import (
    create_agent_failed_event,
    create_agent_spawned_event,
    create_agent_started_event,
    create_agent_status_changed_event,
    create_agent_stopped_event,
    create_agent_task_assigned_event,
    create_agent_task_completed_event,
    create_memory_deleted_event,
    create_memory_expired_event,
    create_memory_retrieved_event,
    create_memory_stored_event,
    create_swarm_error_event,
    create_swarm_initialized_event,
    create_swarm_milestone_reached_event,
    create_swarm_phase_changed_event,
    create_swarm_scaled_event,
    create_swarm_terminated_event,
    create_task_blocked_event,
    create_task_completed_event,
    create_task_created_event,
    create_task_failed_event,
    create_task_queued_event,
    create_task_started_event,
)
from swarmlog.store import EventStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from rich.console import Console

    from swarmlog.schema.envelope import Event

__all__ = [
    "DatabaseExistsError",
    "ReadModels",
    "RoundProgress",
    "SimulationError",
    "SimulationReport",
    "collect_read_models",
    "fingerprint",
    "run_simulation",
]

# -- the simulated world ------------------------------------------------------

EPOCH: Final = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
"""Simulated time at which every simulation starts."""

ROUND: Final = timedelta(seconds=30)
"""Simulated length of one execution round (every task fits in one)."""

ROUND_WORK: Final = timedelta(seconds=25)
"""Agents finish their round's work before this offset into the round."""

MAX_ATTEMPTS: Final = 2
"""Attempts per task: the first one and one retry."""

HOT_WINDOW: Final = timedelta(minutes=2)
"""Hot memories: retrieved within this span before the end."""

COLD_AFTER: Final = timedelta(seconds=90)
"""Cold memories: not retrieved for longer than this before the end."""

CONTEXT_TTL: Final = timedelta(minutes=2)
SCRATCH_TTL: Final = timedelta(seconds=90)
PLAN_DRAFT_TTL: Final = timedelta(seconds=5)

_WORKER_TIMEOUT: Final = 60.0
"""Seconds the coordinator waits for an agent's report before giving up."""

ROSTER: Final = (
    ("coder", "core", ("python", "refactoring")),
    ("tester", "quality", ("unit-tests", "integration-tests")),
    ("reviewer", "quality", ("code-review", "static-analysis")),
    ("security-architect", "security", ("threat-modeling", "security-design")),
    ("core-architect", "core", ("ddd-design", "architecture")),
    ("memory-specialist", "memory", ("vector-search", "caching")),
    ("performance-engineer", "performance", ("profiling", "benchmarks")),
    ("devops-engineer", "infrastructure", ("ci", "deployment")),
)
"""(role, domain, capabilities) of the worker agents, dealt round-robin."""

# (task type, domain, verb, mean duration in ms, failure probability)
TASK_KINDS: Final = (
    ("implementation", "core", "Implement", 6000, 0.12),
    ("testing", "quality", "Test", 4000, 0.10),
    ("code-review", "quality", "Review", 3000, 0.08),
    ("security-audit", "security", "Audit", 7000, 0.20),
    ("architecture-design", "core", "Design", 8000, 0.10),
    ("memory-optimization", "memory", "Optimise", 5000, 0.15),
    ("benchmark", "performance", "Benchmark", 4500, 0.15),
    ("deployment", "infrastructure", "Deploy", 3500, 0.18),
)
SUBJECTS: Final = (
    "event store",
    "projection engine",
    "agent registry",
    "task queue",
    "memory index",
    "command line",
    "snapshot cadence",
    "writer actor",
    "dispatcher",
    "codec",
    "upcasters",
    "retry policy",
)
PRIORITIES: Final = ("critical", "high", "medium", "low")
_PRIORITY_RANK: Final = {p: i for i, p in enumerate(PRIORITIES)}
KNOWLEDGE: Final = (
    "patterns/event-sourcing",
    "patterns/actor-model",
    "security/owasp-top-10",
    "style/python",
    "ops/runbook",
    "architecture/bounded-contexts",
)
TASK_ERRORS: Final = (
    "TimeoutError: tool call exceeded 30s",
    "AssertionError: 2 tests failed",
    "RuntimeError: merge conflict in src/core.py",
    "ValueError: schema validation failed",
    "ConnectionError: model endpoint unavailable",
)
CRASH_ERRORS: Final = (
    "MemoryError: context window exhausted",
    "RuntimeError: worker process killed (OOM)",
    "ConnectionResetError: lost the model endpoint",
)
CRASH_PROBABILITY: Final = 0.03
COORDINATOR: Final = "coordinator"
TOPOLOGY: Final = "hierarchical-mesh"


def _ms(value: float) -> timedelta:
    return timedelta(milliseconds=value)


# -- errors -------------------------------------------------------------------


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


# -- results ------------------------------------------------------------------


class ReadModels(msgspec.Struct, frozen=True, kw_only=True):
    """The final read models of a run, in a canonical (deterministic) order.

    Lists the projections keep in commit order, where concurrent agents
    interleave (memory entries), are sorted by id; ties in rankings (hot
    memories) are broken by id.

    Attributes:
        now: The instant time-dependent figures refer to.
        agents: Every agent, in spawn order.
        health: Each agent's health as of ``now``, in spawn order.
        tasks: Every task, in creation order.
        tasks_by_status: Status -> number of tasks.
        average_task_duration: Mean duration of the completed tasks (ms).
        success_rate: Completed / finished tasks.
        failure_rate: Failed / finished tasks.
        memories: Every memory entry (deleted ones included) by id.
        namespace_usage: Namespace -> usage of its active entries.
        total_memory_size: Bytes of the active entries.
        hot_memories: The most retrieved active entries within
            :data:`HOT_WINDOW` before ``now`` (at most 5).
        cold_memories: Active entries idle for longer than
            :data:`COLD_AFTER` before ``now``, by id.
        swarm: The swarm, or None before it is initialised.
    """

    now: datetime
    agents: tuple[AgentState, ...]
    health: tuple[AgentHealth, ...]
    tasks: tuple[TaskState, ...]
    tasks_by_status: dict[str, int]
    average_task_duration: float
    success_rate: float
    failure_rate: float
    memories: tuple[MemoryEntry, ...]
    namespace_usage: dict[str, NamespaceUsage]
    total_memory_size: int
    hot_memories: tuple[MemoryEntry, ...]
    cold_memories: tuple[MemoryEntry, ...]
    swarm: SwarmState | None


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


# -- read models --------------------------------------------------------------


def collect_read_models(
    agents: AgentStateProjection,
    tasks: TaskHistoryProjection,
    memory: MemoryIndexProjection,
    swarm: SwarmProjection,
    *,
    now: datetime,
    memory_ids: Iterable[str] | None = None,
) -> ReadModels:
    """Query the four projections into one canonical :class:`ReadModels`.

    Safe from any thread (live or ``as_of`` projections alike).

    Args:
        agents: The agent projection.
        tasks: The task projection.
        memory: The memory projection.
        swarm: The swarm projection.
        now: The instant for health, hot and cold figures.
        memory_ids: Every memory id to include, deleted ones too; default
            the active entries only.
    """
    all_agents = agents.get_all_agents()
    health = []
    for agent in all_agents:
        item = agents.get_agent_health(agent.id, now=now)
        if item is not None:
            health.append(item)
    all_tasks = tasks.get_all_tasks()
    by_status: dict[str, int] = {}
    for task in all_tasks:
        by_status[task.status] = by_status.get(task.status, 0) + 1
    active = memory.get_active_memories()
    if memory_ids is None:
        entries = sorted(active, key=lambda e: e.id)
    else:
        found = (memory.get_memory(i) for i in sorted(set(memory_ids)))
        entries = [e for e in found if e is not None]
    hot = memory.get_hot_memories(max(len(active), 1), HOT_WINDOW, now=now)
    hot.sort(key=lambda e: (-e.access_count, e.id))
    cold = memory.get_cold_memories(COLD_AFTER, now=now)
    usage = memory.get_namespace_usage()
    return ReadModels(
        now=now,
        agents=tuple(all_agents),
        health=tuple(health),
        tasks=tuple(all_tasks),
        tasks_by_status=dict(sorted(by_status.items())),
        average_task_duration=tasks.get_average_task_duration(),
        success_rate=tasks.get_success_rate(),
        failure_rate=tasks.get_failure_rate(),
        memories=tuple(entries),
        namespace_usage=dict(sorted(usage.items())),
        total_memory_size=memory.get_total_memory_size(),
        hot_memories=tuple(hot[:5]),
        cold_memories=tuple(sorted(cold, key=lambda e: e.id)),
        swarm=swarm.get_swarm(),
    )


def fingerprint(models: ReadModels) -> str:
    """A short, stable digest of ``models`` (sha256 of canonical JSON)."""
    data = msgspec.json.encode(models, order="deterministic")
    return hashlib.sha256(data).hexdigest()[:16]


# -- messages between the coordinator and the agents --------------------------


class _MemoryRef(msgspec.Struct, frozen=True):
    """A memory entry as the swarm's memory backend knows it."""

    id: str
    namespace: str
    key: str
    expires_at: datetime | None = None


class _TaskOrder(msgspec.Struct, frozen=True, kw_only=True):
    """Run one attempt of a task."""

    task_id: str
    task_type: str
    attempt: int
    inputs: tuple[_MemoryRef, ...]
    inject: Literal["fail", "crash"] | None
    assignment_id: str


class _Order(msgspec.Struct, frozen=True, kw_only=True):
    """What one agent does in one round (decided by the coordinator)."""

    round: int
    at: datetime
    start: bool = False
    restart: bool = False
    stop: str | None = None
    task: _TaskOrder | None = None
    knowledge: tuple[_MemoryRef, ...] = ()


Outcome = Literal["idle", "completed", "failed", "crashed", "stopped", "error"]


class _Report(msgspec.Struct, frozen=True, kw_only=True):
    """What one agent did in one round."""

    agent_id: str
    outcome: Outcome
    task_id: str | None = None
    stored: tuple[_MemoryRef, ...] = ()
    deleted: tuple[str, ...] = ()
    error: str | None = None


class _MemoryBackend:
    """The swarm's shared memory service: counts retrievals per entry.

    Thread-safe; the counts reach events only as the informative
    ``access_count`` payload field (the read model counts events).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reads: dict[str, int] = {}

    def read(self, memory_id: str) -> int:
        with self._lock:
            count = self._reads.get(memory_id, 0) + 1
            self._reads[memory_id] = count
            return count


# -- the agents ---------------------------------------------------------------


class _Agent:
    """One worker agent: runs its orders on its own thread, appending its
    events concurrently with the other agents."""

    def __init__(
        self,
        store: EventStore,
        backend: _MemoryBackend,
        outbox: queue.Queue[_Report],
        *,
        agent_id: str,
        seed: int,
    ) -> None:
        self.agent_id = agent_id
        self.thread = threading.Thread(target=self.run, name=f"swarmlog-sim-{agent_id}")
        self.inbox: queue.Queue[_Order | None] = queue.Queue()
        self._store = store
        self._backend = backend
        self._outbox = outbox
        self._rng = random.Random(f"{seed}/{agent_id}")
        self._memory_seq = 0
        self._at = EPOCH
        self._round = 0

    # -- thread ---------------------------------------------------------------

    def run(self) -> None:
        """Handle orders until told to stop (agent thread)."""
        while True:
            order = self.inbox.get()
            if order is None:
                return
            try:
                report = self._handle(order)
            except Exception as e:
                error = f"{type(e).__name__}: {e}"
                self._outbox.put(
                    _Report(agent_id=self.agent_id, outcome="error", error=error)
                )
                return
            self._outbox.put(report)
            if report.outcome == "stopped":
                return

    # -- helpers --------------------------------------------------------------

    def _tick(self, low: int, high: int) -> datetime:
        self._at += _ms(self._rng.randint(low, high))
        return self._at

    def _append(self, event: Event[Any]) -> Event[Any]:
        return self._store.append(event)

    def _envelope(self, **extra: Any) -> dict[str, Any]:
        return {
            "timestamp": self._at,
            "source": self.agent_id,
            "metadata": {"round": self._round},
            **extra,
        }

    def _store_memory(
        self,
        namespace: str,
        key: str,
        memory_type: str,
        size: int,
        ttl: timedelta | None,
    ) -> _MemoryRef:
        self._memory_seq += 1
        memory_id = f"{self.agent_id}-mem-{self._memory_seq:03d}"
        self._tick(20, 120)
        self._append(
            create_memory_stored_event(
                memory_id, namespace, key, memory_type, size, **self._envelope()
            )
        )
        expires = None if ttl is None else self._at + ttl
        return _MemoryRef(memory_id, namespace, key, expires)

    def _retrieve(self, ref: _MemoryRef, correlation_id: str | None = None) -> None:
        self._tick(20, 250)
        count = self._backend.read(ref.id)
        self._append(
            create_memory_retrieved_event(
                ref.id,
                ref.namespace,
                ref.key,
                count,
                **self._envelope(correlation_id=correlation_id),
            )
        )

    # -- orders ---------------------------------------------------------------

    def _handle(self, order: _Order) -> _Report:
        rng = self._rng
        self._round = order.round
        self._at = order.at + _ms(rng.randint(0, 400))
        stored: list[_MemoryRef] = []
        agent_id = self.agent_id
        if order.restart:
            self._append(
                create_agent_status_changed_event(
                    agent_id, "error", "idle", **self._envelope()
                )
            )
            self._tick(50, 500)
        if order.start or order.restart:
            self._append(create_agent_started_event(agent_id, **self._envelope()))
            size = rng.randint(512, 4096)
            stored.append(
                self._store_memory(
                    "agent-context", f"{agent_id}-state", "episodic", size, CONTEXT_TTL
                )
            )
        if order.stop is not None:
            self._tick(10, 200)
            self._append(
                create_agent_stopped_event(agent_id, order.stop, **self._envelope())
            )
            return _Report(agent_id=agent_id, outcome="stopped", stored=tuple(stored))
        if order.task is None:
            if order.knowledge and rng.random() < 0.5:
                self._retrieve(rng.choice(order.knowledge))
            return _Report(agent_id=agent_id, outcome="idle", stored=tuple(stored))
        return self._run_task(order, order.task, stored)

    def _run_task(
        self, order: _Order, task: _TaskOrder, stored: list[_MemoryRef]
    ) -> _Report:
        rng = self._rng
        agent_id = self.agent_id
        task_id = task.task_id
        _, _, _, mean, fail_p = _KIND_BY_TYPE[task.task_type]
        self._tick(10, 200)
        started = self._append(
            create_task_started_event(
                task_id,
                agent_id,
                **self._envelope(
                    causation_id=task.assignment_id, correlation_id=task_id
                ),
            )
        )
        start = self._at
        for ref in task.inputs:
            self._retrieve(ref, task_id)
        if order.knowledge and rng.random() < 0.6:
            self._retrieve(rng.choice(order.knowledge), task_id)
        size = rng.randint(256, 8192)
        scratch = self._store_memory(
            "working-memory",
            f"{task_id}-scratch-{task.attempt}",
            "procedural",
            size,
            SCRATCH_TTL,
        )
        stored.append(scratch)
        duration = int(mean * rng.uniform(0.5, 1.8))
        roll = rng.random()
        if task.inject is not None:
            outcome: str = task.inject
        elif roll < CRASH_PROBABILITY:
            outcome = "crash"
        elif roll < CRASH_PROBABILITY + fail_p:
            outcome = "fail"
        else:
            outcome = "complete"
        causation = str(started.id)
        if outcome == "crash":
            self._at = start + _ms(rng.randint(duration // 4, duration))
            error = rng.choice(CRASH_ERRORS)
            self._append(
                create_agent_failed_event(
                    agent_id,
                    error,
                    **self._envelope(causation_id=causation, correlation_id=task_id),
                )
            )
            self._tick(1, 50)
            self._append(
                create_task_failed_event(
                    task_id,
                    f"agent {agent_id} crashed: {error}",
                    task.attempt - 1,
                    **self._envelope(causation_id=causation, correlation_id=task_id),
                )
            )
            return _Report(
                agent_id=agent_id,
                outcome="crashed",
                task_id=task_id,
                stored=tuple(stored),
            )
        deleted: list[str] = []
        if outcome == "fail":
            self._at = start + _ms(rng.randint(duration // 3, duration))
            self._append(
                create_task_failed_event(
                    task_id,
                    rng.choice(TASK_ERRORS),
                    task.attempt - 1,
                    **self._envelope(causation_id=causation, correlation_id=task_id),
                )
            )
            self._tick(5, 100)
            self._append(
                create_agent_status_changed_event(
                    agent_id, "active", "idle", **self._envelope(correlation_id=task_id)
                )
            )
            if rng.random() < 0.5:
                deleted.append(self._delete_memory(scratch, task_id))
            return _Report(
                agent_id=agent_id,
                outcome="failed",
                task_id=task_id,
                stored=tuple(stored),
                deleted=tuple(deleted),
            )
        self._at = start + _ms(duration)
        result = _task_result(rng, task.task_type)
        self._append(
            create_task_completed_event(
                task_id,
                result,
                duration,
                **self._envelope(causation_id=causation, correlation_id=task_id),
            )
        )
        self._append(
            create_agent_task_completed_event(
                agent_id,
                task_id,
                {"success": True},
                self._at,
                duration,
                **self._envelope(causation_id=causation, correlation_id=task_id),
            )
        )
        size = rng.randint(512, 16384)
        stored.append(
            self._store_memory(
                "task-results", f"{task_id}-result", "semantic", size, None
            )
        )
        if rng.random() < 0.7:
            deleted.append(self._delete_memory(scratch, task_id))
        return _Report(
            agent_id=agent_id,
            outcome="completed",
            task_id=task_id,
            stored=tuple(stored),
            deleted=tuple(deleted),
        )

    def _delete_memory(self, ref: _MemoryRef, task_id: str) -> str:
        self._tick(5, 80)
        self._append(
            create_memory_deleted_event(
                ref.id, ref.namespace, ref.key, **self._envelope(correlation_id=task_id)
            )
        )
        return ref.id


_KIND_BY_TYPE: Final = {kind[0]: kind for kind in TASK_KINDS}


def _task_result(rng: random.Random, task_type: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "artifacts": rng.randint(1, 6),
        "linesChanged": rng.randint(10, 800),
        "quality": round(rng.uniform(0.7, 1.0), 2),
    }
    if task_type == "security-audit":
        result["vulnerabilitiesFixed"] = rng.randint(0, 5)
        result["severity"] = rng.choice(("low", "medium", "high"))
    elif task_type == "testing":
        result["testsPassed"] = rng.randint(20, 400)
    elif task_type == "benchmark":
        result["eventsPerSecond"] = rng.randint(50_000, 400_000)
    return result


# -- the coordinator ----------------------------------------------------------


@dataclass(slots=True)
class _Task:
    """The coordinator's view of one task."""

    id: str
    index: int
    type: str
    domain: str
    priority: str
    dependencies: tuple[str, ...]
    # pending, blocked, queued, retry, assigned, completed, failed
    status: str = "pending"
    attempts: int = 0
    result: _MemoryRef | None = None


@dataclass(slots=True)
class _Worker:
    """The coordinator's view of one worker agent."""

    id: str
    index: int
    role: str
    domain: str
    agent: _Agent
    status: str = "new"  # new, ready, crashed, stopped


class _Coordinator:
    """Runs the swarm (calling thread): decides everything, in a
    deterministic order, from the agents' sorted reports."""

    def __init__(
        self,
        store: EventStore,
        agents_projection: AgentStateProjection,
        *,
        agents: int,
        tasks: int,
        seed: int,
        on_progress: Callable[[RoundProgress], None] | None,
    ) -> None:
        self.store = store
        self.agents_projection = agents_projection
        self.n_agents = agents
        self.n_tasks = tasks
        self.seed = seed
        self.on_progress = on_progress
        self.rng = random.Random(f"{seed}/{COORDINATOR}")
        self.clock = EPOCH
        self.round = 0
        self.phase = "none"
        self.backend = _MemoryBackend()
        self.outbox: queue.Queue[_Report] = queue.Queue()
        self.max_agents = agents + max(1, agents // 4)
        self.workers: list[_Worker] = []
        self.tasks: list[_Task] = []
        self.by_id: dict[str, _Task] = {}
        self.memory: dict[str, _MemoryRef] = {}
        self.memory_ids: set[str] = set()
        self.memory_seq = 0
        self.milestones: set[str] = set()
        self.scaled_up = False
        self.scaled_down = False
        self.crash_injected = False
        self.fail_injected = False
        self.retries = 0
        self.agent_failures = 0
        self.spawned = 0
        self._id_width = max(2, len(str(self.max_agents)))
        self._task_width = max(3, len(str(tasks)))

    # -- helpers --------------------------------------------------------------

    def _tick(self) -> datetime:
        self.clock += _ms(1)
        return self.clock

    def _envelope(self, **extra: Any) -> dict[str, Any]:
        return {
            "timestamp": self._tick(),
            "source": COORDINATOR,
            "metadata": {"round": self.round},
            **extra,
        }

    def _append(self, event: Event[Any]) -> Event[Any]:
        return self.store.append(event)

    def _live(self) -> list[_Worker]:
        return [w for w in self.workers if w.status != "stopped"]

    def _finished(self) -> int:
        return sum(1 for t in self.tasks if t.status in ("completed", "failed"))

    def _progress(self) -> None:
        if self.on_progress is None:
            return
        self.on_progress(
            RoundProgress(
                phase=self.phase,
                round=self.round,
                finished=self._finished(),
                total=len(self.tasks) or self.n_tasks,
                events=self.store.head_position,
                active_agents=self.agents_projection.get_active_agent_count(),
            )
        )

    def _set_phase(self, phase: str) -> None:
        self._append(
            create_swarm_phase_changed_event(self.phase, phase, **self._envelope())
        )
        self.phase = phase
        self._progress()

    def _milestone(self, milestone_id: str, name: str) -> None:
        if milestone_id in self.milestones:
            return
        self.milestones.add(milestone_id)
        self._append(
            create_swarm_milestone_reached_event(milestone_id, name, **self._envelope())
        )

    def _store_memory(
        self,
        namespace: str,
        key: str,
        memory_type: str,
        size: int,
        ttl: timedelta | None,
    ) -> _MemoryRef:
        self.memory_seq += 1
        memory_id = f"{COORDINATOR}-mem-{self.memory_seq:03d}"
        event = self._append(
            create_memory_stored_event(
                memory_id, namespace, key, memory_type, size, **self._envelope()
            )
        )
        ref = _MemoryRef(
            memory_id, namespace, key, None if ttl is None else event.timestamp + ttl
        )
        self._remember(ref)
        return ref

    def _remember(self, ref: _MemoryRef) -> None:
        self.memory[ref.id] = ref
        self.memory_ids.add(ref.id)

    def _shared_memory(self) -> tuple[_MemoryRef, ...]:
        """The entries any agent may read this round (never deleted by an
        agent, expired only by the coordinator between rounds)."""
        return tuple(
            ref
            for _, ref in sorted(self.memory.items())
            if ref.namespace in ("knowledge", "task-results")
        )

    # -- agents ---------------------------------------------------------------

    def _spawn(self, count: int) -> list[_Worker]:
        new = []
        for _ in range(count):
            index = len(self.workers)
            role, domain, capabilities = ROSTER[index % len(ROSTER)]
            agent_id = f"agent-{index + 1:0{self._id_width}d}"
            self._append(
                create_agent_spawned_event(
                    agent_id, role, domain, capabilities, **self._envelope()
                )
            )
            agent = _Agent(
                self.store, self.backend, self.outbox, agent_id=agent_id, seed=self.seed
            )
            worker = _Worker(agent_id, index, role, domain, agent)
            self.workers.append(worker)
            new.append(worker)
            agent.thread.start()
            self.spawned += 1
        return new

    def _dispatch(self, orders: dict[str, _Order]) -> list[_Report]:
        """Send each agent its order; wait for every report; return them in
        spawn order (the only order the coordinator acts in)."""
        workers = {w.id: w for w in self.workers}
        for agent_id, order in orders.items():
            workers[agent_id].agent.inbox.put(order)
        reports: dict[str, _Report] = {}
        while len(reports) < len(orders):
            try:
                report = self.outbox.get(timeout=_WORKER_TIMEOUT)
            except queue.Empty:
                missing = sorted(set(orders) - set(reports))
                msg = (
                    f"agents {', '.join(missing)} did not report "
                    f"within {_WORKER_TIMEOUT:.0f}s"
                )
                raise SimulationError(msg) from None
            if report.outcome == "error":
                workers[report.agent_id].status = "stopped"
                msg = f"agent {report.agent_id} failed: {report.error}"
                raise SimulationError(msg)
            reports[report.agent_id] = report
        ordered = [reports[w.id] for w in self.workers if w.id in reports]
        for report in ordered:
            for ref in report.stored:
                self._remember(ref)
            for memory_id in report.deleted:
                self.memory.pop(memory_id, None)
        return ordered

    def shutdown_agents(self) -> None:
        """Stop every agent thread still running (any outcome)."""
        for worker in self.workers:
            if worker.agent.thread.is_alive():
                worker.agent.inbox.put(None)
        for worker in self.workers:
            worker.agent.thread.join(_WORKER_TIMEOUT)

    # -- the run --------------------------------------------------------------

    def run(self) -> None:
        """Play the whole swarm, phase by phase."""
        self._initialize()
        self._plan()
        self._execute()
        self._review()
        self._complete()

    def _initialize(self) -> None:
        config = {
            "seed": self.seed,
            "agents": self.n_agents,
            "tasks": self.n_tasks,
            "maxAttempts": MAX_ATTEMPTS,
            "memory": {"backend": "swarmlog"},
        }
        self._append(
            create_swarm_initialized_event(
                TOPOLOGY, self.max_agents, config, **self._envelope()
            )
        )
        self._set_phase("initialization")
        self._append(
            create_agent_spawned_event(
                COORDINATOR,
                "queen-coordinator",
                "coordination",
                ("orchestration", "task-assignment"),
                **self._envelope(),
            )
        )
        self._append(create_agent_started_event(COORDINATOR, **self._envelope()))
        self._append(
            create_swarm_scaled_event(
                0, self.n_agents, "initial agent spawn", **self._envelope()
            )
        )
        new = self._spawn(self.n_agents)
        at = self.clock + _ms(200)
        self._dispatch({w.id: _Order(round=0, at=at, start=True) for w in new})
        for worker in new:
            worker.status = "ready"
        self.clock = max(self.clock, at + timedelta(seconds=5))
        self._progress()

    def _plan(self) -> None:
        rng = self.rng
        self._set_phase("planning")
        for key in KNOWLEDGE:
            self._store_memory(
                "knowledge", key, "semantic", rng.randint(4096, 32768), None
            )
        self._store_memory(
            "working-memory",
            "plan-draft",
            "procedural",
            rng.randint(1024, 8192),
            PLAN_DRAFT_TTL,
        )
        for index in range(self.n_tasks):
            task_type, domain, verb, _, _ = rng.choice(TASK_KINDS)
            subject = rng.choice(SUBJECTS)
            priority = rng.choices(PRIORITIES, weights=(1, 3, 4, 2))[0]
            dependencies: tuple[str, ...] = ()
            if index and rng.random() < 0.45:
                pool = range(max(0, index - 8), index)
                picked = rng.sample(pool, min(rng.choice((1, 1, 2)), len(pool)))
                dependencies = tuple(self.tasks[i].id for i in sorted(picked))
            task = _Task(
                id=f"task-{index + 1:0{self._task_width}d}",
                index=index,
                type=task_type,
                domain=domain,
                priority=priority,
                dependencies=dependencies,
            )
            self.tasks.append(task)
            self.by_id[task.id] = task
            self._append(
                create_task_created_event(
                    task.id,
                    task_type,
                    f"{verb} the {subject}",
                    f"{verb} the {subject} for the next release ({priority} priority)",
                    priority,
                    dependencies,
                    **self._envelope(correlation_id=task.id),
                )
            )
            if dependencies:
                task.status = "blocked"
                self._append(
                    create_task_blocked_event(
                        task.id, dependencies, **self._envelope(correlation_id=task.id)
                    )
                )
            else:
                self._queue(task)
        self._milestone("plan-ready", f"plan ready: {self.n_tasks} tasks")
        self._set_phase("execution")

    def _queue(self, task: _Task) -> None:
        task.status = "queued"
        self._append(
            create_task_queued_event(
                task.id, task.priority, **self._envelope(correlation_id=task.id)
            )
        )

    def _execute(self) -> None:
        start = self.clock + timedelta(seconds=5)
        limit = self.n_tasks * MAX_ATTEMPTS + 10
        while self._finished() < len(self.tasks):
            self.round += 1
            if self.round > limit:
                msg = f"the swarm made no progress after {limit} rounds"
                raise SimulationError(msg)
            base = start + ROUND * (self.round - 1)
            self.clock = max(self.clock, base)
            self._expire_memory()
            self._requeue_and_unblock()
            orders = self._scale()
            orders.update(self._restart(orders))
            orders.update(self._assign(orders, base))
            knowledge = self._shared_memory()
            at = base + _ms(200)
            for worker in self._live():
                order = orders.get(worker.id)
                if order is None:
                    order = _Order(round=self.round, at=at)
                orders[worker.id] = msgspec.structs.replace(
                    order, round=self.round, at=at, knowledge=knowledge
                )
            reports = self._dispatch(orders)
            self.clock = max(self.clock, base + ROUND_WORK)
            self._apply(reports)
            self._progress()

    def _expire_memory(self) -> None:
        for _, ref in sorted(self.memory.items()):
            due = ref.expires_at
            if due is None or due > self.clock:
                continue
            self._append(
                create_memory_expired_event(
                    ref.id, ref.namespace, ref.key, due, **self._envelope()
                )
            )
            del self.memory[ref.id]

    def _requeue_and_unblock(self) -> None:
        for task in self.tasks:  # creation order: dependencies come first
            if task.status == "retry":
                self.retries += 1
                self._queue(task)
            elif task.status == "blocked":
                states = [self.by_id[d].status for d in task.dependencies]
                failed = [
                    d for d in task.dependencies if self.by_id[d].status == "failed"
                ]
                if failed:
                    task.status = "failed"
                    self._append(
                        create_task_failed_event(
                            task.id,
                            f"cancelled: dependency {failed[0]} failed",
                            0,
                            **self._envelope(correlation_id=task.id),
                        )
                    )
                elif all(s == "completed" for s in states):
                    self._queue(task)

    def _queued(self) -> list[_Task]:
        queued = [t for t in self.tasks if t.status == "queued"]
        queued.sort(key=lambda t: (_PRIORITY_RANK[t.priority], t.index))
        return queued

    def _scale(self) -> dict[str, _Order]:
        orders: dict[str, _Order] = {}
        live = self._live()
        backlog = len(self._queued())
        if not self.scaled_up and self.round >= 2 and backlog > len(live):
            count = min(self.max_agents - len(live), max(1, self.n_agents // 4))
            if count > 0:
                self.scaled_up = True
                self._append(
                    create_swarm_scaled_event(
                        len(live),
                        len(live) + count,
                        f"backlog of {backlog} queued tasks",
                        **self._envelope(),
                    )
                )
                for worker in self._spawn(count):
                    worker.status = "ready"
                    orders[worker.id] = _Order(
                        round=self.round, at=self.clock, start=True
                    )
            return orders
        open_tasks = sum(
            1 for t in self.tasks if t.status in ("queued", "blocked", "retry")
        )
        if not self.scaled_down and len(live) > 2 and open_tasks < len(live):
            count = max(1, (len(live) - open_tasks) // 2)
            self.scaled_down = True
            self._append(
                create_swarm_scaled_event(
                    len(live), len(live) - count, "demand dropped", **self._envelope()
                )
            )
            for worker in live[-count:]:
                orders[worker.id] = _Order(
                    round=self.round, at=self.clock, stop="scaled down: demand dropped"
                )
        return orders

    def _restart(self, orders: dict[str, _Order]) -> dict[str, _Order]:
        restarts = {}
        for worker in self._live():
            if worker.status == "crashed" and worker.id not in orders:
                worker.status = "ready"
                restarts[worker.id] = _Order(
                    round=self.round, at=self.clock, restart=True
                )
        return restarts

    def _assign(self, orders: dict[str, _Order], base: datetime) -> dict[str, _Order]:
        free = [
            w
            for w in self._live()
            if w.status == "ready" and (w.id not in orders or orders[w.id].stop is None)
        ]
        assigned: dict[str, _Order] = {}
        for task in self._queued():
            if not free:
                break
            worker = next((w for w in free if w.domain == task.domain), free[0])
            free.remove(worker)
            task.status = "assigned"
            task.attempts += 1
            event = self._append(
                create_agent_task_assigned_event(
                    worker.id, task.id, **self._envelope(correlation_id=task.id)
                )
            )
            inject: Literal["fail", "crash"] | None = None
            if not self.fail_injected:
                self.fail_injected = True
                inject = "fail"
            elif not self.crash_injected and self.round >= 2:
                self.crash_injected = True
                inject = "crash"
            inputs = tuple(
                ref
                for d in task.dependencies
                if (ref := self.by_id[d].result) is not None
            )
            previous = orders.get(worker.id, _Order(round=self.round, at=base))
            assigned[worker.id] = msgspec.structs.replace(
                previous,
                task=_TaskOrder(
                    task_id=task.id,
                    task_type=task.type,
                    attempt=task.attempts,
                    inputs=inputs,
                    inject=inject,
                    assignment_id=str(event.id),
                ),
            )
        return assigned

    def _apply(self, reports: Sequence[_Report]) -> None:
        workers = {w.id: w for w in self.workers}
        for report in reports:
            worker = workers[report.agent_id]
            if report.outcome == "stopped":
                worker.status = "stopped"
                continue
            if report.task_id is None:
                continue
            task = self.by_id[report.task_id]
            if report.outcome == "completed":
                task.status = "completed"
                task.result = next(
                    (r for r in report.stored if r.namespace == "task-results"), None
                )
                continue
            if report.outcome == "crashed":
                worker.status = "crashed"
                self.crash_injected = True
                self.agent_failures += 1
                self._append(
                    create_swarm_error_event(
                        f"{worker.id} crashed while running {task.id}",
                        {"agentId": worker.id, "taskId": task.id, "round": self.round},
                        **self._envelope(correlation_id=task.id),
                    )
                )
            if task.attempts < MAX_ATTEMPTS:
                task.status = "retry"
            else:
                task.status = "failed"
                self._append(
                    create_swarm_error_event(
                        f"task {task.id} failed after {task.attempts} attempts",
                        {"taskId": task.id, "attempts": task.attempts},
                        **self._envelope(correlation_id=task.id),
                    )
                )
        finished = self._finished()
        total = len(self.tasks)
        if any(t.status == "completed" for t in self.tasks):
            self._milestone("first-result", "first task completed")
        for pct in (25, 50, 75, 100):
            if finished * 100 >= pct * total:
                self._milestone(f"tasks-{pct}", f"{pct}% of tasks finished")

    def _review(self) -> None:
        self.clock += timedelta(seconds=5)
        self._set_phase("review")
        key_results = [
            t.result
            for t in self.tasks
            if t.status == "completed" and t.priority == "critical" and t.result
        ]
        for ref in key_results[:5]:
            self._append(
                create_memory_retrieved_event(
                    ref.id,
                    ref.namespace,
                    ref.key,
                    self.backend.read(ref.id),
                    **self._envelope(),
                )
            )
        for _, ref in sorted(self.memory.items()):
            if ref.namespace == "working-memory":
                self._append(
                    create_memory_deleted_event(
                        ref.id, ref.namespace, ref.key, **self._envelope()
                    )
                )
                del self.memory[ref.id]

    def _complete(self) -> None:
        self.clock += timedelta(seconds=5)
        self._set_phase("completion")
        live = self._live()
        at = self.clock + _ms(100)
        self._dispatch(
            {
                w.id: _Order(round=self.round, at=at, stop="swarm completed")
                for w in live
            }
        )
        for worker in live:
            worker.status = "stopped"
        self.clock = max(self.clock, at + timedelta(seconds=1))
        self._append(
            create_swarm_scaled_event(
                len(live), 0, "swarm completed", **self._envelope()
            )
        )
        self._append(
            create_agent_stopped_event(
                COORDINATOR, "swarm completed", **self._envelope()
            )
        )
        completed = sum(1 for t in self.tasks if t.status == "completed")
        metrics = {
            "rounds": self.round,
            "tasks": len(self.tasks),
            "completed": completed,
            "failed": len(self.tasks) - completed,
            "retries": self.retries,
            "agentFailures": self.agent_failures,
            "agentsSpawned": self.spawned,
            "simulatedSeconds": (self.clock - EPOCH).total_seconds(),
        }
        self._append(
            create_swarm_terminated_event(
                "all tasks finished", metrics, **self._envelope()
            )
        )
        self._progress()


# -- entry point --------------------------------------------------------------


def _prepare_path(db_path: str, overwrite: bool) -> str:
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
        from swarmlog.actors.sqlite_storage import FileLock

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
    overwrite: bool = False,
    console: Console | None = None,
    on_progress: Callable[[RoundProgress], None] | None = None,
) -> SimulationReport:
    """Run the swarm simulation into ``db_path`` and prove the engine.

    Runs on the calling thread (the coordinator); each agent runs on its own
    thread. With ``console`` (a ``rich`` Console, needs ``swarmlog[cli]``) it
    shows a live progress bar and prints the read models at the end.

    Args:
        db_path: The store file (``":memory:"`` for a throw-away store).
        agents: Worker agents to spawn at first (>= 1).
        tasks: Tasks to plan (>= 1).
        seed: Seed of every random choice.
        overwrite: Replace an existing swarmlog store at ``db_path``.
        console: Where to show progress and the final tables, if anywhere.
        on_progress: Called on the calling thread after each step.

    Returns:
        Counts, throughput, the final read models and their fingerprint,
        and whether a rebuild from the log matched the live projections.

    Raises:
        DatabaseExistsError: ``db_path`` exists and ``overwrite`` is false.
        IncompatibleStoreError: ``overwrite`` would replace a file that is
            not a swarmlog store.
        StoreOpenError: ``db_path`` is a directory or cannot be opened.
        StoreLockedError: Another process is writing to ``db_path``.
        InvalidConfigError: ``agents`` or ``tasks`` is below 1.
        SimulationError: An agent thread failed or hung.
    """
    for name, value in (("agents", agents), ("tasks", tasks), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int):
            msg = f"{name} must be an int, got {value!r}"
            raise InvalidConfigError(msg)
    if agents < 1 or tasks < 1:
        msg = f"agents and tasks must be >= 1, got {agents} and {tasks}"
        raise InvalidConfigError(msg)
    path = _prepare_path(os.fspath(db_path), overwrite)
    if console is not None:
        from swarmlog.cli import render_simulation, simulation_progress

        with simulation_progress(console, tasks) as show:
            report = _run(path, agents, tasks, seed, _chain(show, on_progress))
        render_simulation(console, report)
        return report
    return _run(path, agents, tasks, seed, on_progress)


def _chain(
    *callbacks: Callable[[RoundProgress], None] | None,
) -> Callable[[RoundProgress], None]:
    def call(progress: RoundProgress) -> None:
        for callback in callbacks:
            if callback is not None:
                callback(progress)

    return call


def _run(
    path: str,
    agents: int,
    tasks: int,
    seed: int,
    on_progress: Callable[[RoundProgress], None] | None,
) -> SimulationReport:
    started = time.perf_counter()
    with EventStore(path) as store:
        live = (
            AgentStateProjection(store).initialize(),
            TaskHistoryProjection(store).initialize(),
            MemoryIndexProjection(store).initialize(),
            SwarmProjection(store).initialize(),
        )
        coordinator = _Coordinator(
            store,
            live[0],
            agents=agents,
            tasks=tasks,
            seed=seed,
            on_progress=on_progress,
        )
        try:
            coordinator.run()
        finally:
            coordinator.shutdown_agents()
        head = store.head_position
        for projection in live:
            projection.wait_for(head)
        elapsed = time.perf_counter() - started
        now = coordinator.clock
        models = collect_read_models(*live, now=now, memory_ids=coordinator.memory_ids)
        rebuild_started = time.perf_counter()
        rebuilt = collect_read_models(
            AgentStateProjection.as_of(store, head),
            TaskHistoryProjection.as_of(store, head),
            MemoryIndexProjection.as_of(store, head),
            SwarmProjection.as_of(store, head),
            now=now,
            memory_ids=coordinator.memory_ids,
        )
        rebuild_seconds = time.perf_counter() - rebuild_started
        events_by_type = dict(sorted(store.get_stats().events_by_type.items()))
        _save_snapshots(
            store, models, [COORDINATOR, *(w.id for w in coordinator.workers)]
        )
    completed = models.tasks_by_status.get("completed", 0)
    return SimulationReport(
        db_path=path,
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
    )
