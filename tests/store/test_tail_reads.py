"""get_version and bounded stream reads: limit, backwards, from_version."""

from __future__ import annotations

import pytest

from swarmlog import (
    EventStore,
    InvalidQueryError,
    create_agent_started_event,
    create_task_queued_event,
)


def _versions(events: list) -> list[int]:  # type: ignore[type-arg]
    return [e.version for e in events]


@pytest.fixture
def five(store: EventStore) -> EventStore:
    """A store where agent a1 has versions 1..5 and a2 has 1..2."""
    for i in range(7):
        store.append(create_agent_started_event("a1" if i < 5 else "a2"))
    return store


class TestGetVersion:
    """get_version answers an aggregate's current version from an index."""

    def test_unknown_aggregate_is_zero(self, store: EventStore) -> None:
        """An aggregate with no events is at version 0."""
        assert store.get_version("nobody") == 0

    def test_follows_appends(self, five: EventStore) -> None:
        """The version is the count of the aggregate's events, per aggregate."""
        assert five.get_version("a1") == 5
        assert five.get_version("a2") == 2
        five.append(create_agent_started_event("a2"))
        assert five.get_version("a2") == 3

    def test_usable_as_expected_version(self, five: EventStore) -> None:
        """The answer is exactly what an exact expected_version needs."""
        version = five.get_version("a1")
        stored = five.append(create_agent_started_event("a1"), expected_version=version)
        assert stored.version == version + 1

    def test_non_string_is_refused(self, store: EventStore) -> None:
        """A non-string id is a typed query error."""
        with pytest.raises(InvalidQueryError, match="aggregate_id"):
            store.get_version(42)  # type: ignore[arg-type]


class TestTailReads:
    """limit and backwards read part of a stream."""

    def test_limit_reads_oldest_first(self, five: EventStore) -> None:
        """Forwards, limit keeps the first events read: the oldest."""
        assert _versions(five.get_events("a1", limit=2)) == [1, 2]

    def test_backwards_is_newest_first(self, five: EventStore) -> None:
        """backwards=True returns the whole stream newest first."""
        assert _versions(five.get_events("a1", backwards=True)) == [5, 4, 3, 2, 1]

    def test_last_n(self, five: EventStore) -> None:
        """backwards with limit is the last N events, newest first."""
        assert _versions(five.get_events("a1", limit=2, backwards=True)) == [5, 4]

    def test_from_version_is_the_lowest_included(self, five: EventStore) -> None:
        """from_version bounds the oldest event in either direction."""
        assert _versions(five.get_events("a1", 4, backwards=True)) == [5, 4]
        assert _versions(five.get_events("a1", 4, limit=9, backwards=True)) == [
            5,
            4,
        ]
        assert _versions(five.get_events("a1", 2, limit=2)) == [2, 3]

    def test_limit_zero_is_empty(self, five: EventStore) -> None:
        """limit=0 reads nothing in either direction."""
        assert five.get_events("a1", limit=0) == []
        assert five.get_events("a1", limit=0, backwards=True) == []

    def test_only_that_aggregate(self, five: EventStore) -> None:
        """A tail read never returns another aggregate's events."""
        five.append(create_task_queued_event("t1", "high"))
        events = five.get_events("a2", limit=10, backwards=True)
        assert {e.aggregate_id for e in events} == {"a2"}
        assert [e.position for e in events] == [7, 6]

    def test_same_events_as_a_full_read(self, five: EventStore) -> None:
        """A tail read returns the same stored events as a full read."""
        full = five.get_events("a1")
        assert five.get_events("a1", limit=3, backwards=True) == full[::-1][:3]

    @pytest.mark.parametrize(
        ("kwargs", "word"),
        [
            ({"limit": -1}, "limit"),
            ({"limit": "3"}, "limit"),
            ({"limit": True}, "limit"),
            ({"backwards": 1}, "backwards"),
            ({"backwards": "yes"}, "backwards"),
        ],
    )
    def test_bad_arguments_are_refused(
        self, five: EventStore, kwargs: dict[str, object], word: str
    ) -> None:
        """Wrongly typed or negative arguments are typed query errors."""
        with pytest.raises(InvalidQueryError, match=word):
            five.get_events("a1", **kwargs)  # type: ignore[arg-type]
