"""A throwaway PostgreSQL server for the tests (or the one a URL names).

``SWARMLOG_TEST_PG_URL`` names a server to use; otherwise
:func:`start_server` runs ``initdb`` and ``pg_ctl`` from the machine's
PostgreSQL binaries (``pg_config --bindir``, else
``/usr/lib/postgresql/*/bin``) into a temporary folder: trust
authentication, no TCP listener, a private Unix socket folder. Running as
root, the binaries run as the ``postgres`` user (PostgreSQL refuses root),
in a folder that user owns. :meth:`PgServer.stop` removes it all.

Each test gets a schema of its own (:meth:`PgServer.fresh_schema`), so one
server serves the whole session.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "ENV_BINDIR",
    "ENV_URL",
    "PgServer",
    "PgUnavailableError",
    "find_bindir",
    "start_server",
]

ENV_URL: Final = "SWARMLOG_TEST_PG_URL"
ENV_BINDIR: Final = "SWARMLOG_TEST_PG_BINDIR"  # the binaries' folder, if not found
_TIMEOUT: Final = 60  # seconds any server command may take (a hang guard)
_PORT: Final = 5432  # the socket file's name only: no TCP listener


class PgUnavailableError(Exception):
    """No PostgreSQL server can be started or reached here."""


def find_bindir() -> str | None:
    """The folder of ``initdb``/``pg_ctl`` (``SWARMLOG_TEST_PG_BINDIR`` when
    set), or None."""
    candidates: list[str] = []
    chosen = os.environ.get(ENV_BINDIR)
    if chosen:
        candidates.append(chosen)
    elif shutil.which("pg_config"):
        try:
            out = subprocess.run(
                ["pg_config", "--bindir"],
                capture_output=True,
                text=True,
                check=True,
                timeout=_TIMEOUT,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            candidates.append(out)
    if not chosen:
        found = glob.glob("/usr/lib/postgresql/*/bin")
        candidates.extend(sorted(found, reverse=True))
    for folder in candidates:
        if os.access(os.path.join(folder, "initdb"), os.X_OK) and os.access(
            os.path.join(folder, "pg_ctl"), os.X_OK
        ):
            return folder
    return None


@dataclass
class PgServer:
    """A reachable server: its URL and, when we started it, how to stop it."""

    url: str
    bindir: str | None = None
    folder: str | None = None
    _names: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def owned(self) -> bool:
        """Whether this session started the server (and may restart it)."""
        return self.folder is not None

    def fresh_schema(self) -> str:
        """A schema name no other test of this session uses."""
        return f"t{os.getpid()}_{next(self._names)}"

    def drop_schema(self, name: str) -> None:
        """Remove a test's schema (and everything in it)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')

    def _pg_ctl(self, *args: str) -> None:
        assert self.bindir is not None
        assert self.folder is not None
        _run_as_postgres(
            [os.path.join(self.bindir, "pg_ctl"), "-D", self._data, *args],
            self.folder,
        )

    @property
    def _data(self) -> str:
        assert self.folder is not None
        return os.path.join(self.folder, "data")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server we started (``mode``: fast or immediate)."""
        self._pg_ctl("-w", "-t", str(_TIMEOUT), "-m", mode, "stop")

    def start(self) -> None:
        """Start the server we started before (after :meth:`stop`)."""
        assert self.folder is not None
        # No TCP, a private socket folder. A throwaway server need not
        # survive a power cut: no fsync (every test's schema DDL and each
        # commit skip the disk flush; client crash tests are unaffected).
        options = (
            f"-c listen_addresses='' -k {self.folder} -p {_PORT} "
            "-c fsync=off -c full_page_writes=off"
        )
        log = os.path.join(self.folder, "server.log")
        self._pg_ctl("-w", "-t", str(_TIMEOUT), "-l", log, "-o", options, "start")

    def remove(self) -> None:
        """Stop the server we started and delete its folder."""
        if self.folder is None:
            return
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


def _postgres_ids() -> tuple[int, int] | None:
    """The (uid, gid) to run the server as: ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam("postgres")
    except KeyError as e:
        msg = "running as root and there is no 'postgres' user to run the server as"
        raise PgUnavailableError(msg) from e
    return entry.pw_uid, entry.pw_gid


def _run_as_postgres(command: list[str], cwd: str) -> None:
    ids = _postgres_ids()
    extra: dict[str, Any] = {}
    if ids is not None:
        extra = {"user": ids[0], "group": ids[1], "extra_groups": []}
    done = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
        **extra,
    )
    if done.returncode != 0:
        msg = f"{os.path.basename(command[0])} failed: {done.stderr or done.stdout}"
        raise PgUnavailableError(msg)


def start_server() -> PgServer:
    """The server to test against: ``SWARMLOG_TEST_PG_URL`` when set, else
    a new throwaway server.

    Raises:
        PgUnavailableError: psycopg is missing, or no server binaries, or
            the server did not start.
    """
    try:
        import psycopg  # noqa: F401 - only checking it is installed
    except ImportError as e:
        msg = "psycopg is not installed (pip install 'swarmlog[postgres]')"
        raise PgUnavailableError(msg) from e
    url = os.environ.get(ENV_URL)
    if url:
        return PgServer(url)
    bindir = find_bindir()
    if bindir is None:
        msg = "no PostgreSQL server binaries (initdb, pg_ctl) found"
        raise PgUnavailableError(msg)
    folder = tempfile.mkdtemp(prefix="swarmlog-pg-")  # short: a socket lives here
    ids = _postgres_ids()
    if ids is not None:
        os.chown(folder, *ids)
    server = PgServer(
        f"postgresql://postgres@/postgres?host={folder}&port={_PORT}",
        bindir,
        folder,
    )
    try:
        _run_as_postgres(
            [
                os.path.join(bindir, "initdb"),
                "-D",
                server._data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            folder,
        )
        server.start()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return server
