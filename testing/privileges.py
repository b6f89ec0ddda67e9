"""Running harness code as the unprivileged user ``nobody`` (root bypasses file modes).

One implementation for the fuzzer's unprivileged pass (``python -m stress.fuzz``), the
hostile-input workers and the tests' `run_unprivileged`. A child started with `python_child`
gets the checkout on ``PYTHONPATH``; it imports everything it will need and only then calls
`drop_privileges`, because the interpreter and the checkout may live where ``nobody`` cannot
read (a clone in a mode-0700 folder). Standard library only (`run_unprivileged`, for tests,
imports pytest when called), so that a harness child imports it before dropping privileges.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:
    import pwd
except ImportError:  # pragma: no cover - not on POSIX
    pwd = None  # type: ignore[assignment]

#: The repository root (the folder holding ``testing/``), put on the child's ``PYTHONPATH``.
REPO = str(Path(__file__).resolve().parents[1])

#: What a ``python -c`` child runs before its code: import, then drop to ``nobody``.
PRELUDE = """
import os, sys
import tensorflow as tf
import safeckpt, safeckpt._cli.main  # import everything before dropping privileges
_ = [getattr(safeckpt, name) for name in safeckpt.__all__]  # its names are imported lazily
import json, logging, shutil, pathlib
{preimport}
from testing.privileges import drop_privileges
drop_privileges()
assert os.geteuid() != 0
"""


def is_root() -> bool:
    """Whether this process runs as root now (asked each time: privileges can be dropped)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def nobody_exists() -> bool:
    """Whether there is a user ``nobody`` to drop privileges to."""
    if pwd is None:
        return False
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        return False
    return True


def drop_privileges() -> None:
    """As root, become ``nobody`` for good (groups, then gid, then uid); else do nothing."""
    if not is_root():
        return
    user = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)


def user_name() -> str:
    """Who this process runs as, e.g. ``nobody (uid 65534)``."""
    if not hasattr(os, "geteuid"):
        return "?"
    try:
        return f"{pwd.getpwuid(os.geteuid()).pw_name} (uid {os.geteuid()})"
    except (AttributeError, KeyError):
        return f"uid {os.geteuid()}"


def unprivileged_code(code: str, preimport: str = "") -> str:
    """Python source for ``python -c``: `PRELUDE` (with `preimport` statements), then `code`."""
    return PRELUDE.replace("{preimport}", preimport) + code


def python_child(
    args: Sequence[str], *, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[Any]:
    """Run this interpreter with `args`, the checkout on ``PYTHONPATH`` (never raises on exit).

    The child drops its own privileges (`PRELUDE`, or ``stress.fuzz``'s hidden child flag);
    `env` adds variables, `kwargs` go to `subprocess.run`.
    """
    full_env = {**os.environ, "PYTHONPATH": REPO, **(env or {})}
    return subprocess.run([sys.executable, *args], env=full_env, check=False, **kwargs)


def run_unprivileged(code: str, timeout: float = 120, preimport: str = "") -> str:
    """Run Python `code` without root privileges; return its stdout.

    As root, the child imports TensorFlow, safeckpt and `preimport` (Python statements, e.g.
    ``"from stress import fuzz"``) first, and then drops to ``nobody`` before running `code`:
    the interpreter and the checkout may live where ``nobody`` cannot read (a clone in a
    mode-0700 folder). The code should print its results. A non-zero exit fails the calling
    test with the child's stderr.
    """
    import pytest  # only tests call this; the rest of the module is standard library only

    proc = python_child(
        ["-c", unprivileged_code(code, preimport)],
        env={"TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/tmp",
    )
    if proc.returncode != 0:
        pytest.fail(f"unprivileged child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout
