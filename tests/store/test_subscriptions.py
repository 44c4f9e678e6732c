"""Durable subscriptions: ``store.subscribe`` and ``store.aio.subscribe``."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import (
    EngineThreadWaitError,
    EventStore,
    InvalidConfigError,
    InvalidQueryError,
    ReadOnlyStoreError,
    SubscriptionActiveError,
    SubscriptionStoppedError,
    SubscriptionTimeoutError,
    create_agent_spawned_event,
)
from swarmlog import subscriptions as subscriptions_module
from swarmlog.actors import subscription
from swarmlog.schema import sql
from tests.store.conftest import TIMEOUT

if TYPE_CHECKING:
    from collections.abc import Callable

    from swarmlog import Event


def _append(store: EventStore, count: int, prefix: str = "a") -> list[Event]:
    return [
        store.append(create_agent_spawned_event(f"{prefix}{i}", "coder", "core"))
        for i in range(count)
    ]


class Seen:
    """A handler that records the positions it handled (thread-safe)."""

    def __init__(self) -> None:
        self.positions: list[int] = []
        self.threads: set[int] = set()
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.positions.append(event.position)
            self.threads.add(threading.get_ident())


class TestDelivery:
    """Order, gaps and duplicates within a run."""

    def test_every_event_once_in_order_under_concurrent_appends(
        self, store: EventStore
    ) -> None:
        """Events appended by several threads while the subscription runs
        reach the handler once each, in position order, on one thread that
        is not the caller's."""
        _append(store, 20, "pre")
        seen = Seen()
        sub = store.subscribe("order", seen)
        threads = [
            threading.Thread(target=_append, args=(store, 100, f"t{n}-"))
            for n in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        head = store.head_position
        assert head == 320
        sub.wait_for(head, timeout=TIMEOUT)
        assert seen.positions == list(range(1, head + 1))
        assert len(seen.threads) == 1
        assert threading.get_ident() not in seen.threads
        assert sub.position == head
        assert sub.status == "running"
        assert sub.error is None

    def test_from_position_none_int_and_end(self, store: EventStore) -> None:
        """None starts at the first event, an int at that position, "end"
        with the events appended after subscribing."""
        _append(store, 5)
        first, third, end = Seen(), Seen(), Seen()
        subs = [
            store.subscribe("first", first),
            store.subscribe("third", third, from_position=3),
            store.subscribe("end", end, from_position="end"),
        ]
        _append(store, 2, "b")
        for sub in subs:
            sub.wait_for(7, timeout=TIMEOUT)
        assert first.positions == [1, 2, 3, 4, 5, 6, 7]
        assert third.positions == [3, 4, 5, 6, 7]
        assert end.positions == [6, 7]

    def test_end_is_remembered_before_any_event(self, tmp_path: Path) -> None:
        """A subscription from "end" that stops before any event resumes
        at the position it started from, not at a later end."""
        path = str(tmp_path / "s.db")
        with EventStore(path) as store:
            _append(store, 3)
            store.subscribe("late", Seen(), from_position="end").stop()
            _append(store, 2, "b")
        with EventStore(path) as store:
            seen = Seen()
            store.subscribe("late", seen, from_position="end").wait_for(5, TIMEOUT)
            assert seen.positions == [4, 5]

    def test_commits_wake_a_waiting_subscription(
        self, store: EventStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A caught-up subscription is woken by each commit, not by its
        guard timeout (made an hour here): both forms."""
        monkeypatch.setattr(subscription, "_IDLE_WAIT", 3600.0)
        monkeypatch.setattr(subscriptions_module, "_IDLE_WAIT", 3600.0)
        seen = Seen()
        sub = store.subscribe("woken", seen)
        for position in (1, 2):
            _append(store, 1, f"w{position}-")
            sub.wait_for(position, timeout=TIMEOUT)

        async def main() -> list[int]:
            got: list[int] = []
            events = store.aio.subscribe("woken-aio", from_position=3)
            async with contextlib.aclosing(events):
                async for event in events:
                    got.append(event.position)
                    if len(got) == 2:
                        break
                    await asyncio.to_thread(_append, store, 1, "later-")
            return got

        async def run() -> list[int]:
            task = asyncio.create_task(main())
            await asyncio.to_thread(_append, store, 1, "first-")
            return await asyncio.wait_for(task, TIMEOUT)

        assert asyncio.run(run()) == [3, 4]
        sub.wait_for(4, timeout=TIMEOUT)  # its own thread: woken, not yet run
        assert seen.positions == [1, 2, 3, 4]

    def test_wait_for_times_out(self, store: EventStore) -> None:
        """Waiting for a position nobody appends raises a typed timeout."""
        sub = store.subscribe("idle", Seen())
        with pytest.raises(SubscriptionTimeoutError) as info:
            sub.wait_for(1, timeout=0.01)
        assert (info.value.name, info.value.position, info.value.reached) == (
            "idle",
            1,
            0,
        )


class TestRestart:
    """Positions are stored: a new run resumes after the last handled event."""

    def test_resume_after_restart(self, tmp_path: Path) -> None:
        """A reopened store's subscription starts after the last handled
        event, and from_position no longer applies."""
        path = str(tmp_path / "s.db")
        with EventStore(path) as store:
            _append(store, 5)
            sub = store.subscribe("mailer", Seen())
            sub.wait_for(5, timeout=TIMEOUT)
        assert sub.status == "stopped"  # the shutdown stopped it
        with EventStore(path) as store:
            assert store.get_stats().subscriptions["mailer"].position == 5
            _append(store, 3, "b")
            seen = Seen()
            store.subscribe("mailer", seen, from_position=1).wait_for(8, TIMEOUT)
            assert seen.positions == [6, 7, 8]

    def test_position_is_stored_before_the_next_event(self, tmp_path: Path) -> None:
        """While the handler runs on event N, the file holds N - 1."""
        path = str(tmp_path / "s.db")
        inside = threading.Event()
        release = threading.Event()
        stored: list[int | None] = []

        def handler(event: Event) -> None:
            if event.position == 3:
                inside.set()
                release.wait(TIMEOUT)

        with EventStore(path) as store:
            _append(store, 4)
            sub = store.subscribe("slow", handler)
            assert inside.wait(TIMEOUT)
            with EventStore(path, read_only=True) as reader:
                stored.append(reader.get_stats().subscriptions["slow"].position)
            release.set()
            sub.wait_for(4, timeout=TIMEOUT)
        assert stored == [2]


class TestFailures:
    """A raising handler is retried with back-off, then the subscription
    fails visibly without skipping the event."""

    def test_retried_until_it_succeeds(self, store: EventStore) -> None:
        """A handler failing twice on an event is called a third time and
        the subscription goes on."""
        calls: list[int] = []

        def flaky(event: Event) -> None:
            calls.append(event.position)
            if event.position == 2 and calls.count(2) < 3:
                raise RuntimeError("flaky")

        _append(store, 3)
        sub = store.subscribe("flaky", flaky, max_attempts=3, retry_delay=0)
        sub.wait_for(3, timeout=TIMEOUT)
        assert calls == [1, 2, 2, 2, 3]

    @pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
    def test_fails_after_the_attempts(
        self, store: EventStore, error: BaseException
    ) -> None:
        """After max_attempts calls the status is "failed", the error is
        kept, the position stays before the event, waits raise, stats say
        so and the name is free again (resuming at the failed event)."""
        calls: list[int] = []

        def broken(event: Event) -> None:
            calls.append(event.position)
            if event.position == 2:
                raise error

        _append(store, 3)
        sub = store.subscribe("broken", broken, max_attempts=2, retry_delay=0.001)
        with pytest.raises(SubscriptionStoppedError) as info:
            sub.wait_for(3, timeout=TIMEOUT)
        assert info.value.reached == 1
        assert sub.status == "failed"
        assert sub.error is error
        assert sub.position == 1
        assert calls == [1, 2, 2]
        status = store.get_stats().subscriptions["broken"]
        assert (status.status, status.position, status.lag) == ("failed", 1, 2)
        assert status.error is not None
        assert type(error).__name__ in status.error
        seen = Seen()
        store.subscribe("broken", seen).wait_for(3, timeout=TIMEOUT)
        assert seen.positions == [2, 3]

    def test_stop_during_back_off_is_not_a_failure(self, store: EventStore) -> None:
        """A stop while the handler waits for its next attempt ends the
        subscription "stopped", without an error or a skipped event."""
        failed = threading.Event()

        def broken(event: Event) -> None:
            failed.set()
            raise RuntimeError("down")

        _append(store, 1)
        sub = store.subscribe("down", broken, retry_delay=60)
        assert failed.wait(TIMEOUT)
        sub.stop()
        assert (sub.status, sub.error, sub.position) == ("stopped", None, 0)


class TestLifecycle:
    """One live subscription per name; stop; read-only and closed stores."""

    def test_one_live_subscription_per_name(self, store: EventStore) -> None:
        """A second subscription of a live name is refused; after stop()
        (idempotent) the name can be subscribed again at once."""
        sub = store.subscribe("one", Seen())
        with pytest.raises(SubscriptionActiveError) as info:
            store.subscribe("one", Seen())
        assert info.value.name == "one"
        sub.stop()
        sub.stop()
        assert sub.status == "stopped"
        store.subscribe("one", Seen()).stop()

    def test_stop_from_its_own_handler(self, store: EventStore) -> None:
        """A handler may stop its own subscription: it ends after that
        event, whose position is stored."""
        holder: list[Any] = []
        ready = threading.Event()

        def handler(event: Event) -> None:
            ready.wait(TIMEOUT)
            holder[0].stop()

        _append(store, 3)
        sub = store.subscribe("self", handler)
        holder.append(sub)
        ready.set()
        with pytest.raises(SubscriptionStoppedError):
            sub.wait_for(3, timeout=TIMEOUT)
        assert (sub.status, sub.position) == ("stopped", 1)

    def test_wait_for_from_its_own_handler_is_refused(self, store: EventStore) -> None:
        """Waiting for a later position from its own handler would wait for
        itself: EngineThreadWaitError, the subscription goes on."""
        errors: list[BaseException] = []
        holder: list[Any] = []
        ready = threading.Event()

        def handler(event: Event) -> None:
            ready.wait(TIMEOUT)
            if event.position == 1:
                try:
                    holder[0].wait_for(2)
                except EngineThreadWaitError as error:
                    errors.append(error)

        _append(store, 2)
        sub = store.subscribe("waits", handler)
        holder.append(sub)
        ready.set()
        sub.wait_for(2, timeout=TIMEOUT)
        assert len(errors) == 1

    def test_bad_arguments(self, store: EventStore) -> None:
        """Names, handlers, from_position and retry options are checked."""
        bad: list[dict[str, Any]] = [
            {"name": ""},
            {"name": 3},
            {"handler": "not callable"},
            {"from_position": -1},
            {"from_position": "start"},
            {"from_position": True},
            {"max_attempts": 0},
            {"retry_delay": -1},
        ]
        for options in bad:
            args: dict[str, Any] = {"name": "x", "handler": Seen(), **options}
            name, handler = args.pop("name"), args.pop("handler")
            with pytest.raises(InvalidConfigError):
                store.subscribe(name, handler, **args)
        with pytest.raises(InvalidQueryError):
            store.subscribe("x", Seen()).wait_for("1")  # type: ignore[arg-type]

    def test_read_only_store_refuses(self, tmp_path: Path) -> None:
        """A read-only store cannot store positions: ReadOnlyStoreError for
        a new name and a stored one, in both forms, and for reset/delete."""
        path = str(tmp_path / "s.db")
        with EventStore(path) as store:
            store.reset_subscription("stored", 0)
        with EventStore(path, read_only=True) as store:
            for name in ("new", "stored"):
                with pytest.raises(ReadOnlyStoreError):
                    store.subscribe(name, Seen())
                with pytest.raises(ReadOnlyStoreError):
                    store.aio.subscribe(name)
            with pytest.raises(ReadOnlyStoreError):
                store.reset_subscription("stored", 0)
            with pytest.raises(ReadOnlyStoreError):
                store.delete_subscription("stored")
            assert store.get_stats().subscriptions["stored"].position == 0

    def test_shutdown_stops_subscriptions(self, make_store: Callable[..., Any]) -> None:
        """shutdown() stops running subscriptions first; their handles say
        "stopped"."""
        store = make_store()
        _append(store, 2)
        sub = store.subscribe("s", Seen())
        sub.wait_for(2, timeout=TIMEOUT)
        store.shutdown()
        assert sub.status == "stopped"
        sub.stop()

    def test_shutdown_is_bounded_by_a_stuck_handler(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A handler that never returns holds shutdown() up only for the
        stop timeout; its event's position is not stored (delivered again
        next time)."""
        monkeypatch.setattr(subscription, "_STOP_TIMEOUT", 0.05)
        path = str(tmp_path / "s.db")
        inside, release = threading.Event(), threading.Event()

        def stuck(event: Event) -> None:
            if event.position == 2:
                inside.set()
                release.wait(TIMEOUT)

        store = EventStore(path).initialize()
        try:
            _append(store, 3)
            sub = store.subscribe("stuck", stuck)
            assert inside.wait(TIMEOUT)
        finally:
            store.shutdown()
        release.set()
        with EventStore(path) as store:
            assert store.get_stats().subscriptions["stuck"].position == 1
        assert sub.position == 1


class TestManagement:
    """reset_subscription, delete_subscription and get_stats."""

    def test_reset_and_delete(self, store: EventStore) -> None:
        """reset moves the stored position (refused while it runs or past
        the head); delete forgets it, so from_position applies again."""
        _append(store, 5)
        sub = store.subscribe("m", Seen())
        sub.wait_for(5, timeout=TIMEOUT)
        with pytest.raises(SubscriptionActiveError):
            store.reset_subscription("m", 2)
        with pytest.raises(SubscriptionActiveError):
            store.delete_subscription("m")
        sub.stop()
        with pytest.raises(InvalidQueryError):
            store.reset_subscription("m", 6)
        with pytest.raises(InvalidQueryError):
            store.reset_subscription("m", -1)
        store.reset_subscription("m", 3)
        seen = Seen()
        again_sub = store.subscribe("m", seen)
        again_sub.wait_for(5, timeout=TIMEOUT)
        assert seen.positions == [4, 5]
        again_sub.stop()
        assert store.delete_subscription("m") is True
        assert store.delete_subscription("m") is False
        assert "m" not in store.get_stats().subscriptions
        again = Seen()
        store.subscribe("m", again, from_position="end").stop()
        assert again.positions == []

    def test_stats_list_every_stored_subscription(self, store: EventStore) -> None:
        """get_stats() lists stored subscriptions with position, lag and
        status, running here or not."""
        _append(store, 4)
        store.reset_subscription("dormant", 1)
        sub = store.subscribe("live", Seen())
        sub.wait_for(4, timeout=TIMEOUT)
        subs = store.get_stats().subscriptions
        assert list(subs) == ["dormant", "live"]
        assert (subs["dormant"].position, subs["dormant"].lag) == (1, 3)
        assert subs["dormant"].status == "stopped"
        assert (subs["live"].position, subs["live"].lag) == (4, 0)
        assert subs["live"].status == "running"


class TestAsyncio:
    """``async for event in store.aio.subscribe(name)``."""

    def test_positions_are_stored_when_the_next_is_asked(
        self, store: EventStore
    ) -> None:
        """An event is handled once the loop asks for the next one: leaving
        the loop after an event delivers it again next time."""
        _append(store, 3)

        async def take(count: int) -> list[int]:
            got: list[int] = []
            async with contextlib.aclosing(store.aio.subscribe("aio")) as events:
                async for event in events:
                    got.append(event.position)
                    if len(got) == count:
                        break
            return got

        assert asyncio.run(take(2)) == [1, 2]
        assert store.get_stats().subscriptions["aio"].position == 1
        assert asyncio.run(take(2)) == [2, 3]
        assert store.get_stats().subscriptions["aio"].position == 2

    def test_new_events_wake_the_loop(self, store: EventStore) -> None:
        """Events appended while the loop waits for new ones arrive, in
        order, while other tasks keep running."""
        _append(store, 1)

        async def main() -> list[int]:
            got: list[int] = []

            async def producer() -> None:
                for i in range(2):
                    await asyncio.to_thread(_append, store, 1, f"late{i}-")

            task = asyncio.create_task(producer())
            events = store.aio.subscribe("tail", from_position=2)
            async with contextlib.aclosing(events):
                async for event in events:
                    got.append(event.position)
                    if len(got) == 2:
                        break
            await asyncio.wait_for(task, TIMEOUT)
            return got

        assert asyncio.run(asyncio.wait_for(main(), TIMEOUT)) == [2, 3]

    def test_one_name_for_both_forms(self, store: EventStore) -> None:
        """A live thread subscription's name is refused to the async form."""
        sub = store.subscribe("both", Seen())

        async def main() -> None:
            async for _ in store.aio.subscribe("both"):
                pass

        with pytest.raises(SubscriptionActiveError):
            asyncio.run(main())
        sub.stop()


def _layout(path: Path) -> tuple[int, set[str]]:
    conn = sqlite3.connect(path)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    return version, names


class TestFileFormat:
    """Format 3 adds the subscriptions table; forks keep positions <= N."""

    def test_a_format_2_file_is_migrated(self, tmp_path: Path) -> None:
        """A format 2 file (no subscriptions table) is migrated once by a
        writing store, keeping every event."""
        path = tmp_path / "old.db"
        with EventStore(path) as store:
            events = _append(store, 3)
        conn = sqlite3.connect(path)
        conn.execute("DROP TABLE subscriptions")
        conn.execute("PRAGMA user_version = 2")
        conn.commit()
        conn.close()
        assert _layout(path) == (2, _layout(path)[1] - {"subscriptions"})
        with EventStore(path) as store:
            assert list(store.replay()) == events
            store.subscribe("s", Seen()).wait_for(3, timeout=TIMEOUT)
        version, names = _layout(path)
        assert version == sql.FORMAT_VERSION == 3
        assert "subscriptions" in names

    def test_a_failing_migration_leaves_format_2(
        self, tmp_path: Path, failed_migration: Callable[[Path, int], None]
    ) -> None:
        """A step failing after the table was made rolls the migration back:
        format 2, no subscriptions table, every event kept."""
        path = tmp_path / "old.db"
        with EventStore(path) as store:
            events = _append(store, 2)
        conn = sqlite3.connect(path)
        conn.execute("DROP TABLE subscriptions")
        conn.execute("PRAGMA user_version = 2")
        conn.commit()
        conn.close()
        failed_migration(path, 2)
        version, names = _layout(path)
        assert (version, "subscriptions" in names) == (2, False)
        with EventStore(path) as store:
            assert list(store.replay()) == events
            assert store.get_stats().subscriptions == {}

    def test_fork_keeps_positions_up_to_its_position(self, tmp_path: Path) -> None:
        """A fork at N keeps the positions <= N and drops the later ones;
        the source keeps all."""
        with EventStore(tmp_path / "a.db") as store:
            _append(store, 6)
            store.reset_subscription("behind", 2)
            store.reset_subscription("at", 4)
            store.reset_subscription("ahead", 6)
            with store.fork(tmp_path / "b.db", at_position=4) as forked:
                kept = forked.get_stats().subscriptions
                assert {n: s.position for n, s in kept.items()} == {
                    "at": 4,
                    "behind": 2,
                }
            assert len(store.get_stats().subscriptions) == 3


README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's "Durable subscriptions" example runs and shows what it
    says."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Durable subscriptions\n")
    end = text.index("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end], flags=re.DOTALL)
    assert blocks
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(blocks), "README.md", "exec"), namespace)
    assert namespace["sent"] == ["a1", "a2", "a3", "a4"]
