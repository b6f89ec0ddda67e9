"""Many processes, one directory: the multi-process harness (`stress.concurrency`), small.

``make stress`` runs every scenario at full size (``python -m stress.concurrency``); here each
runs for a few seconds. Every worker is a separate OS process; the oracle decides from facts
recorded at write time (each save's values encode its step; sha256 of every file) and never
calls safeckpt. Plain TensorFlow runs the same scenario in the same test, for comparison.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stress import crash
from stress.concurrency import _scenarios

pytestmark = pytest.mark.slow

needs_strace = pytest.mark.skipif(
    not crash.strace_available(), reason="strace is not installed or may not trace"
)


def test_workers_starting_together_on_fresh_nested_paths(tmp_path: Path) -> None:
    # 8 processes released together by a barrier, each round on a path nobody created yet.
    figures = _scenarios.construction(str(tmp_path), rounds=60)
    assert figures.ok, figures.table()
    assert figures.counts["safeckpt"]["constructions and saves"] == 8 * 60
    assert figures.counts["tf"]["constructions and saves"] == 8 * 60


@needs_strace
def test_a_directory_created_meanwhile_is_never_a_file(tmp_path: Path) -> None:
    # Every system call on the path is slowed down (strace), so two questions about it see
    # two moments; another process keeps creating and removing it. Before the fix, asking
    # "is it a directory?" then "does it exist?" called it a file dozens of times a second.
    figures = _scenarios.slow_directory(str(tmp_path), seconds=1.5)
    assert figures.ok, figures.table()
    counts = figures.counts["safeckpt"]
    assert counts["directory flips"] > 20
    assert counts["construction: directory_missing"] > 0  # the oracle saw both states
