"""``swarmlog import``: read exported JSON lines back into a store."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from swarmlog.cli.common import (
    UsageError,
    help_text,
    make_console,
    open_store,
    user_errors,
    write_json,
)
from swarmlog.cli.importer import decode_lines, import_events
from swarmlog.cli.options import MultiProcessOpt

__all__ = ["import_file", "register"]


def _read(source: str) -> list[tuple[int, bytes]]:
    """The numbered non-blank lines of ``source`` (``-``: stdin)."""
    data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    return [
        (number, line)
        for number, line in enumerate(data.splitlines(), start=1)
        if line.strip()
    ]


def import_file(
    db: Annotated[
        str,
        typer.Argument(
            help="The store to import into (created when it does not exist).",
            metavar="DB",
            show_default=False,
        ),
    ],
    source: Annotated[
        str,
        typer.Argument(
            help="JSON lines from 'swarmlog events --json' ('-' reads stdin).",
            metavar="FILE",
            show_default=False,
        ),
    ],
    plain: Annotated[
        bool,
        typer.Option(
            "--plain",
            help=(
                "Keep events of types not registered here as plain data "
                "(default: refuse them)."
            ),
        ),
    ] = False,
    json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON.")
    ] = False,
    multi_process: MultiProcessOpt = False,
) -> None:
    """Import exported events: same ids, types, timestamps and metadata."""
    with user_errors():
        if source != "-" and not Path(source).is_file():
            msg = f"{source}: no such file"
            raise UsageError(msg)
        name = "stdin" if source == "-" else source
        events, plain_types = decode_lines(_read(source), plain=plain, name=name)
        console = make_console() if not json else None
        progress_console = make_console(stderr=True)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with (
            open_store(db, multi_process=multi_process) as store,
            Progress(
                TextColumn("importing"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("events"),
                console=progress_console,
                transient=True,
            ) as progress,
        ):
            task = progress.add_task("import", total=max(len(events), 1))
            summary = import_events(
                store,
                events,
                on_progress=lambda done: progress.update(task, completed=done),
                plain_types=plain_types,
                name=name,
            )
            path = store.path
        if console is None:
            write_json(summary)
            return
        kept = (
            f" · kept as plain data: {', '.join(summary.plain_types)}"
            if summary.plain_types
            else ""
        )
        console.print(
            f"imported [bold]{summary.read:,}[/] events from {name} into {path}: "
            f"[bold]{summary.added:,}[/] added, {summary.already_stored:,} already "
            f"stored · head {summary.head_position:,}{kept}"
        )


def register(app: typer.Typer) -> None:
    """Add this module's command to ``app``."""
    app.command(
        "import",
        **help_text(
            "Import the JSON lines 'swarmlog events --json' writes into a store "
            "(created if missing; idempotent by event id).",
            "swarmlog events old.db --json > events.jsonl",
            "swarmlog import new.db events.jsonl",
            "swarmlog events old.db --json | swarmlog import new.db -",
            "swarmlog import new.db events.jsonl --plain --json",
            "swarmlog import live.db events.jsonl --multi-process",
        ),
    )(import_file)
