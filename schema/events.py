"""The 23 built-in domain events of a swarm, as msgspec payload Structs.

Each payload is a frozen Struct tagged with its reference type string
(``"task:completed"``) and named as the past-tense fact (``TaskCompleted``).
Instants are timezone-aware UTC datetimes, ``duration`` is integer
milliseconds, sequences are tuples, and ``result``/``config``/``metrics``/
``context`` hold JSON-like data (checked and made read-only on append, see
:mod:`swarmlog.schema.frozen`). Add new fields only with defaults, so that
events stored earlier still decode (msgspec schema evolution).

Types whose fields cannot hold containers are ``gc=False``: the garbage
collector never needs to track them.
"""

from __future__ import annotations

from datetime import datetime  # noqa: TC003 - msgspec reads annotations at runtime
from typing import Any, Union

import msgspec

from swarmlog.schema.registry import register_event_type

__all__ = [
    "AGENT_EVENTS",
    "ALL_EVENT_TYPES",
    "MEMORY_EVENTS",
    "SWARM_EVENTS",
    "TASK_EVENTS",
    "AgentFailed",
    "AgentSpawned",
    "AgentStarted",
    "AgentStatusChanged",
    "AgentStopped",
    "AgentTaskAssigned",
    "AgentTaskCompleted",
    "BuiltinPayload",
    "MemoryDeleted",
    "MemoryExpired",
    "MemoryRetrieved",
    "MemoryStored",
    "SwarmError",
    "SwarmInitialized",
    "SwarmMilestoneReached",
    "SwarmPhaseChanged",
    "SwarmScaled",
    "SwarmTerminated",
    "TaskBlocked",
    "TaskCompleted",
    "TaskCreated",
    "TaskFailed",
    "TaskQueued",
    "TaskStarted",
]


class _Payload(msgspec.Struct, frozen=True, kw_only=True):
    """Base of the built-in payloads (frozen, keyword-only)."""


# -- agent -------------------------------------------------------------------


class AgentSpawned(_Payload, frozen=True, tag="agent:spawned", kw_only=True):
    """An agent was created."""

    agent_id: str
    role: str
    domain: str
    capabilities: tuple[str, ...] = ()


class AgentStarted(_Payload, frozen=True, tag="agent:started", kw_only=True, gc=False):
    """An agent began working."""

    agent_id: str
    started_at: datetime


class AgentStopped(_Payload, frozen=True, tag="agent:stopped", kw_only=True, gc=False):
    """An agent finished."""

    agent_id: str
    reason: str
    stopped_at: datetime


class AgentFailed(_Payload, frozen=True, tag="agent:failed", kw_only=True, gc=False):
    """An agent hit an error."""

    agent_id: str
    error: str
    stack: str | None = None
    failed_at: datetime


class AgentStatusChanged(
    _Payload, frozen=True, tag="agent:status-changed", kw_only=True, gc=False
):
    """An agent's status was set explicitly."""

    agent_id: str
    previous_status: str
    new_status: str


class AgentTaskAssigned(
    _Payload, frozen=True, tag="agent:task-assigned", kw_only=True, gc=False
):
    """A task was assigned to an agent."""

    agent_id: str
    task_id: str
    assigned_at: datetime


class AgentTaskCompleted(
    _Payload, frozen=True, tag="agent:task-completed", kw_only=True
):
    """An agent completed a task (``duration`` in milliseconds)."""

    agent_id: str
    task_id: str
    result: Any = None
    completed_at: datetime
    duration: int


# -- task --------------------------------------------------------------------


class TaskCreated(_Payload, frozen=True, tag="task:created", kw_only=True):
    """A task was created."""

    task_id: str
    task_type: str
    title: str
    description: str
    priority: str
    dependencies: tuple[str, ...] = ()


class TaskStarted(_Payload, frozen=True, tag="task:started", kw_only=True, gc=False):
    """A task's execution began on an agent."""

    task_id: str
    agent_id: str
    started_at: datetime


class TaskCompleted(_Payload, frozen=True, tag="task:completed", kw_only=True):
    """A task finished successfully (``duration`` in milliseconds)."""

    task_id: str
    result: Any = None
    completed_at: datetime
    duration: int | None = None


class TaskFailed(_Payload, frozen=True, tag="task:failed", kw_only=True, gc=False):
    """A task failed (``retry_count`` retries so far)."""

    task_id: str
    error: str
    stack: str | None = None
    failed_at: datetime
    retry_count: int = 0


class TaskBlocked(_Payload, frozen=True, tag="task:blocked", kw_only=True):
    """A task is blocked by unfinished dependencies."""

    task_id: str
    blocked_by: tuple[str, ...]
    blocked_at: datetime


class TaskQueued(_Payload, frozen=True, tag="task:queued", kw_only=True, gc=False):
    """A task was put on the queue."""

    task_id: str
    priority: str
    queued_at: datetime


