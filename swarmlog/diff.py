"""Compare the built-in read models of two stores, or of one store at two
positions: what was added, removed and changed, field by field.

Each side is rebuilt with ``Projection.as_of`` (on the calling thread, from
the events up to the position; live projections are not touched), read
through the read models' public queries, and turned into plain JSON data
(``msgspec.to_builtins``; instants become ISO 8601 strings, tuples lists):
the result holds no read-model objects and its JSON encoding decodes back
equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from swarmlog.actors.read_models import (
    AgentStateProjection,
    MemoryIndexProjection,
    SwarmProjection,
    TaskHistoryProjection,
)
from swarmlog.schema.errors import InvalidQueryError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from swarmlog.store import EventStore

__all__ = [
    "FieldChange",
    "ItemChange",
    "ModelDiff",
    "ModelItem",
    "ReadModelsDiff",
    "diff_read_models",
]

# Values are compared by their canonical JSON (sorted keys), so 1 and 1.0,
# or True and 1, differ as they would in the CLI's JSON output.
_canonical = msgspec.json.Encoder(order="sorted")
_plain_encoder = msgspec.json.Encoder()
_plain = msgspec.json.Decoder(dict[str, Any])


class ModelItem(msgspec.Struct, frozen=True, kw_only=True):
    """One item of a read model (an agent, a task, a memory entry, a swarm).

    Attributes:
        id: The item's id.
        value: Its fields as plain data.
    """

    id: str
    value: dict[str, Any]


class FieldChange(msgspec.Struct, frozen=True, kw_only=True):
    """One field that differs between the two sides.

    Attributes:
        field: The field's name.
        before: Its value on side A (plain data; None if absent).
        after: Its value on side B (plain data; None if absent).
    """

    field: str
    before: Any
    after: Any


class ItemChange(msgspec.Struct, frozen=True, kw_only=True):
    """An item present on both sides with different fields.

    Attributes:
        id: The item's id.
        changes: The fields that differ, in field order.
    """

    id: str
    changes: tuple[FieldChange, ...]


class ModelDiff(msgspec.Struct, frozen=True, kw_only=True):
    """The differences of one read model, B compared with A.

    Attributes:
        name: ``"agents"``, ``"tasks"``, ``"memory"`` or ``"swarm"``.
        added: Items only in B, in B's order.
        removed: Items only in A, in A's order.
        changed: Items in both that differ, in B's order.
    """

    name: str
    added: tuple[ModelItem, ...] = ()
    removed: tuple[ModelItem, ...] = ()
    changed: tuple[ItemChange, ...] = ()

    @property
    def equal(self) -> bool:
        """Whether the read model is the same on both sides."""
        return not (self.added or self.removed or self.changed)


class ReadModelsDiff(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`diff_read_models` found, per read model.

    ``bool(diff)`` is True when there are differences (like a non-empty
    list of them); ``diff.equal`` is its negation.

    Attributes:
        at_a: The position side A was read at.
        at_b: The position side B was read at.
        agents: The agents read model (``AgentStateProjection``).
        tasks: The tasks read model (``TaskHistoryProjection``).
        memory: The active memory entries (``MemoryIndexProjection``; a
            deleted or expired entry counts as removed).
        swarm: The swarms (``SwarmProjection``).
    """

    at_a: int
    at_b: int
    agents: ModelDiff
    tasks: ModelDiff
    memory: ModelDiff
    swarm: ModelDiff

    @property
    def models(self) -> tuple[ModelDiff, ...]:
        """The four read models' differences: agents, tasks, memory, swarm."""
        return (self.agents, self.tasks, self.memory, self.swarm)

    @property
    def equal(self) -> bool:
        """Whether all four read models are the same on both sides."""
        return all(model.equal for model in self.models)

    def __bool__(self) -> bool:
        return not self.equal


def _agents(store: EventStore, at: int) -> list[Any]:
    return list(AgentStateProjection.as_of(store, at).get_all_agents())


def _tasks(store: EventStore, at: int) -> list[Any]:
    return list(TaskHistoryProjection.as_of(store, at).get_all_tasks())


def _memory(store: EventStore, at: int) -> list[Any]:
    return list(MemoryIndexProjection.as_of(store, at).get_active_memories())


