"""The command line beside multi-process writers, and ``simulate
--processes``."""

from __future__ import annotations

import contextlib
import json
import select
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog import EventStore
from swarmlog.simulation import SimulationReport
from tests.cli.support import one_error_line

if TYPE_CHECKING:
    from typing import IO

WRITERS = Path(__file__).resolve().parent / "multiprocess_writers.py"
TIMEOUT = 120  # seconds; guards against a hang only
PROCESSES = 3
HALF = 40


def _line(stream: IO[str], timeout: float = TIMEOUT) -> str:
    """The next line of a child's output (bounded wait)."""
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "the child printed nothing in time"
    return stream.readline()


def _stop(child: subprocess.Popen[str]) -> None:
    """Kill ``child`` if it is still running (a failed test)."""
    if child.poll() is None:
        child.kill()
        child.wait(TIMEOUT)


def _swarmlog(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "swarmlog.cli", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.mark.slow
def test_tail_stats_and_read_models_beside_multiprocess_writers(
    tmp_path: Path,
) -> None:
    """Three processes append through multi-process stores. Meanwhile
    ``stats`` and ``agents`` read the file, and ``tail`` (started halfway)
    prints every event in position order, gap-free, as the second half is
    written while it follows."""
    db = str(tmp_path / "mp.db")
    total = 2 * PROCESSES * HALF
    with contextlib.ExitStack() as children:
        writers = children.enter_context(
            subprocess.Popen(
                [sys.executable, str(WRITERS), db, str(PROCESSES), str(HALF)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
        children.callback(_stop, writers)
        assert writers.stdout is not None
        assert writers.stdin is not None
        assert _line(writers.stdout).strip() == "half"
        # The writers hold their stores open (idle) while these read.
        stats = _swarmlog("stats", db, "--json")
        assert stats.returncode == 0, stats.stderr
        assert json.loads(stats.stdout)["total_events"] == PROCESSES * HALF
        agents = _swarmlog("agents", db, "--json")
        assert agents.returncode == 0, agents.stderr
        assert len(json.loads(agents.stdout)["agents"]) == PROCESSES * HALF
        follow = [
            sys.executable, "-m", "swarmlog.cli", "tail", db,
            "--from-position", "1", "--count", str(total),
            "--timeout", str(TIMEOUT), "--interval", "0.05", "--json",
        ]  # fmt: skip
        tail = children.enter_context(
            subprocess.Popen(
                follow, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
        children.callback(_stop, tail)
        assert tail.stdout is not None
        assert tail.stderr is not None
        first = _line(tail.stdout)  # tail is open and following
        writers.stdin.write("go\n")
        writers.stdin.flush()
        assert _line(writers.stdout).strip() == "done"
        assert writers.wait(TIMEOUT) == 0
        rest = tail.stdout.read()  # to its end: --count reached, or --timeout
        assert tail.wait(TIMEOUT) == 0, tail.stderr.read()
    events = [json.loads(line) for line in [first, *rest.splitlines()]]
    assert [e["position"] for e in events] == list(range(1, total + 1))
    expected = {f"p{k}-agent-{i}" for k in range(PROCESSES) for i in range(2 * HALF)}
    assert {e["aggregate_id"] for e in events} == expected
    after = _swarmlog("stats", db, "--json")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["total_events"] == total


class TestSimulateProcesses:
    """``swarmlog simulate --processes N``."""

    @pytest.mark.slow
    def test_says_the_fingerprint_matches_the_threaded_run(
        self, run: Any, tmp_path: Path, sim: SimulationReport
    ) -> None:
        """Two agent processes: the tables, the proof, and the line that
        compares the fingerprint with a threaded run of the same seed."""
        db = str(tmp_path / "mp.db")
        result = run(
            "simulate", "--db", db, "--agents", "3", "--tasks", "6",
            "--processes", "2",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        text = " ".join(result.stdout.split())  # the console wraps lines
        assert "identical to the live read models" in text
        assert "in 2 spawn processes + the coordinator" in text
        assert (
            f"fingerprint matches the threaded run of this seed ({sim.fingerprint})"
            in text
        )

    @pytest.mark.slow
    def test_json_carries_both_fingerprints(
        self, run: Any, tmp_path: Path, sim: SimulationReport
    ) -> None:
        """--json: the report names the processes and both fingerprints."""
        db = str(tmp_path / "mp.db")
        result = run(
            "simulate", "--db", db, "--agents", "3", "--tasks", "6",
            "--processes", "2", "--json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        report = msgspec.json.decode(result.stdout, type=SimulationReport)
        assert report.processes == 2
        assert report.fingerprint == sim.fingerprint
        assert report.threaded_fingerprint == sim.fingerprint
        assert report.matches_threaded is True

    @pytest.mark.parametrize(
        ("args", "words"),
        [
            (("--processes", "-1"), "--processes must be >= 0"),
            (("--processes", "2", "--db", ":memory:"), "needs a database file"),
            (("--processes", "2", "--replay", "x.db"), "plain run"),
            (("--start-method", "thread"), "--start-method must be one of"),
        ],
    )
    def test_usage_errors(
        self, run: Any, tmp_path: Path, args: tuple[str, ...], words: str
    ) -> None:
        """Bad process options are usage errors (one line, exit 2)."""
        result = run("simulate", *args)
        assert result.exit_code == 2
        assert words in one_error_line(result)


class TestWritingCommandsBesideWriters:
    """``import`` and ``subscriptions --delete`` write: beside multi-process
    writers they need ``--multi-process``, and say so without it."""

    def test_import(self, run: Any, tmp_path: Path, sim: SimulationReport) -> None:
        """Without the option the import is refused naming it (nothing
        stored); with it the events land beside the open writer, which
        sees them."""
        exported = tmp_path / "events.jsonl"
        listed = run("events", sim.db_path, "--json", "--limit", "20")
        assert listed.exit_code == 0, listed.output
        exported.write_text(listed.stdout, "utf-8")
        db = str(tmp_path / "live.db")
        with EventStore(db, multi_process=True) as writer:
            refused = run("import", db, str(exported), "--json")
            assert refused.exit_code == 1
            assert "multi_process=True" in one_error_line(refused)
            done = run("import", db, str(exported), "--json", "--multi-process")
            assert done.exit_code == 0, done.output
            assert json.loads(done.stdout)["added"] == 20
            assert len(writer.query(limit=100)) == 20

    def test_delete_a_subscription(self, run: Any, tmp_path: Path) -> None:
        """``subscriptions --delete NAME --multi-process`` forgets it while
        another multi-process store has the file open."""
        db = str(tmp_path / "live.db")
        with EventStore(db, multi_process=True) as writer:
            writer.subscribe("mailer", lambda event: None).stop()
            refused = run("subscriptions", db, "--delete", "mailer")
            assert refused.exit_code == 1
            assert "multi_process=True" in one_error_line(refused)
            done = run("subscriptions", db, "--delete", "mailer", "--multi-process")
            assert done.exit_code == 0, done.output
            listed = run("subscriptions", db, "--json")
            assert json.loads(listed.stdout) == {}
