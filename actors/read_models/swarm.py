"""SwarmProjection: each swarm's shape, phases, milestones, errors and end.

Swarm events carry the swarm's id as their aggregate id (``"swarm"`` unless
the factories were given ``swarm_id=``); the projection keeps one
:class:`SwarmState` per id.

=============================  ================================================
event                          effect on the swarm
=============================  ================================================
``swarm:initialized``          new state: topology, max_agents, config
``swarm:scaled``               ``agent_count`` = ``new_agent_count``, a
                               :class:`ScaleChange` in ``scale_history``
``swarm:phase-changed``        ``phase`` = ``new_phase``, a
                               :class:`PhaseChange` in ``phase_timeline``
``swarm:milestone-reached``    a :class:`Milestone` in ``milestones``
``swarm:error``                an :class:`ErrorRecord` in ``errors``
``swarm:terminated``           ``terminated``, ``termination_reason``,
                               ``metrics``, ``terminated_at``
=============================  ================================================

Events about a swarm that was never initialised are ignored; a second
``swarm:initialized`` for a known id starts that swarm afresh. ``config``,
``metrics`` and error ``context`` are the payloads' data as stored:
read-only containers, shared with the events.

One store can hold several swarms (each ``swarm_id=`` is its own
aggregate): :meth:`SwarmProjection.get_all_swarms` lists them in
initialisation order and each keeps its own state. Separate swarms that
must not share agents, tasks or memory ids belong in separate stores.
"""

from __future__ import annotations

from datetime import datetime  # noqa: TC003 - msgspec reads annotations at runtime
from typing import TYPE_CHECKING, Any

import msgspec

from swarmlog.actors.projection import Projection, handles, query
from swarmlog.schema.events import (
    SwarmError,
    SwarmInitialized,
    SwarmMilestoneReached,
    SwarmPhaseChanged,
    SwarmScaled,
    SwarmTerminated,
)
from swarmlog.schema.factories import DEFAULT_SWARM_ID
from swarmlog.schema.frozen import freeze_stored

if TYPE_CHECKING:
    from swarmlog.schema.envelope import Event

__all__ = [
    "ErrorRecord",
    "Milestone",
    "PhaseChange",
    "ScaleChange",
    "SwarmProjection",
    "SwarmState",
]

_replace = msgspec.structs.replace


