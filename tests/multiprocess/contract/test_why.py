"""The store contract suite's ``tests/store/test_why.py`` on a
``multi_process`` store."""

from .adopt import adopt

adopt(globals(), "test_why")
