"""Hostile input: every bad event, filter or call is a typed ``SwarmlogError``
with a clear message, and nothing already stored is lost.

Covers unknown event types, payloads of the wrong shape or types, naive and
non-UTC instants, oversize payloads, ids that are not UUIDs, malformed
envelopes and snapshots, wrongly typed and negative filters, SQL
metacharacters in every string filter, use after ``shutdown()``, and
listeners and projections that raise.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog import (
    Event,
    EventStore,
    InvalidEventError,
    InvalidQueryError,
    Projection,
    ProjectionFailedError,
    ProjectionStateError,
    Snapshot,
    StoreClosedError,
    StoreNotInitializedError,
    SwarmlogError,
    TaskCreated,
    TaskQueued,
    UnknownEventTypeError,
    create_agent_started_event,
    create_event,
    create_task_created_event,
    handles,
    query,
    register_event_type,
)

from .crash_child import CrashTick, TallyProjection
from .support import TIMEOUT, Recorder, assert_intact

if TYPE_CHECKING:
    from collections.abc import Callable

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))


def _good(task: str = "task-new") -> Event:
    return create_task_created_event(task, "build", "Title", "text", "high")


def _with(**changes: Any) -> Event:
    """A good event with some fields replaced (frozen Structs do not validate)."""
    return msgspec.structs.replace(_good(), **changes)


def _payload(**changes: Any) -> TaskCreated:
    return msgspec.structs.replace(_good().payload, **changes)


def _started(**changes: Any) -> Event:
    event = create_agent_started_event("agent-9")
    return msgspec.structs.replace(
        event, payload=msgspec.structs.replace(event.payload, **changes)
    )


# (id, the hostile event, the error, a fragment its message must contain)
BAD_EVENTS: list[tuple[str, Callable[[], Any], type[SwarmlogError], str]] = [
    (
        "unknown-type",
        lambda: _with(type="nope:never"),
        UnknownEventTypeError,
        "'nope:never' is not registered",
    ),
    ("type-not-a-string", lambda: _with(type=42), UnknownEventTypeError, "42"),
    (
        "payload-of-another-type",
        lambda: _with(payload=TaskQueued(task_id="t", priority="h", queued_at=NOW)),
        InvalidEventError,
        "needs a TaskCreated payload, got task:queued",
    ),
    (
        "payload-a-dict",
        lambda: _with(payload={"task_id": "t"}),
        InvalidEventError,
        "needs a TaskCreated payload",
    ),
    ("payload-none", lambda: _with(payload=None), InvalidEventError, "TaskCreated"),
    (
        "payload-field-of-wrong-type",
        lambda: _with(payload=_payload(task_id=5)),
        InvalidEventError,
        "malformed.*task_id",
    ),
    (
        "payload-tuple-of-ints",
        lambda: _with(payload=_payload(dependencies=(1, 2))),
        InvalidEventError,
        "malformed",
    ),
    (
        "naive-timestamp",
        lambda: _with(timestamp=datetime(2024, 1, 1)),
        InvalidEventError,
        "naive",
    ),
    (
        "non-utc-timestamp",
        lambda: _with(timestamp=datetime(2024, 1, 1, tzinfo=PLUS_TWO)),
        InvalidEventError,
        "UTC offset 2:00:00",
    ),
    (
        "timestamp-a-string",
        lambda: _with(timestamp="2024-01-01T00:00:00Z"),
        InvalidEventError,
        "must be a datetime",
    ),
    (
        "naive-datetime-in-payload",
        lambda: _started(started_at=datetime(2024, 1, 1)),
        InvalidEventError,
        "agent:started started_at is a naive datetime",
    ),
    (
        "non-utc-datetime-in-payload",
        lambda: _started(started_at=datetime(2024, 1, 1, tzinfo=PLUS_TWO)),
        InvalidEventError,
        "UTC offset",
    ),
    (
        "id-a-uuid-string",
        lambda: _with(id=str(uuid.uuid4())),
        InvalidEventError,
        "must be a uuid.UUID",
    ),
    ("id-an-int", lambda: _with(id=12345), InvalidEventError, "uuid.UUID"),
    ("id-none", lambda: _with(id=None), InvalidEventError, "uuid.UUID"),
    (
        "id-from-create-event",
        lambda: create_event(_good().payload, "task-new", event_id="not-a-uuid"),  # type: ignore[arg-type]
        InvalidEventError,
        "uuid.UUID",
    ),
    (
        "empty-aggregate-id",
        lambda: _with(aggregate_id=""),
        InvalidEventError,
        "aggregate_id",
    ),
    (
        "aggregate-id-an-int",
        lambda: _with(aggregate_id=7),
        InvalidEventError,
        "aggregate_id",
    ),
    (
        "aggregate-type-mismatch",
        lambda: _with(aggregate_type="agent"),
        InvalidEventError,
        "belongs to aggregate type 'task', not 'agent'",
    ),
    (
        "schema-version-mismatch",
        lambda: _with(schema_version=2),
        InvalidEventError,
        "schema version",
    ),
    ("metadata-a-list", lambda: _with(metadata=["x"]), InvalidEventError, "metadata"),
    (
        "metadata-int-keys",
        lambda: _with(metadata={1: "x"}),
        InvalidEventError,
        "metadata",
    ),
    (
        "metadata-unencodable",
        lambda: _with(metadata={"x": object()}),
        InvalidEventError,
        "cannot be encoded",
    ),
    (
        "metadata-int-too-big",
        lambda: _with(metadata={"x": 2**70}),
        InvalidEventError,
        "cannot be encoded",
    ),
    ("empty-source", lambda: _with(source=""), InvalidEventError, "source"),
    ("source-an-int", lambda: _with(source=3), InvalidEventError, "source"),
    (
        "causation-id-an-int",
        lambda: _with(causation_id=3),
        InvalidEventError,
        "causation_id",
    ),
    (
        "not-an-event",
        lambda: {"type": "task:created"},
        InvalidEventError,
        "expected a swarmlog Event, got dict",
    ),
]


class TestBadEvents:
    """Each malformed event is refused before any write, with a clear error."""

    @pytest.mark.parametrize(
        ("make", "error", "fragment"),
        [pytest.param(*case[1:], id=case[0]) for case in BAD_EVENTS],
    )
    def test_append_refuses_it(
        self,
        store: EventStore,
        known: list[Event],
        make: Callable[[], Any],
        error: type[SwarmlogError],
        fragment: str,
    ) -> None:
        """append raises the typed error; nothing is stored or lost."""
        with pytest.raises(error, match=fragment):
            store.append(make())
        assert_intact(store, known)
        assert store.append(_good()).position == len(known) + 1

    @pytest.mark.parametrize(
        ("make", "error"), [pytest.param(*case[1:3], id=case[0]) for case in BAD_EVENTS]
    )
    def test_append_many_refuses_the_whole_batch(
        self,
        store: EventStore,
        known: list[Event],
        make: Callable[[], Any],
        error: type[SwarmlogError],
    ) -> None:
        """One bad event among good ones: the batch is refused, nothing stored."""
        with pytest.raises(error):
            store.append_many([_good("task-a"), make(), _good("task-b")])
        with pytest.raises(error):
            store.append_async(make())
        assert_intact(store, known)


def test_oversize_events_are_refused_at_the_configured_limit(
    make_store: Callable[..., EventStore],
) -> None:
    """An event whose payload or metadata takes it over max_payload_bytes is
    an InvalidEventError naming the limit; nothing is stored."""
    store = make_store(max_payload_bytes=4096)
    small = store.append(create_task_created_event("big", "build", "T", "x", "low"))
    big_payload = create_task_created_event("big", "build", "T", "x" * 5000, "low")
    with pytest.raises(InvalidEventError, match="limit of 4096"):
        store.append(big_payload)
    big_metadata = create_task_created_event(
        "big", "build", "T", "x", "low", metadata={"x": "y" * 5000}
    )
    with pytest.raises(InvalidEventError, match="limit of 4096"):
        store.append(big_metadata)
    with pytest.raises(InvalidEventError, match="limit of 4096"):
        store.append_many([_good("fine"), big_payload])
    assert list(store.replay()) == [small]


@pytest.mark.parametrize(
    "expected", [-1, "3", 1.5, True, None, 2**70, object()], ids=repr
)
def test_wrong_expected_versions_are_refused(
    store: EventStore, known: list[Event], expected: Any
) -> None:
    """expected_version must be ANY, NO_STREAM, STREAM_EXISTS or an int >= 0."""
    with pytest.raises(InvalidEventError, match="expected_version"):
        store.append(_good(), expected_version=expected)
    with pytest.raises(InvalidEventError, match="expected_version"):
        store.append_many([_good()], expected_version={"task-new": expected})
    assert_intact(store, known)


SURROGATE = "\udc80"  # a lone surrogate: a str Python holds but UTF-8 cannot


@pytest.mark.parametrize(
    "field", ["aggregate_id", "source", "causation_id", "correlation_id"]
)
def test_unencodable_envelope_strings_are_refused(
    store: EventStore, known: list[Event], field: str
) -> None:
    """A lone surrogate in an envelope string is an InvalidEventError and the
    writer keeps working."""
    bad = create_event(_payload(task_id="t"), "task-new")
    bad = msgspec.structs.replace(bad, **{field: f"x{SURROGATE}"})
    with pytest.raises(InvalidEventError):  # not a raw UnicodeEncodeError
        store.append(bad)
    assert_intact(store, known)
    assert store.append(_good()).position == len(known) + 1  # writer not stopped


class TestBadSnapshots:
    """save_snapshot refuses malformed snapshots before any write."""

    @pytest.mark.parametrize(
        ("snapshot", "fragment"),
        [
            pytest.param(
                {"aggregate_id": "a"}, "expected a Snapshot", id="not-a-snapshot"
            ),
            pytest.param(
                Snapshot("", "task", 1, {}, NOW), "aggregate_id", id="empty-id"
            ),
            pytest.param(
                Snapshot("a", "", 1, {}, NOW), "aggregate_type", id="empty-type"
            ),
            pytest.param(Snapshot("a", "task", -1, {}, NOW), "version", id="negative"),
            pytest.param(
                Snapshot("a", "task", "1", {}, NOW), "version", id="str-version"
            ),
            pytest.param(
                Snapshot("a", "task", 1, {"x": object()}, NOW),
                "snapshot state cannot be encoded",
                id="unencodable-state",
            ),
            pytest.param(
                Snapshot("a", "task", 1, {}, datetime(2024, 1, 1)),
                "naive",
                id="naive-timestamp",
            ),
            pytest.param(
                Snapshot("a", "task", 1, {}, datetime(2024, 1, 1, tzinfo=PLUS_TWO)),
                "UTC offset",
                id="non-utc-timestamp",
            ),
        ],
    )
    def test_refused(
        self, store: EventStore, known: list[Event], snapshot: Any, fragment: str
    ) -> None:
        """A malformed snapshot is an InvalidEventError; nothing is stored."""
        with pytest.raises(InvalidEventError, match=fragment):
            store.save_snapshot(snapshot)
        assert store.get_snapshot("a") is None
        assert_intact(store, known)

    def test_unencodable_aggregate_id(self, store: EventStore) -> None:
        """A lone surrogate in a snapshot's aggregate id is a typed error, and the
        writer keeps working."""
        with pytest.raises(SwarmlogError):
            store.save_snapshot(Snapshot(f"a{SURROGATE}", "task", 1, {}, NOW))
        store.save_snapshot(Snapshot("a", "task", 1, {"ok": True}, NOW))
        assert store.append(_good()).position == 1

    def test_lower_version_never_replaces_higher(self, store: EventStore) -> None:
        """A stale snapshot save keeps the higher stored version."""
        store.save_snapshot(Snapshot("a", "task", 5, {"v": 5}, NOW))
        store.save_snapshot(Snapshot("a", "task", 3, {"v": 3}, NOW))
        snapshot = store.get_snapshot("a")
        assert snapshot is not None
        assert (snapshot.version, snapshot.state) == (5, {"v": 5})


# -- filters -------------------------------------------------------------------

BAD_READS: list[tuple[str, Callable[[EventStore], Any], str]] = [
    ("get_events-int", lambda s: s.get_events(5), "aggregate_id"),
    ("get_events-none", lambda s: s.get_events(None), "aggregate_id"),
    (
        "get_events-negative",
        lambda s: s.get_events("a", from_version=-1),
        "from_version",
    ),
    (
        "get_events-str-version",
        lambda s: s.get_events("a", from_version="1"),
        "from_version",
    ),
    (
        "get_events-bool-version",
        lambda s: s.get_events("a", from_version=True),
        "from_version",
    ),
    ("by-type-int", lambda s: s.get_events_by_type(5), "event_type"),
    ("query-ids-int", lambda s: s.query(aggregate_ids=5), "aggregate_ids"),
    ("query-ids-ints", lambda s: s.query(aggregate_ids=[1, 2]), "aggregate_ids"),
    ("query-ids-bytes", lambda s: s.query(aggregate_ids=b"task-1"), "aggregate_ids"),
    (
        "query-ids-with-none",
        lambda s: s.query(aggregate_ids=["a", None]),
        "aggregate_ids",
    ),
    ("query-types-int", lambda s: s.query(aggregate_types=5), "aggregate_types"),
    ("query-event-types-ints", lambda s: s.query(event_types=[1]), "event_types"),
    ("limit-negative", lambda s: s.query(limit=-1), "limit"),
    ("limit-str", lambda s: s.query(limit="3"), "limit"),
    ("limit-float", lambda s: s.query(limit=1.5), "limit"),
    ("limit-bool", lambda s: s.query(limit=True), "limit"),
    ("limit-huge", lambda s: s.query(limit=2**70), "limit"),
    ("offset-negative", lambda s: s.query(offset=-1), "offset"),
    ("offset-str", lambda s: s.query(offset="0"), "offset"),
    ("from-position-negative", lambda s: s.query(from_position=-5), "from_position"),
    ("from-version-negative", lambda s: s.query(from_version=-2), "from_version"),
    (
        "after-a-string",
        lambda s: s.query(after_timestamp="2024-01-01"),
        "after_timestamp",
    ),
    (
        "after-naive",
        lambda s: s.query(after_timestamp=datetime(2024, 1, 1)),
        "naive",
    ),
    (
        "before-non-utc",
        lambda s: s.query(before_timestamp=datetime(2024, 1, 1, tzinfo=PLUS_TWO)),
        "UTC offset",
    ),
    ("before-an-int", lambda s: s.query(before_timestamp=5), "before_timestamp"),
    ("replay-negative", lambda s: s.replay(from_position=-1), "from_position"),
    ("replay-str", lambda s: s.replay(from_position="1"), "from_position"),
    ("replay-page-zero", lambda s: s.replay(page_size=0), "page_size"),
    ("replay-page-negative", lambda s: s.replay(page_size=-5), "page_size"),
    ("get-snapshot-int", lambda s: s.get_snapshot(5), "aggregate_id"),
]


@pytest.mark.parametrize(
    ("read", "fragment"), [pytest.param(*case[1:], id=case[0]) for case in BAD_READS]
)
def test_bad_filters_are_typed_errors(
    store: EventStore,
    known: list[Event],
    read: Callable[[EventStore], Any],
    fragment: str,
) -> None:
    """A wrongly typed or negative filter is an InvalidQueryError naming it."""
    with pytest.raises(InvalidQueryError, match=fragment):
        read(store)
    assert_intact(store, known)


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda s: s.get_events(SURROGATE), id="get_events"),
        pytest.param(
            lambda s: s.get_events_by_type(SURROGATE), id="get_events_by_type"
        ),
        pytest.param(lambda s: s.query(aggregate_ids=[SURROGATE]), id="aggregate_ids"),
        pytest.param(
            lambda s: s.query(aggregate_types=[SURROGATE]), id="aggregate_types"
        ),
        pytest.param(lambda s: s.query(event_types=[SURROGATE]), id="event_types"),
        pytest.param(lambda s: s.get_snapshot(SURROGATE), id="get_snapshot"),
    ],
)
def test_unencodable_filter_strings_are_typed_errors(
    store: EventStore, known: list[Event], read: Callable[[EventStore], Any]
) -> None:
    """A lone surrogate in a string filter is an InvalidQueryError (it cannot
    match anything stored), never a raw UnicodeEncodeError."""
    try:  # a raw UnicodeEncodeError propagates and fails the test
        result = read(store)
    except InvalidQueryError:
        result = None
    assert result in ([], None)
    assert_intact(store, known)


def test_documented_edge_values_are_not_errors(
    store: EventStore, known: list[Event]
) -> None:
    """limit=0 gives [], offset works without limit, a str is one id."""
    assert store.query(limit=0) == []
    assert store.query(offset=1) == known[1:]
    assert store.query(aggregate_ids="task-2") == [known[1]]
    assert store.query(offset=10**6) == []
    assert store.get_events("task-1", from_version=10**6) == []
    assert list(store.replay(from_position=10**6)) == []


NASTY = (
    "x' OR 1=1 --",
    "%",
    "_",
    "%%",
    "a%",
    "_a",
    "*",
    "\\",
    "'",
    '"',
    "[a]",
    "?",
    "'; DROP TABLE events; --",
    "a\x00b",
    "",
)
"""Strings that would widen a query built by concatenation or LIKE."""

_NASTY_CLASSES: dict[str, type[msgspec.Struct]] = {}


def _nasty_class(i: int, nasty: str) -> type[msgspec.Struct]:
    """A payload class whose type and aggregate type contain ``nasty``."""
    cls = _NASTY_CLASSES.get(nasty)
    if cls is None:
        cls = msgspec.defstruct(f"Nasty{i}", [("text", str)], frozen=True)
        register_event_type(
            cls, type=f"nasty:{nasty}", aggregate_type=f"nasty-agg:{nasty}"
        )
        _NASTY_CLASSES[nasty] = cls
    return cls


def test_sql_metacharacters_in_every_string_filter_match_exactly(
    store: EventStore,
) -> None:
    """Every string filter compares for equality: metacharacters match only
    themselves, never widen the result, and never run as SQL."""
    stored: list[Event] = []
    for i, nasty in enumerate(NASTY):
        cls = _nasty_class(i, nasty)
        for aggregate in (nasty or "empty", f"{nasty}-other"):
            stored.append(store.append(create_event(cls(text=nasty), aggregate)))
        for decoy in (f"task:{nasty}", f"{nasty}!"):  # what a LIKE would match
            stored.append(store.append(_good(decoy)))
        snapshot = Snapshot(nasty or "empty", f"nasty-agg:{nasty}", 1, [nasty], NOW)
        store.save_snapshot(snapshot)
    for nasty in NASTY:
        type_ = f"nasty:{nasty}"
        aggregate_type = f"nasty-agg:{nasty}"
        aggregate = nasty or "empty"

        def exact(predicate: Callable[[Event], bool]) -> list[Event]:
            return [e for e in stored if predicate(e)]

        assert store.get_events(aggregate) == exact(
            lambda e, a=aggregate: e.aggregate_id == a
        ), f"get_events({aggregate!r})"
        assert store.query(aggregate_ids=[aggregate]) == exact(
            lambda e, a=aggregate: e.aggregate_id == a
        ), f"aggregate_ids {aggregate!r}"
        assert store.query(event_types=[type_]) == exact(
            lambda e, t=type_: e.type == t
        ), f"event_types {type_!r}"
        assert store.get_events_by_type(type_) == exact(lambda e, t=type_: e.type == t)
        assert store.query(aggregate_types=[aggregate_type]) == exact(
            lambda e, t=aggregate_type: e.aggregate_type == t
        ), f"aggregate_types {aggregate_type!r}"
        assert store.query(
            aggregate_ids=[aggregate],
            event_types=[type_],
            aggregate_types=[aggregate_type],
        ) == exact(lambda e, a=aggregate, t=type_: (e.aggregate_id, e.type) == (a, t))
        # the bare metacharacters match no type or aggregate type
        assert store.query(event_types=[nasty]) == []
        assert store.query(aggregate_types=[nasty]) == []
        snapshot = store.get_snapshot(aggregate)
        assert snapshot is not None
        assert snapshot.state == [nasty]
        assert store.get_snapshot(f"zz{nasty}") is None
    assert list(store.replay()) == stored  # nothing dropped, nothing added
    assert store.get_stats().total_events == len(stored)


# -- lifecycle -------------------------------------------------------------------

_CALLS_AFTER_SHUTDOWN: list[tuple[str, Callable[[EventStore], Any]]] = [
    ("append", lambda s: s.append(_good())),
    ("append_many", lambda s: s.append_many([_good()])),
    ("append_many-empty", lambda s: s.append_many([])),
    ("append_async", lambda s: s.append_async(_good())),
    ("append_many_async", lambda s: s.append_many_async([_good()])),
    ("get_events", lambda s: s.get_events("task-1")),
    ("get_events_by_type", lambda s: s.get_events_by_type("task:created")),
    ("query", lambda s: s.query()),
    ("replay", lambda s: s.replay()),
    ("save_snapshot", lambda s: s.save_snapshot(Snapshot("a", "task", 1, {}, NOW))),
    ("get_snapshot", lambda s: s.get_snapshot("a")),
    ("get_stats", lambda s: s.get_stats()),
    ("persist", lambda s: s.persist()),
    ("initialize", lambda s: s.initialize()),
    ("projection", lambda s: TallyProjection(s).initialize()),
]


@pytest.mark.parametrize(
    "call", [pytest.param(c, id=name) for name, c in _CALLS_AFTER_SHUTDOWN]
)
def test_use_after_shutdown_is_store_closed_error(
    make_store: Callable[..., EventStore], call: Callable[[EventStore], Any]
) -> None:
    """Every call on a shut-down store raises StoreClosedError."""
    store = make_store()
    store.append(_good())
    store.shutdown()
    with pytest.raises(StoreClosedError, match="shut"):
        call(store)
    store.shutdown()  # a second shutdown is harmless


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(c, id=name)
        for name, c in _CALLS_AFTER_SHUTDOWN
        if name not in ("initialize", "append_many-empty")
    ],
)
def test_use_before_initialize_is_a_typed_error(
    call: Callable[[EventStore], Any],
) -> None:
    """Every call before initialize() raises StoreNotInitializedError."""
    store = EventStore()
    with pytest.raises(StoreNotInitializedError, match="initialize"):
        call(store)
    store.shutdown()


def test_replay_generator_after_shutdown(make_store: Callable[..., EventStore]) -> None:
    """A replay started before shutdown raises StoreClosedError on its next page."""
    store = make_store()
    store.append_many([_good(f"t{i}") for i in range(5)])
    pages = store.replay(page_size=2)
    assert next(pages).position == 1
    assert next(pages).position == 2
    store.shutdown()
    with pytest.raises(StoreClosedError):
        list(pages)


def test_appends_racing_shutdown_are_acknowledged_or_refused(tmp_path: Any) -> None:
    """Appends from threads during shutdown either return (and are stored) or
    raise StoreClosedError; none hangs, none is lost."""
    path = str(tmp_path / "race.db")
    store = EventStore(path).initialize()
    acknowledged: list[Event] = []
    problems: list[BaseException] = []
    started = threading.Barrier(5)

    def appender(k: int) -> None:
        started.wait(TIMEOUT)
        for i in range(10_000):
            try:
                acknowledged.append(store.append(_good(f"r{k}-{i}")))
            except StoreClosedError:
                return
            except BaseException as error:
                problems.append(error)
                return

    threads = [threading.Thread(target=appender, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    started.wait(TIMEOUT)
    while len(acknowledged) < 50 and all(t.is_alive() for t in threads):
        threading.Event().wait(0.001)
    store.shutdown()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads), "an append hung in shutdown"
    assert not problems, problems
    with EventStore(path) as reopened:
        stored = {e.id: e for e in reopened.replay()}
        assert all(stored.get(e.id) == e for e in acknowledged)
        assert reopened.head_position == len(stored)


# -- listeners and projections that raise ---------------------------------------


def _boom(*_: Any) -> None:
    msg = "listener boom"
    raise RuntimeError(msg)


def test_raising_listeners_do_not_break_appends(store: EventStore) -> None:
    """A listener that raises is isolated: appends, snapshots, persist and
    the other listeners go on."""
    recorder = Recorder()
    for name in ("event:appended", "snapshot:saved", "persisted", "error"):
        store.on(name, _boom)
    store.on("event:appended", recorder)
    stored = [store.append(_good(f"l{i}")) for i in range(20)]
    stored += store.append_many([_good(f"m{i}") for i in range(5)])
    store.save_snapshot(Snapshot("l1", "task", 1, {}, NOW))
    store.persist()
    assert recorder.wait_for(25) == stored
    assert store.append(_good("after")).position == 26


class Failing(Projection):
    """Raises on every event it handles."""

    name = "reliability-failing"

    @handles(CrashTick)
    def _on_tick(self, event: Event) -> None:
        msg = f"handler boom at {event.position}"
        raise RuntimeError(msg)

    @query
    def nothing(self) -> None:
        return None


class BadSnapshots(TallyProjection):
    """A healthy model whose snapshots always fail to be taken or restored."""

    name = "reliability-bad-snapshots"

    def snapshot_state(self) -> Any:
        msg = "snapshot boom"
        raise RuntimeError(msg)


def _ticks(n: int, start: int = 0) -> list[Event]:
    return [
        create_event(CrashTick(n=i, writer="p"), f"proj-{i % 3}")
        for i in range(start, start + n)
    ]


def test_raising_projection_does_not_break_appends(
    make_store: Callable[..., EventStore],
) -> None:
    """A projection whose handler raises fails alone, with a typed error naming
    the position; appends and other projections go on."""
    store = make_store(projection_snapshot_every=3)
    failing = Failing(store, max_retries=1, retry_backoff=0).initialize()
    healthy = TallyProjection(store).initialize()
    bad_snapshots = BadSnapshots(store).initialize()
    stored = [store.append(e) for e in _ticks(20)]
    head = store.head_position
    assert [e.position for e in stored] == list(range(1, 21))
    with pytest.raises(ProjectionFailedError, match="at position 1") as info:
        failing.nothing()
    assert info.value.position == 1
    assert failing.status == "failed"
    assert healthy.state() == TallyProjection.as_of(store, head).state()
    assert bad_snapshots.state() == healthy.state()  # snapshots fail, model fine
    assert store.append_many(_ticks(5, 20))[-1].position == 25
    healthy.wait_for(25, timeout=TIMEOUT)
    assert healthy.state()["events"] == 25


def test_projection_with_a_skip_policy_collects_dead_letters(
    store: EventStore,
) -> None:
    """on_failure='skip' turns each failing event into a dead letter and goes on."""

    class Skipping(Failing):
        name = "reliability-skipping"

    skipping = Skipping(store, on_failure="skip").initialize()
    for event in _ticks(4):
        store.append(event)
    skipping.wait_for(4, timeout=TIMEOUT)
    letters = skipping.get_dead_letters()
    assert [letter.position for letter in letters] == [1, 2, 3, 4]
    assert all("handler boom" in letter.error for letter in letters)
    assert store.append(_good()).position == 5


def test_projection_whose_snapshot_cannot_be_restored_rebuilds(tmp_path: Any) -> None:
    """A stored projection snapshot that no longer decodes is ignored: the
    projection rebuilds from the log and ends up right."""
    path = str(tmp_path / "restore.db")
    with EventStore(path, projection_snapshot_every=2) as store:
        TallyProjection(store).initialize()
        for event in _ticks(10):
            store.append(event)

    class Reshaped(TallyProjection):
        state_type = list[int]  # the stored snapshot does not decode as this

    with EventStore(path) as store:
        projection = Reshaped(store).initialize()
        projection.wait_for(10, timeout=TIMEOUT)
        assert projection.state() == TallyProjection.as_of(store, 10).state()
        assert store.append(_ticks(1, 10)[0]).position == 11


def test_projection_query_that_raises_reaches_the_caller_only(
    store: EventStore,
) -> None:
    """An exception inside a query body reaches its caller; the projection
    stays live."""

    class Picky(TallyProjection):
        name = "reliability-picky"

        @query
        def explode(self) -> None:
            msg = "query boom"
            raise ValueError(msg)

    picky = Picky(store).initialize()
    store.append(_ticks(1)[0])
    with pytest.raises(ValueError, match="query boom"):
        picky.explode()
    store.append(_ticks(1, 1)[0])
    assert picky.state()["events"] == 2
    assert picky.status == "live"
    with pytest.raises(ProjectionStateError):
        Picky(store).initialize()  # a second one with the same name
