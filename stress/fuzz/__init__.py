"""Seeded corruption fuzzer for `SafeCheckpointManager.restore`.

Run from the repository root::

    python -m stress.fuzz --cases 2000 [--seed N] [--json PATH]
    python -m stress.fuzz --seed N --only 17 [--as-nobody]  # replay one case, verbosely
    python -m stress.fuzz --seed N --only 17 --minimize --json min.json   # shrink it
    python -m stress.fuzz --replay min.json                   # re-run a shrunk case
    python -m stress.fuzz --cases 300 --baseline             # plain tf.train.CheckpointManager

The exit status is 1 when any case violates the oracle (0 with ``--baseline``).

A pristine directory is written once with TensorFlow's own `tf.train.CheckpointManager`:
``ckpt-1`` .. ``ckpt-5`` of a small model (several variables in nested modules, a string
variable, an object graph), checkpoint ``k`` holding values derived from ``k``. Each file gets
a modification time on a timeline (``ckpt-k`` at ``T0 + 60k``, the state file right after the
save it records), as if saves were a minute apart. Every case copies it and applies 1-4
random damages (see `KINDS`; a fifth of the cases damage every checkpoint, plus up to two
more) drawn from a per-case generator (``random.Random(f"{seed}:{case}")``, so any case can
be replayed alone). Then, for each of the four configurations in `CONFIGS` (verify
``deep``/``quick`` x fallback default/``("previous_valid", "fresh_init")``), it creates a
fresh model and a `SafeCheckpointManager`, calls ``restore()``, and creates one more
variable afterwards (``model.late``, restored by TensorFlow's deferred restoration, like
an optimizer slot built at the first step).

Oracle (independent of safeckpt's own logic)
--------------------------------------------
* A checkpoint is *intact* when ``<name>.index`` and ``<name>.data-00000-of-00001`` are
  regular files this process can read, byte-identical (sha256) to the index and data file of
  the **same** original checkpoint ``k``, and ``<name>`` is ``ckpt-<j>``. Its *content* is
  ``k``, its *step* is ``j``. Without renames ``j == k``.
* Renamed prefixes (decision): a checkpoint moved to another name family (``model-4``,
  ``ckpt-4.bak``, ``ckpt_4``, a subdirectory) no longer exists for a manager named
  ``ckpt``. One moved to another step (``ckpt-4`` -> ``ckpt-9``, or over ``ckpt-2``) is an
  intact checkpoint whose age is ambiguous: its name says step ``j``, its bytes say it was
  the ``k``-th save. So *newest intact* is a set: every intact checkpoint that no other
  intact one beats on both counts (higher step **and** later content). Without renames this
  is exactly the highest intact step. A garbled, stale, truncated, dangling or foreign state
  file must not change the answer, with one exception: a readable state file written *after*
  every intact checkpoint whose ``model_checkpoint_path`` names a checkpoint of the
  directory is how users roll back, and TensorFlow resumes from it; restoring that
  checkpoint is accepted too (counted as "restored the older checkpoint a newer state file
  names"). A state file older than the checkpoints (its writes were lost, or a stale copy
  kept its time) never changes the answer.
* Restoring a checkpoint that is not byte-identical is accepted only if the restored values
  are exactly those of the original its index and data came from (e.g. appended bytes after
  the data, a flip in index padding that no checksum covers) and it is not beaten by an
  intact one; such cases are counted as "benign damage accepted".

Checks, for every case and configuration (a failure is a *violation*):
    * only `safeckpt.SafeCheckpointError`s escape, each with a ``.diagnosis``;
    * no fresh start (``Outcome.INITIALIZED``) while an intact checkpoint exists;
    * a raise only when no intact checkpoint exists (or the directory itself was made
      unreadable/unwritable);
    * the restored checkpoint is a newest intact one (see above) and every variable holds
      exactly its values; after a fresh start every variable holds its initial value;
    * ``model.late`` (deferred restoration) gets the restored checkpoint's value, or its
      initial value after a fresh start; creating it raises nothing (with ``verify="deep"``);
    * ``manager.latest_checkpoint`` names the restored checkpoint, the load status passes
      ``assert_existing_objects_matched()``, and the directory is unchanged by the restore.

With ``verify="quick"`` damage inside tensor data reaches TensorFlow; the summary counts how
often TensorFlow's own checksum caught it during ``restore()`` (and what the fallback then
did), and how often it slipped past ``restore()`` entirely and surfaced when ``model.late``
was created (a documented limitation of quick verification, counted, not a violation).

Permission damage needs a non-root user (root bypasses file modes). As root it is skipped and
reported; the CLI then runs ``--unprivileged-cases`` extra cases (default: a tenth) in a child
process that drops to the user ``nobody``.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before any module imports TensorFlow

# Import every module here: a child that drops to `nobody` after `from stress import fuzz`
# may not be able to read the checkout any more (see `testing.privileges`).
from stress.fuzz._case import CaseDir, Damage, Generator, Op
from stress.fuzz._cli import main
from stress.fuzz._damage import (
    EVERY_CHECKPOINT_RATE,
    FILE_KINDS,
    KINDS,
    available_kinds,
    draw_damages,
    make_case,
    replay_case,
)
from stress.fuzz._model import (
    BASELINE,
    CONFIGS,
    DATA,
    INDEX,
    NAME,
    STATE,
    STEPS,
    Config,
    Model,
    Original,
    Pristine,
    build_pristine,
)
from stress.fuzz._oracle import Result, Truth, compute_truth
from stress.fuzz._run import evaluate, run, run_config
from stress.fuzz._shrink import minimize, replay
from stress.fuzz._summary import CaseRecord, Summary
from testing.privileges import is_root

__all__ = [
    "BASELINE",
    "CONFIGS",
    "DATA",
    "EVERY_CHECKPOINT_RATE",
    "FILE_KINDS",
    "INDEX",
    "KINDS",
    "NAME",
    "STATE",
    "STEPS",
    "CaseDir",
    "CaseRecord",
    "Config",
    "Damage",
    "Generator",
    "Model",
    "Op",
    "Original",
    "Pristine",
    "Result",
    "Summary",
    "Truth",
    "available_kinds",
    "build_pristine",
    "compute_truth",
    "draw_damages",
    "evaluate",
    "is_root",
    "main",
    "make_case",
    "minimize",
    "replay",
    "replay_case",
    "run",
    "run_config",
]
