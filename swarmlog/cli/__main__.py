"""``python -m swarmlog.cli``: the same command line as ``swarmlog``."""

import sys

from swarmlog.cli.entry import main

sys.exit(main())
