"""Smoke test of the benchmark harness: ``python -m benchmarks.run --quick``.

It runs every measurement path (anchors and library) at small sizes so the
harness cannot rot; it checks that every target has numeric figures, never
that a target passes (timings belong in ``benchmarks/``, not in asserts).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
METRIC_IDS = (
    "W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8",
    "R1", "R2", "R3", "R4", "R5", "M1", "A1", "MP1", "MP2", "MP3",
)  # fmt: skip
QUICK_TIMEOUT_S = 300  # guards against a hang only; the run takes ~15 s

pytest.importorskip("eventsourcing", reason="benchmark extra: swarmlog[bench]")
pytest.importorskip("psutil", reason="benchmark extra: swarmlog[bench]")


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The JSON report of one quick run (in a child process: the harness
    registers event types and starts threads of its own)."""
    workdir = tmp_path_factory.mktemp("bench")
    out = workdir / "quick.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--quick",
            "--silent",
            "--json",
            str(out),
            "--dir",
            str(workdir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=QUICK_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "musts failed:" in done.stdout
    return json.loads(out.read_text("utf-8"))


def _number(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@pytest.mark.slow
def test_every_target_has_a_row(quick_report: dict) -> None:
    """Each of W1-W8, R1-R5, M1, A1 and MP1-MP3 appears in the table."""
    ids = {row["id"] for row in quick_report["rows"]}
    assert set(METRIC_IDS) <= ids


@pytest.mark.slow
def test_every_row_has_numeric_figures(quick_report: dict) -> None:
    """Library figure, judged value (and anchor, where there is one) are
    finite numbers, and each row carries a verdict."""
    for row in quick_report["rows"]:
        assert _number(row["library"]), row
        assert _number(row["value"]), row
        if row["id"] not in {"M1", "A1", "MP2", "MP2*", "MP3"}:  # absolute figures
            assert _number(row["anchor"]), row
        assert row["result"] in {"goal", "pass", "FAIL", "info"}, row


@pytest.mark.slow
def test_report_carries_machine_notes_and_raw_figures(quick_report: dict) -> None:
    """The JSON has the machine notes and every anchor and library result."""
    machine = quick_report["machine"]
    for key in ("cpu_count", "platform", "python", "sqlite", "filesystem"):
        assert machine.get(key), key
    assert quick_report["mode"] == "quick"
    for side in ("anchors", "library"):
        assert quick_report[side], side
        for name, entry in quick_report[side].items():
            assert entry["median"], name
