"""Event factories: :func:`create_event` and one ``create_*_event`` per type.

The factories mirror the reference design's ``createXxxEvent`` helpers in
snake_case. Each builds the payload, stamps the instant fields with
``timestamp`` (default: now, UTC) and wraps the payload in an :class:`Event`
envelope with a fresh time-ordered id. Every factory also takes the
keyword-only envelope options ``metadata``, ``causation_id``,
``correlation_id``, ``caused_by``, ``source`` and ``timestamp`` (a
simulation passes its simulated clock there).

The factories check what the payload types cannot: a ``str`` where a
sequence of ids is expected (``capabilities="coding"`` would become
``("c", "o", ...)``) and negative durations, sizes and counts raise
:class:`~swarmlog.schema.errors.InvalidEventError`.
"""

from __future__ import annotations

import traceback
import uuid
from typing import TYPE_CHECKING, Any

from swarmlog.schema.envelope import Event
from swarmlog.schema.errors import InvalidEventError, UnknownEventTypeError
from swarmlog.schema.events import (
    AgentFailed,
    AgentSpawned,
    AgentStarted,
    AgentStatusChanged,
    AgentStopped,
    AgentTaskAssigned,
    AgentTaskCompleted,
    MemoryDeleted,
    MemoryExpired,
    MemoryRetrieved,
    MemoryStored,
    SwarmError,
    SwarmInitialized,
    SwarmMilestoneReached,
    SwarmPhaseChanged,
    SwarmScaled,
    SwarmTerminated,
    TaskBlocked,
    TaskCompleted,
    TaskCreated,
    TaskFailed,
    TaskQueued,
    TaskStarted,
)
from swarmlog.schema.registry import info_for_class
from swarmlog.schema.timeutil import check_utc, utc_now, uuid7

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    import msgspec

__all__ = [
    "DEFAULT_SWARM_ID",
    "create_agent_failed_event",
    "create_agent_spawned_event",
    "create_agent_started_event",
    "create_agent_status_changed_event",
    "create_agent_stopped_event",
    "create_agent_task_assigned_event",
    "create_agent_task_completed_event",
    "create_event",
    "create_memory_deleted_event",
    "create_memory_expired_event",
    "create_memory_retrieved_event",
    "create_memory_stored_event",
    "create_swarm_error_event",
    "create_swarm_initialized_event",
    "create_swarm_milestone_reached_event",
    "create_swarm_phase_changed_event",
    "create_swarm_scaled_event",
    "create_swarm_terminated_event",
    "create_task_blocked_event",
    "create_task_completed_event",
    "create_task_created_event",
    "create_task_failed_event",
    "create_task_queued_event",
    "create_task_started_event",
]

DEFAULT_SWARM_ID = "swarm"
"""The aggregate id of swarm events unless ``swarm_id=`` says otherwise."""


