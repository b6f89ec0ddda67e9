"""Crash-consistency harness: SIGKILL a training process while it saves, then resume.

A child process (`stress.crash._child`) trains a model of ``size_mb`` MiB and saves
checkpoints with `safeckpt.SafeCheckpointManager` (``max_to_keep=3``); checkpoint ``k``
holds every variable filled with ``k`` plus a random tag naming the save that wrote it. The
harness kills the child with SIGKILL

* at deterministic points of a save, injected at the exact system call with ``strace
  -e inject=<syscall>:signal=SIGKILL`` (inside TensorFlow's C++ save) or by the child itself
  just before the call (the Python-level state-file writes and the sweep), and
* at random moments of a save (a random delay after the child announced it).

Then an oracle that does not use safeckpt decides which checkpoints are complete: every
tensor of every ``ckpt-N`` is read back with TensorFlow's ``CheckpointReader`` (which checks
each tensor's CRC32C) and must hold ``N``; the child's side log says which saves returned.
A fresh process resumes with ``SafeCheckpointManager(..., max_to_keep=3,
cleanup_temp=True/False alternately).restore()``, saves once more, and the harness checks:

* it resumed from the newest complete checkpoint (the restored values and tag prove which),
  also when the state file does not list that checkpoint yet; it never started fresh while
  a complete checkpoint existed;
* nothing complete was lost or overwritten by the resumed run: the restored checkpoint,
  anything newer and the ``max_to_keep - 1`` newest complete checkpoints keep byte-identical
  files; older ones may only disappear (TensorFlow's documented ``max_to_keep`` rotation),
  never change;
* metadata files never outlive their checkpoints, name their checkpoint and are never
  older than its index (`metadata_findings`), and the resumed save has one;
* with ``cleanup_temp=True`` nothing but complete checkpoints (with their metadata files),
  the state file and the writer lease remains after that save (each leftover is reported
  once, by the first such save it survives).

The resumed process then becomes the training process of the next kill, so each directory
(a *chain*, restarted empty every few kills) accumulates what real crashes leave behind.
Processes are forked from a multiprocessing forkserver that has imported TensorFlow and
safeckpt and nothing else (no model, no checkpoint, no TensorFlow runtime), so a "fresh
process" starts in milliseconds instead of seconds; strace attaches to it by pid.

Run ``python -m stress.crash --kills 200 [--size-mb 200] [--seed N] [--json PATH]``; the
exit status is 1 when a check failed (a *violation*), 2 when the harness itself could not
do what it meant to (an injection that did not fire, a timeout), else 0.

Modules, one job each: `_child` (the training process), `_inject` (the kill points and their
strace injection), `_schedule` (which point each kill aims at), `_process` (starting and
driving children), `_oracle` (which checkpoints are complete, by TensorFlow's reader alone),
`_run` (the kills and the checks of each resume), `_summary` (`Trial`, `Summary`), `_cli`
(the command line; ``__main__``).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before any module imports TensorFlow

from stress.crash._child import MAX_TO_KEEP, N_VARS, child_main
from stress.crash._cli import main
from stress.crash._inject import (
    POINTS,
    RANDOM,
    STRACE_POINTS,
    point_needs_strace,
    strace_available,
    traced_by,
)
from stress.crash._oracle import Facts, Oracle
from stress.crash._process import Child, ChildEndedError
from stress.crash._run import run
from stress.crash._schedule import cleanup_flags, schedule
from stress.crash._summary import OUTCOMES, Summary, Trial

__all__ = [
    "MAX_TO_KEEP",
    "N_VARS",
    "OUTCOMES",
    "POINTS",
    "RANDOM",
    "STRACE_POINTS",
    "Child",
    "ChildEndedError",
    "Facts",
    "Oracle",
    "Summary",
    "Trial",
    "child_main",
    "cleanup_flags",
    "main",
    "point_needs_strace",
    "run",
    "schedule",
    "strace_available",
    "traced_by",
]
