"""User code never stops the engine, whatever it raises; projections that
query each other from their handlers never stall.

A ``BaseException`` that is not an ``Exception`` (``asyncio.CancelledError``,
``KeyboardInterrupt``, ``SystemExit``) raised by a projection handler or a
query body follows the projection's failure policy or reaches the caller;
raised anywhere else at an actor's edge it is logged and counted. pykka's
``ActorRegistry.stop_all`` (which would stop every store in the process)
never fires.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Any

import pytest

from swarmlog import (
    EventStore,
    Projection,
    ProjectionFailedError,
    TaskCreated,
    TaskHistoryProjection,
    create_task_created_event,
    handles,
    query,
)
from swarmlog.actors.runtime import ESCAPED, FastInboxActor

TIMEOUT = 10.0

_HOSTILE = [asyncio.CancelledError, KeyboardInterrupt, SystemExit]


def _created(name: str) -> Any:
    return create_task_created_event(name, "build", name, "", "low")


class _Hostile(Projection):
    """Raises ``error`` on the task named ``bad``; counts the others."""

    name = "hostile"
    error: type[BaseException] = KeyboardInterrupt

    def reset_state(self) -> None:
        self.count = 0

    @handles(TaskCreated)
    def _on_created(self, event: Any) -> None:
        if event.aggregate_id == "bad":
            raise self.error
        self.count += 1

    @query
    def get_count(self) -> int:
        return self.count

    @query
    def explode(self) -> int:
        raise self.error


@pytest.mark.parametrize("error", _HOSTILE, ids=lambda e: e.__name__)
def test_a_handler_base_exception_follows_the_skip_policy(
    error: type[BaseException],
) -> None:
    """With on_failure='skip' the event becomes a dead letter and the
    projection stays live; the store and a second store go on."""
    store, other = EventStore().initialize(), EventStore().initialize()
    try:
        hostile = _Hostile(store, on_failure="skip")
        hostile.error = error
        hostile.initialize()
        others = TaskHistoryProjection(other).initialize()
        store.append(_created("bad"))
        last = store.append(_created("good"))
        hostile.wait_for(last.position, timeout=TIMEOUT)
        assert hostile.get_count() == 1
        assert store.get_stats().projections["hostile"].dead_letters == 1
        other.append(_created("t1"))
        assert [t.id for t in others.get_all_tasks()] == ["t1"]
    finally:
        store.shutdown()
        other.shutdown()


@pytest.mark.parametrize("error", _HOSTILE, ids=lambda e: e.__name__)
def test_a_handler_base_exception_stops_only_its_projection(
    error: type[BaseException],
) -> None:
    """With retry-then-stop the projection enters 'failed' with a typed
    error; appends and other projections go on."""
    store = EventStore().initialize()
    try:
        hostile = _Hostile(store, max_retries=0)
        hostile.error = error
        hostile.initialize()
        tasks = TaskHistoryProjection(store).initialize()
        store.append(_created("bad"))
        store.append(_created("after"))
        with pytest.raises(ProjectionFailedError):
            hostile.wait_for(2, timeout=TIMEOUT)
        assert [t.id for t in tasks.get_all_tasks()] == ["bad", "after"]
    finally:
        store.shutdown()


@pytest.mark.parametrize("error", _HOSTILE, ids=lambda e: e.__name__)
def test_a_query_base_exception_reaches_only_its_caller(
    error: type[BaseException],
) -> None:
    """A query body raising a BaseException raises it in the caller; the
    projection answers the next query."""
    store = EventStore().initialize()
    try:
        hostile = _Hostile(store)
        hostile.error = error
        hostile.initialize()
        with pytest.raises(error):
            hostile.explode()
        store.append(_created("good"))
        assert hostile.get_count() == 1
    finally:
        store.shutdown()


class _Fragile(FastInboxActor):
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, BaseException):
            raise message
        if isinstance(message, Future):
            message.set_result("alive")
        return None


@pytest.mark.parametrize("error", _HOSTILE, ids=lambda e: e.__name__)
def test_no_base_exception_leaves_an_actor(error: type[BaseException]) -> None:
    """An actor whose on_receive raises a BaseException keeps running, and
    so does every other actor (pykka's stop_all never fires)."""
    fragile, bystander = _Fragile.start(), _Fragile.start()
    try:
        before = ESCAPED.count
        fragile.tell(error())
        for actor in (fragile, bystander):
            answer: Future[str] = Future()
            actor.tell(answer)
            assert answer.result(TIMEOUT) == "alive"
        assert ESCAPED.count == before + 1
    finally:
        fragile.stop()
        bystander.stop()


class _Curious(Projection):
    """On each task created, asks its peer projection for its count."""

    name = "curious"
    meet: threading.Barrier

    def reset_state(self) -> None:
        self.count = 0
        self.answers: list[int] = []

    @handles(TaskCreated)
    def _on_created(self, event: Any) -> None:
        self.count += 1
        self.meet.wait(TIMEOUT)  # both handlers run at once
        self.answers.append(self.peer.get_count())

    @query
    def get_count(self) -> int:
        return self.count

    @query
    def get_answers(self) -> list[int]:
        return list(self.answers)


class _AlsoCurious(_Curious):
    name = "also-curious"


def test_projections_querying_each_other_do_not_stall() -> None:
    """Two handlers that query each other at the same moment (eventual
    consistency) both get an answer, long before query_timeout."""
    meet = threading.Barrier(2)
    store = EventStore().initialize()
    try:
        one = _Curious(store, consistency="eventual", query_timeout=60)
        two = _AlsoCurious(store, consistency="eventual", query_timeout=60)
        one.meet = two.meet = meet
        one.peer, two.peer = two, one
        one.initialize()
        two.initialize()
        for name in ("t1", "t2", "t3"):
            last = store.append(_created(name))
        one.wait_for(last.position, timeout=TIMEOUT)
        two.wait_for(last.position, timeout=TIMEOUT)
        assert len(one.get_answers()) == len(two.get_answers()) == 3
        assert store.get_stats().projections["curious"].status == "live"
    finally:
        store.shutdown()
