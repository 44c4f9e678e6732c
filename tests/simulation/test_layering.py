"""The simulation and command-line packages: one-way dependencies, no
import cycle (every import counted: module level, under TYPE_CHECKING and
inside functions), and no module past ~600 lines."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "swarmlog"
CHECKED = ("swarmlog.simulation", "swarmlog.cli", "swarmlog.summary")
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    """Installed name -> file of every module under swarmlog/ (the facade
    folder: the simulation, the command line and their neighbours)."""
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        parts = tuple(p for p in parts if p != "__init__")
        found[".".join(("swarmlog", *parts))] = path
    return found


def _imports(path: Path, known: set[str]) -> set[str]:
    """Every swarmlog module ``path`` imports, wherever the import is."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            names += [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in known}
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, known) - {name} for name, path in modules.items()}


def _inside(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in CHECKED)


def test_the_simulation_never_imports_the_command_line() -> None:
    """No simulation (or summary) module names swarmlog.cli or rich."""
    graph = _graph()
    for name, imported in graph.items():
        if name.startswith("swarmlog.simulation") or name == "swarmlog.summary":
            assert not any(i.startswith("swarmlog.cli") for i in imported), name
            text = _modules()[name].read_text()
            assert "import rich" not in text
            assert "from rich" not in text


def test_no_import_cycle() -> None:
    """No cycle among the modules of these packages."""
    graph = {
        name: {i for i in imported if _inside(i)}
        for name, imported in _graph().items()
        if _inside(name)
    }
    state: dict[str, int] = {}  # 1 visiting, 2 done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for nxt in sorted(graph.get(name, ())):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                raise AssertionError(" -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_modules_are_small() -> None:
    """No module of these packages is past ~600 lines."""
    for name, path in _modules().items():
        if _inside(name):
            lines = len(path.read_text().splitlines())
            assert lines <= MAX_LINES, f"{name}: {lines} lines"
