"""Schema evolution: old events come back in today's shape, old files are
migrated, newer files are refused.

The store files are written by child processes running the old code (event
types registered at schema version 1, then 2, see ``evolution_child.py``);
this process registers version 3 of the same type with a chain of upcasters
(1 -> 2 -> 3) and must read every event as version 3 on every read path --
get_events, get_events_by_type, query, replay, a live projection (catch-up,
snapshot restore, rebuild, ``as_of``) and a read-only store -- without the
log being rewritten.

Store format: a file newer than the code is refused with
``IncompatibleStoreError``; opening a current file is idempotent; the
migration machinery (``_MIGRATIONS``, empty while format 1 is the first) is
exercised with a stand-in migration from the previous format.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from swarmlog import (
    Event,
    EventDecodeError,
    EventStore,
    IncompatibleStoreError,
    Projection,
    SwarmlogError,
    create_event,
    handles,
    query,
    register_event_type,
    register_upcaster,
)
from swarmlog.actors.sqlite import storage as sqlite_storage
from swarmlog.schema import sql

from .evolution_child import AGGREGATE_TYPE
from .support import TIMEOUT, open_refused

CHILD = Path(__file__).with_name("evolution_child.py")
THING = "evo:thing"
GAP = "evo:gap"
FAILING = "evo:failing"
FUTURE = "evo:future"
UNKNOWN = "evo:unknown-here"


class ThingV3(msgspec.Struct, frozen=True, kw_only=True):
    """Today's shape: a priority was added (derived from the title)."""

    title: str
    tags: tuple[str, ...] = ()
    priority: int = 0


class GapV3(msgspec.Struct, frozen=True, kw_only=True):
    """Version 3 of a type whose 2 -> 3 upcaster is missing."""

    title: str
    priority: int


class FailingV2(msgspec.Struct, frozen=True, kw_only=True):
    """Version 2 of a type whose upcaster raises."""

    title: str


class FutureV2(msgspec.Struct, frozen=True, kw_only=True):
    """Version 2 of a type stored at version 5 by newer code."""

    title: str


def _v1_to_v2(old: dict[str, Any]) -> dict[str, Any]:
    return {"title": old["name"], "tags": []}


def _v2_to_v3(old: dict[str, Any]) -> dict[str, Any]:
    return {**old, "priority": len(old["title"])}


def _explode(old: dict[str, Any]) -> dict[str, Any]:
    return {"title": old["missing-field"]}


register_event_type(
    ThingV3, type=THING, aggregate_type=AGGREGATE_TYPE, schema_version=3
)
register_upcaster(THING, 1, _v1_to_v2)
register_upcaster(THING, 2, _v2_to_v3)
register_event_type(GapV3, type=GAP, aggregate_type=AGGREGATE_TYPE, schema_version=3)
register_upcaster(GAP, 1, lambda old: {"title": old["name"]})
register_event_type(
    FailingV2, type=FAILING, aggregate_type=AGGREGATE_TYPE, schema_version=2
)
register_upcaster(FAILING, 1, _explode)
register_event_type(
    FutureV2, type=FUTURE, aggregate_type=AGGREGATE_TYPE, schema_version=2
)


