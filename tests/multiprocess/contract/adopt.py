"""Runs modules of the store contract suite (``tests/store``) on stores
opened with ``multi_process=True``.

Each ``test_*.py`` here adopts one contract module: its tests and its own
fixtures are copied into the adopting module, whose fixtures (``store``,
``make_store``, ``store_path``, from this folder's conftest) open every
store with ``multi_process=True`` on a file. The contract modules stay
where they are; nothing is copied by hand.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]  # pytest's rootdir
STORE_TESTS = ROOT / "tests" / "store"


def adopt(namespace: dict[str, Any], name: str) -> None:
    """Copy the public names (tests, fixtures, helpers) of
    ``tests/store/<name>.py`` into ``namespace``.

    The module is the one pytest imports for ``tests/store`` itself (the
    name its importlib mode gives it): loaded once, its event types are
    registered once, whichever folder is collected first.
    """
    path = STORE_TESTS / f"{name}.py"
    module_name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # msgspec resolves annotations there
        spec.loader.exec_module(module)
    for key, value in vars(module).items():
        if not key.startswith("__"):
            namespace.setdefault(key, value)
