"""examples/multiprocess_swarm.py: a pool of agent processes appending to one
multi-process file while the parent follows live projections.

The example runs as a script, in a subprocess: its pool's jobs must be
importable by the spawned workers (the script's ``__main__``).
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from swarmlog import EventStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multiprocess_swarm.py"
TIMEOUT = 180  # seconds; guards against a hang only


def _run_example(args: list[str]) -> str:
    """Run the example script with ``args``; its output (it must exit 0)."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


METHODS = [
    pytest.param(m, marks=pytest.mark.skipif(
        m not in multiprocessing.get_all_start_methods(), reason=f"no {m} here"
    ))
    for m in ("spawn", "fork")
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("start_method", METHODS)
def test_runs_as_a_script(tmp_path: Path, start_method: str) -> None:
    """Three processes, six agents, 40 tasks: every acknowledged event is in
    the log, each task was won once, and the parent's live read models equal
    a rebuild from the log; the script exits 0."""
    args = [str(tmp_path), "--processes", "3", "--agents", "6", "--tasks", "40"]
    if start_method == "fork":
        args.append("--fork")
    out = _run_example(args)
    assert f"6 agents in 3 {start_method} processes race for them" in out
    assert "  live: " in out  # the parent queried while the pool ran
    acknowledged = re.search(r"(\d+) events acknowledged by (\d+) worker", out)
    assert acknowledged is not None, out
    head = re.search(r"the log's head is (\d+)", out)
    assert head is not None
    assert acknowledged.group(1) == head.group(1)
    assert "40/40 tasks completed, each won by exactly one agent: True" in out
    assert "live read models equal a rebuild from the log: True" in out
    with EventStore(tmp_path / "swarm.db", read_only=True) as store:
        events = list(store.replay())
    assert [e.position for e in events] == list(range(1, int(head.group(1)) + 1))
    started = [e for e in events if e.type == "task:started"]
    assert len(started) == 40
    assert len({e.aggregate_id for e in started}) == 40


@pytest.mark.slow
@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform"
)
def test_pin_keeps_each_worker_on_one_cpu(tmp_path: Path) -> None:
    """``--pin``: every worker process that ran a team was on exactly one
    CPU, one of those this process may use, and the run is as correct as
    unpinned (every acknowledged event in the log, live = rebuilt)."""
    args = [str(tmp_path), "--pin", "--processes", "2", "--agents", "4"]
    args += ["--tasks", "20"]
    out = _run_example(args)
    assert "2 spawn processes race for them, each pinned to one CPU" in out
    found = re.search(r"worker CPUs: (\[.*\])", out)
    assert found is not None, out
    worker_cpus = ast.literal_eval(found.group(1))
    allowed = os.sched_getaffinity(0)
    assert worker_cpus
    assert all(len(cpus) == 1 and cpus[0] in allowed for cpus in worker_cpus)
    assert "live read models equal a rebuild from the log: True" in out