def _write_with_old_code(path: Path, events: list[list[Any]]) -> list[int]:
    """Append ``events`` from a child process running the old event shapes."""
    config = msgspec.json.encode({"path": str(path), "events": events}).decode()
    done = subprocess.run(
        [sys.executable, str(CHILD), config],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return msgspec.json.decode(done.stdout)  # type: ignore[no-any-return]


def _schema_versions(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT schema_version FROM events ORDER BY position")
        return [row[0] for row in rows]
    finally:
        conn.close()


EXPECTED = [  # (aggregate, ThingV3) in position order; position 5 is UNKNOWN
    ("e-1", ThingV3(title="alpha", tags=(), priority=5)),
    ("e-1", ThingV3(title="beta", tags=(), priority=4)),
    ("e-2", ThingV3(title="gamma", tags=(), priority=5)),
    ("e-3", ThingV3(title="delta", tags=(), priority=5)),
    ("e-1", ThingV3(title="epsilon", tags=("x",), priority=7)),
    ("e-2", ThingV3(title="zeta", tags=(), priority=4)),
    ("e-4", ThingV3(title="eta", tags=("y", "z"), priority=3)),
    ("e-1", ThingV3(title="theta", tags=(), priority=9)),
    ("e-4", ThingV3(title="iota", tags=("w",), priority=1)),
]


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    """A store written by v1 code, then v2 code, then this (v3) code."""
    path = tmp_path / "old.db"
    v1 = [
        [THING, 1, "e-1", {"name": "alpha"}],
        [THING, 1, "e-1", {"name": "beta"}],
        [THING, 1, "e-2", {"name": "gamma"}],
        [THING, 1, "e-3", {"name": "delta"}],
        [UNKNOWN, 1, "u-1", {"name": "from another app"}],
    ]
    assert _write_with_old_code(path, v1) == [1, 2, 3, 4, 5]
    v2 = [
        [THING, 2, "e-1", {"title": "epsilon", "tags": ["x"]}],
        [THING, 2, "e-2", {"title": "zeta"}],
        [THING, 2, "e-4", {"title": "eta", "tags": ["y", "z"]}],
    ]
    assert _write_with_old_code(path, v2) == [6, 7, 8]
    with EventStore(str(path)) as store:
        for aggregate, payload in EXPECTED[7:]:
            store.append(create_event(payload, aggregate))
    return path


def _things(events: list[Event]) -> list[tuple[str, ThingV3]]:
    result = []
    for event in events:
        if event.type != THING:
            continue
        assert event.schema_version == 3, event
        assert type(event.payload) is ThingV3, event
        result.append((event.aggregate_id, event.payload))
    return result


class ThingTitles(Projection):
    """Every thing's (position, title, priority, tags), in order."""

    name = "evo-things"
    state_type = list[tuple[int, str, int, tuple[str, ...]]]

    def reset_state(self) -> None:
        self._seen: list[tuple[int, str, int, tuple[str, ...]]] = []

    @handles(ThingV3)
    def _on_thing(self, event: Event) -> None:
        thing = event.payload
        assert isinstance(thing, ThingV3)  # a handler sees today's shape
        self._seen.append((event.position, thing.title, thing.priority, thing.tags))

    def snapshot_state(self) -> list[tuple[int, str, int, tuple[str, ...]]]:
        return self._seen

    def restore_state(self, state: list[tuple[int, str, int, tuple[str, ...]]]) -> None:
        self._seen = list(state)

    @query
    def seen(self) -> list[tuple[int, str, int, tuple[str, ...]]]:
        return list(self._seen)


def _expected_seen() -> list[tuple[int, str, int, tuple[str, ...]]]:
    positions = [1, 2, 3, 4, 6, 7, 8, 9, 10]
    return [
        (position, thing.title, thing.priority, thing.tags)
        for position, (_, thing) in zip(positions, EXPECTED, strict=True)
    ]


class TestUpcastingOnEveryReadPath:
    """Events stored at versions 1 and 2 read back as version 3 everywhere."""

    def test_get_events(self, old_store: Path) -> None:
        """get_events upcasts each aggregate's stream."""
        with EventStore(str(old_store)) as store:
            for aggregate in ("e-1", "e-2", "e-3", "e-4"):
                stream = store.get_events(aggregate)
                assert _things(stream) == [p for p in EXPECTED if p[0] == aggregate]
                assert [e.version for e in stream] == list(range(1, len(stream) + 1))
            assert (
                _things(store.get_events("e-1", from_version=2))
                == [p for p in EXPECTED if p[0] == "e-1"][1:]
            )

    def test_get_events_by_type_and_query(self, old_store: Path) -> None:
        """get_events_by_type and query upcast, with every filter."""
        with EventStore(str(old_store)) as store:
            assert _things(store.get_events_by_type(THING)) == EXPECTED
            assert _things(store.query(aggregate_types=[AGGREGATE_TYPE])) == EXPECTED
            assert (
                _things(store.query(event_types=[THING], from_position=3, limit=4))
                == (EXPECTED[2:6])
            )
            assert _things(store.query(aggregate_ids=["e-4", "e-3"])) == [
                EXPECTED[3],
                EXPECTED[6],
                EXPECTED[8],
            ]

    def test_replay(self, old_store: Path) -> None:
        """replay upcasts page by page."""
        with EventStore(str(old_store)) as store:
            replayed = list(store.replay(page_size=2))
            assert [e.position for e in replayed] == list(range(1, 11))
            assert _things(replayed) == EXPECTED

    def test_projections(self, old_store: Path) -> None:
        """A projection's catch-up, snapshot restore, rebuild and as_of all see
        version 3."""
        with EventStore(str(old_store), projection_snapshot_every=2) as store:
            projection = ThingTitles(store).initialize()
            projection.wait_for(10, timeout=TIMEOUT)
            assert projection.seen() == _expected_seen()
            assert ThingTitles.as_of(store, 10).seen() == _expected_seen()
            assert ThingTitles.as_of(store, 4).seen() == _expected_seen()[:4]
            projection.rebuild(timeout=TIMEOUT)
            assert projection.seen() == _expected_seen()
        with EventStore(str(old_store)) as store:  # restored from its snapshot
            projection = ThingTitles(store).initialize()
            projection.wait_for(10, timeout=TIMEOUT)
            assert projection.get_status().snapshot_position > 0
            assert projection.seen() == _expected_seen()

    def test_read_only_store(self, old_store: Path) -> None:
        """A read-only store upcasts too."""
        with EventStore(str(old_store), read_only=True) as store:
            assert _things(list(store.replay())) == EXPECTED

    def test_the_log_is_not_rewritten(self, old_store: Path) -> None:
        """Reading upcasts in memory only: stored schema versions stay as written."""
        before = _schema_versions(old_store)
        assert before == [1, 1, 1, 1, 1, 2, 2, 2, 3, 3]
        with EventStore(str(old_store)) as store:
            list(store.replay())
            store.get_events("e-1")
            store.append(create_event(ThingV3(title="kappa"), "e-5"))
        assert _schema_versions(old_store) == [*before, 3]

    def test_unregistered_type_reads_as_plain_data(self, old_store: Path) -> None:
        """A type this process never registered comes back with plain data."""
        with EventStore(str(old_store)) as store:
            (unknown,) = store.get_events("u-1")
        assert unknown.type == UNKNOWN
        assert unknown.position == 5
        assert unknown.payload == {"name": "from another app"}


@pytest.mark.parametrize(
    ("event_type", "version", "payload", "reason"),
    [
        pytest.param(
            GAP,
            1,
            {"name": "n"},
            f"no upcaster registered for '{GAP}' from schema version 2",
            id="missing-upcaster",
        ),
        pytest.param(FAILING, 1, {"name": "n"}, "KeyError", id="failing-upcaster"),
        pytest.param(
            FUTURE,
            5,
            {"title": "t", "colour": "red"},
            "newer than this code's 2",
            id="newer-than-the-code",
        ),
    ],
)
def test_events_that_cannot_be_upcast_are_typed_errors(
    tmp_path: Path, event_type: str, version: int, payload: Any, reason: str
) -> None:
    """No upcaster, a failing one, or a newer stored version: EventDecodeError
    naming the position and the reason; the other events stay readable."""
    path = tmp_path / "bad.db"
    events = [
        [THING, 1, "ok-1", {"name": "fine"}],
        [event_type, version, "bad-1", payload],
        [THING, 1, "ok-2", {"name": "also fine"}],
    ]
    assert _write_with_old_code(path, events) == [1, 2, 3]
    with EventStore(str(path)) as store:
        with pytest.raises(EventDecodeError, match="position 2") as info:
            store.get_events("bad-1")
        assert info.value.position == 2
        assert reason in str(info.value)
        with pytest.raises(EventDecodeError, match=reason):
            list(store.replay())
        assert _things(store.query(aggregate_ids=["ok-1", "ok-2"])) == [
            ("ok-1", ThingV3(title="fine", priority=4)),
            ("ok-2", ThingV3(title="also fine", priority=9)),
        ]
        assert store.append(create_event(ThingV3(title="t"), "ok-3")).position == 4


# -- store format ------------------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pragma(path: Path, name: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"PRAGMA {name}").fetchone()[0])
    finally:
        conn.close()


def _set_user_version(path: Path, version: int) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"PRAGMA user_version = {version}")
        conn.commit()
    finally:
        conn.close()


@pytest.fixture
def current_file(tmp_path: Path) -> Path:
    """A cleanly shut down store of the current format with three events."""
    path = tmp_path / "current.db"
    with EventStore(str(path)) as store:
        for title in ("a", "b", "c"):
            store.append(create_event(ThingV3(title=title), "fmt"))
    return path


@pytest.mark.parametrize("newer", [sql.FORMAT_VERSION + 1, 99])
@pytest.mark.parametrize("read_only", [False, True])
def test_newer_format_is_refused(
    current_file: Path, newer: int, read_only: bool
) -> None:
    """A file of a newer format is an IncompatibleStoreError saying to upgrade;
    the file is unchanged."""
    _set_user_version(current_file, newer)
    assert _pragma(current_file, "application_id") == sql.APPLICATION_ID
    before = _digest(current_file)
    error = open_refused(
        str(current_file),
        IncompatibleStoreError,
        "upgrade swarmlog",
        read_only=read_only,
    )
    assert f"store format {newer} is newer" in str(error)
    assert _digest(current_file) == before


def test_opening_a_current_file_is_idempotent(current_file: Path) -> None:
    """Reopening a current store changes neither its format, its schema nor
    its events."""

    def layout() -> tuple[int, int, list[Any]]:
        conn = sqlite3.connect(current_file)
        try:
            schema = conn.execute(
                "SELECT type, name, sql FROM sqlite_master ORDER BY name"
            ).fetchall()
        finally:
            conn.close()
        return (
            _pragma(current_file, "application_id"),
            _pragma(current_file, "user_version"),
            schema,
        )

    before = layout()
    assert before[:2] == (sql.APPLICATION_ID, sql.FORMAT_VERSION)
    with EventStore(str(current_file)) as store:
        events = list(store.replay())
    for _ in range(3):
        with EventStore(str(current_file)) as store:
            assert list(store.replay()) == events
        assert layout() == before


def _make_previous_format(path: Path) -> tuple[int, str]:
    """Turn a current store into a stand-in for the previous format: one
    index missing and ``user_version`` one lower. Returns (format, the
    index's SQL)."""
    conn = sqlite3.connect(path)
    try:
        name, index_sql = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'events' AND sql IS NOT NULL ORDER BY name LIMIT 1"
        ).fetchone()
        conn.execute(f"DROP INDEX {name}")
        conn.execute(f"PRAGMA user_version = {sql.FORMAT_VERSION - 1}")
        conn.commit()
    finally:
        conn.close()
    return sql.FORMAT_VERSION - 1, index_sql


