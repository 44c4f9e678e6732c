"""Why-queries: get_event, get_causal_chain, get_consequences, get_correlated."""

from __future__ import annotations

import re
import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import (
    EventStore,
    InvalidQueryError,
    create_agent_started_event,
    create_agent_status_changed_event,
)
from swarmlog.schema import sql

if TYPE_CHECKING:
    from pathlib import Path

    from swarmlog import Event


def _new(
    store: EventStore,
    name: str,
    cause: Event | str | None = None,
    *,
    correlation: str | None = None,
    event_id: uuid.UUID | None = None,
) -> Event:
    """Append one event of aggregate ``name`` caused by ``cause``."""
    event = create_agent_started_event(
        name,
        causation_id=cause if isinstance(cause, str | None) else str(cause.id),
        correlation_id=correlation,
    )
    if event_id is not None:
        event = _with_id(event, event_id)
    return store.append(event)


def _with_id(event: Event, event_id: uuid.UUID) -> Event:
    import msgspec

    return msgspec.structs.replace(event, id=event_id)


class TestGetEvent:
    """get_event: one event by id."""

    def test_by_uuid_and_by_string(self, store: EventStore) -> None:
        """A UUID, its string, and other spellings of it find the event."""
        stored = _new(store, "a1")
        _new(store, "a2")
        assert store.get_event(stored.id) == stored
        assert store.get_event(str(stored.id)) == stored
        assert store.get_event(str(stored.id).upper()) == stored
        assert store.get_event(stored.id.hex) == stored

    def test_unknown_ids(self, store: EventStore) -> None:
        """An unknown UUID or a string that is no UUID: None."""
        _new(store, "a1")
        assert store.get_event(uuid.uuid4()) is None
        assert store.get_event("not-an-id") is None

    @pytest.mark.parametrize("bad", [42, None, b"\x00" * 16])
    def test_other_types_are_refused(self, store: EventStore, bad: Any) -> None:
        """InvalidQueryError for anything but a UUID or a string."""
        with pytest.raises(InvalidQueryError, match="event_id"):
            store.get_event(bad)


class TestCausalChain:
    """get_causal_chain: root first, ending with the event."""

    def test_a_chain_of_causes(self, store: EventStore) -> None:
        """Each cause in turn, root first; unrelated events left out."""
        root = _new(store, "root")
        _new(store, "noise")
        a = _new(store, "a", root)
        _new(store, "noise", root)
        b = _new(store, "b", a)
        c = _new(store, "c", b)
        assert store.get_causal_chain(c.id) == [root, a, b, c]
        assert store.get_causal_chain(str(b.id)) == [root, a, b]
        assert store.get_causal_chain(root.id) == [root]

    def test_caused_by_and_uuid_causation_ids(self, store: EventStore) -> None:
        """Events made with caused_by= or a UUID causation_id chain up."""
        root = _new(store, "root")
        child = store.append(create_agent_started_event("child", caused_by=root))
        grandchild = store.append(
            create_agent_started_event("grandchild", causation_id=child.id)
        )
        assert store.get_causal_chain(grandchild.id) == [root, child, grandchild]
        assert store.get_consequences(root.id) == [child, grandchild]
        assert store.get_correlated(str(root.id)) == [child]  # caused_by sets it

    def test_a_deep_chain(self, store: EventStore) -> None:
        """Sixty causes deep, in one query."""
        chain = [_new(store, "e0")]
        for i in range(1, 60):
            chain.append(_new(store, f"e{i}", chain[-1]))
        assert store.get_causal_chain(chain[-1].id) == chain

    def test_a_cause_outside_the_store_ends_the_chain(self, store: EventStore) -> None:
        """A command id, or a UUID no stored event has, is where it stops."""
        by_command = _new(store, "a", "command-17")
        by_missing = _new(store, "b", str(uuid.uuid4()))
        after = _new(store, "c", by_command)
        assert store.get_causal_chain(by_command.id) == [by_command]
        assert store.get_causal_chain(by_missing.id) == [by_missing]
        assert store.get_causal_chain(after.id) == [by_command, after]

    def test_unknown_ids(self, store: EventStore) -> None:
        """An id no stored event has: []."""
        _new(store, "a")
        assert store.get_causal_chain(uuid.uuid4()) == []
        assert store.get_causal_chain("command-17") == []


class TestConsequences:
    """get_consequences: the whole tree below an event, in commit order."""

    def test_fan_out_in_commit_order(self, store: EventStore) -> None:
        """Children and grandchildren of several branches, in the order they
        were committed, the event itself excluded."""
        root = _new(store, "root")
        a1 = _new(store, "a1", root)
        a2 = _new(store, "a2", root)
        b3 = _new(store, "b3", a2)
        _new(store, "other")
        b1 = _new(store, "b1", a1)
        c1 = _new(store, "c1", b3)
        b2 = _new(store, "b2", a1)
        assert store.get_consequences(root.id) == [a1, a2, b3, b1, c1, b2]
        assert store.get_consequences(str(a1.id)) == [b1, b2]
        assert store.get_consequences(b2.id) == []

    def test_consequences_of_an_outside_cause(self, store: EventStore) -> None:
        """A command's id finds what it caused, transitively."""
        first = _new(store, "a", "command-9")
        second = _new(store, "b", "command-9")
        third = _new(store, "c", first)
        _new(store, "d", "command-10")
        assert store.get_consequences("command-9") == [first, second, third]

    def test_unknown_ids(self, store: EventStore) -> None:
        """Nothing was caused by an unknown id."""
        _new(store, "a")
        assert store.get_consequences(uuid.uuid4()) == []
        assert store.get_consequences("nobody") == []


