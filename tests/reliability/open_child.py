"""Try to open stores, in a process the test set up (another user, a
read-only mount), and report each outcome as one JSON line.

Run as ``sys.executable open_child.py JSON`` where JSON is a list of
``[label, path, read_only]``. Prints ``{label: [error type or "ok", message,
positions read, append outcome]}``.
"""

from __future__ import annotations

import sys
from typing import Any

import msgspec

from swarmlog import EventStore, SwarmlogError, create_task_created_event


def _try(path: str, read_only: bool) -> list[Any]:
    store = EventStore(path, read_only=read_only)
    try:
        store.initialize()
    except SwarmlogError as error:
        return [type(error).__name__, str(error), None, None]
    try:
        positions = [e.position for e in store.replay()]
        try:
            store.append(create_task_created_event("t", "b", "T", "", "h"))
            appended = "ok"
        except SwarmlogError as error:
            appended = type(error).__name__
        return ["ok", "", positions, appended]
    finally:
        store.shutdown()


def main() -> None:
    out = {}
    for label, path, read_only in msgspec.json.decode(sys.argv[1]):
        try:
            out[label] = _try(path, read_only)
        except Exception as error:
            out[label] = [f"untyped {type(error).__name__}", str(error), None, None]
    sys.stdout.write(msgspec.json.encode(out).decode() + "\n")


if __name__ == "__main__":
    main()
