"""``swarmlog fork`` and ``swarmlog diff``: branch a store, compare two."""

import contextlib
import sys
from collections.abc import Iterator
from typing import Annotated

import typer

from swarmlog.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    check_count,
    help_text,
    make_console,
    open_read_only,
    store_options,
    user_errors,
    write_json,
)
from swarmlog.cli.options import DbArg, JsonOpt
from swarmlog.cli.render_diff import diff_json, render_diff
from swarmlog.diff import diff_read_models

__all__ = ["diff", "fork", "register"]

EXIT_DIFFERENT = 1
"""``swarmlog diff``: the read models differ (like ``diff``)."""


def fork(
    db: DbArg,
    new: Annotated[
        str,
        typer.Argument(
            help="The new store file (must not exist).",
            metavar="NEW",
            show_default=False,
        ),
    ],
    at: Annotated[
        int | None,
        typer.Option("--at", help="Last position to copy (default: the head)."),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Copy a store's events up to a position into a new, writable store."""
    with user_errors():
        check_count(at, "--at")
        with (
            open_read_only(db) as store,
            store.fork(new, at_position=at, **store_options(new)) as forked,
        ):
            position = forked.head_position
            path = forked.path
            source = store.path
        if json:
            write_json({"source": source, "path": path, "position": position})
            return
        make_console().print(
            f"forked [bold]{source}[/] at position [bold]{position:,}[/] into "
            f"[bold]{path}[/]"
        )


@contextlib.contextmanager
def _diff_errors() -> Iterator[None]:
    """Like ``diff``: any error exits 2 (1 means "they differ")."""
    try:
        with user_errors():
            yield
    except SystemExit as e:
        if e.code not in (0, None, EXIT_INTERRUPTED):
            raise SystemExit(EXIT_USAGE) from None
        raise


def diff(
    a: Annotated[
        str,
        typer.Argument(help="Store A (read-only).", metavar="A", show_default=False),
    ],
    b: Annotated[
        str,
        typer.Argument(help="Store B (read-only).", metavar="B", show_default=False),
    ],
    at_a: Annotated[
        int | None,
        typer.Option("--at-a", help="Read A as of this position (default: head)."),
    ] = None,
    at_b: Annotated[
        int | None,
        typer.Option("--at-b", help="Read B as of this position (default: head)."),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Compare the built-in read models of two stores (exit 0 equal, 1
    different, 2 error)."""
    with _diff_errors():
        check_count(at_a, "--at-a")
        check_count(at_b, "--at-b")
        with open_read_only(a) as store_a, open_read_only(b) as store_b:
            result = diff_read_models(store_a, store_b, at_a=at_a, at_b=at_b)
            names = (store_a.path, store_b.path)
        if json:
            write_json(diff_json(result, *names))
        else:
            render_diff(make_console(), result, *names)
    sys.stdout.flush()
    if not result.equal:
        raise SystemExit(EXIT_DIFFERENT)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command(
        **help_text(
            "Copy a store's events up to a position into a new, writable store.",
            "swarmlog fork swarm.db what-if.db --at 250",
            "swarmlog fork swarm.db copy.db --json",
        )
    )(fork)
    app.command(
        **help_text(
            "Compare the built-in read models of two stores, or of one store "
            "at two positions (exit 0 equal, 1 different, 2 error).",
            "swarmlog diff swarm.db what-if.db",
            "swarmlog diff swarm.db swarm.db --at-a 100 --at-b 200",
            "swarmlog diff a.db b.db --json | jq .tasks.changed",
        )
    )(diff)
