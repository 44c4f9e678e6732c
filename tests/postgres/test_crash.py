"""kill -9 of a process writing a PostgreSQL store: nothing acknowledged
is lost and the positions never get a hole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from swarmlog import EventStore, create_agent_started_event
from tests.postgres.conftest import TIMEOUT, rows

if TYPE_CHECKING:
    from collections.abc import Callable

    from swarmlog.actors.postgres.write import PostgresWriteStorage

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("append_child.py")
ROOT = Path(__file__).resolve().parents[2]


_PER_THREAD = 30  # appends per thread in the multi-process test
# every 5th append is a batch of 3: events per thread
_PER_THREAD_EVENTS = _PER_THREAD + 2 * (_PER_THREAD // 5)


def _start(url: str, schema: str, mode: str) -> subprocess.Popen[bytes]:
    extra = [str(_PER_THREAD)] if mode == "count" else []
    return subprocess.Popen(
        [sys.executable, str(CHILD), url, schema, mode, *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def _read_until(
    child: subprocess.Popen[bytes], enough: Callable[[list[str]], bool]
) -> list[str]:
    """Lines from the child until ``enough(lines)`` (bounded by a timer
    that kills a hung child)."""
    timer = threading.Timer(TIMEOUT * 3, child.kill)
    timer.start()
    lines: list[str] = []
    try:
        assert child.stdout is not None
        for raw in child.stdout:
            lines.append(raw.decode().strip())
            if enough(lines):
                break
    finally:
        timer.cancel()
    return lines


def _wait_sessions_gone(url: str) -> None:
    """Block until no swarmlog session is left on the server (bounded)."""
    pause = threading.Event()
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(int(TIMEOUT / 0.01)):
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name LIKE 'swarmlog%%'"
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            pause.wait(0.01)
    pytest.fail("the killed process's sessions never ended")


def _kill(child: subprocess.Popen[bytes]) -> list[str]:
    """SIGKILL the child; the lines it wrote before dying."""
    os.kill(child.pid, signal.SIGKILL)
    out, _ = child.communicate(timeout=TIMEOUT)
    return [line for line in out.decode().splitlines() if line]


def test_kill_9_while_appending_loses_nothing_acknowledged(
    make_pg_store: Callable[..., EventStore], pg_url: str, pg_schema: str
) -> None:
    """Four appending threads killed mid-load: positions 1..head, every
    acknowledged event at its position; appends go on from the head."""
    child = _start(pg_url, pg_schema, "appends")
    lines = _read_until(
        child, lambda got: sum(1 for g in got if g.startswith("ack")) >= 300
    )
    lines += _kill(child)
    # The server may still commit what the dead process sent last (it
    # notices the closed socket only when it answers): wait for its
    # sessions to end before looking.
    _wait_sessions_gone(pg_url)
    acknowledged = {}
    for line in lines:
        if line.startswith("ack "):
            _, position, id_hex = line.split()
            acknowledged[int(position)] = id_hex
    store = make_pg_store()
    events = list(store.replay())
    assert [e.position for e in events] == list(range(1, len(events) + 1))
    stored = {e.position: e.id.hex for e in events}
    assert {p: stored.get(p) for p in acknowledged} == acknowledged
    versions: dict[str, list[int]] = {}
    for event in events:
        versions.setdefault(event.aggregate_id, []).append(event.version)
    for found in versions.values():
        assert found == list(range(1, len(found) + 1))
    assert store.append(create_agent_started_event("after")).position == len(events) + 1


def test_kill_9_of_a_writer_holding_the_head_frees_it(
    make_writer: Callable[..., PostgresWriteStorage], pg_url: str, pg_schema: str
) -> None:
    """A process killed inside a write round leaves no lock and no hole:
    the next writer gets the head at once."""
    writer = make_writer()
    writer.write_events(rows(1, 1), 1)
    child = _start(pg_url, pg_schema, "hold")
    assert _read_until(child, lambda got: "held" in got)[-1] == "held"
    _kill(child)
    assert writer.begin_round(TIMEOUT) == 1
    writer.abort_round()


def _shared_writer_committer() -> bool:
    from swarmlog.actors.committer import Committer

    return hasattr(Committer, "catch_up")


@pytest.mark.skipif(
    not _shared_writer_committer(),
    reason="several writing processes need the shared-writer committer "
    "(begin_round + catch-up, issue 13's seam)",
)
def test_four_processes_append_gap_free(
    make_pg_store: Callable[..., EventStore], pg_url: str, pg_schema: str
) -> None:
    """4 processes x 4 threads on contended aggregates: positions 1..N,
    contiguous versions, every acknowledged event stored once."""
    make_pg_store().shutdown()  # the schema exists before they race
    children = [_start(pg_url, pg_schema, "count") for _ in range(4)]
    outputs = []
    for child in children:
        out, _ = child.communicate(timeout=TIMEOUT * 6)
        assert child.returncode == 0
        outputs.append(out.decode().splitlines())
    acknowledged: dict[int, str] = {}
    for lines in outputs:
        assert lines[-1] == "done"
        for line in lines:
            if line.startswith("ack "):
                _, position, id_hex = line.split()
                assert int(position) not in acknowledged
                acknowledged[int(position)] = id_hex
    store = make_pg_store()
    events = list(store.replay())
    assert [e.position for e in events] == list(range(1, len(events) + 1))
    assert {e.position: e.id.hex for e in events} == acknowledged
    versions: dict[str, list[int]] = {}
    for event in events:
        versions.setdefault(event.aggregate_id, []).append(event.version)
    for found in versions.values():
        assert found == list(range(1, len(found) + 1))
    assert len(events) == 4 * 4 * _PER_THREAD_EVENTS
