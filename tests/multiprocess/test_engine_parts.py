"""Parts of the multi-process engine, one at a time (one process, two
writing connections on one file: their sidecar locks exclude each other as
two processes' do).

- The catch-up at the start of a round, with nobody listening, folds the
  versions other connections committed into the version cache (it stays
  exact and warm); past a page of foreign events, or when that read fails,
  it empties the cache instead. Either way planning sees committed state.
- The change watcher skips its look while this process's head moves (its
  writer catches up every round) and looks once the head stands still, or
  when the head moved only because the watcher asked for a catch-up.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import EventStore, create_task_created_event
from swarmlog.actors.catch_up import PAGE, SharedRounds
from swarmlog.actors.follower import REST_AFTER, ChangeWatcher
from swarmlog.actors.known_versions import KnownVersions
from swarmlog.actors.publisher import Publisher
from swarmlog.actors.runtime import Audience, CommitHead
from swarmlog.actors.sqlite.shared import SQLiteSharedWriteStorage
from swarmlog.schema.codec import prepare_event
from swarmlog.schema.errors import StorageError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


class _NoListeners:
    wants_events = False


class _Loads:
    """The cache's loader: counts the look-ups it had to make."""

    def __init__(self, storage: SQLiteSharedWriteStorage) -> None:
        self.storage = storage
        self.asked: list[str] = []

    def __call__(self, aggregate_id: str) -> tuple[str, int] | None:
        self.asked.append(aggregate_id)
        return self.storage.aggregate(aggregate_id)


@pytest.fixture
def pair(
    db: str,
) -> Iterator[tuple[SQLiteSharedWriteStorage, SQLiteSharedWriteStorage]]:
    EventStore(db, multi_process=True).initialize().shutdown()
    mine = SQLiteSharedWriteStorage(db, "normal", None, 5.0)
    theirs = SQLiteSharedWriteStorage(db, "normal", None, 5.0)
    try:
        yield mine, theirs
    finally:
        mine.close()
        theirs.close()


def _commit(storage: SQLiteSharedWriteStorage, aggregates: list[str]) -> None:
    """One round of ``storage``: each aggregate's next version."""
    head = storage.begin_round(5.0)
    rows = []
    versions: dict[str, int] = {}
    for offset, aggregate_id in enumerate(aggregates):
        if aggregate_id not in versions:
            state = storage.aggregate(aggregate_id)
            versions[aggregate_id] = 0 if state is None else state[1]
        versions[aggregate_id] += 1
        version = versions[aggregate_id]
        event = create_task_created_event(aggregate_id, "parts", "T", "", "low")
        rows.append(prepare_event(event, 1 << 20).row(version, head + offset + 1))
    storage.write_events(rows, len(rows))


def _rounds(
    storage: SQLiteSharedWriteStorage,
) -> tuple[SharedRounds, KnownVersions, CommitHead, _Loads]:
    head = CommitHead(storage.head())
    loads = _Loads(storage)
    known = KnownVersions(loads)
    publisher = Publisher(None, Audience(_NoListeners()))  # type: ignore[arg-type]
    return SharedRounds(head, known, publisher, 5.0), known, head, loads


def test_round_folds_foreign_versions_into_the_cache(
    pair: tuple[SQLiteSharedWriteStorage, SQLiteSharedWriteStorage],
) -> None:
    mine, theirs = pair
    rounds, known, head, loads = _rounds(mine)
    _commit(theirs, ["a", "b"])
    assert known.state("a") == ("task", 1)  # cached now (one look-up)
    _commit(theirs, ["a", "c", "a"])  # a twice: its last version counts
    rounds.begin(mine)
    mine.abort_round()
    assert head.position == 5
    loads.asked.clear()
    assert known.state("a") == ("task", 3)
    assert known.state("c") == ("task", 1)
    assert loads.asked == []  # exact from the catch-up, no look-up


def test_round_forgets_the_cache_past_a_page_of_foreign_events(
    pair: tuple[SQLiteSharedWriteStorage, SQLiteSharedWriteStorage],
) -> None:
    mine, theirs = pair
    rounds, known, head, loads = _rounds(mine)
    assert known.state("a") is None
    _commit(theirs, ["a"] + [f"x{k}" for k in range(PAGE)])
    rounds.begin(mine)
    mine.abort_round()
    assert head.position == PAGE + 1
    loads.asked.clear()
    assert known.state("a") == ("task", 1)
    assert loads.asked == ["a"]  # the cache was emptied: read again


