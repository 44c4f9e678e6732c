"""Fixtures of the command-line tests: the typer app, an in-process runner
and one small simulated store shared by the read-only commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from swarmlog.cli import build_app
from swarmlog.simulation import SimulationReport, run_simulation

if TYPE_CHECKING:
    from typer.testing import Result


@pytest.fixture(scope="session")
def app() -> Any:
    """The typer application."""
    return build_app()


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> SimulationReport:
    """A small simulated store shared by the read-only commands."""
    path = tmp_path_factory.mktemp("cli") / "swarm.db"
    return run_simulation(path, agents=3, tasks=6, seed=42)


@pytest.fixture
def run(app: Any) -> Any:
    """Invoke the CLI in-process; returns the typer ``Result``. ``input``
    (a keyword) is fed to stdin."""
    runner = CliRunner()

    def invoke(*args: str, input: bytes | str | None = None) -> Result:
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    return invoke
