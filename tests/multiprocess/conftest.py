"""Fixtures of the multi-process suite: a store file and workers that are
always reaped."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .support import Worker

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A store file path (not created yet)."""
    return str(tmp_path / "shared.db")


@pytest.fixture
def workers(db: str) -> Iterator[Callable[..., Worker]]:
    """Start workers on ``db``; every one is stopped at the end."""
    started: list[Worker] = []

    def start(options: dict[str, Any] | None = None, path: str | None = None) -> Worker:
        worker = Worker(path or db, options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()
