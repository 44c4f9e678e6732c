"""Option and argument types shared by the commands (typer ``Annotated``).

Imports typer: only the command modules import this one, once
:func:`swarmlog.cli.build_app` runs. No ``from __future__ import
annotations`` here or in the commands: typer reads the annotations at
runtime.
"""

from typing import Annotated

import typer

__all__ = ["DbArg", "EventsJsonOpt", "JsonOpt", "MultiProcessOpt", "NowOpt"]

DbArg = Annotated[
    str,
    typer.Argument(
        help="The store file (opened read-only).", metavar="DB", show_default=False
    ),
]
"""The store file of a read-only command."""

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
"""``--json``: one JSON document instead of tables."""

EventsJsonOpt = Annotated[
    bool,
    typer.Option("--json", help="One JSON object per line (Event fields)."),
]
"""``--json`` of the event lists: JSON lines, one ``Event`` each."""

NowOpt = Annotated[
    str | None,
    typer.Option(
        "--now",
        help=(
            "Instant for health and idle figures, ISO 8601 with a timezone "
            "(default: the newest event)."
        ),
        metavar="ISO",
    ),
]
"""``--now``: the instant time-dependent figures refer to."""

MultiProcessOpt = Annotated[
    bool,
    typer.Option(
        "--multi-process",
        help=(
            "Open the store for writing with multi_process=True, beside other "
            "processes writing it that way (default: as the only writer)."
        ),
    ),
]
"""``--multi-process`` of the commands that write."""