def _swarm(store: EventStore, at: int) -> list[Any]:
    return list(SwarmProjection.as_of(store, at).get_all_swarms())


_MODELS: tuple[tuple[str, Callable[[EventStore, int], list[Any]]], ...] = (
    ("agents", _agents),
    ("tasks", _tasks),
    ("memory", _memory),
    ("swarm", _swarm),
)


def _check_store(store: object, name: str) -> None:
    from swarmlog.store import EventStore  # here: diff sits above the store

    if not isinstance(store, EventStore):
        msg = f"{name} must be an EventStore, got {store!r}"
        raise InvalidQueryError(msg)


def _position(store: EventStore, at: object, name: str) -> int:
    head = store.head_position
    if at is None:
        return head
    if isinstance(at, bool) or not isinstance(at, int) or not 0 <= at <= head:
        msg = f"{name} must be an int from 0 to the store's head ({head}), got {at!r}"
        raise InvalidQueryError(msg)
    return at


def _items(states: Iterable[Any]) -> dict[str, tuple[bytes, dict[str, Any]]]:
    """``{id: (json, value)}``: each state as JSON and as plain data."""
    items: dict[str, tuple[bytes, dict[str, Any]]] = {}
    for state in states:
        # to_builtins, then a JSON round trip: tuples become lists, so the
        # result is exactly what its JSON encoding decodes back to.
        data = _plain_encoder.encode(msgspec.to_builtins(state))
        value = _plain.decode(data)
        items[str(value["id"])] = (data, value)
    return items


def _same(a: Any, b: Any) -> bool:
    return a is b or _canonical.encode(a) == _canonical.encode(b)


def _field_changes(a: dict[str, Any], b: dict[str, Any]) -> tuple[FieldChange, ...]:
    names = list(a) + [name for name in b if name not in a]
    return tuple(
        FieldChange(field=name, before=a.get(name), after=b.get(name))
        for name in names
        if name not in a or name not in b or not _same(a[name], b[name])
    )


def _compare(name: str, a: list[Any], b: list[Any]) -> ModelDiff:
    items_a, items_b = _items(a), _items(b)
    added = tuple(
        ModelItem(id=k, value=v) for k, (_, v) in items_b.items() if k not in items_a
    )
    removed = tuple(
        ModelItem(id=k, value=v) for k, (_, v) in items_a.items() if k not in items_b
    )
    changed = []
    for key, (data, value) in items_b.items():
        before = items_a.get(key)
        if before is None or before[0] == data:  # same JSON: same item
            continue
        changes = _field_changes(before[1], value)
        if changes:
            changed.append(ItemChange(id=key, changes=changes))
    return ModelDiff(name=name, added=added, removed=removed, changed=tuple(changed))


def diff_read_models(
    store_a: EventStore,
    store_b: EventStore,
    *,
    at_a: int | None = None,
    at_b: int | None = None,
) -> ReadModelsDiff:
    """Compare the four built-in read models of two stores (B against A).

    Runs on the calling thread: each side's read models are rebuilt from
    the events up to its position (``as_of``), so this reads every event up
    to ``at_a`` and ``at_b`` (once per read model). Pass the same store
    twice with two positions to see what happened in between. Neither
    store is changed.

    Args:
        store_a: Side A (an initialised store; read-only is fine).
        store_b: Side B (may be ``store_a``).
        at_a: Read A as of this position (default: its head).
        at_b: Read B as of this position (default: its head).

    Returns:
        The differences per read model; ``.equal`` when there are none.

    Raises:
        InvalidQueryError: A store is not an ``EventStore``, or a position
            is not an int from 0 to its store's head.
        StoreNotInitializedError: A store is not initialised.
        StoreClosedError: A store is shut down.
    """
    _check_store(store_a, "store_a")
    _check_store(store_b, "store_b")
    position_a = _position(store_a, at_a, "at_a")
    position_b = _position(store_b, at_b, "at_b")
    models = {
        name: _compare(name, read(store_a, position_a), read(store_b, position_b))
        for name, read in _MODELS
    }
    return ReadModelsDiff(
        at_a=position_a,
        at_b=position_b,
        agents=models["agents"],
        tasks=models["tasks"],
        memory=models["memory"],
        swarm=models["swarm"],
    )
