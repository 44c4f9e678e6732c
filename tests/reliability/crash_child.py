"""Crash-test child process, and the pieces the parent test shares with it.

Run as a script (``sys.executable crash_child.py CONFIG_JSON``), it opens the
store (``path``: a SQLite file or a PostgreSQL URL, with ``options`` such as
``synchronous``, ``auto_persist_interval`` or ``pg_schema``), starts
:class:`TallyProjection` (which snapshots every few events), and runs
several appender threads until the parent kills it with SIGKILL:

- ``single``: one ``append`` at a time (``ANY``) to shared and own
  aggregates, sometimes followed by an idempotent retry of the same event;
- ``expected``: ``append`` with the exact expected version of its own
  aggregates;
- ``batch``: ``append_many`` of 2-12 events across aggregates, each event
  tagged ``metadata = {"batch": id, "size": n, "i": index}``;
- ``async``: bursts of ``append_async``, then waits for them all;
- ``snapshots``: ``save_snapshot`` of acknowledged aggregate versions;
- ``queries``: strong-consistency projection queries and reads.

Before an append it reports the event's *intent* (everything needed to
rebuild the identical event), and after the append returns it reports the
*acknowledgement*; both as one JSON line per write on stdout (``os.write``
of one line, atomic on a pipe). The parent passes the intents of a killed
run that were never acknowledged to the next child (``retry_file``), which
appends them again first: a retry after a crash must be idempotent.

Line kinds: ``{"k": "ready"}``, ``{"k": "i", ...intent}``,
``{"k": "e", "id", "p", "v", "a", "d", "b"}`` (event acknowledged),
``{"k": "s", "a", "v"}`` (snapshot acknowledged), ``{"k": "err", ...}``
(an unexpected error: the parent fails the test), ``{"k": "closed"}``.

The child exits by itself when its stdin closes (the parent went away) or
after ``max_seconds``; on ``shutdown`` from stdin it shuts the store down
cleanly (the parent may kill it in the middle of that, too).
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from swarmlog import (
    Event,
    EventStore,
    Projection,
    Snapshot,
    StoreClosedError,
    SwarmlogError,
    create_event,
    handles,
    query,
    register_event_type,
)

TICK_TYPE = "reliability:crash-tick"
COUNTER_TYPE = "reliability-counter"


class CrashTick(msgspec.Struct, frozen=True, kw_only=True):
    """The payload every crash-test append carries."""

    n: int
    writer: str
    blob: str = ""


register_event_type(CrashTick, type=TICK_TYPE, aggregate_type=COUNTER_TYPE)


class TallyState(msgspec.Struct, kw_only=True):
    """What TallyProjection snapshots."""

    aggregates: dict[str, list[int]]
    events: int
    position_sum: int
    anomalies: int


class TallyProjection(Projection):
    """Per aggregate: [count, last version, sum of n]; plus global sums.

    Applying an event twice or skipping one changes ``events`` and
    ``position_sum``; a version out of order counts as an anomaly. So a
    model restored from a snapshot plus catch-up equals a from-scratch
    rebuild only if the snapshot's position matched its content exactly.
    """

    name = "crash-tally"
    state_version = 1
    state_type = TallyState

    def reset_state(self) -> None:
        self._state = TallyState(aggregates={}, events=0, position_sum=0, anomalies=0)

    @handles(CrashTick)
    def _on_tick(self, event: Event) -> None:
        state = self._state
        entry = state.aggregates.setdefault(event.aggregate_id, [0, 0, 0])
        if event.version != entry[1] + 1:
            state.anomalies += 1
        entry[0] += 1
        entry[1] = event.version
        entry[2] += event.payload.n
        state.events += 1
        state.position_sum += event.position

    def snapshot_state(self) -> TallyState:
        return self._state

    def restore_state(self, state: TallyState) -> None:
        self._state = state

    @query
    def state(self) -> dict[str, Any]:
        """A copy of the whole model as plain data."""
        return msgspec.to_builtins(self._state)  # type: ignore[no-any-return]


def digest(event: Event) -> str:
    """A fingerprint of an event's content (not of version or position)."""
    content = (
        event.type,
        event.aggregate_id,
        msgspec.to_builtins(event.payload),
        event.metadata,
        event.source,
        event.timestamp.isoformat(),
    )
    return hashlib.sha256(msgspec.json.encode(content)).hexdigest()[:20]


