"""Hostile-input harness: every public entry point against broken and malicious inputs.

Run from the repository root::

    python -m stress.hostile --cases 2000 [--seed S] [--json PATH]
    python -m stress.hostile --seed S --only N [--keep] [--minimize]   # replay one case
    python -m stress.hostile --cases 2000 --code /path/to/other/checkout

Inputs (seeded: case ``N`` of seed ``S`` is rebuilt exactly by ``--only N``):

* mutations of real ``.index`` files and data shards TensorFlow wrote (`_inputs_index`):
  bit flips, truncation, footer and block-handle edits, and CRC-valid tables written by the
  harness's own table writer (`_wire`): offsets and sizes near 2^63, unknown dtypes,
  negative or huge dims, ``num_shards = 2^20``, one data block with thousands of handles to
  it, values that are not ``BundleEntryProto``s, object graphs that are not
  ``TrackableObjectGraph``s or reference nodes out of range, bit rot in string lengths;
* state files (`_inputs_state`): empty, binary, huge, non-UTF-8, steps of thousands of
  digits, paths outside the directory, NUL, long lines, repeated fields, ``1e999``/``nan``;
* file-system oddities (`_inputs_fs`): symlinks in and out of the directory where safeckpt
  deletes, moves or writes, FIFOs, sockets, devices, link loops, non-UTF-8 and newline names,
  unreadable files and untraversable directories (as ``nobody`` when run as root).

Entry points (`_entries`): ``diagnose``, ``verify`` (quick, deep), ``list_checkpoints``, the
manager's construction, ``latest_checkpoint``, ``restore()`` (read-only, quick, deep),
``save()`` with ``cleanup_temp=True`` and with ``quarantine=True``, and every CLI command
(``doctor``, ``ls``, ``verify``, ``inspect``, ``diff``, ``repair``, with ``--deep``,
``--json``, ``--dry-run``), in-process through ``safeckpt._cli.main.main`` and, for a sample, as a
real ``python -m safeckpt`` process.

The oracle (`_oracle`) is independent of safeckpt's code: documented exception types only,
CLI exit codes 0/1/2 and no traceback, strict JSON, per-call time, CPU, memory and output
bounds, a canary tree above and beside the directory hashed before and after every call
(nothing outside may change; nothing inside for read-only entry points), and a few facts
recorded when the input was built (a FIFO is not a healthy checkpoint).

The runner (`_run`) keeps TensorFlow imported in long-lived worker processes
(`_worker`), with a watchdog that kills and replaces a worker that hangs, dies or runs away
with memory; the exit status is 1 when any case violates the oracle.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Nothing here imports TensorFlow or safeckpt: the parent process judges, the worker calls.
from stress.hostile._case import Case, Layout, Op, build_case
from stress.hostile._cli import DEFAULT_SEED, main, make_cases, minimize, run
from stress.hostile._entries import DRAWN, ENTRIES, EntryPoint
from stress.hostile._generate import (
    FAMILIES,
    all_kinds,
    control_case,
    damaged_target_case,
    generate,
)
from stress.hostile._inputs_index import Pristine
from stress.hostile._oracle import Bounds, json_error, judge, snapshot
from stress.hostile._run import CaseResult, Runner, runner
from stress.hostile._summary import Summary

__all__ = [
    "DEFAULT_SEED",
    "DRAWN",
    "ENTRIES",
    "FAMILIES",
    "Bounds",
    "Case",
    "CaseResult",
    "EntryPoint",
    "Layout",
    "Op",
    "Pristine",
    "Runner",
    "Summary",
    "all_kinds",
    "build_case",
    "control_case",
    "damaged_target_case",
    "generate",
    "json_error",
    "judge",
    "main",
    "make_cases",
    "minimize",
    "run",
    "runner",
    "snapshot",
]
