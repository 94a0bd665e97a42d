"""``python -m toolpath.cli``: the same as the ``toolpath`` command."""

import sys

from toolpath.cli.app import main

sys.exit(main())
