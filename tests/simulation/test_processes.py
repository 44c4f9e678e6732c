"""The simulation with its agents in worker processes: one multi-process
file, the same outcome as the threaded run, and clear errors when a process
fails."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import msgspec
import pytest

from swarmlog import EventStore
from swarmlog.schema.errors import InvalidConfigError
from swarmlog.simulation import (
    SimulationError,
    SimulationReport,
    replay_simulation,
    run_simulation,
)
from swarmlog.simulation.messages import Order
from swarmlog.simulation.processes import ProcessCrew
from swarmlog.simulation.world import EPOCH

if TYPE_CHECKING:
    from pathlib import Path

AGENTS = 4
TASKS = 12
TIMEOUT = 60  # seconds; guards against a hang only


@pytest.mark.slow
class TestAgentsInProcesses:
    """Agents in worker processes, coordinator in this one, one file."""

    def test_same_outcome_as_the_threaded_run(self, tmp_path: Path) -> None:
        """Two spawned processes give the threaded run's read models: the
        report says so, and a rebuild from the log equals the live models."""
        report = run_simulation(
            tmp_path / "mp.db", agents=AGENTS, tasks=TASKS, seed=7, processes=2
        )
        threaded = run_simulation(
            tmp_path / "threads.db", agents=AGENTS, tasks=TASKS, seed=7
        )
        assert report.processes == 2
        assert report.start_method == "spawn"
        assert report.rebuilt_matches
        assert report.fingerprint == threaded.fingerprint
        assert report.read_models == threaded.read_models
        assert report.threaded_fingerprint == threaded.fingerprint
        assert report.matches_threaded is True
        assert report.events == threaded.events
        assert report.events_by_type == threaded.events_by_type
        assert report.llm_calls == threaded.llm_calls

    def test_the_file_holds_every_event_once(self, tmp_path: Path) -> None:
        """Positions are gap-free, every event is stored once, every agent
        (each in one of three processes) started, and the recording replays
        on threads to the same fingerprint without calling the model."""
        path = tmp_path / "mp.db"
        report = run_simulation(
            path, agents=AGENTS, tasks=TASKS, seed=3, processes=3,
            compare_threaded=False,
        )  # fmt: skip
        assert report.threaded_fingerprint is None
        assert report.matches_threaded is None
        with EventStore(path, read_only=True) as store:
            events = list(store.replay())
        assert [e.position for e in events] == list(range(1, report.events + 1))
        assert len({e.id for e in events}) == len(events)
        sources = {e.source for e in events if e.type == "agent:started"}
        assert len(sources - {"coordinator"}) == report.agents_spawned
        replayed = replay_simulation(path)  # on threads, answers recorded
        assert replayed.identical
        assert replayed.run.llm_calls == 0
        assert report.llm_calls > 0

    @pytest.mark.skipif(
        "fork" not in __import__("multiprocessing").get_all_start_methods(),
        reason="no fork on this platform",
    )
    def test_forked_processes_open_their_own_stores(self, tmp_path: Path) -> None:
        """With fork the processes start before the coordinator's store
        opens and open their own: the outcome is the threaded one. (In a
        fresh interpreter: forking this test process, whose earlier tests
        left threads, would be a DeprecationWarning from Python 3.12.)"""
        code = (
            "import sys, msgspec\n"
            "from swarmlog.simulation import run_simulation\n"
            f"report = run_simulation(sys.argv[1], agents={AGENTS}, tasks={TASKS},"
            " seed=7, processes=2, start_method='fork')\n"
            "sys.stdout.buffer.write(msgspec.json.encode(report))\n"
        )
        done = subprocess.run(
            [sys.executable, "-W", "error", "-c", code, str(tmp_path / "fork.db")],
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-4000:]
        report = msgspec.json.decode(done.stdout, type=SimulationReport)
        assert report.start_method == "fork"
        assert report.rebuilt_matches
        assert report.matches_threaded is True


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(1, 11))
def test_many_seeds_in_four_processes_soak(tmp_path: Path, seed: int) -> None:
    """Ten seeds, a bigger swarm in four processes: each matches its
    threaded run and its rebuild (the bounded version runs above)."""
    report = run_simulation(
        tmp_path / "soak.db", agents=12, tasks=80, seed=seed, processes=4
    )
    assert report.rebuilt_matches
    assert report.matches_threaded is True


class TestRefusals:
    """Parameters a run with processes cannot work with are refused first."""

    @pytest.mark.parametrize("processes", [-1, 1.5, True, "2"])
    def test_a_bad_process_count(self, tmp_path: Path, processes: object) -> None:
        """A count that is no int, or below 0, is an InvalidConfigError."""
        with pytest.raises(InvalidConfigError, match="processes"):
            run_simulation(tmp_path / "x.db", processes=processes)  # type: ignore[arg-type]
        assert not (tmp_path / "x.db").exists()

    def test_memory_with_processes(self) -> None:
        """Worker processes cannot share a ':memory:' store."""
        with pytest.raises(InvalidConfigError, match=":memory:"):
            run_simulation(":memory:", processes=2)

    def test_an_unknown_start_method(self, tmp_path: Path) -> None:
        """Only spawn, fork and forkserver exist."""
        with pytest.raises(InvalidConfigError, match="start_method"):
            run_simulation(tmp_path / "x.db", processes=2, start_method="thread")  # type: ignore[arg-type]


@pytest.mark.slow
class TestFailingProcesses:
    """A worker process that fails or dies ends the run with a
    SimulationError that names it, never a hang."""

    def test_a_process_that_cannot_open_the_store(self, tmp_path: Path) -> None:
        """The process's own error reaches the coordinator."""
        with pytest.raises(
            SimulationError, match="agent process 0 failed: StoreOpenError"
        ):
            ProcessCrew(str(tmp_path), 1, seed=1)  # a directory: no store

    def test_a_killed_process(self, tmp_path: Path) -> None:
        """SIGKILL of a worker process while the coordinator waits for its
        report is a SimulationError naming the process and its exit code."""
        crew = ProcessCrew(str(tmp_path / "kill.db"), 2, seed=1)
        try:
            pid = crew.pids[1]
            assert pid is not None
            os.kill(pid, signal.SIGKILL)

            def first_round() -> None:
                crew.spawn("agent-01")
                crew.spawn("agent-02")
                crew.send("agent-02", Order(round=0, at=EPOCH, start=True))
                crew.next_report(30)

            # Found while sending to it (its pipe broke) or while waiting
            # for its report, whichever comes first: the same error.
            with pytest.raises(SimulationError, match="process 1 exited with code -9"):
                first_round()
        finally:
            crew.stop()

    def test_worker_processes_leave_with_a_killed_coordinator(
        self, tmp_path: Path
    ) -> None:
        """SIGKILL of the coordinator's process: its worker processes notice
        and exit instead of waiting for orders forever."""
        psutil = pytest.importorskip("psutil")
        code = (
            "import sys\n"
            "from swarmlog.simulation.processes import ProcessCrew\n"
            "crew = ProcessCrew(sys.argv[1], 2, seed=1)\n"
            "print(*crew.pids, flush=True)\n"
            "sys.stdin.readline()\n"
        )
        with subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / "orphan.db")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as coordinator:
            assert coordinator.stdout is not None
            pids = [int(pid) for pid in coordinator.stdout.readline().split()]
            coordinator.kill()
            coordinator.wait(TIMEOUT)
        assert len(pids) == 2
        deadline = time.monotonic() + TIMEOUT
        for pid in pids:
            try:
                worker = psutil.Process(pid)
                # Gone, or a zombie nobody reaps (a container's init may not).
                while worker.status() != psutil.STATUS_ZOMBIE:
                    assert time.monotonic() < deadline, f"worker {pid} still runs"
                    with contextlib.suppress(psutil.TimeoutExpired):
                        worker.wait(timeout=0.1)
            except psutil.NoSuchProcess:
                pass

    def test_agents_cannot_move_to_a_fork(self, tmp_path: Path) -> None:
        """A what-if's move to another store is refused for processes, and
        a crew with nothing to report times out as queue.Empty."""
        crew = ProcessCrew(str(tmp_path / "move.db"), 1, seed=1)
        try:
            with EventStore(":memory:") as other, pytest.raises(SimulationError):
                crew.move_to(other)
            with pytest.raises(queue.Empty):
                crew.next_report(0.05)
        finally:
            crew.stop()
        assert crew.llm_calls() == 0
