"""``python -m stress.hostile``: see `stress.hostile`."""

import sys

from stress.hostile._cli import main

if __name__ == "__main__":
    sys.exit(main())
