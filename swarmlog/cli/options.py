"""Option and argument types shared by the commands (typer ``Annotated``).

Imports typer: only the command modules import this one, once
:func:`swarmlog.cli.build_app` runs. No ``from __future__ import
annotations`` here or in the commands: typer reads the annotations at
runtime.
"""

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from swarmlog.backend import DEFAULT_SCHEMA
from swarmlog.cli.common import using_pg_schema

__all__ = [
    "DbArg",
    "EventsJsonOpt",
    "JsonOpt",
    "MultiProcessOpt",
    "NowOpt",
    "PgSchemaOpt",
    "with_pg_schema",
]

DbArg = Annotated[
    str,
    typer.Argument(
        help="The store file or PostgreSQL URL (opened read-only).",
        metavar="DB",
        show_default=False,
    ),
]
"""The store of a read-only command: a file or a PostgreSQL URL."""

PgSchemaOpt = Annotated[
    str,
    typer.Option(
        "--pg-schema",
        help="The PostgreSQL schema holding the store (for a postgresql:// URL).",
        metavar="NAME",
    ),
]
"""``--pg-schema``: every command has it (see :func:`with_pg_schema`)."""


def with_pg_schema(callback: Callable[..., Any]) -> Callable[..., Any]:
    """``callback`` with a ``--pg-schema`` option added, which every store
    it opens on a PostgreSQL URL uses (a command that declares its own
    ``pg_schema`` parameter is left alone)."""
    signature = inspect.signature(callback)
    if "pg_schema" in signature.parameters:
        return callback

    @functools.wraps(callback)
    def command(*args: Any, pg_schema: str = DEFAULT_SCHEMA, **kwargs: Any) -> Any:
        with using_pg_schema(pg_schema):
            return callback(*args, **kwargs)

    option = inspect.Parameter(
        "pg_schema",
        inspect.Parameter.KEYWORD_ONLY,
        default=DEFAULT_SCHEMA,
        annotation=PgSchemaOpt,
    )
    command.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), option]
    )
    command.__annotations__ = {**callback.__annotations__, "pg_schema": PgSchemaOpt}
    return command


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
