"""What every command shares: one-line errors and exit statuses, opening a
store read-only, parsing option values, JSON output, command help.

Imports neither rich nor typer at module level (``import swarmlog.cli``
must work without the ``cli`` extra). Runs on the command's (main) thread.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, NoReturn

import msgspec

from swarmlog.actors.read_models import (
    AgentStateProjection,
    MemoryIndexProjection,
    SwarmProjection,
    TaskHistoryProjection,
)
from swarmlog.backend import DEFAULT_SCHEMA, is_postgres_url
from swarmlog.copying import copy_store
from swarmlog.schema.errors import SwarmlogError
from swarmlog.store import EventStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from rich.console import Console

__all__ = [
    "BUILTIN_PROJECTIONS",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "CommandError",
    "UsageError",
    "check_count",
    "fail",
    "help_text",
    "instant_at",
    "last_instant",
    "make_console",
    "now_option",
    "open_read_only",
    "open_store",
    "parse_instant",
    "settle",
    "simulate_into",
    "store_options",
    "user_errors",
    "using_pg_schema",
    "write_json",
]

EXIT_ERROR: Final = 1
"""An error about the store or the run."""
EXIT_USAGE: Final = 2
"""A bad command line."""
EXIT_INTERRUPTED: Final = 130
"""Interrupted (Ctrl-C)."""

# -- errors -------------------------------------------------------------------


class UsageError(Exception):
    """A bad option value, reported like a store error but with exit 2."""


class CommandError(Exception):
    """A command could not do its work (bad input data): one line, exit 1."""


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print ``message``'s first line as ``swarmlog: error: ...``; exit."""
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    sys.stderr.write(f"swarmlog: error: {first}\n")
    sys.stderr.flush()
    raise SystemExit(code)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn user mistakes into one stderr line and an exit status."""
    try:
        yield
    except UsageError as e:
        fail(str(e), EXIT_USAGE)
    except CommandError as e:
        fail(str(e))
    except SwarmlogError as e:
        fail(str(e))
    except UnicodeError as e:  # undecodable bytes in an argument (surrogates)
        fail(f"an argument is not valid text: {e}", EXIT_USAGE)
    except BrokenPipeError:
        # The reader went away (`swarmlog events db | head`): stop quietly.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - never closed on purpose
        raise SystemExit(0) from None
    except OSError as e:
        fail(f"{e.filename or ''}: {e.strerror or e}" if e.filename else str(e))
    except KeyboardInterrupt:
        sys.stderr.write("swarmlog: interrupted\n")
        raise SystemExit(EXIT_INTERRUPTED) from None


_pg_schema: contextvars.ContextVar[str] = contextvars.ContextVar(
    "swarmlog_cli_pg_schema", default=DEFAULT_SCHEMA
)


@contextlib.contextmanager
def using_pg_schema(schema: str) -> Iterator[None]:
    """Run a command with ``--pg-schema`` set to ``schema``."""
    token = _pg_schema.set(schema)
    try:
        yield
    finally:
        _pg_schema.reset(token)


def store_options(db: str) -> dict[str, Any]:
    """The options a store on ``db`` takes from the command line: the
    ``--pg-schema`` of a PostgreSQL URL (a file ignores it, so commands
    over two stores may mix a file and a URL)."""
    return {"pg_schema": _pg_schema.get()} if is_postgres_url(db) else {}


@contextlib.contextmanager
def open_store(db: str, *, multi_process: bool = False) -> Iterator[EventStore]:
    """A writable store on ``db`` (a file or a PostgreSQL URL), shut down
    at the end; ``multi_process`` beside other writing processes of a file
    (a PostgreSQL store always is)."""
    options = store_options(db)
    if multi_process and not is_postgres_url(db):
        options["multi_process"] = True
    with EventStore(db, **options) as store:
        yield store


def simulate_into(db: str, simulate: Callable[..., Any], **options: Any) -> Any:
    """``simulate(db, **options)`` (a simulation report); for a PostgreSQL
    URL, into a temporary file first, then copied into the URL's (new or
    empty) ``--pg-schema`` (the report names the URL, without its password).

    Raises:
        CopyTargetNotEmptyError: The schema holds a store already.
    """
    if not is_postgres_url(db):
        return simulate(db, **options)
    with tempfile.TemporaryDirectory(prefix="swarmlog-sim-") as folder:
        report = simulate(os.path.join(folder, "swarm.db"), **options)
        copied = copy_store(report.db_path, db, target_schema=_pg_schema.get())
    return msgspec.structs.replace(report, db_path=copied.target)


@contextlib.contextmanager
def open_read_only(db: str) -> Iterator[EventStore]:
    """A read-only store on ``db`` (never created, migrated or locked)."""
    store = EventStore(db, read_only=True, **store_options(db))
    try:
        store.initialize()
        yield store
    finally:
        store.shutdown()


def parse_instant(value: str | None, option: str) -> datetime | None:
    """``value`` as an aware UTC datetime (None stays None).

    Raises:
        UsageError: ``value`` is not ISO 8601, or has no timezone.
    """
    if value is None:
        return None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        msg = f"{option}: {value!r} is not an ISO 8601 date/time"
        msg += " (e.g. 2025-01-06T09:00:00Z)"
        raise UsageError(msg) from None
    if instant.tzinfo is None:
        # The store refuses naive datetimes, and so does the command line:
        # "09:00" in a log of UTC instants is too easily a local time.
        msg = (
            f"{option}: {value!r} has no timezone; add Z for UTC or an offset "
            "(e.g. 2025-01-06T09:00:00Z or 2025-01-06T11:00:00+02:00)"
        )
        raise UsageError(msg)
    return instant.astimezone(UTC)


def check_count(value: int | None, option: str, minimum: int = 0) -> None:
    """Refuse a count below ``minimum`` (a :class:`UsageError`)."""
    if value is not None and value < minimum:
        msg = f"{option} must be >= {minimum}, got {value}"
        raise UsageError(msg)


# -- output helpers -----------------------------------------------------------


def write_json(value: Any) -> None:
    """Print ``value`` as one line of JSON on stdout."""
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")
    sys.stdout.flush()


def make_console(*, stderr: bool = False) -> Console:
    """A rich console for tables, or for progress bars on stderr (imports
    rich)."""
    from rich.console import Console

    return Console(highlight=False, stderr=stderr)


# -- stores -------------------------------------------------------------------


def last_instant(store: EventStore) -> datetime:
    """The newest event's timestamp (or now, for an empty store)."""
    head = store.head_position
    if head:
        events = store.query(from_position=head, limit=1)
        if events:
            return events[0].timestamp
    return datetime.now(UTC)


