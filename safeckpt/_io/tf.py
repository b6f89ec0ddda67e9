"""The adapter to TensorFlow: the one module that imports it and touches its privates.

Every other module uses the public ``tf`` namespace re-exported here and the functions
below; nothing else names a private TensorFlow module or attribute (a test enforces it).
Each private use, why it is needed, and where it was verified (TF 2.16.2 on Python 3.10,
TF 2.19.1 on 3.12, TF 2.21.0 on 3.11 unless noted; identical in all three):

Modules:
    ``tensorflow.python.checkpoint.checkpoint_management``: TensorFlow's own clock
        (``time.time``, which TF's tests and ours patch), ``_evaluate`` (reads a step
        counter in eager and graph mode, as TF's ``restore_or_initialize`` does), and
        ``generate_checkpoint_state_proto`` (`repair` writes a state file exactly as TF
        would).
    ``tensorflow.python.training.checkpoint_state_pb2``: the ``CheckpointState`` proto of
        the ``checkpoint`` state file (no public alias exists).
    ``tensorflow.core.protobuf.tensor_bundle_pb2``: ``BundleHeaderProto`` and
        ``BundleEntryProto`` of the ``.index`` table (no public alias exists).
    ``tensorflow.core.protobuf.trackable_object_graph_pb2``: ``TrackableObjectGraph``, the
        checkpoint's object graph, read to match it with the program before restoring.
    ``tensorflow.python.eager.context``: the coordination service of multi-worker jobs
        (``coordination_service`` of ``context()``, its ``set/get/delete_config_key_value``
        and ``get_task_states``, the service's view of each task's heartbeat) and the cluster
        collective ops were enabled with (``_collective_ops_server_def``). Verified on
        TF 2.21.0 with two workers on loopback: a task killed with ``os._exit`` is reported
        unhealthy ("heartbeat timeout") about 10 s later, while a pending
        ``get_config_key_value`` keeps waiting until its own timeout.

`tf.train.CheckpointManager` attributes a subclass has to read or set (there is no public
way to change the rotation, the latest checkpoint or the directory of a manager):
    ``_checkpoint``, ``_checkpoint_prefix``, ``_directory``, ``_maybe_delete`` (the
    ``max_to_keep`` rotation, path -> timestamp), ``_latest_checkpoint``, ``_max_to_keep``,
    ``_keep_checkpoint_every_n_hours``, ``_last_preserved_timestamp``,
    ``_checkpoint_interval``, ``_step_counter``,
    ``_last_checkpoint_step`` (these two exist only with an interval), ``_init_fn``,
    ``_record_state()`` (writes the state file from the rotation) and ``_sweep()``: TF's
    ``save`` calls ``self._sweep()`` from its write callback ``_record_and_sweep_state``,
    after the checkpoint's files are complete and the state file first records it (then it
    records the state again); `SafeCheckpointManager` overrides it to write the metadata
    file and apply ``keep_best``, and calls TF's own through `sweep`. TF's sweep pops the
    oldest entries of ``_maybe_delete`` while it holds more than ``_max_to_keep``, keeps
    (pops, without deleting) those the ``keep_checkpoint_every_n_hours`` rule preserves, and
    deletes ``<p>.index`` and ``<p>.data-?????-of-?????`` of the others (glob; TF 2.21.0
    read, and the same method since TF 2.0).
    ``last_checkpoint_step`` is a constructor argument only from TF 2.20 on
    (`MANAGER_TAKES_LAST_CHECKPOINT_STEP`); on older TF the attribute is set afterwards.

Distribution strategy internals (``strategy.extended``): ``_in_multi_worker_mode()``,
``_task_type``, ``_task_id``, ``_num_workers``, ``_id_in_cluster``: which worker this is.

Trackables: ``_self_unconditional_deferred_dependencies``, the restorations a restore queued
for objects not created yet, dropped after a failed restore (`drop_pending_restorations`).

``_ITERATION_VARIABLE`` of ``tensorflow.python.distribute.failure_handling.failure_handling``
(``"checkpointed_runs"``): the attribute ``PreemptionCheckpointHandler`` adds to the user's
`tf.train.Checkpoint` (an int64 scalar counting ``run`` calls) before it restores, and leaves
at 0 when the checkpoint lacks it (`bookkeeping_variables`).

Keras 3 models: ``_initial_epoch``, where Keras's own ``BackupAndRestore`` tells ``fit`` to
resume (``fit`` starts at ``model._initial_epoch or initial_epoch``; Keras 3.12.4 and 3.15.1,
read by the TF, JAX and torch trainers alike). There is no public way to resume ``fit``; used
by `safeckpt.keras.BackupAndRestore` (`initial_epoch`, `set_initial_epoch`).
"""

