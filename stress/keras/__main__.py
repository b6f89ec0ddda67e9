"""``python -m stress.keras``: see `stress.keras`."""

import sys

from stress.keras._cli import main

if __name__ == "__main__":
    sys.exit(main())