def now_option(store: EventStore, now: str | None) -> datetime:
    """``--now``, or the newest event's timestamp."""
    return parse_instant(now, "--now") or last_instant(store)


def help_text(summary: str, *examples: str) -> dict[str, Any]:
    """Command help with an Examples epilog (kept line by line)."""
    lines = "\n\n".join(f"  $ {e}" for e in examples)
    return {"help": summary, "epilog": f"Examples:\n\n{lines}"}


BUILTIN_PROJECTIONS: Final = (
    AgentStateProjection,
    TaskHistoryProjection,
    MemoryIndexProjection,
    SwarmProjection,
)


def settle(projections: Sequence[Any], timeout: float = 30.0) -> None:
    """Wait (bounded) until each projection is ``live`` or ``failed``.

    On a read-only store a projection catches up to the head as of the
    store's opening and then goes ``live``; its position can reach that
    head (from its snapshot) a moment before its status says so. Waiting
    for ``store.head_position`` instead could wait in vain: that reads the
    file's head, which another process may keep moving.
    """
    deadline = time.monotonic() + timeout
    for projection in projections:
        while projection.status not in ("live", "failed"):
            if time.monotonic() >= deadline:
                return
            time.sleep(0.005)


def instant_at(store: EventStore, position: int) -> datetime:
    """The timestamp of the event at ``position`` (or now)."""
    if position > 0:
        events = store.query(from_position=position, limit=1)
        if events:
            return events[0].timestamp
    return datetime.now(UTC)
