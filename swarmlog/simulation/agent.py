"""A worker agent: runs the coordinator's orders on its own thread.

Each agent appends its own events to the store concurrently with the other
agents, draws from its own ``random.Random`` (derived from the seed and its
id), and reports what it did back to the coordinator.
"""

from __future__ import annotations

import queue
import random
import threading
from typing import TYPE_CHECKING, Any

from swarmlog.schema.factories import (
    create_agent_failed_event,
    create_agent_started_event,
    create_agent_status_changed_event,
    create_agent_stopped_event,
    create_agent_task_completed_event,
    create_memory_deleted_event,
    create_memory_retrieved_event,
    create_memory_stored_event,
    create_task_completed_event,
    create_task_failed_event,
    create_task_started_event,
)
from swarmlog.simulation.llm import llm_key
from swarmlog.simulation.messages import MemoryRef, Order, Report, TaskOrder
from swarmlog.simulation.world import CONTEXT_TTL, EPOCH, SCRATCH_TTL, ms

if TYPE_CHECKING:
    from datetime import datetime, timedelta

    from swarmlog.schema.envelope import Event
    from swarmlog.simulation.llm import SimulatedLLM
    from swarmlog.simulation.messages import EffectsFactory, MemoryBackend, ReportSink
    from swarmlog.store import EventStore

__all__ = ["Agent"]


class Agent:
    """One worker agent: runs its orders on its own thread, appending its
    events concurrently with the other agents."""

    def __init__(
        self,
        store: EventStore,
        backend: MemoryBackend,
        outbox: ReportSink,
        *,
        agent_id: str,
        seed: int,
        effects: EffectsFactory,
        llm: SimulatedLLM,
    ) -> None:
        self.agent_id = agent_id
        self.thread = threading.Thread(target=self.run, name=f"swarmlog-sim-{agent_id}")
        self.inbox: queue.Queue[Order | None] = queue.Queue()
        self._store = store
        self._backend = backend
        self._outbox = outbox
        self._rng = random.Random(f"{seed}/{agent_id}")
        self._seed = seed
        self._llm = llm
        self._effects = effects(agent_id, self._now)
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
                    Report(agent_id=self.agent_id, outcome="error", error=error)
                )
                return
            self._outbox.put(report)
            if report.outcome == "stopped":
                return

    def move_to(self, store: EventStore) -> None:
        """Append to ``store`` from now on (a what-if's fork). Called by
        the coordinator between rounds, while this agent waits for orders."""
        self._store = store

    # -- helpers --------------------------------------------------------------

    def _now(self) -> datetime:
        return self._at

    def _ask_llm(self, task: TaskOrder) -> dict[str, Any]:
        """How this attempt goes, from the model: recorded, or replayed."""
        return self._effects.call(
            llm_key(self.agent_id),
            self._llm,
            self._seed,
            self.agent_id,
            task.task_id,
            task.task_type,
            task.attempt,
            task.inject,
            task.failure_rate,
        )

    def _tick(self, low: int, high: int) -> datetime:
        self._at += ms(self._rng.randint(low, high))
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
    ) -> MemoryRef:
        self._memory_seq += 1
        memory_id = f"{self.agent_id}-mem-{self._memory_seq:03d}"
        self._tick(20, 120)
        self._append(
            create_memory_stored_event(
                memory_id, namespace, key, memory_type, size, **self._envelope()
            )
        )
        expires = None if ttl is None else self._at + ttl
        return MemoryRef(memory_id, namespace, key, expires)

    def _retrieve(self, ref: MemoryRef, correlation_id: str | None = None) -> None:
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

    def _handle(self, order: Order) -> Report:
        rng = self._rng
        self._round = order.round
        self._at = order.at + ms(rng.randint(0, 400))
        stored: list[MemoryRef] = []
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
            return Report(agent_id=agent_id, outcome="stopped", stored=tuple(stored))
        if order.task is None:
            if order.knowledge and rng.random() < 0.5:
                self._retrieve(rng.choice(order.knowledge))
            return Report(agent_id=agent_id, outcome="idle", stored=tuple(stored))
        return self._run_task(order, order.task, stored)

    def _run_task(
        self, order: Order, task: TaskOrder, stored: list[MemoryRef]
    ) -> Report:
        rng = self._rng
        agent_id = self.agent_id
        task_id = task.task_id
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
        answer = self._ask_llm(task)
        outcome = answer["outcome"]
        causation = str(started.id)
        if outcome == "crash":
            self._at = start + ms(answer["elapsed"])
            error = answer["error"]
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
            return Report(
                agent_id=agent_id,
                outcome="crashed",
                task_id=task_id,
                stored=tuple(stored),
            )
        deleted: list[str] = []
        if outcome == "fail":
            self._at = start + ms(answer["elapsed"])
            self._append(
                create_task_failed_event(
                    task_id,
                    answer["error"],
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
            return Report(
                agent_id=agent_id,
                outcome="failed",
                task_id=task_id,
                stored=tuple(stored),
                deleted=tuple(deleted),
            )
        duration = answer["elapsed"]
        self._at = start + ms(duration)
        result = answer["result"]
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
        return Report(
            agent_id=agent_id,
            outcome="completed",
            task_id=task_id,
            stored=tuple(stored),
            deleted=tuple(deleted),
        )

    def _delete_memory(self, ref: MemoryRef, task_id: str) -> str:
        self._tick(5, 80)
        self._append(
            create_memory_deleted_event(
                ref.id, ref.namespace, ref.key, **self._envelope(correlation_id=task_id)
            )
        )
        return ref.id
