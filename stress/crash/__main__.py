"""``python -m stress.crash``: see `stress.crash`."""

import sys

from stress.crash._cli import main

if __name__ == "__main__":
    sys.exit(main())
