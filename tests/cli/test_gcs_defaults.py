"""The command line sets TensorFlow's gs:// read block size before importing it (issue 24)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_SHOW = (
    "import os, sys\n"
    "from safeckpt._cli.main import console_main\n"
    "sys.argv = ['safeckpt', 'ls', sys.argv[1]]\n"
    "try:\n"
    "    console_main()\n"
    "except SystemExit:\n"
    "    pass\n"
    "print(os.environ.get('GCS_READ_CACHE_BLOCK_SIZE_MB'), 'tensorflow' in sys.modules)\n"
)


@pytest.mark.parametrize(("user", "seen"), [(None, "1"), ("16", "16"), ("0", "0")])
def test_the_block_size_is_set_unless_the_user_set_it(
    tmp_path: Path, user: str | None, seen: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GCS_READ_CACHE_BLOCK_SIZE_MB"}
    if user is not None:
        env["GCS_READ_CACHE_BLOCK_SIZE_MB"] = user
    proc = subprocess.run(
        [sys.executable, "-c", _SHOW, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-2:] == [seen, "False"]  # set before any TensorFlow import


def test_help_says_so() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "safeckpt", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0
    assert "GCS_READ_CACHE_BLOCK_SIZE_MB=1" in proc.stdout
    assert "unless it is set already" in proc.stdout