# -- memory ------------------------------------------------------------------


class MemoryStored(_Payload, frozen=True, tag="memory:stored", kw_only=True, gc=False):
    """A memory entry was saved (``size`` in bytes)."""

    memory_id: str
    namespace: str
    key: str
    memory_type: str
    size: int
    stored_at: datetime


class MemoryRetrieved(
    _Payload, frozen=True, tag="memory:retrieved", kw_only=True, gc=False
):
    """A memory entry was read.

    ``access_count`` is optional: the caller's own count of reads of the
    entry, if it keeps one, stored for auditing; the memory read model
    counts ``memory:retrieved`` events itself and does not use it.
    """

    memory_id: str
    namespace: str
    key: str
    retrieved_at: datetime
    access_count: int | None = None


class MemoryDeleted(
    _Payload, frozen=True, tag="memory:deleted", kw_only=True, gc=False
):
    """A memory entry was removed."""

    memory_id: str
    namespace: str
    key: str
    deleted_at: datetime


class MemoryExpired(
    _Payload, frozen=True, tag="memory:expired", kw_only=True, gc=False
):
    """A memory entry expired (it was due at ``expires_at``)."""

    memory_id: str
    namespace: str
    key: str
    expired_at: datetime
    expires_at: datetime


# -- swarm -------------------------------------------------------------------


class SwarmInitialized(_Payload, frozen=True, tag="swarm:initialized", kw_only=True):
    """The swarm started."""

    topology: str
    max_agents: int
    config: Any = None
    initialized_at: datetime


class SwarmScaled(_Payload, frozen=True, tag="swarm:scaled", kw_only=True, gc=False):
    """The swarm's agent count changed."""

    previous_agent_count: int
    new_agent_count: int
    reason: str
    scaled_at: datetime


class SwarmTerminated(_Payload, frozen=True, tag="swarm:terminated", kw_only=True):
    """The swarm shut down."""

    reason: str
    metrics: Any = None
    terminated_at: datetime


class SwarmPhaseChanged(
    _Payload, frozen=True, tag="swarm:phase-changed", kw_only=True, gc=False
):
    """The swarm moved to another execution phase."""

    previous_phase: str
    new_phase: str
    changed_at: datetime


class SwarmMilestoneReached(
    _Payload, frozen=True, tag="swarm:milestone-reached", kw_only=True, gc=False
):
    """The swarm reached a milestone."""

    milestone_id: str
    name: str
    reached_at: datetime


class SwarmError(_Payload, frozen=True, tag="swarm:error", kw_only=True):
    """A swarm-level error happened."""

    error: str
    stack: str | None = None
    context: Any = None
    error_at: datetime


AGENT_EVENTS: tuple[type[_Payload], ...] = (
    AgentSpawned,
    AgentStarted,
    AgentStopped,
    AgentFailed,
    AgentStatusChanged,
    AgentTaskAssigned,
    AgentTaskCompleted,
)
TASK_EVENTS: tuple[type[_Payload], ...] = (
    TaskCreated,
    TaskStarted,
    TaskCompleted,
    TaskFailed,
    TaskBlocked,
    TaskQueued,
)
MEMORY_EVENTS: tuple[type[_Payload], ...] = (
    MemoryStored,
    MemoryRetrieved,
    MemoryDeleted,
    MemoryExpired,
)
SWARM_EVENTS: tuple[type[_Payload], ...] = (
    SwarmInitialized,
    SwarmScaled,
    SwarmTerminated,
    SwarmPhaseChanged,
    SwarmMilestoneReached,
    SwarmError,
)
ALL_EVENT_TYPES = AGENT_EVENTS + TASK_EVENTS + MEMORY_EVENTS + SWARM_EVENTS

BuiltinPayload = Union[  # noqa: UP007 - a runtime union msgspec can decode
    AgentSpawned,
    AgentStarted,
    AgentStopped,
    AgentFailed,
    AgentStatusChanged,
    AgentTaskAssigned,
    AgentTaskCompleted,
    TaskCreated,
    TaskStarted,
    TaskCompleted,
    TaskFailed,
    TaskBlocked,
    TaskQueued,
    MemoryStored,
    MemoryRetrieved,
    MemoryDeleted,
    MemoryExpired,
    SwarmInitialized,
    SwarmScaled,
    SwarmTerminated,
    SwarmPhaseChanged,
    SwarmMilestoneReached,
    SwarmError,
]
"""Tagged union of the built-in payloads (decodes any of them by tag)."""

for _group, _aggregate in (
    (AGENT_EVENTS, "agent"),
    (TASK_EVENTS, "task"),
    (MEMORY_EVENTS, "memory"),
    (SWARM_EVENTS, "swarm"),
):
    for _cls in _group:
        register_event_type(_cls, aggregate_type=_aggregate)
