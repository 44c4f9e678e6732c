"""A store that was never shut down lets its process exit, losing nothing.

Each test runs ``exit_child.py`` in a subprocess that opens a store, appends
some events, queues more without waiting and then ends without calling
``shutdown()``: by an uncaught exception, by reaching the end of the script,
by one SIGINT (Ctrl-C), or by SIGTERM with the recommended handlers. The
process must exit on its own (the timeout only guards against a hang) and a
new store must find every event, committed and queued.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from swarmlog import EventStore

from .exit_child import COMMITTED, QUEUED

CHILD = Path(__file__).with_name("exit_child.py")
TIMEOUT = 30.0
"""Seconds the child may take to exit before it counts as hung."""


def _run(mode: str, path: str, signum: int | None = None) -> tuple[int, str, Any]:
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), mode, path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if signum is not None and line:
            os.kill(proc.pid, signum)
        _, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"{mode}: the process did not exit within {TIMEOUT}s")
    assert line, f"{mode}: the child died early: {stderr[-3000:]}"
    return proc.returncode, stderr, msgspec.json.decode(line)


def _assert_all_stored(path: str) -> None:
    with EventStore(path) as store:
        ids = [e.aggregate_id for e in store.replay()]
    assert sorted(ids) == sorted(f"t{i}" for i in range(COMMITTED + QUEUED))


@pytest.mark.parametrize(
    ("mode", "signum", "codes"),
    [
        ("raise", None, {1}),
        ("end", None, {0}),
        ("read-only", None, {0}),
        ("stuck", None, {0}),
        ("sigint", signal.SIGINT, {-signal.SIGINT, 1, 130}),
        ("sigterm-exit", signal.SIGTERM, {128 + signal.SIGTERM}),
        ("sigterm-shutdown", signal.SIGTERM, {128 + signal.SIGTERM}),
    ],
)
def test_a_process_exits_without_shutdown_and_keeps_every_event(
    tmp_path: Path, mode: str, signum: int | None, codes: set[int]
) -> None:
    """The process exits on its own; queued appends were drained and made
    durable by the exit hook (or the SIGTERM handler's shutdown)."""
    path = str(tmp_path / "exit.db")
    code, stderr, _ = _run(mode, path, signum)
    assert code in codes, stderr[-3000:]
    assert "failed to shut down" not in stderr
    _assert_all_stored(path)  # a writer again: the lock was released


def test_a_memory_store_left_open_removes_its_files_at_exit(tmp_path: Path) -> None:
    """A ':memory:' store's private folder is removed by the exit hook."""
    code, stderr, said = _run("end", ":memory:")
    assert code == 0, stderr[-3000:]
    assert not os.path.exists(os.path.dirname(said["path"]))
