"""The adapter to TensorFlow: the one module that imports it and touches its privates.

Every other module uses the public ``tf`` namespace re-exported here and the functions
below; nothing else names a private TensorFlow module or attribute (a test enforces it).
Each private use, why it is needed, and where it was verified (TF 2.16.2 on Python 3.10,
TF 2.19.1 on 3.12, TF 2.21.0 on 3.11 unless noted; identical in all three):

TensorFlow is imported on first use, not when safeckpt is (`tf` is a stand-in that imports
it on the first attribute read; `errors` names TensorFlow's error classes only once it is
imported): ``safeckpt doctor`` and the other commands read a local directory without it. The
protocol buffers of the checkpoint files are decoded without TensorFlow
(`safeckpt._format.protos`).

Modules:
    ``tensorflow.python.checkpoint.checkpoint_management``: TensorFlow's own clock
        (``time.time``, which TF's tests and ours patch) and ``_evaluate`` (reads a step
        counter in eager and graph mode, as TF's ``restore_or_initialize`` does).
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
    read, and the same method since TF 2.0). A save whose state write failed after its
    files were complete records it again (`record_and_sweep`, what TF's own write callback
    does).
    ``last_checkpoint_step`` is a constructor argument only from TF 2.20 on
    (`manager_takes_last_checkpoint_step`); on older TF the attribute is set afterwards.

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

Keras 3's ``fit`` (TF trainer, Keras 3.15.1; `keras_fit`): a callback is not told which
other callbacks run beside it, what data is read or how; ``fit``'s own frame holds the
``CallbackList`` (local ``callbacks``, its ``callbacks`` list) and the ``TFEpochIterator``
(local ``epoch_iterator``: ``steps_per_epoch``, ``num_batches``, ``data_adapter``, whose class
names the kind of input; ``_shuffle`` of ``ArrayDataAdapter``, ``shuffle`` of
``PyDatasetAdapter``, ``_dataset`` of ``TFDatasetAdapter``). Read by walking up from the
callback's ``on_train_begin`` to the frame whose ``f_locals`` hold both; absent (a loop that
calls the hooks itself, another Keras) means None and the callback works without them.
``_symbolic_build(data_batch=...)`` of a Keras model builds its compiled metrics (and an
unbuilt model and optimizer) from shapes alone, as ``fit`` does under a distribution strategy
(`build_from_spec`). ``_as_serialized_graph()`` of a `tf.data.Dataset` is the input
pipeline's graph (`dataset_graph`), for the ops that make an epoch differ from the last.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import functools
import inspect
import logging
import os
import sys
import uuid
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers see the module; at run time `tf` imports it on first use
    import tensorflow as tf


def load() -> ModuleType:
    """Import TensorFlow (once; Python caches it) with a clear message when it is missing."""
    try:
        import tensorflow
    except ImportError as exc:  # pragma: no cover - exercised only without TensorFlow
        raise ImportError(
            "safeckpt needs TensorFlow (>= 2.16), but it could not be imported "
            f"({exc}). Install it together with safeckpt, choosing the distribution that fits "
            "your machine: pip install 'safeckpt[tensorflow]' or pip install "
            "'safeckpt[tensorflow-cpu]' (or any other TensorFlow build such as tensorflow-macos)."
        ) from exc
    module: ModuleType = tensorflow
    return module


class _TensorFlow:
    """The ``tensorflow`` module, imported on the first attribute read (``tf.io.gfile``).

    Importing safeckpt does not import TensorFlow (about 6 s): the command line reads local
    directories without it. Every ``tf.X`` elsewhere in safeckpt goes through this object,
    so TensorFlow is imported exactly when something of it is used (a URI, a manager).
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(load(), name)

    def __repr__(self) -> str:
        return "<tensorflow, imported on first use>"


if not TYPE_CHECKING:
    tf = _TensorFlow()


def imported() -> bool:
    """Whether TensorFlow was imported in this process (by anyone).

    Until it is, no TensorFlow error can have been raised: `errors` then names none.
    """
    return "tensorflow" in sys.modules


