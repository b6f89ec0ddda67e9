"""One worker of a two-worker MultiWorkerMirroredStrategy job, run by test_multiworker.py.

Not a test module. ``TF_CONFIG`` (set by the test) says which worker this is. Phases:

* ``train``: restore (nothing there yet), then train ``--steps`` steps, saving after each.
  With ``--extra-directory`` this worker alone first builds two more managers (on its
  private ``<directory>/workertemp_<id>``, saved and restored, and on that directory, saved
  only), which must not shift the other worker's agreement. With ``--alone-directory`` it
  first restores (empty: initializes) a manager on that directory, which no other worker
  builds: nobody may wait for it.
* ``resume``: restore (the test damaged the newest checkpoint in between), train one more
  step and save it. Then, with ``--probe-directory``, restore once more through a second
  manager on that directory (the test gives each worker a different one: each decides
  alone) and report the outcome.

* ``fault``: restore an empty directory with ``--peer-timeout``; with ``--fault die`` this
  worker exits (status 9) inside the restore (in ``init_fn``), with ``--fault stall`` it sleeps
  ``--stall`` seconds there. The error each live worker raises is reported with the seconds it
  took, and the process ends without TensorFlow's shutdown (which waits for a dead peer).
  With ``--fault bad-directory`` this worker constructs the manager with
  ``create_directory=False`` before the directory exists (so it alone fails to validate it),
  and ``--after-peer`` makes the other worker construct it (creating it) only after that.
  ``--delay`` makes this worker construct the manager that many seconds late. With
  ``--fault foreign`` this worker first posts, inside the restore, a report no safeckpt of
  this version can read (as another version would), and waits until the others gave up.

A `safeckpt.RestoreError` from the first restore is reported in the result and makes the
exit status 3.

The last stdout line is ``RESULT <json>`` with what this worker saw.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf
from tensorflow.python.eager import context as tf_context

import safeckpt

#: The ``loss`` metric of the save at each step (``--keep-best``): best at step 2, then worse.
LOSSES = (0.9, 0.5, 0.1, 0.4, 0.6, 0.7, 0.8, 0.85)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--directory", required=True)
    parser.add_argument("--phase", choices=("train", "resume", "fault"), required=True)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--probe-directory")
    parser.add_argument("--extra-directory")
    parser.add_argument("--alone-directory")
    parser.add_argument(
        "--fault", choices=("none", "die", "stall", "bad-directory", "foreign"), default="none"
    )
    parser.add_argument("--after-peer", action="store_true")
    parser.add_argument("--stall", type=float, default=8.0)
    parser.add_argument("--peer-timeout", type=float)
    parser.add_argument("--linger", type=float, default=0.0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--keep-best", action="store_true", help="keep_best by a 'loss' metric")
    args = parser.parse_args()

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    if args.phase == "fault":
        return fault(args, strategy)
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
        best = safeckpt.KeepBest("loss") if args.keep_best else None
        manager = safeckpt.SafeCheckpointManager(
            checkpoint, args.directory, max_to_keep=3, keep_best=best
        )

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

    task_id = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    result: dict[str, Any] = {"task_id": task_id}
    if args.extra_directory:
        # Managers only this worker builds (plain variables: no collective in their saves).
        extra = tf.train.Checkpoint(v=tf.Variable(7.0))
        private = os.path.join(args.directory, f"workertemp_{task_id}")
        own = safeckpt.SafeCheckpointManager(extra, private, max_to_keep=1)
        result["extra_saves"] = [own.save()]
        result["extra_restore"] = own.restore().save_path
        alone = safeckpt.SafeCheckpointManager(extra, args.extra_directory, max_to_keep=1)
        result["extra_saves"].append(alone.save())
    if args.alone_directory:  # e.g. a "best model" manager only the chief keeps
        alone_manager = safeckpt.SafeCheckpointManager(checkpoint, args.alone_directory, 1)
        result["alone_restore"] = alone_manager.restore().to_dict()
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
        loss = LOSSES[int(step.numpy()) % len(LOSSES)]
        path = manager.save(metrics={"loss": loss} if args.keep_best else None)
        result["saves"].append({"path": path, "w": float(w.numpy()[0]), "step": int(step.numpy())})
    result["checkpoints"] = list(manager.checkpoints)
    result["latest_checkpoint"] = manager.latest_checkpoint
    if args.keep_best:  # after an agreed restore: the chief's files are all written
        result["agreed"] = manager.restore().save_path
        result["best"] = manager.best_checkpoint
    if args.probe_directory:
        probe = safeckpt.SafeCheckpointManager(checkpoint, args.probe_directory, max_to_keep=3)
        try:
            result["probe"] = probe.restore().to_dict()
        except safeckpt.RestoreError as exc:
            result["probe_error"] = {"type": type(exc).__name__, "message": str(exc)}
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def fault(args: argparse.Namespace, strategy: Any) -> int:
    """Restore an empty directory; this worker dies or stalls inside the restore if asked."""

    def init_fn() -> None:
        if args.fault == "die":
            os._exit(9)
        if args.fault == "stall":
            time.sleep(args.stall)
        if args.fault == "foreign":
            # Post this worker's report first, as a newer safeckpt would (message format 2),
            # at the documented key <digest>/<n-th manager>/restore/<k-th restore>/<worker>,
            # then wait until another worker gave up on it.
            pair = json.dumps([args.directory, "ckpt"]).encode()
            round_key = f"safeckpt/{hashlib.sha256(pair).hexdigest()[:16]}/1/restore/1"
            me = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
            report = {"safeckpt_message": "success", "format": 2, "body": {"summary": None}}
            service.set_config_key_value(f"{round_key}/{me}", json.dumps(report))
            service.get_config_key_value(f"{round_key}/abort", 60_000)

    service = tf_context.context()
    with strategy.scope():
        step = tf.Variable(0, dtype=tf.int64, name="step")
    if args.fault == "bad-directory":
        try:
            safeckpt.SafeCheckpointManager(
                tf.train.Checkpoint(step=step), args.directory, 3, create_directory=False
            )
        except safeckpt.CheckpointDirectoryError as exc:
            error = {"type": type(exc).__name__, "message": str(exc)}
        service.set_config_key_value("test/constructed", "1")
        print("RESULT " + json.dumps({"error": error}), flush=True)
        time.sleep(args.linger)
        os._exit(0)
    if args.after_peer:
        service.get_config_key_value("test/constructed", 60_000)
    time.sleep(args.delay)
    with strategy.scope():
        manager = safeckpt.SafeCheckpointManager(
            tf.train.Checkpoint(step=step),
            args.directory,
            max_to_keep=3,
            init_fn=init_fn,
            peer_timeout=args.peer_timeout,
        )
    result: dict[str, Any] = {}
    start = time.monotonic()
    try:
        result["restore"] = manager.restore().to_dict()
    except safeckpt.SafeCheckpointError as exc:
        assert exc.diagnosis is not None
        result["error"] = {
            "type": type(exc).__name__,
            "cause": exc.diagnosis.cause.value,
            "summary": exc.diagnosis.summary,
            "message": str(exc),
            "unavailable": isinstance(exc, tf.errors.UnavailableError),
        }
    result["seconds"] = time.monotonic() - start
    print("RESULT " + json.dumps(result), flush=True)
    time.sleep(args.linger)  # a program reporting its error, while the others find out
    os._exit(0)  # TensorFlow's shutdown would wait for the dead peer


if __name__ == "__main__":
    sys.exit(main())
