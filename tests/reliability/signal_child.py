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

import contextlib
import os
import signal
import sys
import threading
import time
import uuid
from typing import Any

import msgspec

from swarmlog import (
    EventStore,
    StoreClosedError,
    StoreNotInitializedError,
    create_event,
    register_event_type,
)

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
    state: dict[str, Any] = {"n": 0, "pending": None}

    def append_until_deadline() -> None:
        while time.monotonic() < deadline:
            try:
                if state["pending"] is None:
                    n = state["n"]
                    state["pending"] = _event(f"m-{tag}-{n % 3}", n, "main")
                    state["n"] = n + 1
                record(store.append(state["pending"]), "main")
                state["pending"] = None
            except KeyboardInterrupt:
                continue  # unknown outcome: append the same event again

    _say("ready")
    # A SIGINT may also land on the loop's own test or jump, outside the
    # try above: start the loop again (the pending event is kept).
    while True:
        try:
            append_until_deadline()
            break
        except KeyboardInterrupt:
            pass
    stop.set()
    _say("timeout")


_TRACED = ("store.py", "submit.py", "reply.py", "committer.py", "lifecycle.py")


def _lifecycle(
    store: EventStore, acked: list[Any], base: int, settrace: Any, tracer: Any
) -> None:
    """Open, append, append_many, shut down: the traced main-thread life."""
    settrace(tracer)
    try:
        store.initialize()
        acked.append(store.append(_event("outer", base, "main")))
        acked.extend(
            store.append_many(
                [_event("outer", base + 1, "main"), _event("b", base + 2, "main")]
            )
        )
        store.shutdown()
    except StoreClosedError:
        pass  # the handler shut the store down
    finally:
        settrace(None)


def _trace_step(config: dict[str, Any], k: int) -> bool:
    """One store life with SIGTERM at its k-th traced line; False when the
    life had fewer lines (the signal was never sent)."""
    path = os.path.join(config["dir"], f"trace-{k}.db")
    store = EventStore(path, caller_commits=config["caller_commits"])
    acked: list[Any] = []
    state = {"lines": 0, "fired": False}

    def leave(signum: int, frame: object) -> None:
        with contextlib.suppress(StoreClosedError, StoreNotInitializedError):
            acked.append(store.append(_event("handler", 0, "handler")))
        store.shutdown()

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if state["fired"]:
            return None
        if not frame.f_code.co_filename.endswith(_TRACED):
            return None
        if event == "line":
            state["lines"] += 1
            if state["lines"] == k:
                state["fired"] = True
                signal.raise_signal(signal.SIGTERM)
        return tracer

    signal.signal(signal.SIGTERM, leave)
    _lifecycle(store, acked, 10, sys.settrace, tracer)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    store.shutdown()
    if not store.closed:
        _say(f"err {k}: open after shutdown")
    check = EventStore(path).initialize()
    try:
        events = list(check.replay())
        positions = [e.position for e in events]
        if positions != list(range(1, len(events) + 1)):
            _say(f"err {k}: positions {positions}")
        ids = {e.id: e.position for e in events}
        for stored in acked:
            if ids.get(stored.id) != stored.position:
                _say(f"err {k}: lost {stored.aggregate_id} {stored.position}")
        probe = check.append(_event("probe", 0, "main"))
        if probe.position != len(events) + 1:
            _say(f"err {k}: probe at {probe.position}")
    finally:
        check.shutdown()
    os.unlink(path)
    return bool(state["fired"])


def trace_main(config: dict[str, Any]) -> None:
    """Deterministic SIGTERM at the k-th traced line of the main thread.

    For each k, a store's life (open, append, append_many, shutdown) runs
    with a trace function that raises SIGTERM at its k-th line in the
    store's own modules. The handler appends (its append must commit) and
    calls ``shutdown()`` (it must return: no deadlock, no second teardown
    in parallel), then returns, so the interrupted outer call goes on. The
    child then reopens the file and checks that every acknowledged event is
    stored, gap-free, and that the file accepts an append. One line
    ``k <k>`` per step on stdout; ``done <steps>`` at the end.
    """
    import faulthandler

    faulthandler.dump_traceback_later(config["max_seconds"], exit=True)
    k = config["start"]
    steps = 0
    while True:
        fired = _trace_step(config, k)
        steps += 1
        _say(f"k {k}")
        if not fired:
            break  # the life had fewer than k traced lines: all covered
        k += config["stride"]
    _say(f"done {steps}")


if __name__ == "__main__":
    import faulthandler

    # The parent sends SIGUSR1 to a child it finds hung: every thread's
    # stack goes to stderr, which the failure message shows.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    _config = msgspec.json.decode(sys.argv[1])
    (trace_main if _config.get("mode") == "trace" else main)(_config)
