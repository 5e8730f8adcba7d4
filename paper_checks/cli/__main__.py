"""``python -m paper_checks.cli``: the ``bnwd`` command."""

import sys

from bnwd.paper_checks.cli import main

sys.exit(main())
