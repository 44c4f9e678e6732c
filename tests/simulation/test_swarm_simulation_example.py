"""examples/swarm_simulation.py: it runs the simulation with the command
line's public pieces (progress callback, render) and without them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from types import ModuleType

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "swarm_simulation.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    """The example, loaded from its file (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("swarm_simulation", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shows_the_tables(
    example: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With rich it prints the read models and the engine proof."""
    report = example.simulate(str(tmp_path / "shown.db"), agents=2, tasks=4)
    out = capsys.readouterr().out
    assert report.rebuilt_matches
    assert "Swarm timeline" in out
    assert report.fingerprint in out


def test_plain_summary_without_rich(
    example: ModuleType,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the cli extra it prints a plain summary with the same
    fingerprint as a run with the same seed."""
    shown = example.simulate(str(tmp_path / "a.db"), agents=2, tasks=4, show=False)
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "rich.console", None)
    report = example.simulate(str(tmp_path / "b.db"), agents=2, tasks=4)
    out = capsys.readouterr().out
    assert f"fingerprint: {report.fingerprint}" in out
    assert report.fingerprint == shown.fingerprint
