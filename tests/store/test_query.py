"""query(): every filter, their combinations, pagination, bound parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlog import (
    EventStore,
    InvalidQueryError,
    create_agent_started_event,
    create_agent_status_changed_event,
    create_memory_stored_event,
    create_swarm_phase_changed_event,
    create_task_queued_event,
    create_task_started_event,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from swarmlog import Event

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
COUNT = 24


def _at(second: int) -> datetime:
    return T0 + timedelta(seconds=second)


BUILDERS: list[Callable[[datetime], Event]] = [
    lambda ts: create_agent_started_event("a1", timestamp=ts),
    lambda ts: create_task_queued_event("t1", "high", timestamp=ts),
    lambda ts: create_agent_status_changed_event("a2", "idle", "busy", timestamp=ts),
    lambda ts: create_task_started_event("t2", "a1", timestamp=ts),
    lambda ts: create_memory_stored_event("m1", "ns", "k", "text", 1, timestamp=ts),
    lambda ts: create_swarm_phase_changed_event("p", "q", timestamp=ts),
    lambda ts: create_agent_started_event("a2", timestamp=ts),
    lambda ts: create_task_queued_event("t1", "low", timestamp=ts),
]
AGGREGATE_IDS = ["a1", "a2", "t1", "t2", "m1", "swarm"]
AGGREGATE_TYPES = ["agent", "task", "memory", "swarm"]
EVENT_TYPES = [
    "agent:started",
    "agent:status-changed",
    "task:queued",
    "task:started",
    "memory:stored",
    "swarm:phase-changed",
]


@pytest.fixture(scope="module", params=["memory", "file"])
def populated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[EventStore, list[Event]]]:
    """A store (':memory:' or a file) holding 24 events over 6 aggregates of
    4 types; timestamps are distinct whole seconds after T0, shuffled against
    commit order. Shared by the read-only tests of this module."""
    if request.param == "memory":
        path = ":memory:"
    else:
        path = str(tmp_path_factory.mktemp("query") / "events.db")
    with EventStore(path) as store:
        events = [
            store.append(BUILDERS[i % len(BUILDERS)](_at((i * 7) % COUNT)))
            for i in range(COUNT)
        ]
        yield store, events
        assert store.query() == events, "a query test changed the shared store"


@pytest.fixture
def store(populated: tuple[EventStore, list[Event]]) -> EventStore:
    """The shared populated store (read-only use)."""
    return populated[0]


@pytest.fixture
def events(populated: tuple[EventStore, list[Event]]) -> list[Event]:
    """The events stored in the shared store, as append returned them."""
    return populated[1]


def model(
    events: list[Event],
    *,
    aggregate_ids: list[str] | None = None,
    aggregate_types: list[str] | None = None,
    event_types: list[str] | None = None,
    after_timestamp: datetime | None = None,
    before_timestamp: datetime | None = None,
    from_version: int | None = None,
    from_position: int | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Event]:
    """What query() must return, computed in Python."""
    kept = [
        e
        for e in sorted(events, key=lambda e: e.position)
        if (aggregate_ids is None or e.aggregate_id in aggregate_ids)
        and (aggregate_types is None or e.aggregate_type in aggregate_types)
        and (event_types is None or e.type in event_types)
        and (after_timestamp is None or e.timestamp > after_timestamp)
        and (before_timestamp is None or e.timestamp < before_timestamp)
        and (from_version is None or e.version >= from_version)
        and (from_position is None or e.position >= from_position)
    ]
    kept = kept[offset:]
    return kept if limit is None else kept[:limit]


def test_no_filter_gives_everything_in_commit_order(
    store: EventStore, events: list[Event]
) -> None:
    """Without filters query returns every event by position."""
    assert store.query() == events
    assert [e.position for e in store.query()] == list(range(1, COUNT + 1))


def test_results_are_in_commit_order_not_time_order(
    store: EventStore, events: list[Event]
) -> None:
    """Events come back by position even when their timestamps are not."""
    result = store.query(after_timestamp=T0 - timedelta(seconds=1))
    assert [e.position for e in result] == sorted(e.position for e in result)
    assert [e.timestamp for e in result] != sorted(e.timestamp for e in result)


SINGLE_FILTERS: list[dict[str, Any]] = [
    {"aggregate_ids": ["a1"]},
    {"aggregate_ids": ["a1", "t2", "nobody"]},
    {"aggregate_ids": ("m1",)},
    {"aggregate_types": ["task"]},
    {"aggregate_types": ["agent", "swarm"]},
    {"event_types": ["task:queued"]},
    {"event_types": ["agent:started", "memory:stored"]},
    {"event_types": ["no:such-type"]},
    {"after_timestamp": _at(10)},
    {"before_timestamp": _at(10)},
    {"from_version": 2},
    {"from_version": 4},
    {"from_position": 20},
    {"limit": 5},
    {"offset": 20},
]


@pytest.mark.parametrize("filters", SINGLE_FILTERS, ids=repr)
def test_each_filter_alone(
    store: EventStore, events: list[Event], filters: dict[str, Any]
) -> None:
    """Each filter on its own matches the model."""
    assert store.query(**filters) == model(events, **filters)


def test_filter_values_may_be_any_iterable(
    store: EventStore, events: list[Event]
) -> None:
    """Lists, tuples, sets and generators of strings all work."""
    expected = model(events, aggregate_ids=["a1", "t1"])
    assert store.query(aggregate_ids=["a1", "t1"]) == expected
    assert store.query(aggregate_ids=("a1", "t1")) == expected
    assert store.query(aggregate_ids={"a1", "t1"}) == expected
    assert store.query(aggregate_ids=(i for i in ["a1", "t1"])) == expected


def test_time_bounds_are_strict(store: EventStore, events: list[Event]) -> None:
    """An event exactly at a bound is excluded on both sides."""
    exactly = _at(10)
    after = store.query(after_timestamp=exactly)
    before = store.query(before_timestamp=exactly)
    assert all(e.timestamp > exactly for e in after)
    assert all(e.timestamp < exactly for e in before)
    assert len(after) + len(before) == COUNT - 1
    assert store.query(after_timestamp=_at(5), before_timestamp=_at(7)) == [
        e for e in events if e.timestamp == _at(6)
    ]
    assert store.query(after_timestamp=_at(5), before_timestamp=_at(6)) == []
    assert store.query(after_timestamp=_at(9), before_timestamp=_at(3)) == []


def test_time_bounds_have_microsecond_precision(
    store: EventStore, events: list[Event]
) -> None:
    """A microsecond on either side of an event's instant decides."""
    tick = timedelta(microseconds=1)
    (at_ten,) = [e for e in events if e.timestamp == _at(10)]
    assert at_ten in store.query(after_timestamp=_at(10) - tick)
    assert at_ten not in store.query(after_timestamp=_at(10))
    assert at_ten in store.query(before_timestamp=_at(10) + tick)


