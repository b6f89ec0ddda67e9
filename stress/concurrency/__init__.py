"""Many processes, one directory: the multi-process harness.

Run from the repository root::

    python -m stress.concurrency [--seconds S] [--rounds R] [--only SCENARIO] [--json PATH]

Scenarios (`stress.concurrency._scenarios`): ``construction`` (8 processes released together
build managers on fresh nested paths), ``slow_directory`` (a directory another process keeps
creating and removing, every system call on it slowed by strace), ``evaluator`` (a trainer
saves with ``max_to_keep=2`` while one evaluator restores in a loop and another polls
``latest_checkpoint``), ``busy_doctor`` (``safeckpt doctor`` in a loop on a directory being
saved into), ``two_writers`` (a second job on a directory another one is saving into, and
the same after the first one was killed).

Every worker is a separate OS process (`stress.concurrency._procs`); the scenarios are in
`stress.concurrency._scenarios`, the workers' bodies in `stress.concurrency._workers`, the
oracle in `stress.concurrency._oracle` (facts recorded at write time, never safeckpt's own
code). Each scenario runs safeckpt and plain TensorFlow side by side and prints its figures;
the exit status is 1 when the oracle found a violation.
"""