class _CountingConnection:
    """A connection stand-in that counts the statements it runs."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.statements: list[str] = []

    def execute(self, statement: str, *args: Any) -> Any:
        self.statements.append(statement)
        return self.conn.execute(statement, *args)


def test_a_round_reads_the_head_and_the_foreign_versions_at_once(
    pair: tuple[SQLiteSharedWriteStorage, SQLiteSharedWriteStorage],
) -> None:
    """begin_round(after=...) is one read: the head, and the versions its
    versions_after then answers (the last version of each aggregate);
    a range it did not read goes to the file."""
    mine, theirs = pair
    _commit(theirs, ["a", "b", "a"])
    counting = _CountingConnection(mine._conn)
    mine._conn = counting  # type: ignore[assignment]
    try:
        assert mine.begin_round(5.0, 0) == 3
        assert mine.versions_after(0, 3) == {"a": ("task", 2), "b": ("task", 1)}
        assert len(counting.statements) == 1
        mine.abort_round()
        assert mine.begin_round(5.0, 1) == 3
        assert mine.versions_after(0, 3) == {"a": ("task", 2), "b": ("task", 1)}
        assert len(counting.statements) == 3  # not what it read: a query
        mine.abort_round()
    finally:
        mine._conn = counting.conn


def test_round_forgets_the_cache_when_the_versions_read_fails(
    pair: tuple[SQLiteSharedWriteStorage, SQLiteSharedWriteStorage],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mine, theirs = pair
    rounds, known, head, loads = _rounds(mine)
    assert known.state("a") is None
    _commit(theirs, ["a"])

    def failing(position: int, upto: int) -> dict[str, tuple[str, int]]:
        raise StorageError("read versions failed")

    monkeypatch.setattr(mine, "versions_after", failing)
    rounds.begin(mine)
    mine.abort_round()
    assert head.position == 1
    loads.asked.clear()
    assert known.state("a") == ("task", 1)
    assert loads.asked == ["a"]


class _Probe:
    def __init__(self, store_head: int) -> None:
        self.store_head = store_head
        self.looks = 0
        self.rests = 0
        self.wakes = 0

    def changed(self) -> bool:
        self.looks += 1
        return True

    def head(self) -> int:
        return self.store_head

    def rest(self) -> None:
        self.rests += 1

    def wake(self) -> None:
        self.wakes += 1

    def close(self) -> None:
        pass


def _asking(calls: list[int]) -> Callable[[], bool]:
    """A watcher's catch-up request that counts itself and is made."""

    def ask() -> bool:
        calls.append(1)
        return True

    return ask


def test_watcher_skips_while_the_head_moves() -> None:
    head = CommitHead(10)
    probe = _Probe(store_head=12)
    asked = threading.Event()

    def ask() -> bool:
        asked.set()
        return True

    watcher = ChangeWatcher(probe, head, ask)
    seen = watcher.look(9)  # the head moved since 9: the writer is active
    assert (seen, probe.looks, asked.is_set()) == (10, 0, False)
    seen = watcher.look(seen)  # it stood still: look, and ask to catch up
    assert (seen, probe.looks, asked.is_set()) == (10, 1, True)


def test_watcher_rests_the_probe_when_busy_and_wakes_it_when_idle() -> None:
    """REST_AFTER skipped looks in a row rest the probe once; REST_AFTER
    looks made in a row (the head stood still) wake it once; either kind
    of look starts the other count again."""
    head = CommitHead(0)
    probe = _Probe(store_head=0)
    watcher = ChangeWatcher(probe, head, lambda: True)
    seen = -1

    def busy(looks: int) -> None:
        nonlocal seen
        for _ in range(looks):  # the writer commits between looks
            head.position += 1
            seen = watcher.look(seen)

    def idle(looks: int) -> None:
        nonlocal seen
        for _ in range(looks):
            seen = watcher.look(seen)

    busy(REST_AFTER * 2)
    assert (probe.rests, probe.wakes, probe.looks) == (1, 0, 0)
    idle(REST_AFTER - 1)
    busy(1)
    idle(REST_AFTER - 1)
    assert (probe.rests, probe.wakes) == (1, 0)
    idle(1)
    assert (probe.rests, probe.wakes) == (1, 1)
    idle(REST_AFTER)
    busy(REST_AFTER - 1)
    idle(1)
    busy(REST_AFTER)
    assert (probe.rests, probe.wakes) == (2, 1)


