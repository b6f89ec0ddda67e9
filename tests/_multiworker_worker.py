"""One worker of a two-worker MultiWorkerMirroredStrategy job, run by test_multiworker.py.

Not a test module. ``TF_CONFIG`` (set by the test) says which worker this is. Phases:

* ``train``: restore (nothing there yet), then train ``--steps`` steps, saving after each.
* ``resume``: restore (the test damaged the newest checkpoint in between), train one more
  step and save it. Then, with ``--probe-directory``, restore once more through a second
  manager on that directory (the test gives each worker a different one, which must make
  every worker raise) and report the error.

A `safeckpt.RestoreError` from the first restore is reported in the result and makes the
exit status 3.

The last stdout line is ``RESULT <json>`` with what this worker saw.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

import safeckpt


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--directory", required=True)
    parser.add_argument("--phase", choices=("train", "resume"), required=True)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--probe-directory")
    args = parser.parse_args()

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        # Mirrored weights updated through a cross-worker mean, and a SyncOnRead counter:
        # saving it reads the SUM over all workers, a collective every worker must join.
        w = tf.Variable(tf.zeros([4]), name="w", aggregation=tf.VariableAggregation.MEAN)
        seen = tf.Variable(
            0.0,
            name="seen",
            synchronization=tf.VariableSynchronization.ON_READ,
            aggregation=tf.VariableAggregation.SUM,
        )
        step = tf.Variable(0, dtype=tf.int64, name="step")
        checkpoint = tf.train.Checkpoint(w=w, seen=seen, step=step)
        manager = safeckpt.SafeCheckpointManager(checkpoint, args.directory, max_to_keep=3)

    def replica_step() -> None:
        ctx = tf.distribute.get_replica_context()
        target = tf.cast(ctx.replica_id_in_sync_group + 1, tf.float32)  # 1.0 and 2.0
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum((w - target) ** 2)
        w.assign_sub(0.1 * tape.gradient(loss, w))  # MEAN over workers: w -= 0.2 (w - 1.5)
        seen.assign_add(1.0)

    def train_step() -> None:
        strategy.run(replica_step)
        step.assign_add(1)

    result: dict[str, Any] = {"task_id": json.loads(os.environ["TF_CONFIG"])["task"]["index"]}
    try:
        report = manager.restore()
    except safeckpt.RestoreError as exc:
        result["error"] = {"type": type(exc).__name__, "message": str(exc)}
        print("RESULT " + json.dumps(result), flush=True)
        return 3
    result["restore"] = report.to_dict()
    result["restored_w"] = float(w.numpy()[0])
    result["restored_step"] = int(step.numpy())
    result["restored_seen"] = float(seen.numpy())  # reading a SyncOnRead variable: collective
    steps = args.steps if args.phase == "train" else 1
    result["saves"] = []
    for _ in range(steps):
        train_step()
        path = manager.save()
        result["saves"].append({"path": path, "w": float(w.numpy()[0]), "step": int(step.numpy())})
    result["checkpoints"] = list(manager.checkpoints)
    result["latest_checkpoint"] = manager.latest_checkpoint
    if args.probe_directory:
        probe = safeckpt.SafeCheckpointManager(checkpoint, args.probe_directory, max_to_keep=3)
        try:
            result["probe"] = probe.restore().to_dict()
        except safeckpt.RestoreError as exc:
            result["probe_error"] = {"type": type(exc).__name__, "message": str(exc)}
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
