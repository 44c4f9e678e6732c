"""The store contract suite's ``tests/store/test_stats.py`` on a
``multi_process`` store."""

from .adopt import adopt

adopt(globals(), "test_stats")
