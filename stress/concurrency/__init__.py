"""Many processes, one directory: the multi-process harness.

Run from the repository root::

    python -m stress.concurrency [--seconds S] [--rounds R] [--only SCENARIO] [--json PATH]

Every worker is a separate OS process (`stress.concurrency._procs`); the scenarios are in
`stress.concurrency._scenarios`, the workers' bodies in `stress.concurrency._workers`, the
oracle in `stress.concurrency._oracle` (facts recorded at write time, never safeckpt's own
code). Each scenario runs safeckpt and plain TensorFlow side by side and prints its figures;
the exit status is 1 when the oracle found a violation.
"""
