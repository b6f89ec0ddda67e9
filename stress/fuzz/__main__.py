"""``python -m stress.fuzz``: see `stress.fuzz`."""

import sys

from stress.fuzz._cli import main

if __name__ == "__main__":
    sys.exit(main())