class TestCycles:
    """Stored causation ids may form cycles (ids are the caller's); the
    walks follow causes back in commit order only, so they end."""

    def test_two_events_naming_each_other(self, store: EventStore) -> None:
        """A names B (committed later) and B names A: A has no stored cause,
        B's chain is A then B; A led to B and B to nothing."""
        id_a, id_b = uuid.uuid4(), uuid.uuid4()
        a = _new(store, "a", str(id_b), event_id=id_a)
        b = _new(store, "b", str(id_a), event_id=id_b)
        assert store.get_causal_chain(id_a) == [a]
        assert store.get_causal_chain(id_b) == [a, b]
        assert store.get_consequences(id_a) == [b]
        assert store.get_consequences(id_b) == []

    def test_an_event_naming_itself(self, store: EventStore) -> None:
        """Its own cause is not a cause."""
        own = uuid.uuid4()
        event = _new(store, "a", str(own), event_id=own)
        assert store.get_causal_chain(own) == [event]
        assert store.get_consequences(own) == []


class TestCorrelated:
    """get_correlated: one conversation, in commit order."""

    def test_across_aggregates(self, store: EventStore) -> None:
        """Every event with the id, whatever its aggregate or type."""
        one = _new(store, "a", correlation="task-1")
        _new(store, "b", correlation="task-2")
        two = store.append(
            create_agent_status_changed_event(
                "b", "idle", "active", correlation_id="task-1"
            )
        )
        three = _new(store, "c", one, correlation="task-1")
        assert store.get_correlated("task-1") == [one, two, three]
        assert store.get_correlated("task-3") == []

    def test_a_uuid_correlation_id(self, store: EventStore) -> None:
        """A UUID is looked up by its string."""
        conversation = uuid.uuid4()
        event = _new(store, "a", correlation=str(conversation))
        assert store.get_correlated(conversation) == [event]

    def test_other_types_are_refused(self, store: EventStore) -> None:
        """InvalidQueryError."""
        with pytest.raises(InvalidQueryError, match="correlation_id"):
            store.get_correlated(7)  # type: ignore[arg-type]


class TestStores:
    """The queries on read-only stores and forks."""

    def test_read_only_and_fork(self, tmp_path: Path) -> None:
        """A read-only store and a fork answer like the writer."""
        path = tmp_path / "why.db"
        with EventStore(path) as store:
            root = _new(store, "root", correlation="t")
            leaf = _new(store, "leaf", root, correlation="t")
            with EventStore(path, read_only=True) as reader:
                assert reader.get_causal_chain(leaf.id) == [root, leaf]
                assert reader.get_consequences(root.id) == [leaf]
                assert reader.get_correlated("t") == [root, leaf]
            with store.fork(tmp_path / "fork.db") as forked:
                assert forked.get_causal_chain(leaf.id) == [root, leaf]
                assert forked.get_correlated("t") == [root, leaf]


def test_awaited_forms(store: EventStore) -> None:
    """store.aio answers the four queries like the blocking forms."""
    import asyncio

    root = _new(store, "root", correlation="t")
    leaf = _new(store, "leaf", root, correlation="t")

    async def ask() -> tuple[Any, ...]:
        return (
            await store.aio.get_event(str(leaf.id)),
            await store.aio.get_causal_chain(leaf.id),
            await store.aio.get_consequences(root.id),
            await store.aio.get_correlated("t"),
        )

    assert asyncio.run(ask()) == (leaf, [root, leaf], [leaf], [root, leaf])


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        (sql.SELECT_EVENT_BY_ID, (b"\x00" * 16,)),
        (sql.SELECT_CAUSAL_CHAIN, (b"\x00" * 16,)),
        (sql.SELECT_CONSEQUENCES, (b"\x00" * 16,)),
        (sql.SELECT_CONSEQUENCES, ("command-1",)),
        (sql.SELECT_CORRELATED, ("task-1",)),
    ],
)
@pytest.mark.sqlite_only("SQLite's query plans")
def test_every_why_query_uses_indexes(
    store: EventStore, statement: str, params: tuple[Any, ...]
) -> None:
    """No plan scans the events table: every step is an index lookup."""
    _new(store, "a", correlation="task-1")
    conn = sqlite3.connect(store.path)
    try:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
    finally:
        conn.close()
    details = [row[-1] for row in plan]
    assert not [d for d in details if re.match(r"SCAN (events|e)\b", d)], details
    assert any("INDEX" in d or "PRIMARY KEY" in d for d in details), details


def test_readme_example_runs() -> None:
    """The README's "Why did this happen? (causation)" example runs as
    printed (its asserts are the checks)."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    start = text.index("\n## Why did this happen? (causation)\n")
    end = text.index("\n## ", start + 1)
    (code,) = re.findall(r"```python\n(.*?)```", text[start:end], flags=re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["done"].causation_id == str(namespace["started"].id)
    assert namespace["retry"].correlation_id == "task-7"
