"""``python -m bayesmle.cli``: the ``bayesmle`` command."""

import sys

from bayesmle.cli import main

if __name__ == "__main__":
    sys.exit(main())