from __future__ import annotations

import collections
import inspect
import logging
import os
import uuid
from typing import Any

try:
    import tensorflow as tf
    from tensorflow.core.protobuf import tensor_bundle_pb2, trackable_object_graph_pb2
    from tensorflow.python.checkpoint import checkpoint_management as _checkpoint_management
    from tensorflow.python.training import checkpoint_state_pb2
except ImportError as exc:  # pragma: no cover - exercised only without TensorFlow
    raise ImportError(
        "safeckpt needs TensorFlow (>= 2.16), but it could not be imported "
        f"({exc}). Install it together with safeckpt, choosing the distribution that fits "
        "your machine: pip install 'safeckpt[tensorflow]' or pip install "
        "'safeckpt[tensorflow-cpu]' (or any other TensorFlow build such as tensorflow-macos)."
    ) from exc

#: TensorFlow 2.20 added ``last_checkpoint_step`` to `tf.train.CheckpointManager`; 2.16-2.19
#: lack it, and a subclass then sets the attribute the keyword would have set.
MANAGER_TAKES_LAST_CHECKPOINT_STEP = (
    "last_checkpoint_step" in inspect.signature(tf.train.CheckpointManager.__init__).parameters
)

CheckpointState = checkpoint_state_pb2.CheckpointState
BundleHeaderProto = tensor_bundle_pb2.BundleHeaderProto
BundleEntryProto = tensor_bundle_pb2.BundleEntryProto
TrackableObjectGraph = trackable_object_graph_pb2.TrackableObjectGraph


def now() -> float:
    """TensorFlow's clock for checkpoint timestamps (patched by TF's and our tests)."""
    return float(_checkpoint_management.time.time())


def generate_checkpoint_state_proto(directory: str, latest: str, **fields: Any) -> Any:
    """TensorFlow's own ``CheckpointState`` builder (the fields its manager writes)."""
    return _checkpoint_management.generate_checkpoint_state_proto(directory, latest, **fields)


# --- tf.train.CheckpointManager state -------------------------------------------------


def checkpoint_of(manager: Any) -> Any:
    """The `tf.train.Checkpoint` a manager saves and restores."""
    return manager._checkpoint


def checkpoint_prefix(manager: Any) -> str:
    """``<directory>/<checkpoint_name>``, what TensorFlow numbers saves after."""
    return str(manager._checkpoint_prefix)


def rotation(manager: Any) -> collections.OrderedDict[str, float]:
    """The ``max_to_keep`` rotation (oldest first, prefix -> timestamp), TF's own object."""
    result: collections.OrderedDict[str, float] = manager._maybe_delete
    return result


def set_rotation(manager: Any, entries: collections.OrderedDict[str, float]) -> None:
    """Replace the ``max_to_keep`` rotation."""
    manager._maybe_delete = entries


def latest(manager: Any) -> str | None:
    """What `latest_checkpoint` returns (and the next state write records)."""
    value: str | None = manager._latest_checkpoint
    return value


def set_latest(manager: Any, prefix: str | None) -> None:
    """Set what `latest_checkpoint` returns."""
    manager._latest_checkpoint = prefix


def init_fn(manager: Any) -> Any:
    """The manager's ``init_fn`` (or None)."""
    return manager._init_fn


def record_state(manager: Any) -> None:
    """Write the state file from the rotation and the latest checkpoint (TF's method)."""
    manager._record_state()


def max_to_keep(manager: Any) -> int | None:
    """The manager's ``max_to_keep`` (None: keep everything)."""
    value: int | None = manager._max_to_keep
    return value


def keeps_hours(manager: Any) -> bool:
    """Whether ``keep_checkpoint_every_n_hours`` may keep a checkpoint TF's sweep pops."""
    return bool(manager._keep_checkpoint_every_n_hours)


