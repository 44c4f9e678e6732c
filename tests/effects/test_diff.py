"""diff_read_models: the four built-in read models of two stores, compared."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog import (
    AgentStateProjection,
    EventStore,
    FieldChange,
    InvalidQueryError,
    ModelDiff,
    ReadModelsDiff,
    StoreNotInitializedError,
    create_agent_spawned_event,
    create_agent_started_event,
    create_memory_deleted_event,
    create_memory_stored_event,
    create_swarm_initialized_event,
    create_swarm_scaled_event,
    create_task_completed_event,
    create_task_created_event,
    diff_read_models,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from swarmlog import Event

README = Path(__file__).resolve().parents[2] / "README.md"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    """A fixed instant ``seconds`` after T0 (the two sides must agree)."""
    return T0 + timedelta(seconds=seconds)


def base_events() -> list[Event[Any]]:
    """A small swarm: one swarm, two agents, two tasks, two memories."""
    return [
        create_swarm_initialized_event("mesh", 8, {"seed": 1}, timestamp=at(0)),
        create_agent_spawned_event("a1", "coder", "core", ["py"], timestamp=at(1)),
        create_agent_spawned_event("a2", "tester", "qa", timestamp=at(2)),
        create_task_created_event("t1", "code", "T1", "first", "high", timestamp=at(3)),
        create_task_created_event("t2", "test", "T2", "second", "low", timestamp=at(4)),
        create_memory_stored_event("m1", "ns", "k1", "fact", 10, timestamp=at(5)),
        create_memory_stored_event("m2", "ns", "k2", "fact", 20, timestamp=at(6)),
    ]


@pytest.fixture
def make_store(tmp_path: Path) -> Iterator[Callable[[str], EventStore]]:
    """Open stores (files in tmp_path, or ``:memory:``); shut all down after."""
    stores: list[EventStore] = []

    def make(name: str = ":memory:") -> EventStore:
        path = name if name == ":memory:" else str(tmp_path / name)
        store = EventStore(path).initialize()
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.shutdown()


def test_same_events_are_equal(make_store: Callable[[str], EventStore]) -> None:
    """Two stores with the same events: equal, falsy, nothing listed."""
    a, b = make_store(":memory:"), make_store("b.db")
    a.append_many(base_events())
    b.append_many(base_events())
    diff = diff_read_models(a, b)
    assert diff.equal
    assert not diff
    assert (diff.at_a, diff.at_b) == (7, 7)
    assert [m.name for m in diff.models] == ["agents", "tasks", "memory", "swarm"]
    assert all(m == ModelDiff(name=m.name) for m in diff.models)


def test_added_removed_and_changed_field_by_field(
    make_store: Callable[[str], EventStore],
) -> None:
    """B's extra items are added, A's extra ones removed, and items in both
    list exactly the fields that differ, with before and after."""
    a, b = make_store(":memory:"), make_store(":memory:")
    a.append_many(base_events())
    b.append_many(base_events())
    a.append(
        create_task_created_event("t3", "doc", "T3", "only A", "low", timestamp=at(7))
    )
    b.append(create_agent_spawned_event("a3", "planner", "ops", timestamp=at(7)))
    a.append(create_agent_started_event("a1", timestamp=at(8)))
    b.append(create_task_completed_event("t1", {"ok": True}, 1500, timestamp=at(9)))
    b.append(create_memory_deleted_event("m2", "ns", "k2", timestamp=at(10)))
    b.append(create_swarm_scaled_event(0, 4, "load", timestamp=at(11)))

    diff = diff_read_models(a, b)
    assert not diff.equal
    assert diff

    agents = diff.agents
    assert [item.id for item in agents.added] == ["a3"]
    assert agents.added[0].value["role"] == "planner"
    assert agents.removed == ()
    assert [change.id for change in agents.changed] == ["a1"]
    assert agents.changed[0].changes == (
        FieldChange(field="status", before="active", after="idle"),
        FieldChange(field="started_at", before="2026-03-01T12:00:08Z", after=None),
        FieldChange(
            field="last_activity_at",
            before="2026-03-01T12:00:08Z",
            after="2026-03-01T12:00:01Z",
        ),
    )

    tasks = diff.tasks
    assert tasks.added == ()
    assert [item.id for item in tasks.removed] == ["t3"]
    assert tasks.removed[0].value["description"] == "only A"
    (t1,) = tasks.changed
    fields = {c.field: (c.before, c.after) for c in t1.changes}
    assert fields == {
        "status": ("pending", "completed"),
        "completed_at": (None, "2026-03-01T12:00:09Z"),
        "duration": (None, 1500),
        "result": (None, {"ok": True}),
    }

    assert [item.id for item in diff.memory.removed] == ["m2"]
    assert diff.memory.added == diff.memory.changed == ()

    (swarm,) = diff.swarm.changed
    fields = {c.field: (c.before, c.after) for c in swarm.changes}
    assert set(fields) == {"agent_count", "scale_history"}
    assert fields["agent_count"] == (0, 4)

    # B against A is the mirror image.
    back = diff_read_models(b, a)
    assert [item.id for item in back.agents.removed] == ["a3"]
    assert [item.id for item in back.tasks.added] == ["t3"]
    assert back.agents.changed[0].changes[0] == FieldChange(
        field="status", before="idle", after="active"
    )


def test_one_store_at_two_positions(make_store: Callable[[str], EventStore]) -> None:
    """One store against itself at two positions shows what happened in
    between; equal positions are equal."""
    store = make_store("one.db")
    store.append_many(base_events())  # positions 1..7
    store.append(create_agent_started_event("a2", timestamp=at(20)))  # 8
    store.append(create_task_created_event("t9", "x", "T9", "late", "low"))  # 9

    diff = diff_read_models(store, store, at_a=7, at_b=9)
    assert (diff.at_a, diff.at_b) == (7, 9)
    assert [item.id for item in diff.tasks.added] == ["t9"]
    (a2,) = diff.agents.changed
    assert a2.id == "a2"
    assert a2.changes[0] == FieldChange(field="status", before="idle", after="active")
    assert diff.memory.equal
    assert diff.swarm.equal

    start = diff_read_models(store, store, at_a=0)
    assert start.at_a == 0
    assert [item.id for item in start.agents.added] == ["a1", "a2"]
    assert len(start.swarm.added) == 1
    assert diff_read_models(store, store, at_a=4, at_b=4).equal
    assert diff_read_models(store, store).equal


def test_live_projections_are_not_touched(
    make_store: Callable[[str], EventStore],
) -> None:
    """A running projection keeps its state and keeps following the store."""
    store = make_store(":memory:")
    live = AgentStateProjection(store).initialize()
    store.append_many(base_events())
    diff_read_models(store, store, at_a=0, at_b=2)
    assert [agent.id for agent in live.get_all_agents()] == ["a1", "a2"]
    store.append(create_agent_spawned_event("a5", "x", "y"))
    assert len(live.get_all_agents()) == 3


def test_result_is_frozen_plain_data_that_encodes_to_json(
    make_store: Callable[[str], EventStore],
) -> None:
    """The result is made of frozen structs holding plain data: it encodes to
    JSON and decodes back equal."""
    a, b = make_store(":memory:"), make_store(":memory:")
    a.append_many(base_events())
    diff = diff_read_models(a, b)
    back = msgspec.json.decode(msgspec.json.encode(diff), type=ReadModelsDiff)
    assert msgspec.to_builtins(back) == msgspec.to_builtins(diff)
    with pytest.raises(AttributeError):
        diff.at_a = 3  # type: ignore[misc]
    assert [item.id for item in diff.agents.removed] == ["a1", "a2"]


def test_values_compare_strictly(make_store: Callable[[str], EventStore]) -> None:
    """1 and 1.0 (or True) in a result are a change, as in the JSON output."""
    a, b = make_store(":memory:"), make_store(":memory:")
    for store, result in ((a, 1), (b, 1.0)):
        store.append(create_task_created_event("t", "x", "T", "d", "low", timestamp=T0))
        store.append(create_task_completed_event("t", result, 5, timestamp=T0))
    (change,) = diff_read_models(a, b).tasks.changed
    assert change.changes == (FieldChange(field="result", before=1, after=1.0),)


@pytest.mark.parametrize("bad", [-1, 99, True, "3", 1.0])
def test_positions_are_checked(
    make_store: Callable[[str], EventStore], bad: Any
) -> None:
    """A position that is not an int from 0 to the head: InvalidQueryError."""
    store = make_store(":memory:")
    store.append_many(base_events())
    with pytest.raises(InvalidQueryError, match="at_a"):
        diff_read_models(store, store, at_a=bad)
    with pytest.raises(InvalidQueryError, match="at_b"):
        diff_read_models(store, store, at_b=bad)


@pytest.mark.parametrize("other", ["x", None, 3])
def test_stores_must_be_event_stores(
    make_store: Callable[[str], EventStore], other: Any
) -> None:
    """Anything but an EventStore on either side: InvalidQueryError (a
    SwarmlogError), not an AttributeError."""
    store = make_store(":memory:")
    with pytest.raises(InvalidQueryError, match="store_b must be an EventStore"):
        diff_read_models(store, other)
    with pytest.raises(InvalidQueryError, match="store_a must be an EventStore"):
        diff_read_models(other, store)


def test_stores_must_be_open(make_store: Callable[[str], EventStore]) -> None:
    """A store not initialised raises StoreNotInitializedError."""
    with pytest.raises(StoreNotInitializedError):
        diff_read_models(make_store(":memory:"), EventStore())


def test_readme_example_runs() -> None:
    """The README's "Fork and compare" diff example runs and shows what it
    says."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Fork and compare\n")
    end = text.index("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end], flags=re.DOTALL)
    (code,) = [block for block in blocks if "diff_read_models(" in block]
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["added"] == ["task-1"]
    assert namespace["changes"] == {
        "status": ("active", "idle"),
        "started_at": ("2026-01-01T00:00:00Z", None),
    }
