"""Seeded fuzz harness for how `SafeCheckpointManager` ranks checkpoints ("newest usable").

Run from the repository root::

    python -m stress.ranking --cases 2000 [--seed S] [--workdir DIR] [--json OUT]
    python -m stress.ranking --replay repro.json      # one scenario (or a list) from JSON
    python -m stress.ranking --cases 200 --baseline   # plain tf.train.CheckpointManager

Each case draws one scenario family (`stress.ranking._scenarios.FAMILIES`) and one
configuration (``max_to_keep`` in None/1/2/3, ``verify`` quick/deep) from
``random.Random(f"{seed}:{case}")``, writes the checkpoints with plain TensorFlow in its own
temporary directory (removed afterwards), records every file's sha256 and every checkpoint's
value, then constructs a `SafeCheckpointManager`, calls ``restore()``, saves once more and
reopens the directory. The oracle (`stress.ranking._oracle`) computes the documented rule from
the recorded facts and the directory listing alone; it never calls safeckpt's own ranking or
verification. The exit status is 1 on any violation (0 with ``--baseline``). For each
violation kind the smallest scenario is shrunk (ops removed while the violation persists) and
printed as JSON for ``--replay``.

Modules, one job each: `_case` (the configurations and a seeded case's scenario),
`_scenarios` (generating a scenario's ops, by family), `_build` (running the ops: checkpoints
written with plain TensorFlow, hand-edited state files, moves and damage), `_oracle` (the
documented rule as its own function, and the checks), `_run` (one scenario against the
manager under test, and many), `_shrink` (minimizing a violation), `_summary` (`Summary`),
`_cli` (the command line; ``__main__``).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before any module imports TensorFlow

from stress.ranking._case import BASELINE, CONFIGS, Config, Scenario, make_scenario
from stress.ranking._cli import main
from stress.ranking._run import drive, execute, replay, run
from stress.ranking._shrink import minimize
from stress.ranking._summary import Summary

__all__ = [
    "BASELINE",
    "CONFIGS",
    "Config",
    "Scenario",
    "Summary",
    "drive",
    "execute",
    "main",
    "make_scenario",
    "minimize",
    "replay",
    "run",
]
