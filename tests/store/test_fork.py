"""EventStore.fork: a new store holding the events up to a position."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from swarmlog import (
    AgentStateProjection,
    EventStore,
    InvalidConfigError,
    InvalidQueryError,
    Snapshot,
    StorageError,
    StoreClosedError,
    StoreOpenError,
    create_agent_spawned_event,
    create_agent_started_event,
    create_agent_status_changed_event,
    diff_read_models,
)

if TYPE_CHECKING:
    from pathlib import Path

    from swarmlog import Event

pytestmark = pytest.mark.sqlite_only(
    "forks copy the SQLite file (actors/sqlite/fork.py)"
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _fill(store: EventStore, agents: int = 3) -> list[Event]:
    """Spawn, start and idle ``agents`` agents, one after the other."""
    stored = []
    at = T0
    for i in range(agents):
        agent = f"agent-{i}"
        for event in (
            create_agent_spawned_event(
                agent, "coder", "core", timestamp=at, metadata={"n": i}
            ),
            create_agent_started_event(agent, timestamp=at + timedelta(seconds=1)),
            create_agent_status_changed_event(
                agent, "active", "idle", timestamp=at + timedelta(seconds=2)
            ),
        ):
            stored.append(store.append(event))
        at += timedelta(minutes=1)
    return stored


def _snapshot(store: EventStore, aggregate_id: str, version: int) -> None:
    store.save_snapshot(
        Snapshot(aggregate_id, "agent", version, {"version": version}, T0)
    )


class TestContent:
    """What a fork holds."""

    def test_fork_at_head_holds_every_event_unchanged(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        """Same ids, positions, versions, timestamps, metadata and payloads."""
        events = _fill(store)
        with store.fork(tmp_path / "fork.db") as forked:
            assert list(forked.replay()) == events
            assert forked.head_position == store.head_position == len(events)
            assert forked.get_version("agent-1") == 3

    def test_fork_at_a_position_holds_the_prefix(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        """Events 1..N only; the rest of the source stays in the source."""
        events = _fill(store)
        with store.fork(str(tmp_path / "fork.db"), at_position=4) as forked:
            assert list(forked.replay()) == events[:4]
            assert forked.head_position == 4
            assert forked.get_version("agent-1") == 1
            assert forked.get_events("agent-2") == []

    def test_fork_at_zero_is_an_empty_store(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        """at_position=0 forks nothing but the lineage."""
        _fill(store)
        with store.fork(tmp_path / "fork.db", at_position=0) as forked:
            assert list(forked.replay()) == []
            assert forked.get_stats().lineage[-1].position == 0

    def test_snapshots_are_cut_at_the_position(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        """A snapshot is kept only if its version was reached by then."""
        _fill(store)
        _snapshot(store, "agent-0", 3)  # reached at position 3
        _snapshot(store, "agent-1", 1)  # reached at position 4
        _snapshot(store, "agent-2", 2)  # reached at position 8
        with store.fork(tmp_path / "fork.db", at_position=5) as forked:
            zero = forked.get_snapshot("agent-0")
            one = forked.get_snapshot("agent-1")
            assert zero is not None
            assert zero.version == 3
            assert one is not None
            assert one.state == {"version": 1}
            assert forked.get_snapshot("agent-2") is None
            assert forked.get_stats().snapshot_count == 2

    def test_read_models_equal_the_source_as_of_the_position(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        """The fork's read models are the source's as of the position, even
        with projection snapshots taken before and after it."""
        _fill(store, agents=4)
        live = AgentStateProjection(store).initialize()
        live.wait_for(store.head_position)
        live.stop()  # leaves its snapshot at the head
        with store.fork(tmp_path / "fork.db", at_position=7) as forked:
            assert diff_read_models(store, forked, at_a=7).equal
            projection = AgentStateProjection(forked).initialize()
            projection.wait_for(7)
            as_of = AgentStateProjection.as_of(store, 7)
            assert projection.get_all_agents() == as_of.get_all_agents()


class TestIndependence:
    """The fork and its source go their own ways."""

    def test_appends_continue_after_the_position(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        """The fork's next event takes position N+1 and the aggregate's next
        version there."""
        _fill(store)
        with store.fork(tmp_path / "fork.db", at_position=5) as forked:
            stored = forked.append(create_agent_started_event("agent-1"))
            assert (stored.position, stored.version) == (6, 3)
            assert forked.head_position == 6

    def test_neither_sees_the_others_appends(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        """Appends to the fork stay in it; appends to the source stay there."""
        events = _fill(store)
        with store.fork(tmp_path / "fork.db", at_position=6) as forked:
            forked.append(create_agent_spawned_event("fork-only", "tester", "qa"))
            store.append(create_agent_spawned_event("source-only", "tester", "qa"))
            assert store.get_events("fork-only") == []
            assert forked.get_events("source-only") == []
            assert list(store.replay())[: len(events)] == events
            assert [e.aggregate_id for e in forked.replay()][-1] == "fork-only"

    def test_the_fork_survives_a_restart(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        """The fork is a durable store file of its own, lineage included."""
        events = _fill(store)
        path = tmp_path / "fork.db"
        store.fork(path, at_position=5).shutdown()
        with EventStore(path) as reopened:
            assert list(reopened.replay()) == events[:5]
            assert [o.position for o in reopened.get_stats().lineage] == [5]
        with EventStore(path, read_only=True) as watcher:
            assert watcher.get_stats().lineage[0].source == store.path

    def test_a_consistent_prefix_while_the_source_is_written(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        """Forking the head while another thread appends copies a gap-free
        prefix whose events are exactly the source's."""
        stop = threading.Event()

        def writer() -> None:
            n = 0
            while not stop.is_set() and n < 2000:
                store.append(create_agent_spawned_event(f"w-{n}", "coder", "core"))
                n += 1

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            forks = [store.fork(tmp_path / f"fork-{i}.db") for i in range(3)]
        finally:
            stop.set()
            thread.join(30)
        for forked in forks:
            with forked:
                copied = list(forked.replay())
                head = forked.get_stats().lineage[-1].position
                assert [e.position for e in copied] == list(range(1, head + 1))
                assert copied == list(store.replay())[:head]


