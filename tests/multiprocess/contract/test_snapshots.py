"""The store contract suite's ``tests/store/test_snapshots.py`` on a
``multi_process`` store."""

from .adopt import adopt

adopt(globals(), "test_snapshots")
