"""``python -m stress.concurrency``: see `stress.concurrency`."""

import sys

from stress.concurrency._cli import main

if __name__ == "__main__":
    sys.exit(main())
