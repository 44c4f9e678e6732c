"""Helpers shared by the command-line tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typer.testing import Result


def one_error_line(result: Result) -> str:
    """The single ``swarmlog: error: ...`` line on stderr (no traceback)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("swarmlog: error: ")
    assert "Traceback" not in result.output
    return lines[0]
