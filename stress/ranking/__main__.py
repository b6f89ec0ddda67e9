"""``python -m stress.ranking``: see `stress.ranking`."""

import sys

from stress.ranking._cli import main

if __name__ == "__main__":
    sys.exit(main())
