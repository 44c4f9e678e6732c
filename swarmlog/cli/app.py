"""The typer application: one ``Typer`` with every command group registered.

Imports typer (and, through the commands, rich lazily); only
:func:`swarmlog.cli.build_app` imports this module.
"""

import typer

from swarmlog.cli.commands import (
    compare,
    events,
    inspect,
    read_models,
    simulate,
    subscriptions,
    transfer,
    why,
)

__all__ = ["build_app"]

_GROUPS = (
    simulate,
    inspect,
    events,
    why,
    subscriptions,
    transfer,
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
    return app
