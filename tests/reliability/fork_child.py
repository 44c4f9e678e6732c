"""A process that forks while its store is open (run by test_fork.py).

Run as ``sys.executable fork_child.py PATH``. The parent opens a store, runs
a projection, appends ``p0``..``p4`` and forks. The child tries every call
on the inherited store, its ``shutdown()`` and a store of its own (the
parent still holds the file), reports, and waits. Meanwhile the parent
appends ``p5``..``p9``, shuts down, reopens the file (the child still
alive), appends ``p10`` and shuts down again; then it lets the child open
its own store and append ``c0``. The child ends with ``sys.exit`` (so the
exit hook runs in it). The parent prints one JSON line: what the child saw,
its exit status, and every aggregate id stored in the end.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec

from swarmlog import (
    EventStore,
    Snapshot,
    TaskHistoryProjection,
    create_task_created_event,
)


def _event(name: str) -> Any:
    return create_task_created_event(name, "fork", name, "", "low")


def _send(fd: int, record: Any) -> None:
    os.write(fd, msgspec.json.encode(record) + b"\n")


def _receive(stream: Any) -> Any:
    return msgspec.json.decode(stream.readline())


def _child(
    store: EventStore, tasks: TaskHistoryProjection, path: str
) -> dict[str, Any]:
    snapshot = Snapshot("a", "task", 1, {}, datetime.now(UTC))
    calls = {
        "append": lambda: store.append(_event("c-1")),
        "append_async": lambda: store.append_async(_event("c-2")),
        "append_many": lambda: store.append_many([_event("c-3")]),
        "get_events": lambda: store.get_events("p0"),
        "query": store.query,
        "replay": lambda: list(store.replay()),
        "head_position": lambda: store.head_position,
        "get_stats": store.get_stats,
        "get_snapshot": lambda: store.get_snapshot("a"),
        "save_snapshot": lambda: store.save_snapshot(snapshot),
        "persist": store.persist,
        "initialize": store.initialize,
        "projection_query": tasks.get_all_tasks,
    }
    seen: dict[str, Any] = {}
    for name, call in calls.items():
        try:
            call()
            seen[name] = "ok"
        except BaseException as error:
            seen[name] = type(error).__name__
    try:
        store.shutdown()
        seen["shutdown"] = "ok"
    except BaseException as error:
        seen["shutdown"] = type(error).__name__
    seen["closed"] = store.closed
    try:
        EventStore(path).initialize().shutdown()
        seen["own_store_while_parent_open"] = "ok"
    except BaseException as error:
        seen["own_store_while_parent_open"] = type(error).__name__
    return seen


def main(path: str) -> None:
    store = EventStore(path).initialize()
    tasks = TaskHistoryProjection(store).initialize()
    for i in range(5):
        store.append(_event(f"p{i}"))
    to_parent_r, to_parent_w = os.pipe()
    to_child_r, to_child_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(to_parent_r)
        os.close(to_child_w)
        _send(to_parent_w, _child(store, tasks, path))
        with os.fdopen(to_child_r) as released:
            _receive(released)
        with EventStore(path) as own:
            own.append(_event("c0"))
        _send(to_parent_w, {"own_store": "ok"})
        sys.exit(0)  # the exit hook runs here: it must leave the parent alone
    os.close(to_parent_w)
    os.close(to_child_r)
    from_child = os.fdopen(to_parent_r)
    seen = _receive(from_child)
    for i in range(5, 10):
        store.append(_event(f"p{i}"))
    store.shutdown()
    with EventStore(path) as again:  # the child still lives
        again.append(_event("p10"))
    _send(to_child_w, {"released": True})
    seen.update(_receive(from_child))
    _, status = os.waitpid(pid, 0)
    with EventStore(path) as final:
        ids = [event.aggregate_id for event in final.replay()]
    record = {"child": seen, "status": os.waitstatus_to_exitcode(status), "ids": ids}
    sys.stdout.write(msgspec.json.encode(record).decode() + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
