"""Signal-test child process: appends on its main thread while the parent
sends real SIGINT and SIGTERM.

Run as ``sys.executable signal_child.py CONFIG_JSON`` (keys: ``path``,
``seed``, ``caller_commits``, ``acks`` (the side file), ``max_seconds``).

- The SIGTERM handler is the README's pattern (section "Process life"):
  ``store.shutdown()``, then ``sys.exit(128 + signum)``. It is installed
  before the store opens, so a SIGTERM may land in ``initialize()`` too.
- The main thread appends one event at a time in a loop. SIGINT raises
  ``KeyboardInterrupt`` anywhere in that loop: the child catches it and
  appends the *same* event again (an interrupted append has an unknown
  outcome; the retry is idempotent), then goes on.
- A helper thread appends too (with ``caller_commits=True`` it commits
  itself when the writer is idle; signals never land on it).

Each acknowledged append is recorded as one JSON line
``{"id", "p", "v", "a", "t"}`` (``t``: main or helper) with a single
``os.write`` on the side file opened ``O_APPEND``; a line cut short by an
exit is ignored by the parent. On stdout the child reports ``armed`` (the
handler is installed), ``ready`` (the store is open) and, when the loop
ends by itself after ``max_seconds``, ``timeout`` (the parent fails then).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import uuid
from typing import Any

import msgspec

from swarmlog import EventStore, StoreClosedError, create_event, register_event_type

TICK_TYPE = "reliability:signal-tick"


class SignalTick(msgspec.Struct, frozen=True, kw_only=True):
    """The payload every signal-test append carries."""

    n: int
    writer: str


register_event_type(SignalTick, type=TICK_TYPE, aggregate_type="signal-counter")


def _say(word: str) -> None:
    os.write(1, word.encode() + b"\n")


class _Acks:
    """Appends one JSON line per acknowledged event (any thread)."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._encoder = msgspec.json.Encoder()

    def __call__(self, stored: Any, thread: str) -> None:
        record = {
            "id": stored.id.hex,
            "p": stored.position,
            "v": stored.version,
            "a": stored.aggregate_id,
            "t": thread,
        }
        os.write(self._fd, self._encoder.encode(record) + b"\n")


def _event(aggregate: str, n: int, writer: str) -> Any:
    return create_event(SignalTick(n=n, writer=writer), aggregate)


def main(config: dict[str, Any]) -> None:
    store = EventStore(config["path"], caller_commits=config["caller_commits"])

    def leave(signum: int, frame: object) -> None:
        store.shutdown()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    _say("armed")
    store.initialize()
    record = _Acks(config["acks"])
    tag = uuid.uuid4().hex[:6]
    stop = threading.Event()

    def helper() -> None:
        n = 0
        try:
            while not stop.is_set():
                record(store.append(_event(f"h-{tag}", n, "helper")), "helper")
                n += 1
        except StoreClosedError:
            return  # the SIGTERM handler shut the store down

    threading.Thread(target=helper, daemon=True, name="helper").start()
    deadline = time.monotonic() + config["max_seconds"]
    n = 0
    pending: Any = None
    _say("ready")
    while time.monotonic() < deadline:
        try:
            if pending is None:
                pending = _event(f"m-{tag}-{n % 3}", n, "main")
                n += 1
            record(store.append(pending), "main")
            pending = None
        except KeyboardInterrupt:
            continue  # unknown outcome: append the same event again
    stop.set()
    _say("timeout")


if __name__ == "__main__":
    main(msgspec.json.decode(sys.argv[1]))
