"""What the coordinator and the agents tell each other, and the shared
memory service they both call.

Orders go from the coordinator to one agent's inbox; reports come back on
the crew's outbox (a ``queue.Queue``, or a ``multiprocessing`` queue when
the agents run in worker processes). All are frozen msgspec structs: they
cross threads through those queues, which never copy them, and cross
processes pickled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime  # msgspec resolves it at runtime
from typing import TYPE_CHECKING, Literal, Protocol

import msgspec

if TYPE_CHECKING:
    from swarmlog.effects import Effects

__all__ = [
    "EffectsFactory",
    "MemoryBackend",
    "MemoryRef",
    "Order",
    "Outcome",
    "Report",
    "ReportSink",
    "TaskOrder",
]

EffectsFactory = Callable[[str, Callable[[], datetime]], "Effects"]
"""Makes an agent's recorded effects: ``(agent_id, clock) -> Effects``
(record, replay or auto, on whichever store the run reads them from)."""


class MemoryRef(msgspec.Struct, frozen=True):
    """A memory entry as the swarm's memory backend knows it."""

    id: str
    namespace: str
    key: str
    expires_at: datetime | None = None


class TaskOrder(msgspec.Struct, frozen=True, kw_only=True):
    """Run one attempt of a task."""

    task_id: str
    task_type: str
    attempt: int
    inputs: tuple[MemoryRef, ...]
    inject: Literal["fail", "crash"] | None
    assignment_id: str
    failure_rate: float | None = None


class Order(msgspec.Struct, frozen=True, kw_only=True):
    """What one agent does in one round (decided by the coordinator)."""

    round: int
    at: datetime
    start: bool = False
    restart: bool = False
    stop: str | None = None
    task: TaskOrder | None = None
    knowledge: tuple[MemoryRef, ...] = ()


Outcome = Literal["idle", "completed", "failed", "crashed", "stopped", "error"]


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """What one agent did in one round."""

    agent_id: str
    outcome: Outcome
    task_id: str | None = None
    stored: tuple[MemoryRef, ...] = ()
    deleted: tuple[str, ...] = ()
    error: str | None = None


class ReportSink(Protocol):
    """Where an agent puts its reports: a ``queue.Queue``, or a
    ``multiprocessing`` queue back to the coordinator's process (any
    thread)."""

    def put(self, item: Report, /) -> None:
        """Deliver one report."""
        ...


class MemoryBackend:
    """The swarm's shared memory service: counts retrievals per entry.

    Thread-safe; the counts reach events only as the informative
    ``access_count`` payload field (the read model counts events).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reads: dict[str, int] = {}

    def read(self, memory_id: str) -> int:
        """Count one retrieval of ``memory_id``; return its count (any thread)."""
        with self._lock:
            count = self._reads.get(memory_id, 0) + 1
            self._reads[memory_id] = count
            return count
