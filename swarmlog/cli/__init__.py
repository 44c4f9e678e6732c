"""The ``swarmlog`` command line: simulate a swarm, look inside a store file.

Needs the ``cli`` extra (``pip install 'swarmlog[cli]'``: rich for tables
and progress bars, typer for the command line). Both are imported lazily,
so ``import swarmlog`` never needs them, and without them ``swarmlog``
prints a one-line hint.

Every command that only reads opens the store with ``read_only=True``: it
never writes, migrates or locks a store another process is writing. User
mistakes (a missing file, a file that is not a swarmlog store, a store of a
newer format, a bad option value) end with one ``swarmlog: error: ...`` line
on stderr and a non-zero exit status, never a traceback.

Exit status: 0 success, 1 an error about the store or the run, 2 a bad
command line, 130 interrupted.

Layout: :mod:`~swarmlog.cli.entry` (``main``), :mod:`~swarmlog.cli.app`
(the typer application), one module per command group in
:mod:`swarmlog.cli.commands`, the shared plumbing in
:mod:`~swarmlog.cli.common` and :mod:`~swarmlog.cli.options`, and the
output in :mod:`~swarmlog.cli.format`, :mod:`~swarmlog.cli.render` and
:mod:`~swarmlog.cli.render_store`. This package imports the simulation's
public names; the simulation never imports it.
"""

from __future__ import annotations

from swarmlog.cli.entry import INSTALL_HINT, build_app, main
from swarmlog.cli.format import event_summary
from swarmlog.cli.render import (
    render_agents,
    render_memory,
    render_read_models,
    render_simulation,
    render_swarm,
    render_tasks,
    simulation_progress,
)

__all__ = [
    "INSTALL_HINT",
    "build_app",
    "event_summary",
    "main",
    "render_agents",
    "render_memory",
    "render_read_models",
    "render_simulation",
    "render_swarm",
    "render_tasks",
    "simulation_progress",
]
