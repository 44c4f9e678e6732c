"""A PostgreSQL URL's password never shows: not in ``repr(config)``, the
command line's output and errors, ``swarmlog copy``'s reports and errors,
logs, or a whole formatted traceback."""

from __future__ import annotations

import logging
import traceback
import urllib.parse
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from swarmlog import EventStore, create_agent_spawned_event
from swarmlog.cli import build_app
from swarmlog.copying import CopyTargetNotEmptyError, copy_store

if TYPE_CHECKING:
    from pathlib import Path

    from tests.pg_server import PgServer

SECRET = "Pw-7f3a9c-never-shown"


def _with_password(url: str) -> str:
    """The server's URL with a password (trust authentication ignores it;
    a URL that has one keeps it and the tests look for that one)."""
    parts = urllib.parse.urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    name, colon, _ = user.partition(":")
    if colon:
        return url
    netloc = f"{name or 'postgres'}:{SECRET}@{host}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _secret(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).password or SECRET)


def _whole(error: BaseException) -> str:
    """The error as a traceback prints it, causes included."""
    return "".join(traceback.format_exception(error))


def test_config_repr_hides_the_password() -> None:
    """repr(config) shows the URL with *** for the password (both spellings),
    and a file path as it is."""
    store = EventStore(f"postgresql://app:{SECRET}@db.local/x?password={SECRET}")
    shown = repr(store.config)
    assert SECRET not in shown
    assert "app:***@db.local" in shown
    assert SECRET not in repr(store)
    assert "'events.db'" in repr(EventStore("events.db").config)


def test_unreachable_server_errors_hide_the_password(tmp_path: Path) -> None:
    """A server that cannot be reached: the store's error, the copy's error
    and their whole tracebacks name no password."""
    url = f"postgresql://app:{SECRET}@/nodb?host={tmp_path}&port=1"
    store = EventStore(url)
    with pytest.raises(Exception) as opened:  # noqa: PT011 - any type; text checked
        store.initialize()
    store.shutdown()
    with pytest.raises(Exception) as copied:  # noqa: PT011
        copy_store(url, tmp_path / "out.db")
    for error in (opened.value, copied.value):
        assert SECRET not in _whole(error)
        assert SECRET not in repr(error)


class TestWithAServer:
    """Commands and copies against a real server, the password in the URL."""

    @pytest.fixture
    def url(self, pg_server: PgServer) -> str:
        return _with_password(pg_server.url)

    def test_cli_output_and_errors(
        self, url: str, pg_schema: str, tmp_path: Path
    ) -> None:
        """copy both ways, stats, events, subscriptions, diff, and failing
        commands: nothing on stdout or stderr shows the password."""
        secret = _secret(url)
        source = tmp_path / "s.db"
        with EventStore(source) as store:
            for i in range(5):
                store.append(create_agent_spawned_event(f"a{i}", "coder", "c"))
        runner = CliRunner()
        app = build_app()
        schema = ("--pg-schema", pg_schema)
        runs: list[tuple[list[str], int]] = [
            (["copy", str(source), url, *schema], 0),
            (["copy", str(source), url, *schema], 1),  # not empty now
            (["copy", url, str(tmp_path / "back.db"), *schema, "--json"], 0),
            (["stats", url, *schema], 0),
            (["stats", url, *schema, "--json"], 0),
            (["events", url, *schema], 0),
            (["subscriptions", url, *schema], 0),
            (["diff", str(source), url, *schema], 0),
            (["events", url, "--pg-schema", "no_such_schema"], 1),
            (["stats", url.replace("port=", "port=1"), *schema], 1),
        ]
        for args, code in runs:
            result = runner.invoke(app, args, catch_exceptions=False)
            assert result.exit_code == code, (args, result.output)
            assert secret not in result.stdout, args
            assert secret not in result.stderr, args

    def test_copy_reports_logs_and_errors(
        self,
        url: str,
        pg_schema: str,
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A copy's report and its not-empty error name the URL without the
        password; a verbose store's log lines too."""
        secret = _secret(url)
        source = tmp_path / "s.db"
        with EventStore(source) as store:
            store.append(create_agent_spawned_event("a", "coder", "c"))
        report = copy_store(source, url, target_schema=pg_schema)
        assert secret not in repr(report)
        assert "***" in report.target
        with pytest.raises(CopyTargetNotEmptyError) as refused:
            copy_store(source, url, target_schema=pg_schema)
        assert secret not in _whole(refused.value)
        with caplog.at_level(logging.DEBUG, logger="swarmlog"):
            options: dict[str, Any] = {"pg_schema": pg_schema, "verbose": True}
            with EventStore(url, **options) as store:
                store.append(create_agent_spawned_event("b", "coder", "c"))
                shown = [repr(store.config), store.path, repr(store.get_stats())]
        assert caplog.text
        for text in [*shown, caplog.text]:
            assert secret not in text
