"""Read models and events cannot be changed into shared state: every query
result of the four built-in read models, after live updates and after a
restart from a snapshot, and the events projections and listeners share."""

from __future__ import annotations

import copy
import pickle
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
import pytest

from swarmlog.actors.projection import Projection, handles
from swarmlog.actors.read_models import (
    AgentStateProjection,
    MemoryIndexProjection,
    SwarmProjection,
    TaskHistoryProjection,
)
from swarmlog.schema.errors import ReadOnlyDataError
from swarmlog.schema.events import TaskCompleted
from swarmlog.schema.factories import (
    create_agent_spawned_event,
    create_agent_started_event,
    create_agent_task_assigned_event,
    create_agent_task_completed_event,
    create_memory_retrieved_event,
    create_memory_stored_event,
    create_swarm_error_event,
    create_swarm_initialized_event,
    create_swarm_phase_changed_event,
    create_swarm_scaled_event,
    create_swarm_terminated_event,
    create_task_completed_event,
    create_task_created_event,
    create_task_failed_event,
    create_task_started_event,
)
from swarmlog.schema.frozen import FrozenDict, FrozenList
from swarmlog.store import EventStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from swarmlog.schema.envelope import Event

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)


def at(seconds: float) -> datetime:
    """The instant ``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


NESTED = {"items": [1, {"deep": [True, None]}], "score": 0.5, "tags": ["a", "b"]}


def scenario() -> list[Event[Any]]:
    """Events feeding all four read models, with nested free-form data."""
    return [
        create_agent_spawned_event("a1", "coder", "core", ["py"], timestamp=at(0)),
        create_agent_started_event("a1", timestamp=at(1)),
        create_task_created_event("t1", "code", "T1", "d", "high", timestamp=at(2)),
        create_task_created_event("t2", "code", "T2", "d", "low", timestamp=at(2)),
        create_agent_task_assigned_event("a1", "t1", timestamp=at(3)),
        create_task_started_event("t1", "a1", timestamp=at(3)),
        create_agent_task_completed_event("a1", "t1", NESTED, at(4), 1000),
        create_task_completed_event("t1", NESTED, 1000, timestamp=at(4)),
        create_task_started_event("t2", "a1", timestamp=at(5)),
        create_task_failed_event("t2", "boom", 1, timestamp=at(6)),
        create_memory_stored_event("m1", "ns", "k", "json", 10, timestamp=at(7)),
        create_memory_retrieved_event("m1", "ns", "k", timestamp=at(8)),
        create_swarm_initialized_event("mesh", 4, NESTED, timestamp=at(9)),
        create_swarm_scaled_event(0, 2, "start", timestamp=at(10)),
        create_swarm_phase_changed_event("init", "run", timestamp=at(11)),
        create_swarm_error_event("e", NESTED, timestamp=at(12)),
        create_swarm_terminated_event("done", NESTED, timestamp=at(13)),
    ]


QUERIES: dict[type[Projection], dict[str, Callable[[Any], Any]]] = {
    AgentStateProjection: {
        "get_agent": lambda p: p.get_agent("a1"),
        "get_all_agents": lambda p: p.get_all_agents(),
        "get_agents_by_status": lambda p: p.get_agents_by_status("active"),
        "get_agents_by_domain": lambda p: p.get_agents_by_domain("core"),
        "get_agents_by_role": lambda p: p.get_agents_by_role("coder"),
        "get_active_agent_count": lambda p: p.get_active_agent_count(),
        "get_average_task_duration": lambda p: p.get_average_task_duration("a1"),
        "get_agent_health": lambda p: p.get_agent_health("a1", now=LATER),
        "get_unhealthy_agents": lambda p: p.get_unhealthy_agents(
            timedelta(seconds=1), now=LATER
        ),
    },
    TaskHistoryProjection: {
        "get_task": lambda p: p.get_task("t1"),
        "get_all_tasks": lambda p: p.get_all_tasks(),
        "get_tasks_by_status": lambda p: p.get_tasks_by_status("completed"),
        "get_tasks_by_agent": lambda p: p.get_tasks_by_agent("a1"),
        "get_tasks_by_type": lambda p: p.get_tasks_by_type("code"),
        "get_completed_task_count": lambda p: p.get_completed_task_count(),
        "get_average_task_duration": lambda p: p.get_average_task_duration(),
        "get_success_rate": lambda p: p.get_success_rate(),
        "get_failure_rate": lambda p: p.get_failure_rate(),
    },
    MemoryIndexProjection: {
        "get_memory": lambda p: p.get_memory("m1"),
        "get_active_memories": lambda p: p.get_active_memories(),
        "get_memories_by_namespace": lambda p: p.get_memories_by_namespace("ns"),
        "get_most_accessed_memories": lambda p: p.get_most_accessed_memories(),
        "get_total_size_by_namespace": lambda p: p.get_total_size_by_namespace("ns"),
        "get_total_memory_size": lambda p: p.get_total_memory_size(),
        "get_namespace_usage": lambda p: p.get_namespace_usage(),
        "get_hot_memories": lambda p: p.get_hot_memories(now=LATER),
        "get_cold_memories": lambda p: p.get_cold_memories(
            timedelta(seconds=1), now=LATER
        ),
    },
    SwarmProjection: {
        "get_swarm": lambda p: p.get_swarm(),
        "get_all_swarms": lambda p: p.get_all_swarms(),
    },
}
MODELS = list(QUERIES)


def _walk(value: Any) -> Iterator[Any]:
    """``value`` and everything inside it, Struct fields included."""
    yield value
    if isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            yield from _walk(getattr(value, name))
    elif isinstance(value, list | tuple):
        for item in list(value):
            yield from _walk(item)
    elif isinstance(value, dict):
        for item in list(value.values()):
            yield from _walk(item)


_DICT_CHANGES: list[Callable[[dict[str, Any]], Any]] = [
    lambda d: d.__setitem__("x", 1),
    lambda d: d.__delitem__(next(iter(d))),
    lambda d: d.update(x=1),
    lambda d: d.setdefault("x", 1),
    lambda d: d.pop(next(iter(d))),
    lambda d: d.popitem(),
    lambda d: d.clear(),
    lambda d: d.__ior__({"x": 1}),
]
_LIST_CHANGES: list[Callable[[list[Any]], Any]] = [
    lambda v: v.__setitem__(0, 1),
    lambda v: v.__delitem__(0),
    lambda v: v.append(1),
    lambda v: v.extend([1]),
    lambda v: v.insert(0, 1),
    lambda v: v.pop(),
    lambda v: v.remove(v[0]),
    lambda v: v.sort(key=repr),
    lambda v: v.reverse(),
    lambda v: v.clear(),
    lambda v: v.__iadd__([1]),
    lambda v: v.__imul__(2),
]


def _assert_read_only(container: Any) -> None:
    """Every mutating method of a shared container raises ReadOnlyDataError."""
    changes: list[Any] = _DICT_CHANGES if isinstance(container, dict) else _LIST_CHANGES
    before = msgspec.to_builtins(container)
    for change in changes:
        with pytest.raises(ReadOnlyDataError, match="read-only"):
            change(container)
    assert msgspec.to_builtins(container) == before


def _try_everything(result: Any) -> int:
    """Attack every part of one query result; return how many shared
    containers were found (and resisted)."""
    shared = 0
    for part in list(_walk(result)):
        if isinstance(part, FrozenDict | FrozenList):
            if part:
                _assert_read_only(part)
                shared += 1
        elif isinstance(part, list | dict):
            part.clear()  # a new container: changing it changes nothing
        elif isinstance(part, msgspec.Struct):
            with pytest.raises(AttributeError):
                setattr(part, part.__struct_fields__[0], "changed")
    return shared


def _answers(projection: Projection) -> dict[str, Any]:
    return {name: q(projection) for name, q in QUERIES[type(projection)].items()}


@pytest.fixture
def store() -> Iterator[EventStore]:
    """An initialised in-memory store, shut down afterwards."""
    event_store = EventStore(":memory:").initialize()
    yield event_store
    event_store.shutdown()


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.name)
def test_every_query_is_covered(cls: type[Projection]) -> None:
    """The table above calls every query the read model defines."""
    defined = {n for n in vars(cls) if n.startswith("get_")}
    assert defined == set(QUERIES[cls])


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.name)
def test_no_query_result_can_change_the_model(
    store: EventStore, cls: type[Projection]
) -> None:
    """Every query result resists every change, or is a new container; the
    model answers the same afterwards, and every result encodes."""
    projection = cls(store).initialize()
    for event in scenario():
        store.append(event)
    expected = msgspec.to_builtins(_answers(projection))
    shared = sum(_try_everything(r) for r in _answers(projection).values())
    if cls in (TaskHistoryProjection, SwarmProjection):
        assert shared > 0  # results carry the events' nested data
    assert msgspec.to_builtins(_answers(projection)) == expected
    replayed = cls.as_of(store, store.head_position)
    assert msgspec.to_builtins(_answers(replayed)) == expected


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.name)
def test_results_stay_read_only_after_a_restart(
    tmp_path: Path, cls: type[Projection]
) -> None:
    """A model restored from its snapshot (plain decoded data) hands out
    read-only containers too."""
    path = tmp_path / "swarm.db"
    with EventStore(path) as first:
        projection = cls(first, snapshot_every=1).initialize()
        for event in scenario():
            first.append(event)
        expected = msgspec.to_builtins(_answers(projection))
    with EventStore(path) as second:
        projection = cls(second).initialize()
        assert projection.get_status().events_handled == 0  # from the snapshot
        for result in _answers(projection).values():
            _try_everything(result)
        assert msgspec.to_builtins(_answers(projection)) == expected


def test_task_result_and_swarm_config_are_dicts(store: EventStore) -> None:
    """The read-only containers are still dicts and lists, equal to the
    data appended."""
    tasks = TaskHistoryProjection(store).initialize()
    swarm = SwarmProjection(store).initialize()
    for event in scenario():
        store.append(event)
    task = tasks.get_task("t1")
    state = swarm.get_swarm()
    assert task is not None
    assert state is not None
    for value in (task.result, state.config, state.metrics, state.errors[0].context):
        assert isinstance(value, dict)
        assert isinstance(value["items"], list)
        assert value == NESTED
        with pytest.raises(TypeError):  # ReadOnlyDataError is a TypeError
            value["items"].append(2)


class _Tamperer(Projection):
    """Tries to change every event it handles, recording what it saw."""

    name: ClassVar[str] = "test-tamperer"

    def reset_state(self) -> None:
        self.refused: list[str] = []

    @handles(TaskCompleted)
    def _on_completed(self, event: Event[TaskCompleted]) -> None:
        for change in (
            lambda: event.payload.result.__setitem__("x", 1),
            lambda: event.payload.result["items"].append(2),
            lambda: event.metadata.__setitem__("who", "tamperer"),
            event.metadata.clear,
        ):
            try:
                change()
            except ReadOnlyDataError:
                self.refused.append(event.payload.task_id)


class _Witness(Projection):
    """Records the data of every event it handles (after the tamperer)."""

    name: ClassVar[str] = "test-witness"

    def reset_state(self) -> None:
        self.seen: list[Any] = []

    @handles(TaskCompleted)
    def _on_completed(self, event: Event[TaskCompleted]) -> None:
        self.seen.append(msgspec.to_builtins([event.payload.result, event.metadata]))


def test_projections_and_listeners_cannot_change_each_others_events(
    store: EventStore,
) -> None:
    """Two projections and two listeners share each event; none can change
    what the others (or the appender) see."""
    tamperer = _Tamperer(store).initialize()
    witness = _Witness(store).initialize()
    refused: list[str] = []
    heard: list[Any] = []
    done = threading.Event()

    def tamper(event: Event[Any]) -> None:
        try:
            event.payload.result["items"][1]["deep"].append(0)
        except ReadOnlyDataError:
            refused.append(event.payload.task_id)

    def listen(event: Event[Any]) -> None:
        heard.append(msgspec.to_builtins([event.payload.result, event.metadata]))
        done.set()

    store.on("event:appended", tamper)
    store.on("event:appended", listen)
    metadata = {"trace": {"hops": [1, 2]}}
    stored = store.append(create_task_completed_event("t9", NESTED, metadata=metadata))
    assert done.wait(10)
    witness.wait_for(stored.position, timeout=10)
    tamperer.wait_for(stored.position, timeout=10)
    expected = [NESTED, metadata]
    assert witness.seen == [expected]
    assert heard == [expected]
    assert refused == ["t9"]
    assert tamperer.refused == ["t9"] * 4
    assert msgspec.to_builtins([stored.payload.result, stored.metadata]) == expected
    with pytest.raises(ReadOnlyDataError):
        stored.payload.result["x"] = 1
    read = store.get_events("t9")[0]
    assert msgspec.to_builtins([read.payload.result, read.metadata]) == expected
    with pytest.raises(ReadOnlyDataError):
        read.metadata["trace"]["hops"].append(3)


def test_read_only_containers_copy_pickle_and_encode() -> None:
    """Copies stay read-only and equal; pickling round-trips; msgspec
    encodes them like plain containers; dict()/list() give mutable copies."""
    frozen = FrozenDict({"a": FrozenList([1, FrozenDict({"b": 2})])})
    assert copy.copy(frozen) is frozen
    assert copy.deepcopy(frozen) is frozen
    back = pickle.loads(pickle.dumps(frozen))
    assert back == frozen
    assert type(back) is FrozenDict
    assert type(back["a"]) is FrozenList
    assert msgspec.json.encode(frozen) == b'{"a":[1,{"b":2}]}'
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(frozen)) == frozen
    assert repr(frozen) == "{'a': [1, {'b': 2}]}"
    plain = dict(frozen)
    plain["c"] = 3
    items = list(frozen["a"])
    items.append(4)
    assert "c" not in frozen
    assert len(frozen["a"]) == 2
    with pytest.raises(ReadOnlyDataError) as info:
        frozen["x"] = 1
    error = info.value
    assert (error.kind, error.operation) == ("dict", "__setitem__")
    assert pickle.loads(pickle.dumps(error)).operation == "__setitem__"