class TestLineage:
    """Where a store came from."""

    def test_a_store_that_is_no_fork_has_no_lineage(self, store: EventStore) -> None:
        """get_stats().lineage is empty."""
        assert store.get_stats().lineage == ()

    def test_lineage_names_the_source_and_position(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        """The fork records the source path, the position and when."""
        _fill(store)
        before = datetime.now(UTC)
        with store.fork(tmp_path / "fork.db", at_position=2) as forked:
            (origin,) = forked.get_stats().lineage
        assert (origin.source, origin.position) == (store.path, 2)
        assert before - timedelta(seconds=1) <= origin.forked_at
        assert origin.forked_at <= datetime.now(UTC) + timedelta(seconds=1)

    def test_a_fork_of_a_fork_keeps_the_whole_ancestry(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        """Oldest first; the last entry is the direct source."""
        _fill(store)
        with (
            store.fork(tmp_path / "one.db", at_position=6) as one,
            one.fork(tmp_path / "two.db", at_position=3) as two,
        ):
            lineage = two.get_stats().lineage
            assert [(o.source, o.position) for o in lineage] == [
                (store.path, 6),
                (one.path, 3),
            ]
            assert len(store.get_stats().lineage) == 0

    def test_a_read_only_store_can_be_forked(self, tmp_path: Path) -> None:
        """Forking reads only: a read-only store forks like a writable one."""
        path = tmp_path / "source.db"
        with EventStore(path) as writer:
            events = _fill(writer)
            with (
                EventStore(path, read_only=True) as watcher,
                watcher.fork(tmp_path / "fork.db", at_position=3) as forked,
            ):
                assert list(forked.replay()) == events[:3]
                assert forked.append(create_agent_started_event("x")).position == 4


class TestRefusals:
    """Bad forks are typed errors that leave nothing behind."""

    def test_a_position_beyond_the_head(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        """InvalidQueryError naming the head; no file is created."""
        _fill(store)
        target = tmp_path / "fork.db"
        with pytest.raises(InvalidQueryError, match=r"beyond the head .*\(9\)"):
            store.fork(target, at_position=10)
        assert not [p for p in os.listdir(tmp_path) if p.startswith("fork.db")]

    @pytest.mark.parametrize("position", [-1, True, 1.5, "3"])
    def test_a_position_that_is_no_count(
        self, store: EventStore, tmp_path: Path, position: object
    ) -> None:
        """InvalidQueryError before anything is written."""
        with pytest.raises(InvalidQueryError, match="at_position"):
            store.fork(tmp_path / "fork.db", at_position=position)  # type: ignore[arg-type]
        assert not (tmp_path / "fork.db").exists()

    def test_an_existing_target_is_never_overwritten(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        """StoreOpenError; the existing file is unchanged."""
        _fill(store)
        target = tmp_path / "taken.db"
        target.write_bytes(b"precious")
        with pytest.raises(StoreOpenError, match="already exists"):
            store.fork(target)
        assert target.read_bytes() == b"precious"

    @pytest.mark.parametrize("path", [":memory:", "", 42])
    def test_a_target_that_is_no_file_path(
        self, store: EventStore, path: object
    ) -> None:
        """InvalidConfigError."""
        with pytest.raises(InvalidConfigError, match="path"):
            store.fork(path)  # type: ignore[arg-type]

    def test_a_shut_down_store(self, tmp_path: Path) -> None:
        """StoreClosedError; nothing is created."""
        store = EventStore(tmp_path / "gone.db").initialize()
        store.shutdown()
        with pytest.raises(StoreClosedError):
            store.fork(tmp_path / "fork.db")
        assert not (tmp_path / "fork.db").exists()

    def test_a_missing_folder(self, store: EventStore, tmp_path: Path) -> None:
        """StoreOpenError naming the folder."""
        with pytest.raises(StoreOpenError, match="does not exist"):
            store.fork(tmp_path / "nowhere" / "fork.db")

    def test_a_failed_copy_removes_the_new_file(
        self, store: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A fork that fails mid-copy is all or nothing: no file is left."""
        from swarmlog.schema import sql

        _fill(store)
        monkeypatch.setattr(
            sql, "FORK_PROJECTION_SNAPSHOTS", "INSERT INTO nowhere VALUES (1)"
        )
        target = tmp_path / "fork.db"
        with pytest.raises(StorageError, match="nowhere"):
            store.fork(target)
        assert not target.exists()
        assert not (tmp_path / "fork.db-wal").exists()


def test_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's fork example runs as printed (its asserts are the
    checks) and leaves both files."""
    import re
    from pathlib import Path as _Path

    readme = _Path(__file__).resolve().parents[2] / "README.md"
    text = readme.read_text("utf-8")
    start = text.index("\n## Fork and compare\n")
    end = text.index("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end], flags=re.DOTALL)
    (code,) = [block for block in blocks if ".fork(" in block]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "run.db").exists()
    assert (tmp_path / "branch.db").exists()
