"""``swarmlog subscriptions``: list durable subscriptions, or delete one."""

import os
from typing import Annotated

import typer

from swarmlog.backend import is_postgres_url
from swarmlog.cli.common import (
    CommandError,
    help_text,
    make_console,
    open_read_only,
    open_store,
    user_errors,
    write_json,
)
from swarmlog.cli.options import DbArg, JsonOpt, MultiProcessOpt
from swarmlog.cli.render_store import render_subscriptions

__all__ = ["register", "subscriptions"]


def subscriptions(
    db: DbArg,
    delete: Annotated[
        str | None,
        typer.Option(
            "--delete",
            help=(
                "Forget this subscription's position (opens the store for "
                "writing; it next starts from its from_position)."
            ),
            metavar="NAME",
        ),
    ] = None,
    json: JsonOpt = False,
    multi_process: MultiProcessOpt = False,
) -> None:
    """List the durable subscriptions with position, lag and status."""
    with user_errors():
        if delete is not None:
            if not is_postgres_url(db) and not os.path.exists(db):
                msg = f"{db}: no such store file"
                raise CommandError(msg)
            with open_store(db, multi_process=multi_process) as store:
                if not store.delete_subscription(delete):
                    msg = f"no subscription named {delete!r} in {store.path}"
                    raise CommandError(msg)
                path = store.path
            if json:
                write_json({"deleted": delete, "path": path})
            else:
                make_console().print(f"deleted subscription [bold]{delete}[/]")
            return
        with open_read_only(db) as store:
            found = store.get_stats().subscriptions
            path = store.path
        if json:
            write_json(found)
            return
        console = make_console()
        if not found:
            console.print(f"no subscriptions in {path}")
            return
        render_subscriptions(console, found)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command(
        **help_text(
            "List the durable subscriptions of a store (position, lag, status), "
            "or delete one with --delete NAME (needs write access: no other "
            "writing store may have the file open, or --multi-process beside "
            "multi-process writers).",
            "swarmlog subscriptions swarm.db",
            "swarmlog subscriptions swarm.db --json",
            "swarmlog subscriptions swarm.db --delete mailer",
            "swarmlog subscriptions live.db --delete mailer --multi-process",
        )
    )(subscriptions)
