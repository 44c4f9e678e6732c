"""``swarmlog copy``: copy a whole store between SQLite and PostgreSQL."""

from typing import Annotated

import typer

from swarmlog.backend import DEFAULT_SCHEMA, is_postgres_url
from swarmlog.cli.common import help_text, make_console, user_errors, write_json
from swarmlog.copying import copy_store

__all__ = ["copy", "register"]


def _schema(path: str, own: str | None, shared: str) -> str:
    """The ``pg_schema`` of one side: its own option, else ``--pg-schema``
    (a file takes none unless its own option names one: then the API
    refuses it)."""
    if own is not None:
        return own
    return shared if is_postgres_url(path) else DEFAULT_SCHEMA


def copy(
    source: Annotated[
        str,
        typer.Argument(
            help="The store to copy: a file or a PostgreSQL URL (never written).",
            metavar="SOURCE",
            show_default=False,
        ),
    ],
    dest: Annotated[
        str,
        typer.Argument(
            help="The destination: a new file, or a URL whose schema is new or empty.",
            metavar="DEST",
            show_default=False,
        ),
    ],
    pg_schema: Annotated[
        str,
        typer.Option(
            "--pg-schema",
            help="The schema of the PostgreSQL side(s).",
            metavar="NAME",
        ),
    ] = DEFAULT_SCHEMA,
    source_schema: Annotated[
        str | None,
        typer.Option(
            "--source-schema",
            help="The source's schema (default: --pg-schema).",
            metavar="NAME",
        ),
    ] = None,
    dest_schema: Annotated[
        str | None,
        typer.Option(
            "--dest-schema",
            help="The destination's schema (default: --pg-schema).",
            metavar="NAME",
        ),
    ] = None,
    page_size: Annotated[
        int,
        typer.Option("--page-size", help="Events per page.", min=1),
    ] = 1000,
    json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON.")
    ] = False,
) -> None:
    """Copy every event, snapshot and position; verify; refuse a non-empty DEST."""
    with user_errors():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(
            TextColumn("copying"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("events"),
            console=make_console(stderr=True),
            transient=True,
        ) as progress:
            task = progress.add_task("copy", total=None)
            report = copy_store(
                source,
                dest,
                source_schema=_schema(source, source_schema, pg_schema),
                target_schema=_schema(dest, dest_schema, pg_schema),
                page_size=page_size,
                on_progress=lambda done, total: progress.update(
                    task, completed=done, total=max(total, 1)
                ),
            )
        if json:
            write_json(report)
            return
        make_console().print(
            f"copied [bold]{report.events:,}[/] events, {report.snapshots:,} "
            f"snapshots, {report.projection_snapshots:,} projection snapshots, "
            f"{report.subscriptions:,} subscription positions from {report.source} "
            f"into {report.target} · head {report.head_position:,} · checksum "
            f"{report.checksum} verified ({report.seconds:.1f} s)"
        )


def register(app: typer.Typer) -> None:
    """Add this module's command to ``app``."""
    app.command(
        "copy",
        **help_text(
            "Copy a whole store between backends (SQLite file <-> PostgreSQL), "
            "keeping ids, positions, versions, timestamps, snapshots and "
            "subscription positions; verifies counts and a checksum. DEST must "
            "be new or empty.",
            "swarmlog copy swarm.db postgresql://me:secret@db.local/swarms",
            "swarmlog copy postgresql://me@db.local/swarms back.db --pg-schema team_a",
            "swarmlog copy swarm.db postgresql://me@db.local/swarms "
            "--dest-schema team_b --json",
        ),
    )(copy)
