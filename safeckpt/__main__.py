"""``python -m safeckpt``."""

from safeckpt._cli.main import console_main

console_main()
