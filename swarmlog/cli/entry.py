"""The console script's entry point: check the extra, build the app, run it.

Imports neither rich nor typer at module level: without the ``cli`` extra
``swarmlog`` prints a one-line hint instead of a traceback.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Final

from swarmlog.cli.common import EXIT_ERROR

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["INSTALL_HINT", "build_app", "main"]

INSTALL_HINT: Final = (
    "swarmlog: the command line needs rich and typer; "
    "install them with: pip install 'swarmlog[cli]'"
)
"""What ``swarmlog`` prints when rich or typer is missing."""


def build_app() -> Any:
    """The typer application (imports typer; raises ImportError without it)."""
    from swarmlog.cli.app import build_app as build

    return build()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``swarmlog`` command line; return its exit status.

    Runs on the calling (main) thread. Prints :data:`INSTALL_HINT` (exit 1)
    when rich or typer is missing.
    """
    try:
        import rich  # noqa: F401
        import typer  # noqa: F401
    except ImportError:
        sys.stderr.write(INSTALL_HINT + "\n")
        return EXIT_ERROR
    app = build_app()
    try:
        app(args=list(argv) if argv is not None else None, prog_name="swarmlog")
    except SystemExit as e:
        code = e.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        sys.stderr.write(f"{code}\n")
        return EXIT_ERROR
    return 0
