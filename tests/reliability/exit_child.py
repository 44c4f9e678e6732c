"""A process that leaves its store open, then ends in one of several ways.

Run as ``sys.executable exit_child.py MODE PATH``. It opens a writing store
on PATH (with a listener, a projection and the checkpointer running),
appends ``COMMITTED`` events and queues ``QUEUED`` more without waiting,
prints one JSON line ``{"path": ..., "pid": ...}`` and then, by MODE:

- ``raise``: raises RuntimeError (the traceback is the script's end);
- ``end``: returns from the script;
- ``sigint``: waits for SIGINT (one Ctrl-C) with the default handler;
- ``sigterm-exit``: waits for SIGTERM; the handler raises SystemExit;
- ``sigterm-shutdown``: waits for SIGTERM; the handler calls
  ``store.shutdown()`` and exits;
- ``read-only``: also opens a read-only store on PATH (its follower thread
  running), then returns from the script;
- ``stuck``: also runs a projection whose handler never returns (with the
  store's internal shutdown waits cut to 0.5 s), then returns.

It never calls ``shutdown()`` itself (except in ``sigterm-shutdown``).
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import msgspec

import swarmlog.actors.runtime
from swarmlog import (
    EventStore,
    Projection,
    TaskCreated,
    TaskHistoryProjection,
    create_task_created_event,
    handles,
)

COMMITTED = 20
QUEUED = 200


def _event(i: int) -> Any:
    return create_task_created_event(f"t{i}", "exit", f"T{i}", "", "low")


class _Stuck(Projection):
    name = "stuck"

    def reset_state(self) -> None:
        self.never = threading.Event()

    @handles(TaskCreated)
    def _on_created(self, event: Any) -> None:
        self.never.wait()


def main(mode: str, path: str) -> None:
    store = EventStore(path, auto_persist_interval=0.5).initialize()
    store.on("event:appended", lambda event: None)
    TaskHistoryProjection(store).initialize()
    if mode == "stuck":
        swarmlog.actors.runtime.STOP_TIMEOUT = 0.5  # every wait stays bounded
        _Stuck(store).initialize()
    for i in range(COMMITTED):
        store.append(_event(i))
    for i in range(COMMITTED, COMMITTED + QUEUED):
        store.append_async(_event(i))
    if mode == "read-only":
        EventStore(path, read_only=True, poll_interval=0.01).initialize()
    if mode == "sigterm-exit":

        def leave(signum: int, frame: object) -> None:
            sys.exit(128 + signum)

        signal.signal(signal.SIGTERM, leave)
    elif mode == "sigterm-shutdown":

        def shut(signum: int, frame: object) -> None:
            store.shutdown()
            sys.exit(128 + signum)

        signal.signal(signal.SIGTERM, shut)
    sys.stdout.write(msgspec.json.encode({"path": store.path}).decode() + "\n")
    sys.stdout.flush()
    if mode == "raise":
        raise RuntimeError("the script failed")
    if mode.startswith("sig"):
        while True:
            signal.pause()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
