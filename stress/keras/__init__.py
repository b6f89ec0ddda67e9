"""Keras resume harness: interrupt ``fit`` at random batches, resume, compare with a full run.

Each trial draws a configuration users run — the input (NumPy arrays, a ``tf.data``
pipeline, a ``PyDataset``), ``save_freq`` (``"epoch"`` or every 1-5 batches),
``steps_per_execution`` (1 or 2) — and an interruption: ``SIGKILL`` or ``SIGTERM`` (with
``save_before_preemption=True``) sent by the harness once the child has trained a random
number of batches, or an exception raised by a callback at that batch. The training child
(`stress.keras._child`) fits with `ModelCheckpoint(save_best_only=True)`,
`EarlyStopping(patience=2, restore_best_weights=True)` and `ReduceLROnPlateau` under op
determinism and logs, as they happen, the sample ids of every batch it trains and the
learning rate of every epoch. Then a fresh child resumes the same ``fit``.

The oracle (`stress.keras._oracle`) uses neither safeckpt nor its files: an uninterrupted run
of the same configuration, and the backup schedule of the configuration written as its own
rule (`backup_points`). It checks that

* the resumed run trained exactly the uninterrupted run's batches after the backup it
  resumed from, and that backup is the newest one the interrupted run certainly completed
  (for SIGTERM: the batch in progress when the signal came; for SIGKILL: the newest backup
  point, or the one before if the kill came while it may have been written);
* the two runs together saved the same ``ModelCheckpoint`` files, used the same learning rate
  at every epoch and stopped at the same epoch as the uninterrupted run;
* the final weights are the uninterrupted run's (to 1e-6).

Run ``python -m stress.keras --trials 40 [--seed N] [--json PATH]``; the exit status is 1
when a check failed, 2 when the harness itself could not do what it meant to, else 0.

Modules: `_child` (the training process), `_oracle` (the rule and the checks), `_run` (the
trials), `_summary` (`Trial`, `Summary`), `_cli` (the command line; ``__main__``).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from stress.keras._cli import main
from stress.keras._oracle import Config, backup_points, check
from stress.keras._run import run
from stress.keras._summary import Summary, Trial

__all__ = ["Config", "Summary", "Trial", "backup_points", "check", "main", "run"]
