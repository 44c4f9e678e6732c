"""The typer application: one ``Typer`` with every command group registered.

Imports typer (and, through the commands, rich lazily); only
:func:`swarmlog.cli.build_app` imports this module.
"""

import typer

from swarmlog.cli.commands import (
    compare,
    copy,
    events,
    inspect,
    read_models,
    simulate,
    subscriptions,
    transfer,
    why,
)
from swarmlog.cli.options import with_pg_schema

__all__ = ["build_app"]

_GROUPS = (
    simulate,
    inspect,
    events,
    why,
    subscriptions,
    transfer,
    copy,
    read_models,
    compare,
)
"""Command modules, in the order ``--help`` lists their commands."""


def build_app() -> typer.Typer:
    """The typer application with every command (main thread)."""
    app = typer.Typer(
        name="swarmlog",
        help=(
            "swarmlog: an embedded event store for agent swarms. Simulate a "
            "swarm, look inside a store file (read-only) without writing code, "
            "or import exported events."
        ),
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    for group in _GROUPS:
        group.register(app)
    for command in app.registered_commands:  # every command: --pg-schema
        if command.callback is not None:
            command.callback = with_pg_schema(command.callback)
    return app
