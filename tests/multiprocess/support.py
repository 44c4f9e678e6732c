"""Driving worker processes (``worker.py``) from a multi-process test."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec

WORKER = Path(__file__).with_name("worker.py")
TIMEOUT = 60.0
"""Seconds a wait may take before the test is declared hung (never a delay)."""


class Worker:
    """A writing process on the store, driven one JSON command at a time.

    Args:
        path: The store file.
        options: More ``EventStore`` options (JSON-able).
        mode: ``"fork"`` runs the fork scenario instead of serving.
    """

    def __init__(
        self, path: str, options: dict[str, Any] | None = None, mode: str | None = None
    ) -> None:
        extra = (
            mode if mode is not None else msgspec.json.encode(options or {}).decode()
        )
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), path, extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.opened = self.read() if mode is None else {}

    def read(self) -> dict[str, Any]:
        """The next JSON line (fails with the worker's stderr if it died)."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(TIMEOUT)
            assert self.proc.stderr is not None
            raise AssertionError(f"worker died: {self.proc.stderr.read()}")
        record: dict[str, Any] = msgspec.json.decode(line)
        return record

    def send(self, **command: Any) -> None:
        """Send one command (its answer is read with :meth:`read`)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(msgspec.json.encode(command).decode() + "\n")
        self.proc.stdin.flush()

    def ask(self, **command: Any) -> dict[str, Any]:
        """Send one command and read its one-line answer."""
        self.send(**command)
        return self.read()

    def load_results(self) -> tuple[list[list[Any]], dict[str, Any]]:
        """After a ``load`` command: every ack, then the final counts."""
        acks: list[list[Any]] = []
        while True:
            record = self.read()
            if "ack" in record:
                acks.append(record["ack"])
            else:
                return acks, record

    def close(self) -> None:
        """Ask for a clean exit, then wait (bounded)."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, AssertionError):
                self.ask(op="exit")
        self.stop()

    def kill(self) -> None:
        """``kill -9``: no shutdown, no exit hook."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(TIMEOUT)

    def stop(self) -> None:
        """Close the pipes and reap the process (killed if it lingers)."""
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(TIMEOUT)
