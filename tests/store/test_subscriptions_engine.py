"""Durable subscriptions: waits and stops from engine threads, positions
beyond the head, shutdown of the asyncio form, typed errors, forked
children."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import (
    EngineThreadWaitError,
    EventStore,
    InvalidQueryError,
    SubscriptionStoppedError,
    SwarmlogError,
    create_agent_spawned_event,
)
from swarmlog.actors import subscription
from swarmlog.actors.runtime import in_engine_thread
from swarmlog.schema.subscription_errors import SubscriptionWriteTimeoutError
from tests.store.conftest import TIMEOUT

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from swarmlog import Event


def _spawn(agent_id: str) -> Any:
    return create_agent_spawned_event(agent_id, "coder", "core")


def _append(store: EventStore, count: int, prefix: str = "a") -> None:
    for i in range(count):
        store.append(_spawn(f"{prefix}{i}"))


def _on_writer_thread(store: EventStore, call: Callable[[], Any]) -> Future[Any]:
    """Run ``call`` in a done-callback of ``append_async`` that runs on the
    writer thread (an engine thread); its outcome is the returned future.

    A callback added after the append completed runs on this thread
    instead; then it does nothing and another append is tried.
    """
    outcome: Future[Any] = Future()

    def callback(_: object) -> None:
        if not in_engine_thread():
            return
        try:
            outcome.set_result(call())
        except BaseException as error:  # reported to the test
            outcome.set_exception(error)

    for n in range(200):
        store.append_async(_spawn(f"cb{n}")).add_done_callback(callback)
        if outcome.done():
            break
    return outcome


class TestEngineThreads:
    """wait_for and stop from a done-callback (the writer thread)."""

    def test_wait_for_from_a_done_callback_is_refused_at_once(
        self, store: EventStore
    ) -> None:
        """The writer stores positions: waiting on it would stall every
        append until the timeout. A position already reached returns."""
        sub = store.subscribe("m", lambda event: None)
        _append(store, 1)
        sub.wait_for(1, timeout=TIMEOUT)

        def wait() -> str:
            sub.wait_for(1, timeout=TIMEOUT)  # reached: fine anywhere
            try:
                sub.wait_for(10_000, timeout=TIMEOUT)
            except EngineThreadWaitError:
                return "refused"
            return "returned"

        assert _on_writer_thread(store, wait).result(TIMEOUT / 2) == "refused"
        sub.stop()

    def test_stop_from_a_done_callback_does_not_wait(self, store: EventStore) -> None:
        """stop() from the writer thread only signals: the handler in
        progress finishes, its position is stored, then it ends."""
        inside, release = threading.Event(), threading.Event()

        def handler(event: Event) -> None:
            if event.position == 1:
                inside.set()
                release.wait(TIMEOUT)

        sub = store.subscribe("slow", handler)
        try:
            _append(store, 1)
            assert inside.wait(TIMEOUT)
            stopped = _on_writer_thread(store, sub.stop)
            stopped.result(TIMEOUT / 2)  # before the fix: blocked for 30 s
        finally:
            release.set()
        with pytest.raises(SubscriptionStoppedError):
            sub.wait_for(2, timeout=TIMEOUT)
        assert (sub.status, sub.position) == ("stopped", 1)
        assert store.get_stats().subscriptions["slow"].position == 1
        store.subscribe("slow", lambda event: None).stop()  # the name is free

    def test_a_stop_that_times_out_is_terminal(
        self, store: EventStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A handler stuck past the stop timeout: status "stopped" (not
        "running"), the name freed, its event's position never stored."""
        monkeypatch.setattr(subscription, "_STOP_TIMEOUT", 0.01)
        inside, release = threading.Event(), threading.Event()

        def stuck(event: Event) -> None:
            inside.set()
            release.wait(TIMEOUT)

        sub = store.subscribe("stuck", stuck)
        try:
            _append(store, 1)
            assert inside.wait(TIMEOUT)
            sub.stop()
            assert sub.status == "stopped"
            with pytest.raises(SubscriptionStoppedError):
                sub.wait_for(1, timeout=TIMEOUT)
        finally:
            release.set()
        sub._runner._thread.join(TIMEOUT)
        assert store.get_stats().subscriptions["stuck"].position == 0


