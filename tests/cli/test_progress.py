"""The progress line: on a terminal only, never with --quiet, never in --json (issue 24).

The command runs in a child process whose stderr is a pseudo-terminal (`os.openpty`) or a
pipe; its stdout is always a pipe. What reaches the terminal is read back from the master
side.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from testing.checkpoints import write_checkpoints


def _run(args: list[str], *, tty: bool) -> tuple[int, str, str]:
    """``python -m safeckpt ARGS``: exit code, stdout, and what it wrote to stderr."""
    command = [sys.executable, "-m", "safeckpt", *args]
    if not tty:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
        return proc.returncode, proc.stdout, proc.stderr
    master, slave = os.openpty()
    try:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=slave, text=True)
        os.close(slave)
        seen = bytearray()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed its end
                    break
                if not chunk:
                    break
                seen += chunk
            elif child.poll() is not None:
                break
        out, _ = child.communicate(timeout=60)
        return child.returncode, out, seen.decode("utf-8", "replace")
    finally:
        os.close(master)


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("progress")
    write_checkpoints(root, 4)
    big = tf.Variable(np.ones((512, 512), dtype=np.float32))  # 1 MB: several chunks
    tf.train.Checkpoint(big=big).write(str(root / "big" / "ckpt"))
    return root


def test_deep_verification_shows_bytes_throughput_and_time_left(directory: Path) -> None:
    code, out, err = _run(["verify", str(directory / "big" / "ckpt"), "--deep"], tty=True)
    assert code == 0, out + err
    assert out.startswith("OK ")
    line = re.search(r"ckpt: +\d+\.\d% of [\d.]+ [KM]?B(, [\d.]+ [KMG]?B/s, \d+ s left)?", err)
    assert line is not None, repr(err)
    assert "\r" in err  # rewritten in place, and cleared at the end
    assert err.endswith("\r")  # the line is cleared at the end


def test_commands_over_many_checkpoints_show_k_of_n(directory: Path) -> None:
    code, out, err = _run(["verify", str(directory)], tty=True)
    assert code == 0, out + err
    assert re.search(r"verified: 1 of 4", err), repr(err)
    code, out, err = _run(["ls", str(directory)], tty=True)
    assert code == 0
    assert re.search(r"checked: [1-4] of 4", err), repr(err)
    code, out, err = _run(["verify", str(directory), "--deep"], tty=True)
    assert re.search(r"1 of 4: ckpt-1: +\d", err), repr(err)


@pytest.mark.parametrize(
    "args",
    [["verify", "{big}", "--deep"], ["verify", "{dir}"], ["ls", "{dir}"], ["doctor", "{dir}"]],
)
def test_nothing_in_a_pipe_or_with_quiet_and_json_is_unchanged(
    directory: Path, args: list[str]
) -> None:
    args = [a.format(big=directory / "big" / "ckpt", dir=directory) for a in args]
    code, piped, err = _run(args, tty=False)
    assert err == ""
    code_q, quiet_out, quiet_err = _run([*args, "--quiet"], tty=True)
    assert quiet_err == ""
    assert (code_q, quiet_out) == (code, piped)
    _, json_pipe, _ = _run([*args, "--json"], tty=False)
    _, json_tty, _ = _run([*args, "--json"], tty=True)
    assert json_tty == json_pipe and json_pipe.lstrip().startswith(("{", "["))