def create_event(
    payload: msgspec.Struct,
    aggregate_id: str,
    *,
    metadata: dict[str, Any] | None = None,
    causation_id: str | uuid.UUID | None = None,
    correlation_id: str | uuid.UUID | None = None,
    caused_by: Event[Any] | None = None,
    source: str = "swarm",
    timestamp: datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> Event[Any]:
    """Wrap a registered payload in a new, not yet stored :class:`Event`.

    Safe from any thread. ``version`` and ``position`` stay 0 until
    :meth:`EventStore.append` stores the event.

    Args:
        payload: An instance of a registered payload class.
        aggregate_id: The aggregate (stream) the event belongs to.
        metadata: JSON-like extra data.
        causation_id: Id of what caused this event (a UUID or a string;
            stored and read back as the string).
        correlation_id: Id shared by related events (likewise).
        caused_by: The event that caused this one: ``causation_id``
            becomes its id and ``correlation_id`` its correlation id (its
            id when it has none), unless given explicitly.
        source: Who emitted it.
        timestamp: The event's instant (timezone-aware UTC); default now.
        event_id: A caller-chosen id (for idempotent retries); default a new
            UUIDv7.

    Raises:
        UnknownEventTypeError: The payload's class is not registered.
        InvalidEventError: ``timestamp`` is naive or not UTC, an id is
            neither a UUID nor a string, or ``caused_by`` is not an Event.
    """
    info = info_for_class(type(payload))
    if info is None:
        raise UnknownEventTypeError(type(payload).__name__)
    if caused_by is not None:
        if not isinstance(caused_by, Event):
            msg = f"caused_by must be an Event, got {type(caused_by).__name__}"
            raise InvalidEventError(msg)
        if causation_id is None:
            causation_id = caused_by.id
        if correlation_id is None:
            correlation_id = caused_by.correlation_id or caused_by.id
    if timestamp is None:
        timestamp = utc_now()
    else:
        check_utc(timestamp, "timestamp")
    return Event(
        id=uuid7() if event_id is None else event_id,
        type=info.type,
        aggregate_id=aggregate_id,
        aggregate_type=info.aggregate_type,
        payload=payload,
        timestamp=timestamp,
        source=source,
        metadata={} if metadata is None else metadata,
        causation_id=_id_text(causation_id, "causation_id"),
        correlation_id=_id_text(correlation_id, "correlation_id"),
        schema_version=info.schema_version,
    )


def _id_text(value: object, name: str) -> str | None:
    """A causation or correlation id as stored: the canonical string."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        return str.__str__(value)
    msg = f"{name} must be a UUID or a string, got {type(value).__name__}"
    raise InvalidEventError(msg)


def _ids(values: Iterable[str], name: str) -> tuple[str, ...]:
    """A sequence of ids as a tuple; a lone string is refused (it would
    become one id per character)."""
    if isinstance(values, (str, bytes, bytearray)):
        msg = (
            f"{name} must be a sequence of strings, got the string {values!r} "
            f"(write [{values!r}] for one)"
        )
        raise InvalidEventError(msg)
    try:
        return tuple(values)
    except TypeError as e:
        msg = f"{name} must be a sequence of strings, got {type(values).__name__}"
        raise InvalidEventError(msg) from e


def _not_negative(value: Any, name: str) -> Any:
    """``value`` unless it is a negative number (a duration, size or count)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        msg = f"{name} must not be negative, got {value!r}"
        raise InvalidEventError(msg)
    return value


def _error_text(error: BaseException | str) -> tuple[str, str | None]:
    """Message and traceback text of an exception (or a plain message)."""
    if isinstance(error, BaseException):
        message = str(error) or type(error).__name__
        stack = "".join(traceback.format_exception(error))
        return message, stack
    if isinstance(error, str):
        return error, None
    msg = f"error must be an exception or a string, got {type(error).__name__}"
    raise InvalidEventError(msg)


def _now(timestamp: datetime | None) -> datetime:
    return utc_now() if timestamp is None else check_utc(timestamp, "timestamp")


# -- agent -------------------------------------------------------------------


def create_agent_spawned_event(
    agent_id: str,
    role: str,
    domain: str,
    capabilities: Iterable[str] = (),
    **envelope: Any,
) -> Event[Any]:
    """``agent:spawned``: an agent was created."""
    payload = AgentSpawned(
        agent_id=agent_id,
        role=role,
        domain=domain,
        capabilities=_ids(capabilities, "capabilities"),
    )
    return create_event(payload, agent_id, **envelope)


def create_agent_started_event(agent_id: str, **envelope: Any) -> Event[Any]:
    """``agent:started``: an agent began working."""
    at = _now(envelope.pop("timestamp", None))
    payload = AgentStarted(agent_id=agent_id, started_at=at)
    return create_event(payload, agent_id, timestamp=at, **envelope)


def create_agent_stopped_event(
    agent_id: str, reason: str, **envelope: Any
) -> Event[Any]:
    """``agent:stopped``: an agent finished."""
    at = _now(envelope.pop("timestamp", None))
    payload = AgentStopped(agent_id=agent_id, reason=reason, stopped_at=at)
    return create_event(payload, agent_id, timestamp=at, **envelope)


def create_agent_failed_event(
    agent_id: str, error: BaseException | str, **envelope: Any
) -> Event[Any]:
    """``agent:failed``: an agent hit ``error`` (an exception keeps its
    message and traceback text)."""
    at = _now(envelope.pop("timestamp", None))
    message, stack = _error_text(error)
    payload = AgentFailed(agent_id=agent_id, error=message, stack=stack, failed_at=at)
    return create_event(payload, agent_id, timestamp=at, **envelope)


def create_agent_status_changed_event(
    agent_id: str, previous_status: str, new_status: str, **envelope: Any
) -> Event[Any]:
    """``agent:status-changed``: an agent's status was set explicitly."""
    payload = AgentStatusChanged(
        agent_id=agent_id, previous_status=previous_status, new_status=new_status
    )
    return create_event(payload, agent_id, **envelope)


def create_agent_task_assigned_event(
    agent_id: str, task_id: str, assigned_at: datetime | None = None, **envelope: Any
) -> Event[Any]:
    """``agent:task-assigned``: ``task_id`` was assigned to the agent."""
    at = _now(envelope.pop("timestamp", None))
    when = at if assigned_at is None else assigned_at
    payload = AgentTaskAssigned(agent_id=agent_id, task_id=task_id, assigned_at=when)
    return create_event(payload, agent_id, timestamp=at, **envelope)


def create_agent_task_completed_event(
    agent_id: str,
    task_id: str,
    result: Any,
    completed_at: datetime,
    duration: int,
    **envelope: Any,
) -> Event[Any]:
    """``agent:task-completed``: the agent finished ``task_id`` in
    ``duration`` milliseconds."""
    payload = AgentTaskCompleted(
        agent_id=agent_id,
        task_id=task_id,
        result=result,
        completed_at=completed_at,
        duration=_not_negative(duration, "duration"),
    )
    return create_event(payload, agent_id, **envelope)


# -- task --------------------------------------------------------------------


def create_task_created_event(
    task_id: str,
    task_type: str,
    title: str,
    description: str,
    priority: str,
    dependencies: Iterable[str] = (),
    **envelope: Any,
) -> Event[Any]:
    """``task:created``: a new task."""
    payload = TaskCreated(
        task_id=task_id,
        task_type=task_type,
        title=title,
        description=description,
        priority=priority,
        dependencies=_ids(dependencies, "dependencies"),
    )
    return create_event(payload, task_id, **envelope)


def create_task_started_event(
    task_id: str, agent_id: str, **envelope: Any
) -> Event[Any]:
    """``task:started``: ``agent_id`` began the task."""
    at = _now(envelope.pop("timestamp", None))
    payload = TaskStarted(task_id=task_id, agent_id=agent_id, started_at=at)
    return create_event(payload, task_id, timestamp=at, **envelope)


def create_task_completed_event(
    task_id: str, result: Any, duration: int | None = None, **envelope: Any
) -> Event[Any]:
    """``task:completed``: the task succeeded (``duration`` in ms, optional)."""
    at = _now(envelope.pop("timestamp", None))
    payload = TaskCompleted(
        task_id=task_id,
        result=result,
        completed_at=at,
        duration=_not_negative(duration, "duration"),
    )
    return create_event(payload, task_id, timestamp=at, **envelope)


def create_task_failed_event(
    task_id: str, error: BaseException | str, retry_count: int = 0, **envelope: Any
) -> Event[Any]:
    """``task:failed``: the task failed with ``error`` after ``retry_count``
    retries."""
    at = _now(envelope.pop("timestamp", None))
    message, stack = _error_text(error)
    payload = TaskFailed(
        task_id=task_id,
        error=message,
        stack=stack,
        failed_at=at,
        retry_count=_not_negative(retry_count, "retry_count"),
    )
    return create_event(payload, task_id, timestamp=at, **envelope)


def create_task_blocked_event(
    task_id: str, blocked_by: Iterable[str], **envelope: Any
) -> Event[Any]:
    """``task:blocked``: the task waits on ``blocked_by``."""
    at = _now(envelope.pop("timestamp", None))
    payload = TaskBlocked(
        task_id=task_id, blocked_by=_ids(blocked_by, "blocked_by"), blocked_at=at
    )
    return create_event(payload, task_id, timestamp=at, **envelope)


def create_task_queued_event(
    task_id: str, priority: str, **envelope: Any
) -> Event[Any]:
    """``task:queued``: the task was queued."""
    at = _now(envelope.pop("timestamp", None))
    payload = TaskQueued(task_id=task_id, priority=priority, queued_at=at)
    return create_event(payload, task_id, timestamp=at, **envelope)


# -- memory ------------------------------------------------------------------


def create_memory_stored_event(
    memory_id: str,
    namespace: str,
    key: str,
    memory_type: str,
    size: int,
    **envelope: Any,
) -> Event[Any]:
    """``memory:stored``: an entry of ``size`` bytes was saved."""
    at = _now(envelope.pop("timestamp", None))
    payload = MemoryStored(
        memory_id=memory_id,
        namespace=namespace,
        key=key,
        memory_type=memory_type,
        size=_not_negative(size, "size"),
        stored_at=at,
    )
    return create_event(payload, memory_id, timestamp=at, **envelope)


def create_memory_retrieved_event(
    memory_id: str,
    namespace: str,
    key: str,
    access_count: int | None = None,
    **envelope: Any,
) -> Event[Any]:
    """``memory:retrieved``: the entry was read.

    ``access_count`` (optional) is the caller's own count of reads of the
    entry, stored for auditing; the memory read model counts the
    ``memory:retrieved`` events itself.
    """
    at = _now(envelope.pop("timestamp", None))
    payload = MemoryRetrieved(
        memory_id=memory_id,
        namespace=namespace,
        key=key,
        retrieved_at=at,
        access_count=_not_negative(access_count, "access_count"),
    )
    return create_event(payload, memory_id, timestamp=at, **envelope)


def create_memory_deleted_event(
    memory_id: str, namespace: str, key: str, **envelope: Any
) -> Event[Any]:
    """``memory:deleted``: the entry was removed."""
    at = _now(envelope.pop("timestamp", None))
    payload = MemoryDeleted(
        memory_id=memory_id, namespace=namespace, key=key, deleted_at=at
    )
    return create_event(payload, memory_id, timestamp=at, **envelope)


def create_memory_expired_event(
    memory_id: str, namespace: str, key: str, expires_at: datetime, **envelope: Any
) -> Event[Any]:
    """``memory:expired``: the entry, due at ``expires_at``, expired."""
    at = _now(envelope.pop("timestamp", None))
    payload = MemoryExpired(
        memory_id=memory_id,
        namespace=namespace,
        key=key,
        expired_at=at,
        expires_at=expires_at,
    )
    return create_event(payload, memory_id, timestamp=at, **envelope)


# -- swarm -------------------------------------------------------------------


def _swarm_event(payload: msgspec.Struct, envelope: dict[str, Any]) -> Event[Any]:
    swarm_id = envelope.pop("swarm_id", DEFAULT_SWARM_ID)
    return create_event(payload, swarm_id, **envelope)


def create_swarm_initialized_event(
    topology: str, max_agents: int, config: Any, **envelope: Any
) -> Event[Any]:
    """``swarm:initialized``: the swarm started."""
    at = _now(envelope.pop("timestamp", None))
    payload = SwarmInitialized(
        topology=topology,
        max_agents=_not_negative(max_agents, "max_agents"),
        config=config,
        initialized_at=at,
    )
    return _swarm_event(payload, {"timestamp": at, **envelope})


def create_swarm_scaled_event(
    previous_agent_count: int, new_agent_count: int, reason: str, **envelope: Any
) -> Event[Any]:
    """``swarm:scaled``: the agent count changed."""
    at = _now(envelope.pop("timestamp", None))
    payload = SwarmScaled(
        previous_agent_count=_not_negative(
            previous_agent_count, "previous_agent_count"
        ),
        new_agent_count=_not_negative(new_agent_count, "new_agent_count"),
        reason=reason,
        scaled_at=at,
    )
    return _swarm_event(payload, {"timestamp": at, **envelope})


def create_swarm_terminated_event(
    reason: str, metrics: Any, **envelope: Any
) -> Event[Any]:
    """``swarm:terminated``: the swarm shut down."""
    at = _now(envelope.pop("timestamp", None))
    payload = SwarmTerminated(reason=reason, metrics=metrics, terminated_at=at)
    return _swarm_event(payload, {"timestamp": at, **envelope})


def create_swarm_phase_changed_event(
    previous_phase: str, new_phase: str, **envelope: Any
) -> Event[Any]:
    """``swarm:phase-changed``: the swarm entered ``new_phase``."""
    at = _now(envelope.pop("timestamp", None))
    payload = SwarmPhaseChanged(
        previous_phase=previous_phase, new_phase=new_phase, changed_at=at
    )
    return _swarm_event(payload, {"timestamp": at, **envelope})


def create_swarm_milestone_reached_event(
    milestone_id: str, name: str, **envelope: Any
) -> Event[Any]:
    """``swarm:milestone-reached``: a milestone was reached."""
    at = _now(envelope.pop("timestamp", None))
    payload = SwarmMilestoneReached(milestone_id=milestone_id, name=name, reached_at=at)
    return _swarm_event(payload, {"timestamp": at, **envelope})


def create_swarm_error_event(
    error: BaseException | str, context: Any, **envelope: Any
) -> Event[Any]:
    """``swarm:error``: a swarm-level error (an exception keeps its
    traceback text)."""
    at = _now(envelope.pop("timestamp", None))
    message, stack = _error_text(error)
    payload = SwarmError(error=message, stack=stack, context=context, error_at=at)
    return _swarm_event(payload, {"timestamp": at, **envelope})
