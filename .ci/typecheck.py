"""Run mypy --strict on the package under its installed names.

In the checkout, actors/ and schema/ are not yet swarmlog/actors and
swarmlog/schema, and mypy runs no import hooks: so type-check a temporary
tree of symlinks (swarmlog/{__init__.py, ..., actors, schema}).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="swarmlog-types-") as tmp:
        package = Path(tmp) / "swarmlog"
        package.mkdir()
        for entry in (ROOT / "swarmlog").iterdir():
            if entry.name != "__pycache__":
                (package / entry.name).symlink_to(entry)
        (package / "actors").symlink_to(ROOT / "actors")
        (package / "schema").symlink_to(ROOT / "schema")
        command = [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "-p",
            "swarmlog",
        ]
        return subprocess.call(command, cwd=tmp)


if __name__ == "__main__":
    sys.exit(main())