def test_from_version_and_from_position_are_inclusive(
    store: EventStore, events: list[Event]
) -> None:
    """The given version and position are included."""
    assert store.query(from_position=COUNT) == [events[-1]]
    assert store.query(from_position=COUNT + 1) == []
    assert store.query(from_position=0) == events
    assert store.query(from_position=1) == events
    assert store.query(from_version=0) == events
    top = max(e.version for e in events)
    assert store.query(from_version=top) == [e for e in events if e.version == top]
    assert store.query(from_version=top + 1) == []


def test_limit_zero_is_a_real_value(store: EventStore, events: list[Event]) -> None:
    """limit=0 returns nothing, it does not mean unset."""
    assert store.query(limit=0) == []
    assert store.query(limit=0, offset=3) == []


def test_offset_without_limit(store: EventStore, events: list[Event]) -> None:
    """offset alone skips that many and returns the rest."""
    assert store.query(offset=0) == events
    assert store.query(offset=5) == events[5:]
    assert store.query(offset=COUNT) == []
    assert store.query(offset=COUNT + 10) == []


@pytest.mark.parametrize("page", [1, 5, 7, COUNT, COUNT + 1])
def test_pagination_covers_everything_once(
    store: EventStore, events: list[Event], page: int
) -> None:
    """limit/offset pages concatenate to the whole result, no overlap."""
    pages = [
        store.query(aggregate_types=["agent", "task"], limit=page, offset=start)
        for start in range(0, COUNT + page, page)
    ]
    assert [e for p in pages for e in p] == model(
        events, aggregate_types=["agent", "task"]
    )
    assert all(len(p) <= page for p in pages)


def test_combined_filters(store: EventStore, events: list[Event]) -> None:
    """All filters are ANDed."""
    filters: dict[str, Any] = {
        "aggregate_ids": ["a1", "a2", "t1"],
        "aggregate_types": ["agent"],
        "event_types": ["agent:started"],
        "after_timestamp": _at(0),
        "before_timestamp": _at(23),
        "from_version": 2,
        "from_position": 3,
    }
    expected = model(events, **filters)
    assert expected
    assert store.query(**filters) == expected
    assert store.query(**filters, limit=1, offset=1) == expected[1:2]


optional_ids = st.none() | st.lists(
    st.sampled_from([*AGGREGATE_IDS, "nobody"]), min_size=1, max_size=3
)
optional_types = st.none() | st.lists(
    st.sampled_from([*AGGREGATE_TYPES, "deploy"]), min_size=1, max_size=2
)
optional_event_types = st.none() | st.lists(
    st.sampled_from([*EVENT_TYPES, "no:type"]), min_size=1, max_size=3
)
optional_instant = st.none() | st.builds(
    lambda s, us: _at(s) + timedelta(microseconds=us),
    st.integers(-2, COUNT + 1),
    st.sampled_from([-1, 0, 1]),
)
optional_count = st.none() | st.integers(0, COUNT + 2)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    aggregate_ids=optional_ids,
    aggregate_types=optional_types,
    event_types=optional_event_types,
    after_timestamp=optional_instant,
    before_timestamp=optional_instant,
    from_version=st.none() | st.integers(0, 5),
    from_position=optional_count,
    limit=optional_count,
    offset=st.integers(0, COUNT + 2),
)
def test_any_combination_matches_the_model(
    store: EventStore, events: list[Event], **filters: Any
) -> None:
    """Property: every combination of filters equals the Python model."""
    assert store.query(**filters) == model(events, **filters)


