"""One store holding several swarm aggregates: the swarm read model keeps
one state per swarm through live updates, catch-up, snapshots and time
travel; the other read models are not namespaced by swarm."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog.actors.read_models import SwarmProjection
from swarmlog.schema.factories import (
    create_agent_spawned_event,
    create_swarm_error_event,
    create_swarm_initialized_event,
    create_swarm_milestone_reached_event,
    create_swarm_phase_changed_event,
    create_swarm_scaled_event,
    create_swarm_terminated_event,
)
from swarmlog.store import EventStore

if TYPE_CHECKING:
    from pathlib import Path

    from swarmlog.schema.envelope import Event

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """The instant ``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


def interleaved() -> list[Event[Any]]:
    """Three swarms (two named, one default) whose events interleave."""
    return [
        create_swarm_initialized_event(
            "mesh", 5, {"n": 1}, swarm_id="a", timestamp=at(0)
        ),
        create_swarm_initialized_event("star", 3, None, swarm_id="b", timestamp=at(1)),
        create_swarm_scaled_event(0, 4, "go", swarm_id="a", timestamp=at(2)),
        create_swarm_initialized_event("ring", 2, None, timestamp=at(3)),
        create_swarm_scaled_event(0, 2, "go", swarm_id="b", timestamp=at(4)),
        create_swarm_phase_changed_event("init", "run", swarm_id="b", timestamp=at(5)),
        create_swarm_milestone_reached_event(
            "m1", "half", swarm_id="a", timestamp=at(6)
        ),
        create_swarm_error_event("oops", {"k": [1]}, swarm_id="b", timestamp=at(7)),
        create_swarm_scaled_event(4, 1, "shrink", swarm_id="a", timestamp=at(8)),
        create_swarm_terminated_event(
            "done", {"ok": True}, swarm_id="b", timestamp=at(9)
        ),
    ]


def summary(swarm: SwarmProjection) -> Any:
    return msgspec.to_builtins(swarm.get_all_swarms())


def check(swarm: SwarmProjection) -> None:
    """Each swarm has only its own events' effects."""
    listed = swarm.get_all_swarms()
    assert [s.id for s in listed] == ["a", "b", "swarm"]
    a, b, default = listed
    assert swarm.get_swarm("a") == a
    assert swarm.get_swarm() == default
    assert (a.topology, a.agent_count, a.phase, a.terminated) == (
        "mesh",
        1,
        None,
        False,
    )
    assert [c.new_agent_count for c in a.scale_history] == [4, 1]
    assert [m.name for m in a.milestones] == ["half"]
    assert (a.errors, a.config) == ((), {"n": 1})
    assert (b.topology, b.agent_count, b.phase, b.terminated) == (
        "star",
        2,
        "run",
        True,
    )
    assert [e.error for e in b.errors] == ["oops"]
    assert b.metrics == {"ok": True}
    assert (default.topology, default.agent_count, default.scale_history) == (
        "ring",
        0,
        (),
    )


def test_live(tmp_path: Path) -> None:
    """Appended live, interleaved, each swarm keeps its own state."""
    with EventStore(tmp_path / "s.db") as store:
        swarm = SwarmProjection(store).initialize()
        for event in interleaved():
            store.append(event)
        check(swarm)
        assert [e.type for e in store.get_events("a")] == [
            "swarm:initialized",
            "swarm:scaled",
            "swarm:milestone-reached",
            "swarm:scaled",
        ]


@pytest.mark.parametrize("snapshot_every", [0, 3])
def test_catch_up_and_restart(tmp_path: Path, snapshot_every: int) -> None:
    """Caught up from the log, or resumed from a snapshot after a restart,
    the swarms are the same."""
    path = tmp_path / "s.db"
    with EventStore(path) as store:
        if snapshot_every:
            SwarmProjection(store, snapshot_every=snapshot_every).initialize()
        for event in interleaved():
            store.append(event)
    with EventStore(path) as store:
        swarm = SwarmProjection(store).initialize()
        check(swarm)
        assert swarm.get_status().events_handled == (0 if snapshot_every else 10)


def test_time_travel(tmp_path: Path) -> None:
    """as_of a position in the middle shows each swarm as it was then."""
    with EventStore(tmp_path / "s.db") as store:
        for event in interleaved():
            store.append(event)
        middle = SwarmProjection.as_of(store, 5)
        assert [(s.id, s.agent_count, s.phase) for s in middle.get_all_swarms()] == [
            ("a", 4, None),
            ("b", 2, None),
            ("swarm", 0, None),
        ]
        check(SwarmProjection.as_of(store, store.head_position))


def test_agent_ids_are_shared_by_the_swarms_of_one_store(tmp_path: Path) -> None:
    """Aggregate ids are not namespaced: the same agent id in two swarms of
    one store is one agent (hence one store per swarm, or prefixed ids)."""
    with EventStore(tmp_path / "s.db") as store:
        store.append(create_agent_spawned_event("agent-1", "coder", "a"))
        store.append(create_agent_spawned_event("agent-1", "tester", "b"))
        assert [e.version for e in store.get_events("agent-1")] == [1, 2]
