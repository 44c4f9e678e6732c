"""A durable subscription survives SIGKILL: a new run resumes after the last
handled event, with no gap (at-least-once only for the event in progress).

Each round runs ``subscription_child.py``, which handles the events of a
prepared store while appending more, and kills it: either while its
handler is inside a chosen event (deterministic: the stored position is the
one before it) or after a seeded random number of handled events. The
parent then reopens the store and subscribes the same name.

The kill tests run on a SQLite file and on a PostgreSQL schema (one
parametrised fixture, ``crash_target``); the fork test on SQLite.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog import EventStore, create_agent_spawned_event

from .subscription_child import APPENDED
from .support import CrashTarget

if TYPE_CHECKING:
    from collections.abc import Iterator

CHILD = Path(__file__).with_name("subscription_child.py")
PREPARED = 300
TIMEOUT = 30.0
"""Seconds a wait for the child may take before the test is declared hung."""


@pytest.fixture(params=["file", "postgres"])
def crash_target(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[CrashTarget]:
    """Where the killed runs' stores live: a file, or a PostgreSQL schema."""
    target = CrashTarget(request, request.param, tmp_path)
    yield target
    target.close()


def _prepare(target: CrashTarget, name: str) -> tuple[str, dict[str, Any]]:
    path, options = target.store(name)
    with EventStore(path, **options) as store:
        store.append_many(
            [
                create_agent_spawned_event(f"pre-{i}", "coder", "core")
                for i in range(PREPARED)
            ]
        )
    return path, options


def _run_and_kill(
    target: CrashTarget,
    path: str,
    options: dict[str, Any],
    block_at: int,
    kill_after: int,
) -> list[int]:
    """Run the child until it reports the event ``block_at`` (or
    ``kill_after`` handled events), SIGKILL it, return what it handled
    (once the server, if any, ended the dead child's sessions)."""
    schema = [options["pg_schema"]] if "pg_schema" in options else []
    sessions = target.sessions()
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), path, str(block_at), *schema],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    handled: list[int] = []
    timer = threading.Timer(TIMEOUT, proc.kill)  # a hang guard only
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(b"h "):
                handled.append(int(line.split()[1]))
                if handled[-1] == block_at or len(handled) == kill_after:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
        proc.kill()
        rest, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        timer.cancel()
    handled += [int(x.split()[1]) for x in rest.splitlines() if x.startswith(b"h ")]
    assert proc.returncode == -signal.SIGKILL, stderr.decode()[-3000:]
    target.settle(sessions)
    return handled


def _resume(path: str, options: dict[str, Any]) -> tuple[int, list[int], int]:
    """Reopen the store, subscribe the child's name: (stored position,
    positions handled now, head)."""
    handled: list[int] = []
    with EventStore(path, **options) as store:
        stored = store.get_stats().subscriptions["consumer"].position
        head = store.head_position
        sub = store.subscribe("consumer", lambda e: handled.append(e.position))
        sub.wait_for(head, timeout=TIMEOUT)
    return stored, handled, head


@pytest.mark.parametrize("block_at", [1, 57, PREPARED + 10])
def test_killed_inside_an_event_resumes_at_it(
    crash_target: CrashTarget, block_at: int
) -> None:
    """Killed while its handler is inside event N: N - 1 is stored, and the
    next run starts at N (delivered again: at-least-once) with no gap."""
    path, options = _prepare(crash_target, "s.db")
    handled = _run_and_kill(crash_target, path, options, block_at, kill_after=0)
    assert handled == list(range(1, block_at + 1))
    stored, after, head = _resume(path, options)
    assert stored == block_at - 1
    assert after == list(range(block_at, head + 1))


def test_killed_at_random_moments(crash_target: CrashTarget) -> None:
    """Killed after a seeded random number of handled events: the stored
    position is the last handled one or the one before (in progress), and
    the two runs together handle every event, in order, none skipped."""
    rng = random.Random(int(os.environ.get("SWARMLOG_CRASH_SEED", "20240607")))
    for round_no in range(3):
        path, options = _prepare(crash_target, f"s{round_no}.db")
        kill_after = rng.randint(1, PREPARED)
        handled = _run_and_kill(crash_target, path, options, 0, kill_after)
        assert handled == list(range(1, len(handled) + 1))
        stored, after, head = _resume(path, options)
        assert stored in (handled[-1], handled[-1] - 1)
        assert after == list(range(stored + 1, head + 1))
        assert PREPARED <= head <= PREPARED + APPENDED


FORK_CHILD = Path(__file__).with_name("subscription_fork_child.py")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_childs_inherited_subscription_does_nothing(tmp_path: Path) -> None:
    """In a forked child the inherited subscription's stop() is a no-op
    that reports "stopped" and subscribing is refused (ForkedStoreError);
    the parent's subscription goes on, each event handled once."""
    done = subprocess.run(
        [sys.executable, str(FORK_CHILD), str(tmp_path / "f.db")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = msgspec.json.decode(done.stdout.strip().splitlines()[-1])
    assert report == {"child": 0, "handled": [1, 2], "parent_status": "running"}
