"""The coordinator's state and the moves every phase makes.

The :class:`Coordinator` runs on the calling thread and decides
everything, in a deterministic order, from the agents' sorted reports. It
holds the swarm's state (workers, tasks, shared memory, the simulated
clock) and the moves the phases share: appending with the coordinator's
envelope, spawning agents, dispatching orders and collecting reports. The
phases themselves live in :mod:`~swarmlog.simulation.opening` (initialization,
planning), :mod:`~swarmlog.simulation.execution` (the rounds) and
:mod:`~swarmlog.simulation.closing` (review, completion).
"""

from __future__ import annotations

import queue
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from swarmlog.actors.read_models import (
    AgentStateProjection,
    MemoryIndexProjection,
    SwarmProjection,
    TaskHistoryProjection,
)
from swarmlog.schema.factories import (
    create_agent_spawned_event,
    create_memory_stored_event,
    create_swarm_milestone_reached_event,
    create_swarm_phase_changed_event,
    create_task_queued_event,
)
from swarmlog.simulation.messages import MemoryBackend, MemoryRef, Order, Report
from swarmlog.simulation.results import RoundProgress, SimulationError
from swarmlog.simulation.world import (
    COORDINATOR,
    EPOCH,
    PRIORITY_RANK,
    ROSTER,
    WORKER_TIMEOUT,
    ms,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime, timedelta

    from swarmlog.schema.envelope import Event
    from swarmlog.simulation.crew import Crew
    from swarmlog.store import EventStore

__all__ = ["Coordinator", "LiveModels", "PlannedTask", "Worker"]


class LiveModels(NamedTuple):
    """The four built-in projections following a run's store live."""

    agents: AgentStateProjection
    tasks: TaskHistoryProjection
    memory: MemoryIndexProjection
    swarm: SwarmProjection

    @classmethod
    def start(cls, store: EventStore) -> LiveModels:
        """Start the four projections on ``store`` (they catch up from its
        first event)."""
        return cls(
            AgentStateProjection(store).initialize(),
            TaskHistoryProjection(store).initialize(),
            MemoryIndexProjection(store).initialize(),
            SwarmProjection(store).initialize(),
        )

    @classmethod
    def as_of(cls, store: EventStore, position: int) -> LiveModels:
        """The four read models rebuilt from ``store`` up to ``position``
        (on the calling thread; nothing keeps running)."""
        return cls(
            AgentStateProjection.as_of(store, position),
            TaskHistoryProjection.as_of(store, position),
            MemoryIndexProjection.as_of(store, position),
            SwarmProjection.as_of(store, position),
        )


@dataclass(slots=True)
class PlannedTask:
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
    result: MemoryRef | None = None


@dataclass(slots=True)
class Worker:
    """The coordinator's view of one worker agent."""

    id: str
    index: int
    role: str
    domain: str
    status: str = "new"  # new, ready, crashed, stopped


class Coordinator:
    """Runs the swarm (calling thread): decides everything, in a
    deterministic order, from the agents' sorted reports."""

    def __init__(
        self,
        store: EventStore,
        projections: LiveModels,
        *,
        agents: int,
        tasks: int,
        seed: int,
        on_progress: Callable[[RoundProgress], None] | None,
        crew: Crew,
        failure_rate: float | None = None,
        before_round: Callable[[Coordinator], None] | None = None,
    ) -> None:
        self.store = store
        self.projections = projections
        self.agents_projection = projections.agents
        self.crew = crew
        self.failure_rate = failure_rate
        self.before_round = before_round
        self.target_agents: int | None = None  # a what-if's new swarm size
        self.n_agents = agents
        self.n_tasks = tasks
        self.seed = seed
        self.on_progress = on_progress
        self.rng = random.Random(f"{seed}/{COORDINATOR}")
        self.clock = EPOCH
        self.round = 0
        self.phase = "none"
        # The coordinator's own retrieval counts (informative payload field;
        # the memory read model counts events, wherever the agents run).
        self.backend = MemoryBackend()
        self.max_agents = agents + max(1, agents // 4)
        self.workers: list[Worker] = []
        self.tasks: list[PlannedTask] = []
        self.by_id: dict[str, PlannedTask] = {}
        self.memory: dict[str, MemoryRef] = {}
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
        self.task_width = max(3, len(str(tasks)))

    # -- helpers --------------------------------------------------------------

    def tick(self) -> datetime:
        """Advance the clock by 1 ms; return it."""
        self.clock += ms(1)
        return self.clock

    def envelope(self, **extra: Any) -> dict[str, Any]:
        """Factory keywords for the coordinator's next event."""
        return {
            "timestamp": self.tick(),
            "source": COORDINATOR,
            "metadata": {"round": self.round},
            **extra,
        }

    def append(self, event: Event[Any]) -> Event[Any]:
        """Append ``event`` to the store."""
        return self.store.append(event)

    def live(self) -> list[Worker]:
        """Workers not stopped, in spawn order."""
        return [w for w in self.workers if w.status != "stopped"]

    def finished(self) -> int:
        """Tasks completed or failed for good."""
        return sum(1 for t in self.tasks if t.status in ("completed", "failed"))

    def progress(self) -> None:
        """Report progress to ``on_progress`` (if any)."""
        if self.on_progress is None:
            return
        self.on_progress(
            RoundProgress(
                phase=self.phase,
                round=self.round,
                finished=self.finished(),
                total=len(self.tasks) or self.n_tasks,
                events=self.store.head_position,
                active_agents=self.agents_projection.get_active_agent_count(),
            )
        )

    def set_phase(self, phase: str) -> None:
        """Move the swarm to ``phase``."""
        self.append(
            create_swarm_phase_changed_event(self.phase, phase, **self.envelope())
        )
        self.phase = phase
        self.progress()

    def milestone(self, milestone_id: str, name: str) -> None:
        """Reach a milestone (once)."""
        if milestone_id in self.milestones:
            return
        self.milestones.add(milestone_id)
        self.append(
            create_swarm_milestone_reached_event(milestone_id, name, **self.envelope())
        )

    def store_memory(
        self,
        namespace: str,
        key: str,
        memory_type: str,
        size: int,
        ttl: timedelta | None,
    ) -> MemoryRef:
        """Store a memory entry of the coordinator's own; remember it."""
        self.memory_seq += 1
        memory_id = f"{COORDINATOR}-mem-{self.memory_seq:03d}"
        event = self.append(
            create_memory_stored_event(
                memory_id, namespace, key, memory_type, size, **self.envelope()
            )
        )
        ref = MemoryRef(
            memory_id, namespace, key, None if ttl is None else event.timestamp + ttl
        )
        self.remember(ref)
        return ref

    def remember(self, ref: MemoryRef) -> None:
        """Track a stored memory entry."""
        self.memory[ref.id] = ref
        self.memory_ids.add(ref.id)

    def shared_memory(self) -> tuple[MemoryRef, ...]:
        """The entries any agent may read this round (never deleted by an
        agent, expired only by the coordinator between rounds)."""
        return tuple(
            ref
            for _, ref in sorted(self.memory.items())
            if ref.namespace in ("knowledge", "task-results")
        )

    # -- agents ---------------------------------------------------------------

    def spawn(self, count: int) -> list[Worker]:
        """Spawn ``count`` worker agents and start them (in the crew)."""
        new = []
        for _ in range(count):
            index = len(self.workers)
            role, domain, capabilities = ROSTER[index % len(ROSTER)]
            agent_id = f"agent-{index + 1:0{self._id_width}d}"
            self.append(
                create_agent_spawned_event(
                    agent_id, role, domain, capabilities, **self.envelope()
                )
            )
            worker = Worker(agent_id, index, role, domain)
            self.workers.append(worker)
            new.append(worker)
            self.crew.spawn(agent_id)
            self.spawned += 1
        return new

    def dispatch(self, orders: dict[str, Order]) -> list[Report]:
        """Send each agent its order; wait for every report; return them in
        spawn order (the only order the coordinator acts in)."""
        workers = {w.id: w for w in self.workers}
        for agent_id, order in orders.items():
            self.crew.send(agent_id, order)
        reports: dict[str, Report] = {}
        while len(reports) < len(orders):
            try:
                report = self.crew.next_report(WORKER_TIMEOUT)
            except queue.Empty:
                missing = sorted(set(orders) - set(reports))
                msg = (
                    f"agents {', '.join(missing)} did not report "
                    f"within {WORKER_TIMEOUT:.0f}s"
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
                self.remember(ref)
            for memory_id in report.deleted:
                self.memory.pop(memory_id, None)
        return ordered

    def move_to(self, store: EventStore, projections: LiveModels) -> None:
        """Append to ``store`` from now on, the coordinator and every agent,
        followed by ``projections`` (a what-if switching to its fork between
        two rounds)."""
        self.store = store
        self.projections = projections
        self.agents_projection = projections.agents
        self.crew.move_to(store)

    def shutdown_agents(self) -> None:
        """Stop every agent still running (any outcome)."""
        self.crew.stop()

    def enqueue(self, task: PlannedTask) -> None:
        """Queue ``task`` (status ``queued``, a ``task:queued`` event)."""
        task.status = "queued"
        self.append(
            create_task_queued_event(
                task.id, task.priority, **self.envelope(correlation_id=task.id)
            )
        )

    def queued(self) -> list[PlannedTask]:
        """The queued tasks, by priority then creation order."""
        queued = [t for t in self.tasks if t.status == "queued"]
        queued.sort(key=lambda t: (PRIORITY_RANK[t.priority], t.index))
        return queued
