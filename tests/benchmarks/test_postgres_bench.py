"""Smoke test of the PostgreSQL benchmark section:
``python -m benchmarks.postgres --quick`` against the tests' server.

It runs every measurement path at small sizes so the section cannot rot;
it checks the report's shape and that its figures are numbers, never that
a target passes (timings belong in ``benchmarks/``, not in asserts).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.pg_server import PgServer

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 300  # guards against a hang only; the quick section takes seconds
JUDGED = {"PGW1", "PGW1*", "PGW2", "PGW4", "PGR1", "PGE"}

pytest.importorskip("eventsourcing", reason="benchmark extra: swarmlog[bench]")
pytest.importorskip("psycopg_pool", reason="benchmark extra: swarmlog[bench]")


@pytest.fixture(scope="module")
def report(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The JSON report of one quick run of the section (a child process),
    on the session's server."""
    out = tmp_path_factory.mktemp("pgbench") / "pg.json"
    env = {**os.environ, "SWARMLOG_BENCH_PG_URL": pg_server.url}
    command = [sys.executable, "-m", "benchmarks.postgres", "--quick", "--silent"]
    done = subprocess.run(
        [*command, "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "musts failed:" in done.stdout
    return json.loads(out.read_text("utf-8"))


def _number(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_every_target_has_a_numeric_row(report: dict) -> None:
    """PGW1, PGW2, PGW4, PGR1 and both PGE lines carry library, anchor and
    ratio figures and a verdict; PGW3 has a row or says why not."""
    ids = [row["id"] for row in report["rows"]]
    assert set(ids) >= JUDGED
    assert ids.count("PGE") == 2
    assert "PGW3" in ids or "pg_lib_procs" in report["not_measured"]
    for row in report["rows"]:
        for key in ("library", "anchor", "value"):
            assert _number(row[key]), row
        assert row["result"] in {"goal", "pass", "FAIL", "info"}, row


@pytest.mark.slow
def test_report_records_the_server(report: dict) -> None:
    """The server's version and the settings that move write figures."""
    server = report["server"]
    assert "PostgreSQL" in server["version"]
    for key in ("server_version", "synchronous_commit", "fsync", "shared_buffers"):
        assert server[key], key
    assert report["mode"] == "quick"
    assert report["figures"]["pg_raw_1"][0]["events_per_s"] > 0
