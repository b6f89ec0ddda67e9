"""A small tmpfs mounted for one test (as root), for storage that fills up or will not last.

Tests that need a real file system of a given size or type mount one under their `tmp_path`
and unmount it afterwards; where mounting is not allowed (not root, a container without
``CAP_SYS_ADMIN``) the test is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(where: Path, size: int | str) -> Iterator[Path]:
    """Mount a tmpfs of `size` (bytes, or mount's ``4m`` spelling) at `where` (created).

    Skips the calling test when it cannot be mounted; unmounts (lazily) on exit.
    """
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (mount -t tmpfs)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not allowed here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
