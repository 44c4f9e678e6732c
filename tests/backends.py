"""Where a test's store lives, on each backend: ``:memory:``, a file, or a
fresh schema on the session's throwaway PostgreSQL server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

__all__ = ["BACKENDS", "location"]

BACKENDS = ("memory", "file", "postgres")
"""The store configurations a backend-neutral fixture is parametrised over."""


def location(
    request: pytest.FixtureRequest, kind: str, folder: Path, name: str
) -> tuple[str, dict[str, Any]]:
    """``(path or URL, options)`` of a store of ``kind`` (one of
    :data:`BACKENDS`); a file is ``folder / name``."""
    if kind == "postgres":
        url = request.getfixturevalue("pg_server").url
        return url, {"pg_schema": request.getfixturevalue("pg_schema")}
    if kind == "memory":
        return ":memory:", {}
    return str(folder / name), {}
