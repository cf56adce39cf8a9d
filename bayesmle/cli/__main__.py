"""``python -m bayesmle.cli``: the ``bayesmle`` command."""

import sys

from bayesmle.cli import main

sys.exit(main())