#: TensorFlow's own sweep, taken from its module at import: ``tf.train.CheckpointManager``
#: may be replaced by `SafeCheckpointManager` later (tf_keras users patch it in), whose
#: ``_sweep`` calls this one.
_TF_SWEEP = _checkpoint_management.CheckpointManager._sweep


def sweep(manager: Any) -> None:
    """TensorFlow's own ``_sweep`` of the rotation (deletes what leaves ``max_to_keep``)."""
    _TF_SWEEP(manager)


def relocate(manager: Any, directory: str, prefix: str) -> None:
    """Point the manager's saves at another directory (a worker's private one)."""
    manager._directory, manager._checkpoint_prefix = directory, prefix


def finish_without_state(manager: Any) -> None:
    """End TensorFlow's constructor as it does when there is no state file."""
    manager._maybe_delete = collections.OrderedDict()
    manager._latest_checkpoint = None
    manager._last_preserved_timestamp = now() - 1.0


def init_manager(
    manager: Any,
    init: Any,
    checkpoint: Any,
    directory: str,
    *args: Any,
    last_checkpoint_step: Any,
    read_state: bool = True,
    **kwargs: Any,
) -> None:
    """Run TensorFlow's constructor (`init`) for `manager`, on every supported TF version.

    ``last_checkpoint_step`` is passed where TF takes it (2.20+) and set afterwards on older
    TF. An empty, incomplete or non-UTF-8 state file makes TF's constructor raise
    (`ValueError`, `UnicodeDecodeError`) after it checked its arguments: the constructor is
    then finished as TF does without a state file (safeckpt reads the state file itself).
    With `read_state` False (the state file is a FIFO or a device: TF's constructor would
    block opening it, or read it forever) TF's constructor runs on a directory path that
    does not exist, where it reads and creates nothing, and the manager is then pointed at
    `directory` (`relocate`) as TF leaves it without a state file.
    """
    if MANAGER_TAKES_LAST_CHECKPOINT_STEP:
        kwargs["last_checkpoint_step"] = last_checkpoint_step
    where = directory if read_state else os.path.join(directory, f".safeckpt-{uuid.uuid4().hex}")
    try:
        init(checkpoint, where, *args, **kwargs)
        if not read_state:
            name = kwargs["checkpoint_name"]
            relocate(manager, directory, os.path.join(directory, name))
            finish_without_state(manager)
    except (ValueError, UnicodeDecodeError) as exc:
        if not hasattr(manager, "_checkpoint_interval"):
            raise  # an argument TF rejected
        logging.getLogger("safeckpt").warning(
            "The checkpoint state file in %s could not be read (%s: %s); treating it as absent.",
            manager._directory,
            type(exc).__name__,
            exc,
        )
        finish_without_state(manager)
    if not MANAGER_TAKES_LAST_CHECKPOINT_STEP and manager._checkpoint_interval is not None:
        manager._last_checkpoint_step = last_checkpoint_step


def interval_skips(manager: Any, check_interval: bool) -> bool:
    """Whether TensorFlow's ``save`` will write nothing because of ``checkpoint_interval``.

    The test ``CheckpointManager.save`` starts with (TF 2.16-2.21): the step has not moved,
    or (with `check_interval`) moved less than the interval since the last checkpoint.
    """
    interval = manager._checkpoint_interval
    if interval is None or manager._last_checkpoint_step is None:
        return False
    current = _checkpoint_management._evaluate(manager._step_counter)
    last = manager._last_checkpoint_step
    return bool(current == last or (check_interval and current < last + interval))


def note_restored_step(manager: Any) -> None:
    """After a restore, count the interval from the restored step, as TF does."""
    if manager._checkpoint_interval is not None:
        manager._last_checkpoint_step = _checkpoint_management._evaluate(manager._step_counter)


def initial_epoch(model: Any) -> int | None:
    """The epoch a Keras model's next ``fit`` starts at, as set by a resume (or None)."""
    value = getattr(model, "_initial_epoch", None)
    return None if value is None else int(value)


def set_initial_epoch(model: Any, epoch: int | None) -> None:
    """Make a Keras model's next ``fit`` start at `epoch` (None: ``fit``'s own argument)."""
    model._initial_epoch = epoch


# --- distribution and trackables ------------------------------------------------------