METACHARACTERS = [
    "' OR '1'='1",
    "a1' --",
    "a1'; DROP TABLE events; --",
    '" OR ""="',
    "%",
    "_",
    "a%",
    "*",
    "\\",
    "a1\x00",
    ") OR (1=1",
]


@pytest.mark.parametrize("value", METACHARACTERS)
@pytest.mark.parametrize("field", ["aggregate_ids", "aggregate_types", "event_types"])
def test_sql_metacharacters_match_nothing_and_break_nothing(
    store: EventStore, events: list[Event], field: str, value: str
) -> None:
    """String filters are bound parameters: injection or LIKE wildcards
    match nothing and the store is unharmed."""
    assert store.query(**{field: [value]}) == []
    assert store.query() == events
    assert store.get_stats().total_events == COUNT


def test_metacharacters_in_stored_ids_match_exactly(
    make_store: Callable[..., EventStore],
) -> None:
    """An aggregate id full of metacharacters is found by exact match only."""
    store = make_store()
    odd = "x'; DROP TABLE events; -- %_"
    stored = store.append(create_agent_started_event(odd))
    store.append(create_agent_started_event("x"))
    assert store.query(aggregate_ids=[odd]) == [stored]
    assert store.get_events(odd) == [stored]
    assert store.query(aggregate_ids=["x'"]) == []


NAIVE = datetime(2024, 3, 1, 12, 0, 0)

INVALID_QUERIES: list[dict[str, Any]] = [
    {"aggregate_ids": 1},
    {"aggregate_ids": [1]},
    {"aggregate_ids": ["a1", None]},
    {"aggregate_ids": [b"a1"]},
    {"aggregate_types": 3.5},
    {"event_types": [["agent:started"]]},
    {"after_timestamp": NAIVE},
    {"before_timestamp": NAIVE},
    {"after_timestamp": "2024-03-01T12:00:00Z"},
    {"before_timestamp": 1_700_000_000},
    {"after_timestamp": T0.astimezone(timezone(timedelta(hours=2)))},
    {"from_version": -1},
    {"from_version": "1"},
    {"from_version": 1.0},
    {"from_position": -1},
    {"from_position": True},
    {"limit": -1},
    {"limit": "10"},
    {"limit": 2.5},
    {"offset": -1},
    {"offset": "1"},
    {"offset": False},
]


@pytest.mark.parametrize("filters", INVALID_QUERIES, ids=repr)
def test_wrong_types_and_negatives_raise_invalid_query(
    store: EventStore, filters: dict[str, Any]
) -> None:
    """A wrongly typed or negative filter raises InvalidQueryError."""
    with pytest.raises(InvalidQueryError):
        store.query(**filters)


def test_query_on_an_empty_store(make_store: Callable[..., EventStore]) -> None:
    """Every filter on an empty store gives []."""
    store = make_store()
    assert store.query() == []
    assert store.query(aggregate_ids=["a1"], limit=3, offset=1) == []


HUGE = 2**63  # one past SQLite's largest INTEGER

HUGE_READS: dict[str, tuple[Callable[[EventStore], list[Event]], bool]] = {
    # name: (read, whether the answer is every event rather than none)
    "query-limit": (lambda s: s.query(limit=HUGE), True),
    "query-offset": (lambda s: s.query(offset=HUGE), False),
    "query-from_position": (lambda s: s.query(from_position=HUGE * 4), False),
    "query-from_version": (lambda s: s.query(from_version=HUGE), False),
    "get_events-from_version": (lambda s: s.get_events("a1", HUGE), False),
    "replay-from_position": (lambda s: list(s.replay(HUGE * 4)), False),
    "replay-page_size": (lambda s: list(s.replay(page_size=HUGE)), True),
}


@pytest.mark.parametrize("read", HUGE_READS.values(), ids=HUGE_READS.keys())
def test_integers_beyond_sqlite_range_are_handled(
    make_store: Callable[..., EventStore],
    read: tuple[Callable[[EventStore], list[Event]], bool],
) -> None:
    """A huge limit/offset/start either gives the obvious answer or raises
    InvalidQueryError, never a raw error from the driver."""
    store = make_store()
    stored = [store.append(create_agent_started_event("a1")) for _ in range(3)]
    function, everything = read
    try:
        result = function(store)
    except InvalidQueryError:
        return
    assert result == (stored if everything else [])
