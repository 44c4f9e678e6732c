"""Choosing the backend by path, and the options each backend takes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import EventStore, EventStoreConfig, InvalidConfigError
from swarmlog.actors.postgres.url import is_postgres_url, redact, redact_text

if TYPE_CHECKING:
    from pathlib import Path

URL = "postgresql://app:s3cret@db.example:5432/swarm"


def test_the_sqlite_path_never_imports_psycopg(tmp_path: Path) -> None:
    """Opening, writing and closing an SQLite store leaves psycopg unimported."""
    code = textwrap.dedent(
        f"""
        import sys
        from swarmlog import EventStore, create_agent_started_event
        with EventStore({str(tmp_path / "e.db")!r}) as store:
            store.append(create_agent_started_event("a1"))
            store.get_stats()
        with EventStore(":memory:") as store:
            store.append(create_agent_started_event("a1"))
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == "psycopg")
        assert not loaded, loaded
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("postgresql://u@h/db", True),
        ("postgres://u@h/db", True),
        ("PostgreSQL://h/db", True),
        ("postgresql:///db?host=/run/postgresql", True),
        ("events.db", False),
        (":memory:", False),
        ("postgresql.db", False),
        ("/data/postgres://x", False),
    ],
)
def test_postgres_urls_are_recognised(path: str, expected: bool) -> None:
    """A libpq URI names PostgreSQL; anything else is an SQLite file."""
    assert is_postgres_url(path) is expected


@pytest.mark.parametrize(
    "options",
    [
        {"pragmas": {"cache_size": 10}},
        {"wal_checkpoint_bytes": 1 << 20},
        {"auto_persist_interval": 1.0},
    ],
    ids=["pragmas", "wal_checkpoint_bytes", "auto_persist_interval"],
)
def test_sqlite_only_options_are_refused_on_postgres(options: dict[str, Any]) -> None:
    """Options that mean nothing on PostgreSQL raise InvalidConfigError
    (before any connection), naming the option."""
    name = next(iter(options))
    with pytest.raises(InvalidConfigError, match=name):
        EventStore(URL, **options)
    with pytest.raises(InvalidConfigError, match=name):
        EventStoreConfig(database_path=URL, **options)


@pytest.mark.parametrize(
    "schema", ["", "Swarm", "1st", "with-dash", "a" * 64, "pg_catalog", 7, None]
)
def test_a_bad_pg_schema_is_refused(schema: Any) -> None:
    """pg_schema must be a lower-case identifier the server does not own."""
    with pytest.raises(InvalidConfigError, match="pg_schema"):
        EventStore(URL, pg_schema=schema)


def test_pg_schema_is_refused_on_sqlite(tmp_path: Path) -> None:
    """pg_schema on an SQLite file is a mistake, not something to ignore."""
    with pytest.raises(InvalidConfigError, match="pg_schema"):
        EventStore(tmp_path / "e.db", pg_schema="tenant_a")


def test_the_defaults_are_accepted_on_postgres() -> None:
    """The default options (SQLite's included) are fine on PostgreSQL."""
    config = EventStoreConfig(database_path=URL, synchronous="normal")
    assert config.pg_schema == "swarmlog"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (URL, "postgresql://app:***@db.example:5432/swarm"),
        ("postgres://app@h/db", "postgres://app@h/db"),
        ("postgresql://h/db?password=s3cret&sslmode=require", None),
        ("postgresql://a:b:s3cret@h/db", None),
        ("postgresql://app:s3cret@[::1]:5432/db", "postgresql://app:***@[::1]:5432/db"),
    ],
)
def test_redact_hides_the_password(url: str, shown: str | None) -> None:
    """The password never survives redaction; the rest stays readable."""
    redacted = redact(url)
    assert "s3cret" not in redacted
    if shown is not None:
        assert redacted == shown


def test_redact_text_hides_urls_and_keywords_in_messages() -> None:
    """A driver message quoting a URL or a password= keyword is cleaned."""
    text = f"failed: {URL} and host=h password=s3cret user=app"
    cleaned = redact_text(text, URL)
    assert "s3cret" not in cleaned
    assert "user=app" in cleaned


@pytest.mark.parametrize(
    ("error", "expected", "setting"),
    [
        ("LockNotAvailable", "StorageTimeoutError", "lock_timeout"),
        ("QueryCanceled", "StorageTimeoutError", "statement_timeout (or a cancel)"),
        ("DiskFull", "StorageFullError", None),
        ("UniqueViolation", "StorageError", None),
    ],
)
def test_driver_errors_become_typed_errors(
    error: str, expected: str, setting: str | None
) -> None:
    """Server timeouts are TimeoutErrors, a full disk a StorageFullError,
    and no message keeps the URL's password."""
    from psycopg import errors as pg_errors

    from swarmlog.actors.postgres import connection

    raised = getattr(pg_errors, error)(f"boom at {URL}")
    typed = connection.translate_error(raised, URL, "append")
    assert type(typed).__name__ == expected
    assert "s3cret" not in str(typed)
    if setting is not None:
        assert isinstance(typed, TimeoutError)
        assert getattr(typed, "setting", None) == setting
