"""Process life on the write path (issue 11): raising and cancelled
done-callbacks, a closed event loop, waits from the writer's own thread,
and a BaseException injected at every line of the commit path."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import (
    EventStore,
    Snapshot,
    WriterStoppedError,
    create_agent_started_event,
)
from swarmlog.schema.timeutil import utc_now

if TYPE_CHECKING:
    from types import FrameType

TIMEOUT = 10.0
COMMITTER = str(Path(__file__).resolve().parents[2] / "actors" / "committer.py")


@pytest.fixture
def store(tmp_path: Path) -> Any:
    store = EventStore(str(tmp_path / "events.db")).initialize()
    yield store
    store.shutdown()


def test_a_raising_done_callback_never_kills_the_writer(store: EventStore) -> None:
    """Callbacks raising Exception or BaseException are logged and counted;
    the writer goes on committing."""
    ran = threading.Event()

    def bad(_: object) -> None:
        raise RuntimeError("user bug")

    def worse(_: object) -> None:
        ran.set()
        raise SystemExit(3)

    future = store.append_async(create_agent_started_event("a"))
    future.add_done_callback(bad)
    future.add_done_callback(worse)
    future.get(TIMEOUT)
    assert ran.wait(TIMEOUT)
    before = store.get_stats().callback_errors
    store.append(create_agent_started_event("b"))
    stats = store.get_stats()
    assert stats.callback_errors >= 2
    assert before >= 2
    assert stats.writer_stopped is False
    assert stats.total_events == 2


def test_a_callback_added_when_done_runs_at_once_guarded(store: EventStore) -> None:
    """add_done_callback on a settled future runs it now, on this thread,
    and what it raises is not passed on."""
    future = store.append_async(create_agent_started_event("a"))
    future.get(TIMEOUT)
    threads: list[int] = []

    def bad(_: object) -> None:
        threads.append(threading.get_ident())
        raise asyncio.CancelledError

    future.add_done_callback(bad)
    assert threads == [threading.get_ident()]


def test_a_closed_event_loop_is_harmless(store: EventStore) -> None:
    """wait_for times out, asyncio.run closes its loop, the commit lands
    later: the writer survives and the event is stored."""

    conn = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    event = create_agent_started_event("late")

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(store.append_async(event), 0.05)

    try:
        asyncio.run(main())
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    stored = store.append(event)  # a retry resolves idempotently
    assert stored.id == event.id
    assert store.append(create_agent_started_event("after")).position == 2
    assert store.get_stats().writer_stopped is False


def test_save_snapshot_from_a_callback_on_the_writer_thread(store: EventStore) -> None:
    """A done-callback on the writer's thread may save a snapshot: it
    completes without waiting on itself."""
    done = threading.Event()
    errors: list[BaseException] = []

    def snap(_: object) -> None:
        try:
            store.save_snapshot(Snapshot("a", "agent", 1, {"k": 1}, utc_now()))
        except BaseException as error:
            errors.append(error)
        done.set()

    future = store.append_async(create_agent_started_event("a"))
    future.add_done_callback(snap)
    assert done.wait(TIMEOUT)
    assert errors == []
    snapshot = store.get_snapshot("a")
    assert snapshot is not None
    assert snapshot.version == 1


def test_append_async_at_the_bound_never_blocks_the_loop(tmp_path: Path) -> None:
    """At max_in_flight, append_async on an event loop returns at once and
    the await waits; order is kept."""
    store = EventStore(str(tmp_path / "e.db"), max_in_flight=2).initialize()
    try:
        conn = sqlite3.connect(
            store.path, isolation_level=None, check_same_thread=False
        )
        conn.execute("BEGIN IMMEDIATE")
        ticks = 0

        async def main() -> list[int]:
            nonlocal ticks
            futures = [
                store.append_async(create_agent_started_event(f"a{i}"))
                for i in range(6)
            ]
            for _ in range(3):  # the loop still runs
                await asyncio.sleep(0)
                ticks += 1
            conn.execute("ROLLBACK")
            return [(await f).position for f in futures]

        try:
            positions = asyncio.run(main())
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
        assert ticks == 3
        assert positions == list(range(1, 7))
    finally:
        store.shutdown()


def _inject_at(line_number: int, writer_name: str) -> Any:
    """A trace function raising KeyboardInterrupt at the n-th line event of
    committer.py on the writer thread (once: a raising tracer unsets
    itself)."""
    count = [0]

    def local(frame: FrameType, event: str, arg: object) -> Any:
        if event == "line":
            count[0] += 1
            if count[0] == line_number:
                raise KeyboardInterrupt
        return local

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        if threading.current_thread().name != writer_name:
            return None
        if frame.f_code.co_filename != COMMITTER:
            return None
        return local

    return tracer, count


@pytest.mark.parametrize("step", range(1, 200, 6))
def test_an_interrupt_at_any_step_of_the_commit_path(tmp_path: Path, step: int) -> None:
    """A KeyboardInterrupt raised at a line of the committer on the writer
    thread: every pending append settles (stored, or WriterStoppedError),
    no transaction stays open, acknowledged events are stored gap-free,
    and the store goes on (or refuses with WriterStoppedError)."""
    path = str(tmp_path / "events.db")
    store = EventStore(path).initialize()
    acknowledged = [store.append(create_agent_started_event("before"))]
    tracer, count = _inject_at(step, _writer_thread_name(store))
    _trace_writer_thread(store, tracer)
    try:
        futures = [
            store.append_async(create_agent_started_event(f"a{i}")) for i in range(5)
        ]
        many = store.append_many_async(
            [create_agent_started_event("m1"), create_agent_started_event("m2")]
        )
        outcomes: list[BaseException | None] = []
        for future in [*futures, many]:
            try:
                value = future.get(TIMEOUT)
            except WriterStoppedError as error:
                outcomes.append(error)
            else:
                outcomes.append(None)
                acknowledged.extend(value if isinstance(value, list) else [value])
    finally:
        _untrace_writer_thread(store)
    stopped = store.get_stats().writer_stopped
    if stopped:
        with pytest.raises(WriterStoppedError):
            store.append(create_agent_started_event("after"))
    else:
        acknowledged.append(store.append(create_agent_started_event("after")))
    store.shutdown()
    with EventStore(path) as reopened:
        positions = [e.position for e in reopened.replay()]
        ids = {e.id for e in reopened.replay()}
    assert positions == list(range(1, len(positions) + 1))
    assert {e.id for e in acknowledged} <= ids
    assert count[0] >= 1  # the tracer ran on the writer thread


@pytest.mark.soak
@pytest.mark.parametrize("step", range(1, 260))
def test_an_interrupt_at_every_step_of_the_commit_path(
    tmp_path: Path, step: int
) -> None:
    """The same, at every line event (soak)."""
    test_an_interrupt_at_any_step_of_the_commit_path(tmp_path, step)


def _writer_thread_name(store: EventStore) -> str:
    ident = store._wiring.committer.writer_ident  # type: ignore[union-attr]
    for thread in threading.enumerate():
        if thread.ident == ident:
            return thread.name
    pytest.fail("no writer thread")


def _trace_writer_thread(store: EventStore, tracer: Any) -> None:
    """Install ``tracer`` on the running writer thread, from a done-callback
    (which runs there)."""
    done = threading.Event()

    def install(_: object) -> None:
        sys.settrace(tracer)
        done.set()

    first = store.append_async(create_agent_started_event("install"))
    first.add_done_callback(install)
    assert done.wait(TIMEOUT)
    first.get(TIMEOUT)


def _untrace_writer_thread(store: EventStore) -> None:
    done = threading.Event()

    def remove(_: object) -> None:
        sys.settrace(None)
        done.set()

    try:
        future = store.append_async(create_agent_started_event("untrace"))
    except WriterStoppedError:
        return
    future.add_done_callback(remove)
    done.wait(TIMEOUT)


STORE = str(Path(__file__).resolve().parents[2] / "swarmlog" / "store.py")


def _caller_tracer(step: int) -> tuple[Any, list[int]]:
    """A trace function for the calling thread: KeyboardInterrupt at the
    n-th line event of store.py or committer.py."""
    count = [0]

    def local(frame: FrameType, event: str, arg: object) -> Any:
        if event == "line":
            count[0] += 1
            if count[0] == step:
                raise KeyboardInterrupt
        return local

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        if frame.f_code.co_filename in (STORE, COMMITTER):
            return local
        return None

    return tracer, count


@pytest.mark.parametrize("caller_commits", [False, True], ids=["writer", "leader"])
@pytest.mark.parametrize("step", range(1, 90, 4))
def test_an_interrupted_caller(tmp_path: Path, step: int, caller_commits: bool) -> None:
    """A KeyboardInterrupt at a line of the append path on the caller's
    thread: the append's outcome is unknown to it, but no slot leaks, a
    retry of the same event is idempotent, the store accepts appends and
    shuts down at once; positions stay gap-free."""
    path = str(tmp_path / "events.db")
    store = EventStore(path, caller_commits=caller_commits).initialize()
    for i in range(20):  # calm: a leading caller would commit itself
        store.append(create_agent_started_event(f"warm{i}"))
    event = create_agent_started_event("interrupted")
    tracer, count = _caller_tracer(step)
    outcome: list[BaseException | None] = []

    def append() -> None:
        sys.settrace(tracer)
        try:
            store.append(event)
        except KeyboardInterrupt as error:
            outcome.append(error)
        else:
            outcome.append(None)
        finally:
            sys.settrace(None)

    if caller_commits:  # callers commit only off the main thread
        worker = threading.Thread(target=append)
        worker.start()
        worker.join(TIMEOUT)
        assert not worker.is_alive()
    else:
        append()
    assert len(outcome) == 1
    if store.get_stats().writer_stopped:  # interrupted inside the write
        with pytest.raises(WriterStoppedError):
            store.append(event)
    else:
        stored = store.append(event)  # the retry: stored once, whatever happened
        assert stored.id == event.id
        store.append(create_agent_started_event("after"))
    assert store._appends.in_flight.wait_idle(TIMEOUT), "an in-flight slot leaked"
    store.shutdown()
    with EventStore(path) as reopened:
        events = list(reopened.replay())
    assert [e.position for e in events] == list(range(1, len(events) + 1))
    assert sum(1 for e in events if e.id == event.id) <= 1
    assert count[0] >= 1
