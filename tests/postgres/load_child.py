"""Child process of the PostgreSQL fault-under-load tests (test_load_faults).

``load_child.py CONFIG_JSON`` (``url``, ``schema``, ``index``,
``max_seconds``, ``follower``, ``lock_timeout``) opens the store, starts a
projection and an ``event:appended`` listener that record every position
they are given, and runs four appending threads on contended aggregates
(shared by every process) and on aggregates of its own: single appends,
and every fifth operation an ``append_many`` of three events across
aggregates (each event's metadata is ``{"c": index}``). A ``follower`` opens the store
``read_only`` (its projection and listener are fed by its follower, woken
by its own LISTEN connection) and appends nothing. A reader thread makes
strong reads beside them (an aggregate's events, the head) and checks
what it gets.

An append that fails with a typed storage error (:class:`StorageError`,
its :class:`CommitOutcomeUnknownError`, :class:`LockTimeoutError`: what a
dropped connection or a restarting server gives) is retried with the *same*
events (the same ids) until it succeeds: the retry stores them, or returns
them as stored by the attempt whose outcome was unknown. A read may fail
with the same typed errors. Any other error is reported and ends that
thread (the parent then fails the test).

Reports, one JSON line each on stdout (one ``os.write``: atomic on a pipe):
``{"k": "ready"}``; ``{"k": "ack", "id", "p", "v", "a"}`` per acknowledged
event; ``{"k": "fault", "t", "m"}`` per typed error of an append (retried)
and ``{"k": "rfault", ...}`` of a read; ``{"k": "err", "where", "t",
"m"}`` for anything else (or a wrong read); ``{"k": "appended", "n"}``
once the threads stopped after ``finish``; ``{"k": "seen", "listener":
[...], "projection": [...]}`` once both saw ``expect N`` positions; then
``{"k": "done"}`` and exit 0.

Commands on stdin: ``go`` (start appending: every process opened its
store before any append, so its listener hears all of ``1..N``),
``finish`` (each thread completes the operation it is in, retries
included, then stops) and ``expect N`` (wait, bounded, until the
listener and the projection reached position N *without* asking for a
catch-up: only this process's change watcher, woken by its LISTEN
connection or its fallback look, brings other processes' commits in; then
report and exit). The child exits by itself after ``max_seconds`` (code 4)
or when stdin closes (code 3).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import msgspec

from swarmlog import (
    Event,
    EventStore,
    LockTimeoutError,
    Projection,
    StorageError,
    create_agent_started_event,
    handles,
    query,
)

RETRY_FOR = 60.0
"""Seconds one operation may keep failing before the child gives up."""
SEEN_TIMEOUT = 30.0
"""Seconds ``expect N`` may wait for the listener and the projection."""
_BACKOFF = 0.02  # seconds between retries of a failed append (not a sync)
_READ_PAUSE = 0.005  # seconds between two reads of the reader thread


class PositionsProjection(Projection):
    """Records the position of every event it is given, in order."""

    name = "load-positions"
    state_version = 1

    def reset_state(self) -> None:
        self._positions: list[int] = []

    @handles("agent:started")
    def _on_started(self, event: Event[Any]) -> None:
        self._positions.append(event.position)

    @query
    def positions(self) -> list[int]:
        """A copy of the positions seen, in the order they came."""
        return list(self._positions)


class _Child:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.index = int(config["index"])
        self._out = threading.Lock()
        self._encoder = msgspec.json.Encoder()
        self.finish = threading.Event()
        self.pause = threading.Event()  # never set: a bounded backoff wait
        self.heard: list[int] = []
        self.heard_cond = threading.Condition()
        self.follower = bool(config.get("follower"))
        options: dict[str, Any] = {"pg_schema": config["schema"]}
        if self.follower:
            options["read_only"] = True
        elif config.get("lock_timeout"):
            options["lock_timeout"] = config["lock_timeout"]
        self.store = EventStore(config["url"], **options)
        self.store.on("event:appended", self._heard)

    def report(self, record: dict[str, Any]) -> None:
        line = self._encoder.encode(record) + b"\n"
        with self._out:
            os.write(1, line)

    def _heard(self, event: Event[Any]) -> None:
        with self.heard_cond:
            self.heard.append(event.position)
            self.heard_cond.notify_all()

    def commit(self, events: list[Event[Any]]) -> list[Event[Any]]:
        """Append ``events`` (one batch), retrying typed storage errors."""
        deadline = time.monotonic() + RETRY_FOR
        while True:
            try:
                if len(events) == 1:
                    return [self.store.append(events[0])]
                return self.store.append_many(events)
            except (StorageError, LockTimeoutError) as error:
                self.report({"k": "fault", "t": type(error).__name__, "m": str(error)})
                if time.monotonic() > deadline:
                    raise
                self.pause.wait(_BACKOFF)

    def work(self, worker: int) -> int:
        own = f"c{self.index}-w{worker}"
        count = 0
        while not self.finish.is_set():
            count += 1
            if count % 5 == 0:
                aggregates = [f"shared{count % 3}", own, f"shared{(count + 1) % 3}"]
            elif count % 2:
                aggregates = [f"shared{count % 3}"]
            else:
                aggregates = [own]
            events = [
                create_agent_started_event(a, metadata={"c": self.index})
                for a in aggregates
            ]
            for stored in self.commit(events):
                self.report(
                    {
                        "k": "ack",
                        "id": stored.id.hex,
                        "p": stored.position,
                        "v": stored.version,
                        "a": stored.aggregate_id,
                    }
                )
        return count

    def run_worker(self, worker: int, counts: list[int]) -> None:
        try:
            counts[worker] = self.work(worker)
        except BaseException as error:  # report, never die silently
            self.report(
                {
                    "k": "err",
                    "where": f"worker {worker}",
                    "t": type(error).__name__,
                    "m": str(error),
                }
            )

    def read(self) -> None:
        """Strong reads beside the appends (the reader thread): a read
        during a fault is a typed error, never a hang or a wrong answer."""
        n = 0
        while not self.finish.is_set():
            n += 1
            try:
                stream = self.store.get_events(f"shared{n % 3}")
                head = self.store.head_position
            except (StorageError, LockTimeoutError) as error:
                self.report({"k": "rfault", "t": type(error).__name__, "m": str(error)})
            else:
                versions = [e.version for e in stream]
                # A writing store's head is what its writer published (it
                # may lag other processes' commits); a read-only store's
                # is read from the server now.
                behind = self.follower and bool(stream) and stream[-1].position > head
                if versions != list(range(1, len(versions) + 1)) or behind:
                    msg = f"{versions[-5:]}, head {head}"
                    self.report({"k": "err", "where": "read", "t": "Read", "m": msg})
            self.pause.wait(_READ_PAUSE)

    def run_reader(self) -> None:
        try:
            self.read()
        except BaseException as error:  # report, never die silently
            self.report(
                {
                    "k": "err",
                    "where": "reader",
                    "t": type(error).__name__,
                    "m": str(error),
                }
            )

    def wait_seen(self, head: int) -> None:
        with self.heard_cond:
            self.heard_cond.wait_for(
                lambda: bool(self.heard) and self.heard[-1] >= head, SEEN_TIMEOUT
            )
            heard = list(self.heard)
        deadline = time.monotonic() + SEEN_TIMEOUT
        while self.projection.position < head and time.monotonic() < deadline:
            self.pause.wait(0.01)
        self.report(
            {"k": "seen", "listener": heard, "projection": self.projection.positions()}
        )

    def main(self) -> None:
        timer = threading.Timer(self.config["max_seconds"], lambda: os._exit(4))
        timer.daemon = True
        timer.start()
        self.store.initialize()
        # eventual: a query answers at once, never asking for a catch-up
        self.projection = PositionsProjection(
            self.store, consistency="eventual"
        ).initialize()
        workers = 0 if self.follower else 4
        counts = [0] * workers
        threads = [
            threading.Thread(target=self.run_worker, args=(w, counts))
            for w in range(workers)
        ]
        threads.append(threading.Thread(target=self.run_reader))
        self.report({"k": "ready"})
        for line in sys.stdin:
            command = line.split()
            if command == ["go"]:
                for thread in threads:
                    thread.start()
            elif command == ["finish"]:
                self.finish.set()
                for thread in threads:
                    thread.join()
                self.report({"k": "appended", "n": sum(counts)})
            elif command and command[0] == "expect":
                self.wait_seen(int(command[1]))
                self.store.shutdown()
                self.report({"k": "done"})
                os._exit(0)
        os._exit(3)  # the parent went away


if __name__ == "__main__":
    _Child(msgspec.json.decode(sys.argv[1])).main()