def intent_of(event: Event, batch: str | None = None) -> dict[str, Any]:
    """Everything needed to rebuild ``event`` identically (see event_from)."""
    payload = event.payload
    return {
        "k": "i",
        "id": event.id.hex,
        "a": event.aggregate_id,
        "n": payload.n,
        "w": payload.writer,
        "blob": payload.blob,
        "ts": event.timestamp.isoformat(),
        "m": event.metadata,
        "b": batch,
    }


def event_from(intent: dict[str, Any]) -> Event:
    """The event an intent line describes (same id and content)."""
    return create_event(
        CrashTick(n=intent["n"], writer=intent["w"], blob=intent["blob"]),
        intent["a"],
        metadata=intent["m"],
        timestamp=datetime.fromisoformat(intent["ts"]),
        event_id=uuid.UUID(hex=intent["id"]),
    )


class _Reporter:
    """Writes one JSON line per report with a single ``os.write``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._encoder = msgspec.json.Encoder()

    def __call__(self, record: dict[str, Any]) -> None:
        line = self._encoder.encode(record) + b"\n"
        with self._lock:
            os.write(1, line)

    def ack(self, stored: Event, batch: str | None = None) -> None:
        self(
            {
                "k": "e",
                "id": stored.id.hex,
                "p": stored.position,
                "v": stored.version,
                "a": stored.aggregate_id,
                "d": digest(stored),
                "b": batch,
            }
        )


class _Child:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.report = _Reporter()
        self.rng = random.Random(config["seed"])
        self.stopping = threading.Event()
        self.tag = f"{self.rng.randrange(16**6):06x}"  # this run's writer prefix
        self.acked_versions: dict[str, int] = {}
        self.lock = threading.Lock()
        self.store = EventStore(
            config["path"],
            **config["options"],
            projection_snapshot_every=config["snapshot_every"],
            snapshot_threshold=7,
        )

    # -- helpers ------------------------------------------------------------

    def new_event(
        self, rng: random.Random, aggregate: str, writer: str, metadata: Any = None
    ) -> Event:
        blob = "x" * rng.choice((0, 0, 10, 200, 3000))
        return create_event(
            CrashTick(n=rng.randrange(1000), writer=writer, blob=blob),
            aggregate,
            metadata=metadata,
        )

    def acknowledged(self, stored: Event, batch: str | None = None) -> None:
        self.report.ack(stored, batch)
        with self.lock:
            if stored.version > self.acked_versions.get(stored.aggregate_id, 0):
                self.acked_versions[stored.aggregate_id] = stored.version

    def unexpected(self, where: str, error: BaseException) -> None:
        if self.stopping.is_set() and isinstance(error, SwarmlogError):
            return
        self.report(
            {"k": "err", "where": where, "t": type(error).__name__, "m": str(error)}
        )

    def aggregate(self, rng: random.Random, own: str) -> str:
        if rng.random() < 0.4:
            return f"shared-{rng.randrange(4)}"
        return f"{own}-{rng.randrange(3)}"

    # -- threads --------------------------------------------------------------

    def run_thread(self, name: str, body: Any, seed: int) -> threading.Thread:
        rng = random.Random(seed)

        def loop() -> None:
            try:
                while not self.stopping.is_set():
                    body(rng)
            except StoreClosedError:
                return
            except BaseException as error:  # report, never crash silently
                self.unexpected(name, error)

        thread = threading.Thread(target=loop, name=name)
        thread.start()
        return thread

    def single(self, rng: random.Random) -> None:
        event = self.new_event(rng, self.aggregate(rng, "single"), f"{self.tag}-s")
        self.report(intent_of(event))
        stored = self.store.append(event)
        self.acknowledged(stored)
        if rng.random() < 0.15:  # an idempotent retry of the same event
            again = self.store.append(event)
            if (again.position, again.version) != (stored.position, stored.version):
                self.report(
                    {
                        "k": "err",
                        "where": "retry",
                        "t": "IdempotenceViolation",
                        "m": f"{stored.position}/{again.position}",
                    }
                )

    def expected(self, rng: random.Random) -> None:
        aggregate = f"exp-{self.tag}-{rng.randrange(3)}"
        with self.lock:
            current = self.acked_versions.get(aggregate)
        if current is None:
            stream = self.store.get_events(aggregate)
            current = stream[-1].version if stream else 0
        event = self.new_event(rng, aggregate, f"{self.tag}-x")
        self.report(intent_of(event))
        stored = self.store.append(event, expected_version=current)
        self.acknowledged(stored)

    def batch(self, rng: random.Random) -> None:
        batch = uuid.uuid4().hex
        size = rng.randrange(2, 13)
        events = [
            self.new_event(
                rng,
                self.aggregate(rng, "batch"),
                f"{self.tag}-b",
                {"batch": batch, "size": size, "i": i},
            )
            for i in range(size)
        ]
        for event in events:
            self.report(intent_of(event, batch))
        for stored in self.store.append_many(events):
            self.acknowledged(stored, batch)

    def burst(self, rng: random.Random) -> None:
        events = [
            self.new_event(rng, self.aggregate(rng, "async"), f"{self.tag}-a")
            for _ in range(rng.randrange(1, 20))
        ]
        futures = []
        for event in events:
            self.report(intent_of(event))
            futures.append(self.store.append_async(event))
        for future in futures:
            self.acknowledged(future.get(timeout=30))

    def snapshots(self, rng: random.Random) -> None:
        with self.lock:
            known = sorted(self.acked_versions.items())
        if not known:
            self.stopping.wait(0.002)
            return
        aggregate, version = rng.choice(known)
        self.store.save_snapshot(
            Snapshot(
                aggregate, COUNTER_TYPE, version, {"v": version}, datetime.now(UTC)
            )
        )
        self.report({"k": "s", "a": aggregate, "v": version})
        self.stopping.wait(0.002)

    def queries(self, rng: random.Random) -> None:
        state = self.tally.state()
        if state["anomalies"]:
            self.report(
                {"k": "err", "where": "queries", "t": "Anomaly", "m": str(state)}
            )
        self.store.query(from_position=max(self.store.head_position - 20, 0))
        self.stopping.wait(0.003)

    # -- main -------------------------------------------------------------------

    def retry_intents(self) -> None:
        """Re-append what a killed run may or may not have stored."""
        retry_file = self.config.get("retry_file")
        if not retry_file:
            return
        with open(retry_file, "rb") as f:
            intents = msgspec.json.decode(f.read())
        batches: dict[str, list[dict[str, Any]]] = {}
        for intent in intents:
            if intent["b"] is None:
                self.acknowledged(self.store.append(event_from(intent)))
            else:
                batches.setdefault(intent["b"], []).append(intent)
        for batch, members in batches.items():
            members.sort(key=lambda intent: intent["m"]["i"])
            if len(members) != members[0]["m"]["size"]:
                continue  # the parent saw only part of its intents: skip it
            stored = self.store.append_many([event_from(i) for i in members])
            for event in stored:
                self.acknowledged(event, batch)

    def watch_stdin(self) -> None:
        for line in sys.stdin:
            if line.strip() == "shutdown":
                self.stopping.set()
                self.store.shutdown()
                self.report({"k": "closed"})
                os._exit(0)
        os._exit(3)  # the parent went away

    def main(self) -> None:
        threading.Thread(target=self.watch_stdin, daemon=True).start()
        timer = threading.Timer(self.config["max_seconds"], lambda: os._exit(4))
        timer.daemon = True
        timer.start()
        self.store.initialize()
        self.tally = TallyProjection(self.store).initialize()
        self.retry_intents()
        self.report({"k": "ready"})
        bodies = [
            ("single-1", self.single),
            ("single-2", self.single),
            ("expected", self.expected),
            ("batch-1", self.batch),
            ("batch-2", self.batch),
            ("async", self.burst),
            ("snapshots", self.snapshots),
            ("queries", self.queries),
        ]
        threads = [
            self.run_thread(name, body, self.rng.randrange(2**32))
            for name, body in bodies
        ]
        for thread in threads:
            thread.join()


if __name__ == "__main__":
    _Child(msgspec.json.decode(sys.argv[1])).main()
