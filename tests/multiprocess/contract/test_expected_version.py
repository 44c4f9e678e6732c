"""The store contract suite's ``tests/store/test_expected_version.py`` on a
``multi_process`` store."""

from .adopt import adopt

adopt(globals(), "test_expected_version")
