"""One worker running TensorFlow's PreemptionCheckpointHandler, run by test_preemption.py.

Not a test module. It is TensorFlow's own handler test (failure_handler_test.py) cut down to
one deterministic preemption, with the manager chosen on the command line:

* ``--manager tf``: TensorFlow's `tf.train.CheckpointManager`; ``--manager safeckpt``:
  `safeckpt.SafeCheckpointManager`.
* ``--input checkpoint``: the handler is given the `tf.train.Checkpoint` and builds its own
  managers (a read manager on ``--checkpoint-dir``; on a non-chief a write manager on TF's
  ``<parent>/workertemp_<id>/<base>``, deleted by the handler at exit). With ``--manager
  safeckpt``, TF's manager class is swapped for safeckpt's in TF's own module, as a user
  who wants the handler's managers to be safeckpt's does.
* ``--input manager``: the program builds the manager with TF's layout (as TF's tests do:
  the chief on ``--checkpoint-dir``, a non-chief on ``<parent>/workertemp_<id>/<base>``)
  and passes it in.

Phases:

* ``train`` (``TF_CONFIG`` names this worker, `MultiWorkerMirroredStrategy`): build the handler
  (which restores), then run until ``handler.total_run_calls == --runs``, one
  ``handler.run`` per step. With ``--preempt-at S`` the worker ``--preempt-worker`` sends
  itself SIGTERM before run S; every worker then saves at run S + 1 and exits with status 42
  through the handler's ``exit_fn``.
* ``adopt`` (one process, `MirroredStrategy`, no cluster): ``--manager`` saves checkpoints of
  ``v`` = 1, 2, 3 with a plain TF manager when ``--write`` is given; otherwise build
  ``PreemptionCheckpointHandler(None, <manager>)`` on them, which restores.

The last stdout line of each exit is ``RESULT <json>``: what this worker saw, and at a
preemption the sha256 of every file in the checkpoint directory right after the chief's save.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf
from tensorflow.python.checkpoint import checkpoint_management
from tensorflow.python.distribute.failure_handling import failure_handling

import safeckpt
from testing.cluster import file_hashes  # the checkout is on PYTHONPATH (run_cluster)

PREEMPTED = 42


def report(result: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(result), flush=True)


def manager_class(name: str) -> Any:
    return safeckpt.SafeCheckpointManager if name == "safeckpt" else tf.train.CheckpointManager


def make_manager(cls: Any, checkpoint: Any, checkpoint_dir: str, resolver: Any) -> Any:
    """TF's tests' ``_make_checkpoint_manager``: TF's layout, one manager per worker."""
    spec = resolver.cluster_spec()
    if not spec.as_dict() or (resolver.task_type, resolver.task_id) in (
        ("chief", 0),
        ("worker", 0),
    ):
        return cls(checkpoint, directory=checkpoint_dir, max_to_keep=1)
    private = failure_handling._non_chief_checkpoint_dir(checkpoint_dir, resolver.task_id)
    return cls(checkpoint, directory=private, max_to_keep=1)


def train(args: argparse.Namespace) -> int:
    if args.manager == "safeckpt" and args.input == "checkpoint":
        checkpoint_management.CheckpointManager = safeckpt.SafeCheckpointManager
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    resolver = strategy.cluster_resolver
    task_id = int(resolver.task_id)
    result: dict[str, Any] = {"task_id": task_id}
    handler: Any = None

    def exit_fn() -> None:  # after the preemption save (and a non-chief's cleanup)
        result["exit_at"] = int(handler.total_run_calls)
        result["exit_v"] = float(model.v.numpy())
        result["files_at_exit"] = file_hashes(args.checkpoint_dir)
        report(result)
        sys.exit(PREEMPTED)

    class Model(tf.Module):
        def __init__(self) -> None:
            self.v = tf.Variable(
                0.0,
                synchronization=tf.VariableSynchronization.ON_WRITE,
                aggregation=tf.VariableAggregation.SUM,
            )

    config = tf.distribute.experimental.TerminationConfig(exit_fn=exit_fn, grace_period=0)
    with strategy.scope():
        model = Model()
        checkpoint = tf.train.Checkpoint(model=model)
        if args.input == "checkpoint":
            given: Any = checkpoint
        else:
            given = make_manager(
                manager_class(args.manager), checkpoint, args.checkpoint_dir, resolver
            )
            result["manager_directory"] = given.directory
        handler = tf.distribute.experimental.PreemptionCheckpointHandler(
            resolver, given, args.checkpoint_dir, config
        )
    result["start_at"] = int(handler.total_run_calls)
    result["start_v"] = float(model.v.numpy())
    result["managers"] = sorted(
        {
            type(m).__name__ + ":" + str(m.directory)
            for m in (handler._read_checkpoint_manager, handler._write_checkpoint_manager)
        }
    )

    @tf.function
    def step() -> None:
        model.v.assign_add(1.0)

    while handler.total_run_calls < args.runs:
        if args.preempt_at == handler.total_run_calls and task_id == args.preempt_worker:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler's signal handler notes it
        handler.run(lambda: strategy.run(step))
    result["final_at"] = int(handler.total_run_calls)
    result["final_v"] = float(model.v.numpy())
    report(result)
    handler.__del__()  # stop its watcher threads before TensorFlow shuts down
    return 0


def adopt(args: argparse.Namespace) -> int:
    os.environ.pop("TF_CONFIG", None)  # one process, no cluster
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        v = tf.Variable(0.0)
        checkpoint = tf.train.Checkpoint(v=v)
    if args.write:
        manager = tf.train.CheckpointManager(checkpoint, args.checkpoint_dir, max_to_keep=None)
        for value in (1.0, 2.0, 3.0):
            v.assign(value)
            manager.save()
        report({"written": manager.checkpoints})
        return 0
    result: dict[str, Any] = {}
    with strategy.scope():
        manager = manager_class(args.manager)(checkpoint, args.checkpoint_dir, max_to_keep=3)
        try:
            handler = tf.distribute.experimental.PreemptionCheckpointHandler(None, manager)
        except Exception as exc:  # the test compares with plain TF: report, don't crash
            result["error"] = {"type": type(exc).__name__, "message": str(exc)[:2000]}
            report(result)
            return 0
    result["v"] = float(v.numpy())
    result["start_at"] = int(handler.total_run_calls)
    last = getattr(manager, "last_restore", None)
    if last is not None:
        result["restore"] = last.to_dict()
    report(result)
    handler.__del__()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--phase", choices=("train", "adopt"), required=True)
    parser.add_argument("--checkpoint-dir", required=True)
    parser.add_argument("--manager", choices=("tf", "safeckpt"), required=True)
    parser.add_argument("--input", choices=("checkpoint", "manager"), default="manager")
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--preempt-at", type=int, default=-1)
    parser.add_argument("--preempt-worker", type=int, default=0)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    return train(args) if args.phase == "train" else adopt(args)


if __name__ == "__main__":
    sys.exit(main())
