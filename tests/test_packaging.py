"""Packaging: the fixed top level installs as swarmlog.* and nothing else."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE_PACKAGES = {
    "swarmlog": ROOT / "swarmlog",
    "swarmlog.actors": ROOT / "actors",
    "swarmlog.schema": ROOT / "schema",
}


def _source_modules() -> set[str]:
    """Every module under the three source folders, by installed name."""
    names = set()
    for package, folder in SOURCE_PACKAGES.items():
        for path in folder.rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            relative = path.relative_to(folder).with_suffix("")
            parts = [p for p in relative.parts if p != "__init__"]
            names.add(".".join([package, *parts]))
    return names


def test_bare_top_level_modules_are_not_importable() -> None:
    """Installing swarmlog never makes bare `actors` or `schema` importable."""
    for bare in ("actors", "schema"):
        code = (
            "import importlib.util, sys; "
            f"sys.exit(importlib.util.find_spec({bare!r}) is not None)"
        )
        result = subprocess.run(
            [sys.executable, "-P", "-c", code], cwd="/", check=False
        )
        assert result.returncode == 0, f"bare {bare!r} is importable"


RUNS_ON_IMPORT = {"swarmlog.cli.__main__"}
"""Modules that run the program when imported (tested in tests/cli)."""


def _listed_packages() -> set[str]:
    """The ``[tool.setuptools] packages`` list of pyproject.toml."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        config = tomllib.load(f)
    return set(config["tool"]["setuptools"]["packages"])


def _package_folders() -> set[str]:
    """Every folder with an ``__init__.py``, by installed package name."""
    names = set()
    for package, folder in SOURCE_PACKAGES.items():
        for init in folder.rglob("__init__.py"):
            relative = init.parent.relative_to(folder)
            names.add(".".join([package, *relative.parts]))
    return names


def test_every_package_folder_is_listed() -> None:
    """pyproject's explicit packages list names every package folder (the
    simulation and command-line subpackages included), so none is left out
    of the wheel."""
    assert _listed_packages() == _package_folders()
    assert {
        "swarmlog.simulation",
        "swarmlog.cli",
        "swarmlog.cli.commands",
    } <= _listed_packages()


def test_every_source_module_imports_by_installed_name() -> None:
    """Each module in actors/, schema/ and swarmlog/ imports as swarmlog.*."""
    for name in sorted(_source_modules() - RUNS_ON_IMPORT):
        assert importlib.import_module(name) is not None


@pytest.mark.slow
def test_wheel_contains_every_module_and_imports_from_it(tmp_path: Path) -> None:
    """A wheel built from the checkout holds every module and imports alone.

    Built from a copy without ``build/``: an in-tree build reuses a stale
    ``build/lib`` and would ship modules that were moved or deleted since.
    """
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            "build", "dist", ".venv", ".git", "*.egg-info", "__pycache__", ".*cache"
        ),
    )
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PIP_NO_INPUT": "1"},
    )
    if build.returncode != 0 and "No module named" in build.stderr:
        pytest.skip(f"cannot build here: {build.stderr.strip()[-200:]}")
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("swarmlog-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "site")
    modules = {
        n[: -len(".py")].replace("/", ".").removesuffix(".__init__")
        for n in names
        if n.endswith(".py")
    }
    assert modules == _source_modules()
    assert "swarmlog/py.typed" in names
    assert not any(n.startswith(("actors/", "schema/")) for n in names)
    imports = "; ".join(f"import {m}" for m in sorted(modules - RUNS_ON_IMPORT))
    check = (
        f"{imports}; import swarmlog, importlib.util as u; "
        "assert swarmlog.__file__.startswith(" + repr(str(tmp_path / "site")) + "); "
        "assert u.find_spec('actors') is None and u.find_spec('schema') is None"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    result = subprocess.run(
        [
            sys.executable,
            "-P",
            "-c",
            f"import sys; sys.path.insert(0, {str(tmp_path / 'site')!r}); {check}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