def strategy_worker(strategy: Any) -> dict[str, Any] | None:
    """Which worker of a multi-worker strategy this is, or None when it is not one."""
    extended: Any = getattr(strategy, "extended", None)
    in_multi_worker_mode = getattr(extended, "_in_multi_worker_mode", None)
    if not callable(in_multi_worker_mode) or not in_multi_worker_mode():
        return None
    task_id = getattr(extended, "_task_id", None)
    return {
        "is_chief": bool(extended.should_checkpoint),
        "task_type": getattr(extended, "_task_type", None),
        "task_id": None if task_id is None else int(task_id),
        "num_workers": int(getattr(extended, "_num_workers", 2)),
        "id_in_cluster": int(getattr(extended, "_id_in_cluster", 0) or 0),
    }


def collective_server_def() -> Any:
    """The ``ServerDef`` TensorFlow's collective ops were enabled with, or None."""
    try:
        from tensorflow.python.eager import context as tf_context

        return getattr(tf_context.context(), "_collective_ops_server_def", None)
    except (ImportError, AttributeError):  # pragma: no cover - TensorFlow internals moved
        return None


def coordination_context() -> Any:
    """TensorFlow's eager context when its coordination service runs, else None."""
    try:
        from tensorflow.python.eager import context as tf_context

        ctx = tf_context.context()
        if ctx.coordination_service is None:
            return None
    except (ImportError, AttributeError):  # pragma: no cover - TensorFlow internals moved
        return None
    return ctx


def task_health(service: Any, jobs: list[tuple[str, int]], index: int) -> str | None:
    """Why the coordination service holds task `index` unhealthy, or None (healthy/unknown).

    `jobs` lists the coordinated jobs and their task counts; `index` counts tasks across them
    in that order (``id_in_cluster``).
    """
    try:
        states = list(service.get_task_states(jobs))
    except Exception:  # no answer says nothing about the task
        return None
    if not 0 <= index < len(states) or states[index] is None:
        return None
    text = " ".join(str(states[index]).split())
    return text or "unhealthy"


def bookkeeping_variables() -> dict[str, str]:
    """Root attributes TensorFlow adds to a user's checkpoint itself: name -> who adds it.

    Each is an int64 scalar that TensorFlow initializes when a checkpoint lacks it, so a
    checkpoint written before it was added restores as well as with TensorFlow's manager.
    """
    try:
        from tensorflow.python.distribute.failure_handling import failure_handling

        handler = str(failure_handling._ITERATION_VARIABLE)
    except (ImportError, AttributeError):  # pragma: no cover - TensorFlow internals moved
        handler = "checkpointed_runs"
    return {handler: "TensorFlow's PreemptionCheckpointHandler (its count of run() calls)"}


def drop_pending_restorations(root: Any) -> int:
    """Drop the restorations queued for objects not created yet; returns how many.

    TensorFlow queues values for objects that do not exist yet on their parents (deferred
    restoration); a restore that fails midway leaves them queued, and objects created later
    would silently receive values of the rejected checkpoint.
    """
    dropped = 0
    try:
        objects = tf.train.TrackableView(root).descendants()
    except Exception:  # pragma: no cover - a graph TF cannot walk; nothing more can be done
        return 0
    for trackable in objects:
        pending = getattr(trackable, "_self_unconditional_deferred_dependencies", None)
        if isinstance(pending, dict) and pending:
            dropped += len(pending)
            pending.clear()
    return dropped


__all__ = [
    "MANAGER_TAKES_LAST_CHECKPOINT_STEP",
    "max_to_keep",
    "keeps_hours",
    "BundleEntryProto",
    "BundleHeaderProto",
    "TrackableObjectGraph",
    "bookkeeping_variables",
    "CheckpointState",
    "checkpoint_of",
    "checkpoint_prefix",
    "coordination_context",
    "collective_server_def",
    "drop_pending_restorations",
    "finish_without_state",
    "generate_checkpoint_state_proto",
    "init_fn",
    "interval_skips",
    "latest",
    "note_restored_step",
    "now",
    "record_state",
    "relocate",
    "rotation",
    "init_manager",
    "initial_epoch",
    "set_initial_epoch",
    "set_latest",
    "set_rotation",
    "strategy_worker",
    "sweep",
    "task_health",
    "tf",
]
