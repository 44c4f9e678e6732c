"""``swarmlog why``: the chain of causes and the tree of consequences of
one event."""

from typing import Annotated

import typer

from swarmlog.cli.common import (
    CommandError,
    help_text,
    make_console,
    open_read_only,
    user_errors,
    write_json,
)
from swarmlog.cli.options import DbArg, JsonOpt
from swarmlog.cli.render_why import render_why

__all__ = ["register", "why"]


def why(
    db: DbArg,
    event_id: Annotated[
        str,
        typer.Argument(
            help="The event's id (a UUID, as events --json prints it).",
            metavar="EVENT_ID",
            show_default=False,
        ),
    ],
    json: JsonOpt = False,
) -> None:
    """Why did this event happen, and what did it lead to."""
    with user_errors(), open_read_only(db) as store:
        chain = store.get_causal_chain(event_id)
        if not chain:
            msg = f"no event with id {event_id!r} in {store.path}"
            raise CommandError(msg)
        consequences = store.get_consequences(chain[-1].id)
        if json:
            write_json(
                {
                    "event": chain[-1],
                    "chain": chain,
                    "consequences": consequences,
                }
            )
            return
        render_why(make_console(), chain, consequences)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command(
        **help_text(
            "Why did this event happen (its chain of causes, root first), and "
            "what did it lead to (the tree of its consequences).",
            "swarmlog why swarm.db 0190c3d2-7b1e-7c4a-9f3e-2b8d5c1a0e47",
            "swarmlog why swarm.db 0190c3d2-7b1e-7c4a-9f3e-2b8d5c1a0e47 --json",
        )
    )(why)