class ScaleChange(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One ``swarm:scaled``: the agent count went from ``previous_agent_count``
    to ``new_agent_count`` at ``scaled_at`` because of ``reason``."""

    previous_agent_count: int
    new_agent_count: int
    reason: str
    scaled_at: datetime


class PhaseChange(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One ``swarm:phase-changed``: ``previous_phase`` -> ``new_phase`` at
    ``changed_at``."""

    previous_phase: str
    new_phase: str
    changed_at: datetime


class Milestone(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One ``swarm:milestone-reached``."""

    milestone_id: str
    name: str
    reached_at: datetime


class ErrorRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One ``swarm:error``: its message, traceback text, context data and
    instant."""

    error: str
    stack: str | None = None
    context: Any = None
    error_at: datetime


class SwarmState(msgspec.Struct, frozen=True, kw_only=True):
    """One swarm as the projection sees it.

    Attributes:
        id: The swarm's id (its events' aggregate id).
        topology: Its topology (``mesh``, ``hierarchical``, ...).
        max_agents: Its agent limit.
        config: Its configuration data.
        agent_count: The latest ``swarm:scaled`` new agent count (0 before).
        scale_history: Every scaling, in order.
        phase: The current phase, or None before the first phase change.
        phase_timeline: Every phase change, in order.
        milestones: Milestones reached, in order.
        errors: Swarm-level errors, in order.
        terminated: Whether it was terminated.
        termination_reason: Why it was terminated, or None.
        metrics: The termination's metrics data, or None.
        initialized_at: When it was initialised.
        terminated_at: When it was terminated, or None.
    """

    id: str
    topology: str
    max_agents: int
    config: Any = None
    agent_count: int = 0
    scale_history: tuple[ScaleChange, ...] = ()
    phase: str | None = None
    phase_timeline: tuple[PhaseChange, ...] = ()
    milestones: tuple[Milestone, ...] = ()
    errors: tuple[ErrorRecord, ...] = ()
    terminated: bool = False
    termination_reason: str | None = None
    metrics: Any = None
    initialized_at: datetime
    terminated_at: datetime | None = None


def _frozen(swarm: SwarmState) -> SwarmState:
    """``swarm`` with its free-form data in read-only containers."""
    errors = tuple(_replace(e, context=freeze_stored(e.context)) for e in swarm.errors)
    return _replace(
        swarm,
        config=freeze_stored(swarm.config),
        metrics=freeze_stored(swarm.metrics),
        errors=errors,
    )


class _SwarmSnapshot(msgspec.Struct, kw_only=True):
    """What SwarmProjection snapshots: swarms in initialisation order."""

    swarms: list[SwarmState]


class SwarmProjection(Projection):
    """Live read model of the swarm(s) (name ``"swarm"``).

    Start it with ``SwarmProjection(store).initialize()``; queries are
    synchronous, callable from any thread, and run on the projection's
    thread. They return frozen :class:`SwarmState` Structs (sequence fields
    are tuples) or new lists of them. Events for swarms never initialised
    are ignored.
    """

    name = "swarm"
    state_version = 1
    state_type = _SwarmSnapshot

    _swarms: dict[str, SwarmState]

    # -- state (projection thread) ----------------------------------------------

    def reset_state(self) -> None:
        """Start with no swarm."""
        self._swarms = {}

    def snapshot_state(self) -> _SwarmSnapshot:
        """The swarms in initialisation order."""
        return _SwarmSnapshot(swarms=list(self._swarms.values()))

    def restore_state(self, state: _SwarmSnapshot) -> None:
        """Load a snapshot made by :meth:`snapshot_state` (data made
        read-only again, as events deliver it)."""
        self._swarms = {swarm.id: _frozen(swarm) for swarm in state.swarms}

    # -- handlers (projection thread) ---------------------------------------------

    @handles(SwarmInitialized)
    def _on_initialized(self, event: Event[SwarmInitialized]) -> None:
        payload = event.payload
        self._swarms[event.aggregate_id] = SwarmState(
            id=event.aggregate_id,
            topology=payload.topology,
            max_agents=payload.max_agents,
            config=payload.config,
            initialized_at=payload.initialized_at,
        )

    def _put(self, swarm: SwarmState, **changes: Any) -> None:
        self._swarms[swarm.id] = _replace(swarm, **changes)

    @handles(SwarmScaled)
    def _on_scaled(self, event: Event[SwarmScaled]) -> None:
        p = event.payload
        if (swarm := self._swarms.get(event.aggregate_id)) is not None:
            change = ScaleChange(
                previous_agent_count=p.previous_agent_count,
                new_agent_count=p.new_agent_count,
                reason=p.reason,
                scaled_at=p.scaled_at,
            )
            self._put(
                swarm,
                agent_count=p.new_agent_count,
                scale_history=(*swarm.scale_history, change),
            )

    @handles(SwarmPhaseChanged)
    def _on_phase_changed(self, event: Event[SwarmPhaseChanged]) -> None:
        p = event.payload
        if (swarm := self._swarms.get(event.aggregate_id)) is not None:
            change = PhaseChange(
                previous_phase=p.previous_phase,
                new_phase=p.new_phase,
                changed_at=p.changed_at,
            )
            self._put(
                swarm, phase=p.new_phase, phase_timeline=(*swarm.phase_timeline, change)
            )

    @handles(SwarmMilestoneReached)
    def _on_milestone(self, event: Event[SwarmMilestoneReached]) -> None:
        p = event.payload
        if (swarm := self._swarms.get(event.aggregate_id)) is not None:
            milestone = Milestone(
                milestone_id=p.milestone_id, name=p.name, reached_at=p.reached_at
            )
            self._put(swarm, milestones=(*swarm.milestones, milestone))

    @handles(SwarmError)
    def _on_error(self, event: Event[SwarmError]) -> None:
        p = event.payload
        if (swarm := self._swarms.get(event.aggregate_id)) is not None:
            record = ErrorRecord(
                error=p.error, stack=p.stack, context=p.context, error_at=p.error_at
            )
            self._put(swarm, errors=(*swarm.errors, record))

    @handles(SwarmTerminated)
    def _on_terminated(self, event: Event[SwarmTerminated]) -> None:
        p = event.payload
        if (swarm := self._swarms.get(event.aggregate_id)) is not None:
            self._put(
                swarm,
                terminated=True,
                termination_reason=p.reason,
                metrics=p.metrics,
                terminated_at=p.terminated_at,
            )

    # -- queries (any thread; bodies run on the projection thread) ----------------

    @query
    def get_swarm(self, swarm_id: str = DEFAULT_SWARM_ID) -> SwarmState | None:
        """The swarm with this id (default ``"swarm"``), or None if it was
        never initialised."""
        return self._swarms.get(swarm_id)

    @query
    def get_all_swarms(self) -> list[SwarmState]:
        """Every swarm, in initialisation order."""
        return list(self._swarms.values())