def errors(*names: str) -> tuple[type[BaseException], ...]:
    """TensorFlow's ``tf.errors.<name>`` classes, or ``()`` while TensorFlow is not imported.

    For ``except`` clauses on code paths that must not import TensorFlow: ``except
    (OSError, *errors("OpError")):`` catches TensorFlow's errors once TensorFlow is
    imported, and imports nothing before (``except ():`` matches nothing).
    """
    if not imported():
        return ()
    return tuple(getattr(tf.errors, name) for name in names)


@functools.cache
def _management() -> Any:
    from tensorflow.python.checkpoint import checkpoint_management

    return checkpoint_management


@functools.cache
def manager_takes_last_checkpoint_step(cls: Any = None) -> bool:
    """TensorFlow 2.20 added ``last_checkpoint_step`` to `tf.train.CheckpointManager`.

    2.16-2.19 lack it, and a subclass then sets the attribute the keyword would have set.
    The constructor inspected is TensorFlow's own, found in `cls`'s bases (by default
    ``tf.train.CheckpointManager``'s): a program that put `SafeCheckpointManager` in place of
    ``tf.train.CheckpointManager`` (tf_keras's ``BackupAndRestore`` is used that way) must
    not make safeckpt read its own signature.
    """
    for base in (cls or tf.train.CheckpointManager).__mro__:
        init = vars(base).get("__init__")
        if base.__module__.startswith("tensorflow.") and init is not None:
            return "last_checkpoint_step" in inspect.signature(init).parameters
    return False


def now() -> float:
    """TensorFlow's clock for checkpoint timestamps (patched by TF's and our tests)."""
    return float(_management().time.time())


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


SaveState = tuple[collections.OrderedDict[str, float], str | None, float, Any]


def save_state(manager: Any) -> SaveState:
    """What a save changes in the manager: rotation (a copy), latest, preserved time, step.

    ``_last_preserved_timestamp`` moves when the sweep keeps a checkpoint for
    ``keep_checkpoint_every_n_hours``; ``_last_checkpoint_step`` (only with an interval) is
    set by TensorFlow's ``save`` before it writes.
    """
    step = getattr(manager, "_last_checkpoint_step", None)
    return (
        collections.OrderedDict(manager._maybe_delete),
        manager._latest_checkpoint,
        manager._last_preserved_timestamp,
        step,
    )


def put_save_state(manager: Any, state: SaveState) -> None:
    """Put back what `save_state` returned (after a save that failed)."""
    manager._maybe_delete = collections.OrderedDict(state[0])  # TF changes it in place
    manager._latest_checkpoint = state[1]
    manager._last_preserved_timestamp = state[2]
    if getattr(manager, "_checkpoint_interval", None) is not None:
        manager._last_checkpoint_step = state[3]


def record_and_sweep(manager: Any) -> None:
    """What TensorFlow's ``save`` does once the files are written: state, sweep, state.

    Its ``_record_and_sweep_state`` callback (TF 2.16-2.21), after the rotation and the
    latest checkpoint were updated in memory; all three steps can be repeated safely.
    """
    manager._record_state()
    manager._sweep()
    manager._record_state()


def with_write_callback(options: Any, callback: Any) -> Any:
    """A copy of `options` (a `tf.train.CheckpointOptions` or None) that also calls `callback`.

    TensorFlow calls the write callbacks with the save path once the checkpoint's files are
    written, in order: `callback` runs before the one ``CheckpointManager.save`` appends.
    """
    if options is None:
        return tf.train.CheckpointOptions(experimental_write_callbacks=[callback])
    options = copy.copy(options)
    options.experimental_write_callbacks = [
        *(options.experimental_write_callbacks or []),
        callback,
    ]
    return options


def max_to_keep(manager: Any) -> int | None:
    """The manager's ``max_to_keep`` (None: keep everything)."""
    value: int | None = manager._max_to_keep
    return value


