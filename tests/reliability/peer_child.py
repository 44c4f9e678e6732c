"""A second process on the same store file, driven over stdin/stdout.

Run as ``sys.executable peer_child.py PATH [read_only]``. It opens the store
and reports ``{"open": "ok"}`` or ``{"open": "error", "t": ..., "m": ...,
"path": ...}`` (then exits). Then it answers one JSON command per stdin line
with one JSON line:

- ``{"op": "append", "n": N, "agg": A}`` -> ``{"ids": [...], "positions": [...]}``
- ``{"op": "append_loop", "n": N}`` -> ``{"done": N, "head": H}`` (N appends,
  one at a time, reported once at the end)
- ``{"op": "wait_head", "n": N}`` -> ``{"head": H, "ids": [...]}`` once the
  store shows at least N events (a read-only follower polls)
- ``{"op": "try_append"}`` -> ``{"t": error type name or "ok"}``
- ``{"op": "exit"}`` -> ``{"closed": true}`` after a clean shutdown
"""

from __future__ import annotations

import sys
import time
from typing import Any

import msgspec

from swarmlog import EventStore, SwarmlogError, create_task_created_event


def _say(record: dict[str, Any]) -> None:
    sys.stdout.write(msgspec.json.encode(record).decode() + "\n")
    sys.stdout.flush()


def _event(aggregate: str, i: int) -> Any:
    return create_task_created_event(f"{aggregate}-{i}", "peer", f"T{i}", "", "low")


def main(path: str, read_only: bool) -> None:
    store = EventStore(path, read_only=read_only)
    try:
        store.initialize()
    except SwarmlogError as error:
        _say(
            {
                "open": "error",
                "t": type(error).__name__,
                "m": str(error),
                "path": getattr(error, "path", None),
            }
        )
        return
    _say({"open": "ok", "head": store.head_position})
    for line in sys.stdin:
        command = msgspec.json.decode(line)
        op = command["op"]
        if op == "append":
            stored = [
                store.append(_event(command["agg"], i)) for i in range(command["n"])
            ]
            _say(
                {
                    "ids": [e.id.hex for e in stored],
                    "positions": [e.position for e in stored],
                }
            )
        elif op == "append_loop":
            for i in range(command["n"]):
                store.append(_event("loop", i))
            _say({"done": command["n"], "head": store.head_position})
        elif op == "wait_head":
            deadline = time.monotonic() + 30
            while store.head_position < command["n"] and time.monotonic() < deadline:
                time.sleep(0.005)  # another process writes: nothing to wait on
            _say(
                {
                    "head": store.head_position,
                    "ids": [e.id.hex for e in store.replay()],
                }
            )
        elif op == "try_append":
            try:
                store.append(_event("nope", 0))
            except SwarmlogError as error:
                _say({"t": type(error).__name__, "m": str(error)})
            else:
                _say({"t": "ok"})
        elif op == "exit":
            store.shutdown()
            _say({"closed": True})
            return
    store.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], len(sys.argv) > 2 and sys.argv[2] == "read_only")
