"""``python -m safeckpt``."""

from safeckpt._cli import console_main

console_main()