def keeps_hours(manager: Any) -> bool:
    """Whether ``keep_checkpoint_every_n_hours`` may keep a checkpoint TF's sweep pops."""
    return bool(manager._keep_checkpoint_every_n_hours)


def sweep(manager: Any, owner: Any) -> None:
    """TensorFlow's own ``_sweep`` of the rotation (deletes what leaves ``max_to_keep``).

    The next ``_sweep`` after `owner` (the subclass that overrides it) in the manager's class
    order: TensorFlow's, even where ``tf.train.CheckpointManager`` itself was replaced by
    the subclass (TF's own tests swapped to safeckpt, `tests/integration/test_multiworker.py`),
    which would make ``tf.train.CheckpointManager._sweep`` call the override again.
    """
    super(owner, manager)._sweep()


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
    cls: Any = type(manager)
    takes_step = manager_takes_last_checkpoint_step(cls)
    if takes_step:
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
    if not takes_step and manager._checkpoint_interval is not None:
        manager._last_checkpoint_step = last_checkpoint_step


def interval_skips(manager: Any, check_interval: bool) -> bool:
    """Whether TensorFlow's ``save`` will write nothing because of ``checkpoint_interval``.

    The test ``CheckpointManager.save`` starts with (TF 2.16-2.21): the step has not moved,
    or (with `check_interval`) moved less than the interval since the last checkpoint.
    """
    interval = manager._checkpoint_interval
    if interval is None or manager._last_checkpoint_step is None:
        return False
    current = _management()._evaluate(manager._step_counter)
    last = manager._last_checkpoint_step
    return bool(current == last or (check_interval and current < last + interval))


def note_restored_step(manager: Any) -> None:
    """After a restore, count the interval from the restored step, as TF does."""
    if manager._checkpoint_interval is not None:
        manager._last_checkpoint_step = _management()._evaluate(manager._step_counter)


def initial_epoch(model: Any) -> int | None:
    """The epoch a Keras model's next ``fit`` starts at, as set by a resume (or None)."""
    value = getattr(model, "_initial_epoch", None)
    return None if value is None else int(value)


def set_initial_epoch(model: Any, epoch: int | None) -> None:
    """Make a Keras model's next ``fit`` start at `epoch` (None: ``fit``'s own argument)."""
    model._initial_epoch = epoch


@dataclasses.dataclass(frozen=True)
class KerasFit:
    """What a callback can learn of the Keras ``fit`` that calls it (see the module doc).

    Attributes:
        callback_list: The ``CallbackList`` ``fit`` calls (its methods dispatch every hook).
        callbacks: Its callbacks, in order, Keras's ``History`` and progress bar included.
        input_kind: The class name of the data adapter (``"ArrayDataAdapter"``,
            ``"TFDatasetAdapter"``, ``"PyDatasetAdapter"``, ``"GeneratorDataAdapter"``, ...).
        shuffle: The adapter's shuffle setting (True, False or ``"batch"``); None when the
            adapter has none.
        steps_per_epoch: ``fit``'s ``steps_per_epoch`` (None: each epoch reads its input
            from the start).
        num_batches: Batches per epoch, when known.
        dataset: The `tf.data.Dataset` of a ``TFDatasetAdapter``, else None.
        frame: ``fit``'s own frame: on the stack for as long as ``fit`` runs.
    """

    callback_list: Any
    callbacks: tuple[Any, ...]
    input_kind: str
    shuffle: object
    steps_per_epoch: int | None
    num_batches: int | None
    dataset: Any
    frame: Any


