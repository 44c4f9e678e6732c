"""Session-wide test fixtures: the PostgreSQL server.

``pg_server`` starts one throwaway PostgreSQL server for the whole session
(or uses ``SWARMLOG_TEST_PG_URL``, see ``tests/pg_server.py``); ``pg_schema``
gives a test a fresh schema on it and drops it afterwards. Without
PostgreSQL the tests that need it skip, saying how to enable them, except
under ``CI=true``, where they fail: CI must run them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

from tests.pg_server import ENV_URL, PgServer, PgUnavailableError, start_server

if TYPE_CHECKING:
    from collections.abc import Iterator

_HOW = (
    "to run the PostgreSQL tests install the server binaries (Debian: "
    f"apt install postgresql) or set {ENV_URL}=postgresql://user:pass@host/db"
)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(f"{reason}; {_HOW}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the session (removed at its end)."""
    try:
        server = start_server()
    except PgUnavailableError as e:
        _unavailable(str(e))
        raise  # not reached: skip and fail raise
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def pg_schema(pg_server: PgServer) -> Iterator[str]:
    """A schema name for this test alone (dropped after it)."""
    name = pg_server.fresh_schema()
    yield name
    pg_server.drop_schema(name)


@pytest.fixture
def store_options() -> dict[str, Any]:
    """Options every store of a configuration needs: none by default
    (``tests/store/conftest.py`` gives PostgreSQL stores a fresh schema);
    suites that adopt the store contract modules inherit this."""
    return {}
