"""A projection's settings and progress, as plain values.

``ProjectionOptions`` is fixed when a projection is built (any thread reads
it). ``ProjectionProgress`` is written only by the projection's actor thread,
or while no actor of it runs (a reset by the projection host, a time-travel
copy being built); any thread reads it. ``DeadLetter`` and
``ProjectionStatus`` are what users see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import msgspec

if TYPE_CHECKING:
    from swarmlog.schema.envelope import Event
    from swarmlog.schema.errors import ProjectionFailedError

__all__ = [
    "POLICIES",
    "Consistency",
    "DeadLetter",
    "FailurePolicy",
    "ProjectionOptions",
    "ProjectionProgress",
    "ProjectionStatus",
]

FailurePolicy = Literal["retry-then-stop", "retry-then-skip", "skip"]
Consistency = Literal["strong", "eventual"]
POLICIES = ("retry-then-stop", "retry-then-skip", "skip")


class DeadLetter(msgspec.Struct, frozen=True):
    """An event a projection skipped because its handler kept failing.

    Attributes:
        projection: The projection's name.
        position: The event's position.
        event_type: The event's type.
        error: The handler's error, as text.
    """

    projection: str
    position: int
    event_type: str
    error: str


class ProjectionStatus(msgspec.Struct, frozen=True):
    """A projection's progress, as shown by ``EventStore.get_stats()``.

    Attributes:
        name: The projection's name.
        status: ``catching-up``, ``live``, ``failed`` or ``stopped``.
        position: The last position it applied.
        lag: Committed head minus ``position``.
        events_handled: Events applied since it started.
        snapshot_position: Position of its latest stored snapshot.
        dead_letters: Number of skipped events.
    """

    name: str
    status: str
    position: int
    lag: int
    events_handled: int
    snapshot_position: int
    dead_letters: int


class ProjectionOptions(msgspec.Struct, frozen=True):
    """How a projection runs (see :class:`~swarmlog.Projection`'s
    arguments); immutable once it is built."""

    consistency: Consistency = "strong"
    on_failure: FailurePolicy = "retry-then-stop"
    max_retries: int = 3
    retry_backoff: float = 0.05
    query_timeout: float = 30.0
    snapshot_every: int | None = None


class ProjectionProgress:
    """How far a projection got (see the module docstring for who writes)."""

    __slots__ = (
        "dead_letters",
        "events_handled",
        "failure",
        "position",
        "snapshot_position",
        "status",
    )

    def __init__(self) -> None:
        self.status = "stopped"
        self.position = 0
        self.events_handled = 0
        self.snapshot_position = 0
        self.failure: ProjectionFailedError | None = None
        self.dead_letters: tuple[tuple[DeadLetter, Event[Any]], ...] = ()