def keras_fit(callback: Any, depth: int = 8) -> KerasFit | None:
    """The Keras ``fit`` that is calling `callback`'s hook now, or None (see the module doc)."""
    frame = inspect.currentframe()
    try:
        for _ in range(depth):
            frame = frame.f_back if frame is not None else None
            if frame is None:
                return None
            local = frame.f_locals
            listed = getattr(local.get("callbacks"), "callbacks", None)
            iterator = local.get("epoch_iterator")
            data = getattr(iterator, "data_adapter", None)
            if isinstance(listed, list) and data is not None and any(c is callback for c in listed):
                shuffle = getattr(data, "_shuffle", getattr(data, "shuffle", None))
                steps = getattr(iterator, "steps_per_epoch", None)
                batches = getattr(iterator, "num_batches", None)
                return KerasFit(
                    callback_list=local["callbacks"],
                    callbacks=tuple(listed),
                    input_kind=type(data).__name__,
                    shuffle=shuffle if isinstance(shuffle, (bool, str)) else None,
                    steps_per_epoch=steps if isinstance(steps, int) else None,
                    num_batches=batches if isinstance(batches, int) else None,
                    dataset=getattr(data, "_dataset", None),
                    frame=frame,
                )
        return None
    finally:
        del frame


def dataset_graph(dataset: Any) -> bytes | None:
    """The serialized ``GraphDef`` of a `tf.data.Dataset`'s pipeline, or None."""
    try:
        return bytes(dataset._as_serialized_graph().numpy())
    except Exception:
        return None


def build_from_spec(model: Any, spec: Any) -> None:
    """Build what of a Keras model is unbuilt (compiled metrics, loss) from `spec`'s shapes.

    Called on a built model: variables an unbuilt model would create here, in Keras's scratch
    graph, could not take restore-on-create values.
    """
    model._symbolic_build(data_batch=spec)


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


class CoordinationService:
    """TensorFlow's coordination service, as one worker of a multi-worker job sees it.

    Its key-value store (shared by every worker of the job, served by worker 0) and its view
    of each task's heartbeat. Every method may raise `tf.errors.OpError` (the service gone,
    a key set twice); `get` raises `tf.errors.DeadlineExceededError` when `key` is not set
    within `timeout_ms`.
    """

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx

    def set(self, key: str, value: str) -> None:
        """Set `key` to `value` (`tf.errors.AlreadyExistsError` when it is set already)."""
        self._ctx.set_config_key_value(key, value)

    def get(self, key: str, timeout_ms: int) -> str:
        """The value of `key`, waiting at most `timeout_ms` (at least 1) for it to be set."""
        return str(self._ctx.get_config_key_value(key, max(1, timeout_ms)))

    def delete(self, key: str) -> None:
        """Delete `key` (nothing happens when it is not set)."""
        self._ctx.delete_config_key_value(key)

    def task_health(self, jobs: list[tuple[str, int]], index: int) -> str | None:
        """Why the service holds task `index` unhealthy, or None (healthy or unknown).

        `jobs` lists the coordinated jobs and their task counts; `index` counts tasks across
        them in that order (``id_in_cluster``).
        """
        try:
            states = list(self._ctx.get_task_states(jobs))
        except Exception:  # no answer says nothing about the task
            return None
        if not 0 <= index < len(states) or states[index] is None:
            return None
        text = " ".join(str(states[index]).split())
        return text or "unhealthy"


def coordination() -> CoordinationService | None:
    """TensorFlow's coordination service when it runs in this process, else None."""
    try:
        from tensorflow.python.eager import context as tf_context

        ctx = tf_context.context()
        if ctx.coordination_service is None:
            return None
    except (ImportError, AttributeError):  # pragma: no cover - TensorFlow internals moved
        return None
    return CoordinationService(ctx)


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
    "bookkeeping_variables",
    "checkpoint_of",
    "checkpoint_prefix",
    "CoordinationService",
    "coordination",
    "collective_server_def",
    "drop_pending_restorations",
    "errors",
    "finish_without_state",
    "KerasFit",
    "build_from_spec",
    "dataset_graph",
    "imported",
    "keras_fit",
    "init_fn",
    "interval_skips",
    "latest",
    "load",
    "manager_takes_last_checkpoint_step",
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
    "keeps_hours",
    "max_to_keep",
    "put_save_state",
    "record_and_sweep",
    "save_state",
    "sweep",
    "with_write_callback",
    "tf",
]
