"""Snapshots: highest version wins, state round trips, typed decoding, resume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog import (
    EventDecodeError,
    InvalidEventError,
    Snapshot,
    SwarmlogError,
    create_agent_status_changed_event,
)

if TYPE_CHECKING:
    from swarmlog import EventStore

T0 = datetime(2024, 6, 1, 8, 30, 15, 654321, tzinfo=UTC)


class AgentState(msgspec.Struct, frozen=True):
    """A typed aggregate state."""

    status: str
    changes: int
    history: tuple[str, ...] = ()
    seen_at: datetime | None = None


def _snap(aggregate_id: str, version: int, state: Any) -> Snapshot:
    return Snapshot(aggregate_id, "agent", version, state, T0)


def test_unknown_aggregate_has_no_snapshot(store: EventStore) -> None:
    """get_snapshot returns None when nothing was saved."""
    assert store.get_snapshot("nobody") is None


def test_save_then_get(store: EventStore) -> None:
    """A saved snapshot reads back equal, timestamp to the microsecond."""
    snapshot = _snap("a1", 3, {"status": "busy"})
    store.save_snapshot(snapshot)
    assert store.get_snapshot("a1") == snapshot


def test_highest_version_wins(store: EventStore) -> None:
    """A higher version replaces; a lower one never does."""
    store.save_snapshot(_snap("a1", 5, {"v": 5}))
    store.save_snapshot(_snap("a1", 3, {"v": 3}))
    assert store.get_snapshot("a1") == _snap("a1", 5, {"v": 5})
    store.save_snapshot(_snap("a1", 8, {"v": 8}))
    store.save_snapshot(_snap("a1", 7, {"v": 7}))
    assert store.get_snapshot("a1") == _snap("a1", 8, {"v": 8})


def test_snapshots_are_per_aggregate(store: EventStore) -> None:
    """One aggregate's snapshot does not affect another's."""
    store.save_snapshot(_snap("a1", 9, "one"))
    store.save_snapshot(_snap("a2", 1, "two"))
    assert store.get_snapshot("a1").state == "one"  # type: ignore[union-attr]
    assert store.get_snapshot("a2").state == "two"  # type: ignore[union-attr]


JSON_STATES: list[Any] = [
    {"status": "busy", "tasks": ["t1", "t2"], "load": 0.75, "ok": True, "n": None},
    {"nested": {"deep": [{"x": [1, [2, [3]]]}]}, "empty": {}, "none": []},
    {"unicode": "ünïcødé ✓ 🐝", "big": 2**62, "neg": -(2**40), "f": -1.5e-300},
    [1, "two", 3.0, None, False],
    "just a string",
    42,
    None,
]


@pytest.mark.parametrize("state", JSON_STATES, ids=range(len(JSON_STATES)))
def test_json_like_state_round_trips(store: EventStore, state: Any) -> None:
    """Any JSON-like state reads back equal."""
    store.save_snapshot(_snap("a1", 1, state))
    snapshot = store.get_snapshot("a1")
    assert snapshot is not None
    assert snapshot.state == state


def test_struct_state_decodes_with_type(store: EventStore) -> None:
    """A Struct state comes back as that Struct with type=, as plain data
    without."""
    state = AgentState("busy", 3, ("idle", "busy"), T0)
    store.save_snapshot(_snap("a1", 3, state))
    typed = store.get_snapshot("a1", type=AgentState)
    assert typed is not None
    assert typed.state == state
    plain = store.get_snapshot("a1")
    assert plain is not None
    assert plain.state["status"] == "busy"
    assert plain.state["history"] == ["idle", "busy"]


def test_plain_state_decodes_into_a_type(store: EventStore) -> None:
    """A dict saved earlier can be read as a Struct with matching fields."""
    store.save_snapshot(_snap("a1", 2, {"status": "idle", "changes": 2}))
    snapshot = store.get_snapshot("a1", type=AgentState)
    assert snapshot is not None
    assert snapshot.state == AgentState("idle", 2)


def test_state_of_the_wrong_shape_is_a_decode_error(store: EventStore) -> None:
    """Decoding into a type the state does not fit raises EventDecodeError."""
    store.save_snapshot(_snap("a1", 2, {"status": 7}))
    with pytest.raises(EventDecodeError):
        store.get_snapshot("a1", type=AgentState)


def _fold(events: list[Any], state: AgentState | None = None) -> AgentState:
    state = state or AgentState("new", 0)
    for event in events:
        state = AgentState(
            event.payload.new_status,
            state.changes + 1,
            (*state.history, event.payload.new_status),
        )
    return state


def test_resume_from_snapshot_plus_one(store: EventStore) -> None:
    """State from a snapshot at version v plus get_events(from_version=v + 1)
    equals folding every event."""
    statuses = ["idle", "busy", "idle", "busy", "done", "idle", "gone"]
    previous = "new"
    for status in statuses:
        store.append(create_agent_status_changed_event("a1", previous, status))
        previous = status
    at_five = _fold(store.get_events("a1")[:5])
    store.save_snapshot(_snap("a1", 5, at_five))
    snapshot = store.get_snapshot("a1", type=AgentState)
    assert snapshot is not None
    rest = store.get_events("a1", from_version=snapshot.version + 1)
    assert [e.version for e in rest] == [6, 7]
    assert _fold(rest, snapshot.state) == _fold(store.get_events("a1"))


def test_snapshot_needs_no_events(store: EventStore) -> None:
    """Saving a snapshot does not append events or move the head."""
    store.save_snapshot(_snap("a1", 4, {}))
    assert store.head_position == 0
    assert store.get_events("a1") == []


NAIVE = datetime(2024, 6, 1)

INVALID_SNAPSHOTS: list[Any] = [
    Snapshot("a1", "agent", 1, {}, NAIVE),
    Snapshot("a1", "agent", 1, {}, T0 + timedelta(0)).__class__(
        "a1", "agent", -1, {}, T0
    ),
    Snapshot("a1", "agent", 1, {"x": object()}, T0),
    Snapshot("", "agent", 1, {}, T0),
    Snapshot("a1", "agent", "1", {}, T0),  # type: ignore[arg-type]
    {"aggregate_id": "a1", "version": 1},
]


@pytest.mark.parametrize(
    "snapshot", INVALID_SNAPSHOTS, ids=range(len(INVALID_SNAPSHOTS))
)
def test_invalid_snapshots_are_rejected(store: EventStore, snapshot: Any) -> None:
    """A malformed snapshot raises a typed error and saves nothing."""
    with pytest.raises(SwarmlogError) as info:
        store.save_snapshot(snapshot)
    assert isinstance(info.value, InvalidEventError)
    assert store.get_snapshot("a1") is None
    assert store.get_stats().snapshot_count == 0


def test_get_snapshot_rejects_a_non_string_id(store: EventStore) -> None:
    """A wrongly typed aggregate id is a typed error."""
    with pytest.raises(SwarmlogError):
        store.get_snapshot(1)  # type: ignore[arg-type]


def test_a_snapshot_version_beyond_sqlite_range_is_refused_alone(
    store: EventStore,
) -> None:
    """A snapshot version SQLite cannot store raises InvalidEventError for
    that call only; appends and snapshots go on."""
    with pytest.raises(InvalidEventError):
        store.save_snapshot(_snap("a1", 2**63, {}))
    assert store.append(create_agent_status_changed_event("a1", "x", "y")).version == 1
    store.save_snapshot(_snap("a1", 1, {"ok": True}))
    assert store.get_snapshot("a1") == _snap("a1", 1, {"ok": True})