def test_watcher_skips_again_when_the_writer_was_too_busy_to_be_asked() -> None:
    """A busy writer is not asked to catch up (it does in its own rounds):
    the next look is skipped while its head moves, as if never asked."""
    head = CommitHead(10)
    probe = _Probe(store_head=12)
    watcher = ChangeWatcher(probe, head, lambda: False)
    seen = watcher.look(10)  # the store is ahead, but nobody was asked
    head.position = 11  # the writer's own round
    assert watcher.look(seen) == 11
    assert probe.looks == 1  # skipped


def test_watcher_asks_nothing_when_the_store_is_not_ahead() -> None:
    head = CommitHead(12)
    probe = _Probe(store_head=12)
    calls: list[Any] = []
    watcher = ChangeWatcher(probe, head, _asking(calls))
    assert watcher.look(12) == 12
    assert (probe.looks, calls) == (1, [])


def test_watcher_looks_again_after_its_own_catch_up() -> None:
    head = CommitHead(10)
    probe = _Probe(store_head=12)
    asked: list[int] = []
    watcher = ChangeWatcher(probe, head, _asking(asked))
    seen = watcher.look(10)  # the store is ahead: ask
    head.position = 12  # the writer caught up as asked
    probe.store_head = 14  # and another process committed meanwhile
    assert watcher.look(seen) == 12  # not skipped: the move was ours
    assert (probe.looks, len(asked)) == (2, 2)


def test_a_complete_cache_answers_misses_without_a_look_up(
    pair: tuple[SQLiteSharedWriteStorage, SQLiteSharedWriteStorage],
) -> None:
    """A cache that saw every commit (empty at the start, foreign versions
    folded in each round) knows an aggregate it misses has no events."""
    mine, theirs = pair
    rounds, known, _head, loads = _rounds(mine)
    known.complete = True  # what the committer sets on an empty store
    assert known.state("new") is None
    _commit(theirs, ["a", "b", "a"])
    rounds.begin(mine)
    mine.abort_round()
    assert known.state("a") == ("task", 2)
    assert known.state("b") == ("task", 1)
    assert known.state("other") is None
    assert loads.asked == []
    assert known.complete


def test_forgetting_ends_a_complete_cache(
    pair: tuple[SQLiteSharedWriteStorage, SQLiteSharedWriteStorage],
) -> None:
    """Past a page of foreign events the cache forgets, and a miss is read
    again: it no longer claims to know every aggregate."""
    mine, theirs = pair
    rounds, known, _head, loads = _rounds(mine)
    known.complete = True
    _commit(theirs, ["a"] + [f"x{k}" for k in range(PAGE)])
    rounds.begin(mine)
    mine.abort_round()
    assert not known.complete
    assert known.state("a") == ("task", 1)
    assert loads.asked == ["a"]


@pytest.mark.parametrize("stored", [0, 3])
def test_a_writer_reads_versions_only_of_a_store_it_did_not_see_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stored: int
) -> None:
    """A store opened empty plans new aggregates without reading the file;
    one opened on stored events reads each aggregate it meets once."""
    from swarmlog.actors.sqlite.storage import SQLiteWriteStorage

    path = str(tmp_path / "seen.db")
    store = EventStore(path).initialize()
    for i in range(stored):
        store.append(create_task_created_event(f"old{i}", "parts", "T", "", "low"))
    store.shutdown()
    looked_up: list[str] = []
    aggregate = SQLiteWriteStorage.aggregate

    def counted(self: SQLiteWriteStorage, aggregate_id: str) -> tuple[str, int] | None:
        looked_up.append(aggregate_id)
        return aggregate(self, aggregate_id)

    monkeypatch.setattr(SQLiteWriteStorage, "aggregate", counted)
    store = EventStore(path).initialize()
    try:
        for i in range(5):
            store.append(create_task_created_event(f"t{i}", "parts", "T", "", "low"))
        store.append(create_task_created_event("t0", "parts", "T", "", "low"))
    finally:
        store.shutdown()
    assert looked_up == ([] if stored == 0 else [f"t{i}" for i in range(5)])