class TestFromPosition:
    """from_position beyond the head is refused like reset_subscription."""

    def test_beyond_the_head_is_refused(self, store: EventStore) -> None:
        _append(store, 3)
        with pytest.raises(InvalidQueryError) as reset:
            store.reset_subscription("far", 50)
        with pytest.raises(InvalidQueryError, match="beyond the head"):
            store.subscribe("far", lambda event: None, from_position=50)
        assert type(reset.value) is InvalidQueryError
        assert "far" not in store.get_stats().subscriptions
        seen: list[int] = []
        sub = store.subscribe(
            "next", lambda e: seen.append(e.position), from_position=4
        )
        _append(store, 2, "b")
        sub.wait_for(5, timeout=TIMEOUT)
        sub.stop()
        assert seen == [4, 5]

    def test_beyond_the_head_is_refused_by_the_async_form(
        self, store: EventStore
    ) -> None:
        _append(store, 3)

        async def main() -> None:
            with pytest.raises(InvalidQueryError, match="beyond the head"):
                async for _ in store.aio.subscribe("far", from_position=5):
                    pass

        asyncio.run(asyncio.wait_for(main(), TIMEOUT))
        assert "far" not in store.get_stats().subscriptions


def test_async_subscription_ends_quietly_on_shutdown(tmp_path: Path) -> None:
    """A shutdown during the loop's body ends the loop (no
    StoreClosedError); the interrupted event's position is not stored."""
    path = str(tmp_path / "s.db")
    store = EventStore(path).initialize()
    _append(store, 3)
    got: list[int] = []

    async def main() -> None:
        async for event in store.aio.subscribe("c"):
            got.append(event.position)
            if event.position == 2:
                store.shutdown()

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    assert got == [1, 2]
    with EventStore(path) as reopened:
        status = reopened.get_stats().subscriptions["c"]
        assert (status.position, status.status) == (1, "stopped")


class TestTypedErrors:
    """Bad timeouts and a stuck writer are SwarmlogErrors."""

    @pytest.mark.parametrize("timeout", ["1", -1, float("nan"), float("inf"), True])
    def test_bad_wait_timeout(self, store: EventStore, timeout: object) -> None:
        sub = store.subscribe("t", lambda event: None)
        with pytest.raises(InvalidQueryError, match="timeout"):
            sub.wait_for(5, timeout=timeout)  # type: ignore[arg-type]
        sub.stop()

    def test_a_write_past_its_bound_is_typed(
        self, store: EventStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The writer never acknowledges: SubscriptionWriteTimeoutError, a
        SwarmlogError and a TimeoutError (not a bare TimeoutError)."""
        monkeypatch.setattr(subscription, "WRITE_TIMEOUT", 0.01)
        monkeypatch.setattr(store._subscriptions, "_write", lambda function: Future())
        with pytest.raises(SubscriptionWriteTimeoutError) as caught:
            store.reset_subscription("w", 0)
        assert isinstance(caught.value, SwarmlogError)
        assert isinstance(caught.value, TimeoutError)
        assert caught.value.name == "w"


class TestForkedChild:
    """A forked child's copy never blocks on a lock a parent thread held."""

    def _held_runner(self, store: EventStore) -> tuple[Any, threading.Event]:
        sub = store.subscribe("f", lambda event: None)
        held, release = threading.Event(), threading.Event()
        runner = sub._runner
        condition = runner._changed

        def hold() -> None:
            with condition:
                held.set()
                release.wait(TIMEOUT * 3)  # outlasts the test's wait

        threading.Thread(target=hold, daemon=True).start()
        assert held.wait(TIMEOUT)
        return sub, release

    def _wait_outcome(self, sub: Any) -> Future[BaseException | None]:
        outcome: Future[BaseException | None] = Future()

        def wait() -> None:
            try:
                sub.wait_for(1, timeout=None)
            except BaseException as error:  # reported to the test
                outcome.set_result(error)
            else:
                outcome.set_result(None)

        threading.Thread(target=wait, daemon=True).start()
        return outcome

    def test_abandon_gives_each_runner_a_fresh_condition(
        self, store: EventStore
    ) -> None:
        sub, release = self._held_runner(store)
        try:
            store._subscriptions.hub.abandon()  # what a forked child runs
            error = self._wait_outcome(sub).result(TIMEOUT)
            assert isinstance(error, SubscriptionStoppedError)
            assert sub.status == "stopped"
        finally:
            release.set()
            sub._runner.halt()
            sub._runner._thread.join(TIMEOUT)

    def test_wait_for_in_a_child_raises_at_once(
        self, store: EventStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        sub, release = self._held_runner(store)
        try:
            monkeypatch.setattr(sub._runner, "_pid", -1)  # as if forked
            error = self._wait_outcome(sub).result(TIMEOUT)
            assert isinstance(error, SubscriptionStoppedError)
            assert "forked" in str(error)
        finally:
            release.set()
            monkeypatch.undo()
            sub.stop()