def _index_count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(
            conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
            ).fetchone()[0]
        )
    finally:
        conn.close()


def test_older_format_is_migrated_on_open_once(
    current_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file one format behind is migrated when a writer opens it, exactly
    once, keeping every event (stand-in migration: recreate an index)."""
    with EventStore(str(current_file)) as store:
        events = list(store.replay())
    indexes = _index_count(current_file)
    old, index_sql = _make_previous_format(current_file)
    steps = (
        index_sql,
        "CREATE TABLE IF NOT EXISTS test_migration_runs (n INTEGER)",
        "INSERT INTO test_migration_runs VALUES (1)",
    )
    monkeypatch.setitem(sqlite_storage._MIGRATIONS, old, steps)
    for _ in range(2):
        with EventStore(str(current_file)) as store:
            assert list(store.replay()) == events
            assert store.append(create_event(ThingV3(title="new"), "fmt")).position
            events = list(store.replay())
    assert _pragma(current_file, "user_version") == sql.FORMAT_VERSION
    assert _index_count(current_file) == indexes
    conn = sqlite3.connect(current_file)
    try:
        runs = conn.execute("SELECT count(*) FROM test_migration_runs").fetchone()[0]
    finally:
        conn.close()
    assert runs == 1


def test_failing_migration_leaves_the_file_as_it_was(
    current_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration step that fails is rolled back whole: a typed error, the
    old format and every event kept."""
    old, index_sql = _make_previous_format(current_file)
    indexes = _index_count(current_file)
    monkeypatch.setitem(
        sqlite_storage._MIGRATIONS,
        old,
        (index_sql, "ALTER TABLE no_such_table ADD COLUMN x"),
    )
    store = EventStore(str(current_file))
    try:
        with pytest.raises(SwarmlogError, match="no_such_table"):
            store.initialize()
    finally:
        store.shutdown()
    assert _pragma(current_file, "user_version") == old
    assert _index_count(current_file) == indexes  # the first step was undone
    monkeypatch.setitem(sqlite_storage._MIGRATIONS, old, (index_sql,))
    with EventStore(str(current_file)) as store:
        assert [e.payload.title for e in store.replay()] == ["a", "b", "c"]


def test_older_format_without_a_migration_is_refused(current_file: Path) -> None:
    """A file of an older format that no migration covers is an
    IncompatibleStoreError; the file is unchanged."""
    _set_user_version(current_file, 0)
    before = _digest(current_file)
    open_refused(
        str(current_file), IncompatibleStoreError, "no migration from store format 0"
    )
    assert _digest(current_file) == before


def test_read_only_open_of_an_older_format_is_refused(current_file: Path) -> None:
    """A read-only store cannot migrate, so an older format is refused."""
    _set_user_version(current_file, 0)
    open_refused(str(current_file), IncompatibleStoreError, "format 0", read_only=True)
