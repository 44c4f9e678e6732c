"""Verdicts against what any writer committed (``multi_process=True``).

Two stores on one file in this process are two writers exactly like two
processes: each has its own writing connection, version cache and write
lock descriptor (``flock`` locks belong to an open file description), so
every verdict below must come from the file, not from a cache. The
cross-process runs (``test_writers.py``) check the same under load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import pytest

from swarmlog import (
    ConcurrencyError,
    DuplicateEventError,
    EventStore,
    create_task_created_event,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from swarmlog import Event


def _event(aggregate: str, title: str = "T") -> Event:
    return create_task_created_event(aggregate, "v", title, "", "low")


@pytest.fixture
def pair(db: str) -> Iterator[tuple[EventStore, EventStore]]:
    """Two multi-process stores on one file."""
    with (
        EventStore(db, multi_process=True) as first,
        EventStore(db, multi_process=True) as second,
    ):
        yield first, second


def test_expected_version_checks_the_other_writers_commits(
    pair: tuple[EventStore, EventStore],
) -> None:
    """A writer whose cache saw version 1 is refused with the true actual
    version after the other writer appended twice."""
    a, b = pair
    a.append(_event("agg"))
    assert b.append(_event("agg"), expected_version=1).version == 2  # b caches it
    a.append(_event("agg"), expected_version=2)
    with pytest.raises(ConcurrencyError) as info:
        b.append(_event("agg"), expected_version=2)
    assert (info.value.expected, info.value.actual) == (2, 3)
    assert b.append(_event("agg"), expected_version=3).version == 4


def test_idempotent_retry_through_the_other_writer(
    pair: tuple[EventStore, EventStore],
) -> None:
    """An event stored through one writer and retried through the other
    resolves to the stored copy: stored once, same position."""
    a, b = pair
    event = _event("retry")
    stored = a.append(event)
    b.append(_event("other"))
    again = b.append(event)
    assert again == stored
    assert [e.id for e in a.replay()].count(event.id) == 1
    changed = msgspec.structs.replace(event, payload=_event("retry", "X").payload)
    with pytest.raises(DuplicateEventError):
        b.append(changed)


def test_append_many_is_all_or_nothing_across_writers(
    pair: tuple[EventStore, EventStore],
) -> None:
    """A batch refused because of the other writer's commit stores nothing,
    and a failed request fails only itself."""
    a, b = pair
    a.append(_event("x"))
    with pytest.raises(ConcurrencyError):
        b.append_many(
            [_event("x"), _event("y"), _event("z")],
            expected_version={"x": 0},
        )
    ok = b.append_async(_event("y"))
    bad = b.append_async(_event("x"), expected_version=0)
    assert ok.get(10).aggregate_id == "y"
    with pytest.raises(ConcurrencyError):
        bad.get(10)
    ids = [e.aggregate_id for e in a.replay()]
    assert ids == ["x", "y"]
    assert [e.position for e in b.replay()] == [1, 2]


def test_positions_follow_the_other_writer(
    pair: tuple[EventStore, EventStore],
) -> None:
    """Each writer's next position follows whatever was committed last, by
    either writer: gap-free 1..N in commit order."""
    a, b = pair
    positions = []
    for i in range(10):
        writer = a if i % 3 else b
        positions.append(writer.append(_event(f"p{i}")).position)
    assert positions == list(range(1, 11))
