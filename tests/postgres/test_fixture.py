"""The PostgreSQL test fixture: without a server, skip on a developer's
machine (saying how to enable the tests) but fail under CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pg_server import ENV_BINDIR, ENV_URL

ROOT = Path(__file__).resolve().parents[2]
PYTEST = str(Path(sys.executable).with_name("pytest"))  # never python -m pytest
ONE_TEST = (
    "tests/postgres/test_layout.py::test_a_read_only_store_needs_an_existing_store"
)


def _run_without_server(ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (ENV_URL, "CI")}
    env[ENV_BINDIR] = "/nonexistent/postgresql/bin"
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [PYTEST, ONE_TEST, "-q", "-rs", "-p", "no:randomly"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_no_server_skips_with_how_to_enable() -> None:
    """A developer machine without PostgreSQL skips, naming the remedy."""
    done = _run_without_server(ci=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout
    assert "apt install postgresql" in done.stdout
    assert ENV_URL in done.stdout


@pytest.mark.slow
def test_no_server_fails_under_ci() -> None:
    """Under CI=true the PostgreSQL tests fail instead of skipping."""
    done = _run_without_server(ci=True)
    assert done.returncode != 0
    assert "skipped" not in done.stdout
    assert "PostgreSQL tests cannot run under CI" in done.stdout
