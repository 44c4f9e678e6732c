"""PostgreSQL connection URLs and schema names, without importing the driver.

Runs on the caller's thread (``EventStoreConfig`` validation, the wiring).
A store's path is a libpq URI (``postgresql://`` or ``postgres://``); it
may carry a password, so whatever swarmlog shows of it (``repr``, logs,
exception messages) goes through :func:`redact` first.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Final

from swarmlog.schema.errors import InvalidConfigError

__all__ = [
    "DEFAULT_SCHEMA",
    "check_schema_name",
    "is_postgres_url",
    "redact",
    "redact_text",
]

DEFAULT_SCHEMA: Final = "swarmlog"
"""The PostgreSQL schema holding a store's tables unless ``pg_schema`` says."""

_SCHEMES: Final = ("postgresql://", "postgres://")
# Lower-case identifiers only: they need no quoting rules of their own and
# name the same schema in psql, in the URL options and here. 63 bytes is
# PostgreSQL's NAMEDATALEN - 1; pg_* names are the server's.
_SCHEMA_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PASSWORD_PARAM: Final = re.compile(r"(?i)(password=)[^&\s]*")
_PASSWORD_KEYWORD: Final = re.compile(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")
_URL_IN_TEXT: Final = re.compile(r"postgres(?:ql)?://[^\s'\"]+")


def is_postgres_url(path: str) -> bool:
    """Whether ``path`` names a PostgreSQL database (a libpq URI)."""
    return path[:13].lower().startswith(_SCHEMES)


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (the user name, host,
    port, database and other parameters stay: they help find the server)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return f"{url.partition('://')[0]}://***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{hosts}"
    query = _PASSWORD_PARAM.sub(r"\1***", parts.query)
    return urllib.parse.urlunsplit(
        (parts.scheme, netloc, parts.path, query, parts.fragment)
    )


def redact_text(text: str, url: str | None = None) -> str:
    """``text`` (e.g. a driver's error message) with ``url`` and any other
    connection URL or ``password=`` keyword in it redacted."""
    if url:
        text = text.replace(url, redact(url))
    text = _URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text)
    return _PASSWORD_KEYWORD.sub(r"\1***", text)


def check_schema_name(name: object) -> str:
    """Validate a ``pg_schema`` option.

    Raises:
        InvalidConfigError: Not a lower-case identifier of at most 63
            characters, or one of the server's own (``pg_*``,
            ``information_schema``, ``public`` is allowed).
    """
    if not isinstance(name, str) or not _SCHEMA_NAME.match(name):
        msg = (
            f"pg_schema must be a lower-case identifier ([a-z_][a-z0-9_]*, "
            f"at most 63 characters), got {name!r}"
        )
        raise InvalidConfigError(msg)
    if name.startswith("pg_") or name == "information_schema":
        msg = f"pg_schema {name!r} is reserved by PostgreSQL"
        raise InvalidConfigError(msg)
    return name
