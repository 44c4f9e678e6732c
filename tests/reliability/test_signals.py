"""Real signals: SIGINT and SIGTERM at random moments while the main thread
appends (issue 11).

Each round starts ``signal_child.py`` on the same store file. Its main
thread appends in a loop (a helper thread appends too) and records every
acknowledged event in a side file. The parent sends, at seeded random
moments, a few SIGINTs (the child catches ``KeyboardInterrupt`` and appends
the same event again) and then a SIGTERM, whose handler is the README's
pattern (``store.shutdown()``, then ``sys.exit``). One round in five sends
the SIGTERM while the child is still opening the store. After each round:

- the child exited within ``TIMEOUT`` (a bound against hangs, not a timing
  assertion) with the handler's exit code;
- every acknowledged event is stored, at its acknowledged position and
  version (the file reopened);
- positions are gap-free ``1..head``; versions per aggregate are
  contiguous and follow position order;
- the reopened store accepts an append (at ``head + 1``).

Both commit paths run: the default (the writer actor commits) and the
opt-in ``caller_commits=True``. The default run makes ``DEFAULT_ROUNDS``
rounds per path (seeded; ``SWARMLOG_SIGNAL_SEED`` varies it); the soak
variant (``-m soak``) makes ``SWARMLOG_SOAK_SIGNALS`` (default 500).
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec
import pytest

from swarmlog import EventStore, StoreClosedError, create_event

from .signal_child import SignalTick

CHILD = Path(__file__).with_name("signal_child.py")
DEFAULT_ROUNDS = 25
SEED = int(os.environ.get("SWARMLOG_SIGNAL_SEED", "20261206"))
TIMEOUT = 30.0
"""Seconds a child may take to answer or exit before it is declared hung."""


class _Child:
    """One signal child; its stdout words arrive on a queue."""

    def __init__(self, config: dict[str, Any], stderr_path: Path) -> None:
        with stderr_path.open("ab") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, str(CHILD), msgspec.json.encode(config).decode()],
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=str(Path(__file__).resolve().parents[2]),
            )
        self.stderr_path = stderr_path
        self.words: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.words.put(line.decode().strip())
        self.words.put("eof")

    def expect(self, word: str) -> None:
        got = self.words.get(timeout=TIMEOUT)
        assert got == word, f"child said {got!r}, not {word!r}: {self._stderr()}"

    def signal(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def finish(self) -> int:
        """Wait for the exit (bounded); kill a hung child and fail."""
        try:
            code = self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGUSR1)  # stacks to stderr
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(2.0)
            self.proc.kill()
            self.proc.wait(TIMEOUT)
            self._reader.join(TIMEOUT)
            assert self.proc.stdout is not None
            self.proc.stdout.close()
            pytest.fail(f"the child hung after SIGTERM: {self._stderr()}")
        self._reader.join(TIMEOUT)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code

    def _stderr(self) -> str:
        return self.stderr_path.read_text()[-12000:]


def _read_acks(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    acks = []
    for line in path.read_bytes().split(b"\n"):
        if line:
            acks.append(msgspec.json.decode(line))
    return acks


def _check_log(db: str, acked: dict[str, dict[str, Any]]) -> int:
    """Reopen the file, check every promise, append once; return the head."""
    store = EventStore(db).initialize()
    try:
        events = list(store.replay())
        positions = [e.position for e in events]
        assert positions == list(range(1, len(events) + 1)), "a gap in positions"
        versions: dict[str, int] = defaultdict(int)
        for event in events:
            versions[event.aggregate_id] += 1
            assert event.version == versions[event.aggregate_id], (
                f"versions of {event.aggregate_id} not contiguous at {event.position}"
            )
        stored = {e.id.hex: e for e in events}
        assert len(stored) == len(events), "an event stored twice"
        for event_id, ack in acked.items():
            event = stored.get(event_id)
            assert event is not None, f"acknowledged event lost: {ack}"
            assert (event.position, event.version) == (ack["p"], ack["v"]), ack
        head = store.head_position
        assert head == len(events)
        probe = store.append(create_event(SignalTick(n=-1, writer="parent"), "probe"))
        assert probe.position == head + 1
        return probe.position
    finally:
        store.shutdown()


def _run_rounds(tmp_path: Path, rounds: int, caller_commits: bool, seed: int) -> str:
    rng = random.Random(seed)
    db = str(tmp_path / "events.db")
    acked: dict[str, dict[str, Any]] = {}
    interrupts = early = 0
    for number in range(rounds):
        acks_path = tmp_path / f"acks-{number}.jsonl"
        child = _Child(
            {
                "path": db,
                "seed": rng.randrange(2**32),
                "caller_commits": caller_commits,
                "acks": str(acks_path),
                "max_seconds": TIMEOUT,
            },
            tmp_path / "stderr.txt",
        )
        child.expect("armed")
        if rng.random() < 0.2:  # SIGTERM while the store opens
            early += 1
            time.sleep(rng.uniform(0, 0.08))  # a random moment, not a wait
        else:
            child.expect("ready")
            for _ in range(rng.randrange(0, 6)):
                time.sleep(rng.uniform(0.002, 0.05))  # a random moment
                child.signal(signal.SIGINT)
                interrupts += 1
            time.sleep(rng.uniform(0.001, 0.08))
        child.signal(signal.SIGTERM)
        code = child.finish()
        assert code == 128 + signal.SIGTERM, (
            f"round {number}: exit code {code}: {child._stderr()}"
        )
        for ack in _read_acks(acks_path):
            previous = acked.setdefault(ack["id"], ack)
            assert (previous["p"], previous["v"]) == (ack["p"], ack["v"]), (
                f"one event acknowledged twice differently: {previous} {ack}"
            )
        _check_log(db, acked)
    return (
        f"{rounds} rounds (caller_commits={caller_commits}): {len(acked)} "
        f"acknowledged events verified, {interrupts} SIGINTs, "
        f"{early} SIGTERMs while opening"
    )


@pytest.mark.parametrize("caller_commits", [False, True])
def test_signals_lose_no_acknowledged_event_and_never_hang(
    tmp_path: Path, caller_commits: bool
) -> None:
    """SIGINTs then a SIGTERM (the README handler) at random moments."""
    _run_rounds(tmp_path, DEFAULT_ROUNDS, caller_commits, SEED + caller_commits)


@pytest.mark.soak
@pytest.mark.timeout(0)  # scales with SWARMLOG_SOAK_SIGNALS; every wait has its own
@pytest.mark.parametrize("caller_commits", [False, True])
def test_signals_soak(tmp_path: Path, caller_commits: bool) -> None:
    """The same, ``SWARMLOG_SOAK_SIGNALS`` rounds per path."""
    rounds = int(os.environ.get("SWARMLOG_SOAK_SIGNALS", "500"))
    print(_run_rounds(tmp_path, rounds, caller_commits, SEED + caller_commits))


def _trace_run(tmp_path: Path, caller_commits: bool, stride: int) -> int:
    config = {
        "mode": "trace",
        "dir": str(tmp_path),
        "stride": stride,
        "start": 1,
        "caller_commits": caller_commits,
        "max_seconds": TIMEOUT,  # then the child dumps its threads and exits
    }
    try:
        done = subprocess.run(
            [sys.executable, str(CHILD), msgspec.json.encode(config).decode()],
            capture_output=True,
            timeout=TIMEOUT + 10,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the trace child hung: {error.stderr!r}")
    lines = done.stdout.decode().splitlines()
    errors = [line for line in lines if line.startswith("err")]
    assert not errors, errors[:10]
    why = f"exit code {done.returncode}: {done.stderr.decode()[-4000:]}"
    assert done.returncode == 0, why
    assert lines, why
    assert lines[-1].startswith("done"), why
    return int(lines[-1].split()[1])


@pytest.mark.parametrize("caller_commits", [False, True])
def test_a_sigterm_handler_at_any_line_neither_hangs_nor_loses(
    tmp_path: Path, caller_commits: bool
) -> None:
    """SIGTERM raised at each traced line of a store's life on the main
    thread (open, append, append_many, shutdown); the handler appends and
    calls shutdown(), then returns. Each step: the handler's append
    committed, shutdown() returned (no deadlock, also when it interrupted
    initialize() or shutdown() itself), nothing acknowledged was lost, the
    file reopens gap-free and accepts an append."""
    steps = _trace_run(tmp_path, caller_commits, stride=1)
    assert steps > 200  # the lines were really reached


def _raise_sigterm_in(function: str) -> Any:
    """A trace function raising SIGTERM when ``function`` is called (the
    main thread; the caller installs the handler), and its record."""
    fired = []

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if fired:
            return None
        if event == "call" and frame.f_code.co_name == function:
            fired.append(frame)
            signal.raise_signal(signal.SIGTERM)
            return None
        return tracer

    return tracer, fired


@pytest.mark.parametrize("where", ["open", "_drain_appends"])
def test_a_handler_shutdown_inside_initialize_or_shutdown_is_safe(
    tmp_path: Path, where: str
) -> None:
    """A SIGTERM handler calling shutdown() while initialize() (in the
    wiring's open) or shutdown() (draining) runs beneath it on the same
    thread returns at once: no second teardown, no deadlock. An interrupted
    initialize() then raises StoreClosedError instead of leaving the store
    open; an interrupted shutdown() finishes; the file reopens."""
    db = str(tmp_path / "events.db")
    store = EventStore(db)
    stored = []
    if where == "_drain_appends":
        store.initialize()
        stored.append(store.append(create_event(SignalTick(n=1, writer="t"), "x")))
    inner: list[str] = []

    def leave(signum: int, frame: object) -> None:
        store.shutdown()
        inner.append(store._state)

    previous = signal.signal(signal.SIGTERM, leave)
    tracer, fired = _raise_sigterm_in(where)
    sys.settrace(tracer)
    try:
        if where == "open":
            with pytest.raises(StoreClosedError):
                store.initialize()
        else:
            store.shutdown()
    finally:
        sys.settrace(None)
        signal.signal(signal.SIGTERM, previous)
    assert fired
    assert inner == ["closed" if where == "open" else "closing"]
    assert store.closed
    with EventStore(db) as again:  # the lock was released
        assert list(again.replay()) == stored
