"""Multi-worker training (`tf.distribute.MultiWorkerMirroredStrategy`): who writes, who agrees.

Under a multi-worker strategy every worker runs the same program and must call ``save()``
(saving may need collectives, e.g. to read a ``SyncOnReadVariable``), but only the chief may
write the checkpoint directory. As in TensorFlow's own Keras integration
(``tensorflow/python/keras/distribute/distributed_file_utils.py``: ``write_dirpath``,
``remove_temp_dirpath``) the other workers write into a private ``<directory>/workertemp_<task_id>``
and delete it afterwards, while every worker restores from the chief's directory.

The restore decision (which checkpoint, or a fresh start) is a deterministic function of the
files in the shared directory, so workers that see the same files decide alike. What can still
differ between workers is I/O: a storage hiccup on one machine, a directory that is local to
each machine instead of shared. `agree` therefore runs an operation on every worker, exchanges
the outcomes through TensorFlow's coordination service (the key-value store that
``MultiWorkerMirroredStrategy`` starts) and raises on *every* worker when any of them failed or
when they disagree, instead of one worker raising while the others hang in the next collective.
"""

from __future__ import annotations

import collections
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from safeckpt import _fs, _tf
from safeckpt._causes import Cause
from safeckpt._diagnosis import Diagnosis, describe_exception
from safeckpt._directory import validate_directory
from safeckpt._errors import CheckpointDirectoryError
from safeckpt._layout import WORKER_TEMP_PREFIX
from safeckpt._tf import tf

logger = logging.getLogger("safeckpt")

T = TypeVar("T")

#: Prefix of the private directory of a non-chief worker (TensorFlow's name for it).

#: How long `agree` waits for the other workers to report, in seconds.
AGREEMENT_TIMEOUT = 600.0

_COORDINATED_JOBS = ("chief", "worker")


@dataclass(frozen=True)
class WorkerContext:
    """Where this process stands in a (possibly) multi-worker job.

    Attributes:
        is_chief: Whether this worker writes the checkpoint directory (True when not
            distributed).
        task_type: ``"chief"``, ``"worker"``, ``"evaluator"``, ..., or None when not distributed.
        task_id: The index of this task within `task_type`, or None.
        num_workers: How many workers train together (chief and workers), 1 when not
            distributed.
        id_in_cluster: This worker's index among them: the chief is 0, ``worker:i`` follows.
        collective: Whether every worker runs the same program and calls ``save`` and
            ``restore`` (`MultiWorkerMirroredStrategy`), so that they can agree on outcomes.
    """

    is_chief: bool = True
    task_type: str | None = None
    task_id: int | None = None
    num_workers: int = 1
    id_in_cluster: int = 0
    collective: bool = False

    @property
    def multi_worker(self) -> bool:
        """Whether several workers train together."""
        return self.num_workers > 1

    def describe(self) -> str:
        """``"worker:1"``-style name of this task, or ``"single worker"``."""
        if self.task_type is None:
            return "single worker"
        return f"{self.task_type}:{self.task_id}"


SINGLE_WORKER = WorkerContext()


def _from_cluster(
    cluster: Mapping[str, Any], task_type: str | None, task_id: int | None
) -> WorkerContext:
    """Mirror ``multi_worker_util.is_chief``/``worker_count``/``id_in_cluster``."""
    if not cluster or task_type is None or task_id is None:
        return SINGLE_WORKER
    task_id = int(task_id)
    if task_type == "evaluator":
        # The evaluator is a cluster of its own: it never trains with the others.
        return WorkerContext(True, task_type, task_id)
    chiefs = len(cluster.get("chief", ()))
    workers = len(cluster.get("worker", ()))
    is_chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and not chiefs)
    if "ps" in cluster or task_type not in _COORDINATED_JOBS:
        # Parameter-server training: only the coordinator (chief) runs the training program.
        return WorkerContext(is_chief, task_type, task_id, chiefs + workers)
    id_in_cluster = 0 if task_type == "chief" else task_id + chiefs
    num_workers = chiefs + workers
    return WorkerContext(
        is_chief, task_type, task_id, num_workers, id_in_cluster, collective=num_workers > 1
    )


def _from_strategy(strategy: Any) -> WorkerContext | None:
    """The context of a strategy, or None when it is not a multi-worker one."""
    worker = _tf.strategy_worker(strategy)
    if worker is None:
        return None
    collective = isinstance(
        strategy,
        (
            tf.distribute.MultiWorkerMirroredStrategy,
            tf.distribute.experimental.MultiWorkerMirroredStrategy,
        ),
    )
    return WorkerContext(**worker, collective=collective)


def _from_server_def() -> WorkerContext | None:
    """The cluster TensorFlow's collective ops were enabled with (by any cluster resolver)."""
    server_def = _tf.collective_server_def()
    if server_def is None or not server_def.job_name:
        return None
    cluster = {job.name: dict(job.tasks) for job in server_def.cluster.job}
    return _from_cluster(cluster, server_def.job_name, server_def.task_index)


def _from_tf_config(text: str | None) -> WorkerContext:
    """The context described by a ``TF_CONFIG`` value (None or empty: single worker).

    Raises:
        ValueError: ``TF_CONFIG`` is not a JSON object (TensorFlow rejects it too).
    """
    if not text:
        return SINGLE_WORKER
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"TF_CONFIG is not valid JSON ({exc}): {text!r}") from exc
    if not isinstance(config, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object, got {text!r}")
    task = config.get("task", {})
    cluster = config.get("cluster", {})
    if not isinstance(task, dict) or not isinstance(cluster, dict):
        raise ValueError(f"TF_CONFIG needs a 'cluster' and a 'task' object, got {text!r}")
    index = task.get("index")
    return _from_cluster(cluster, task.get("type"), None if index is None else int(index))


def worker_context(strategy: Any = None) -> WorkerContext:
    """Find out whether this process is the chief of a multi-worker job.

    Looks, in order, at `strategy` (or the strategy of the enclosing ``strategy.scope()``),
    at the cluster TensorFlow's collective ops were enabled with, and at ``TF_CONFIG``: the
    sources ``distributed_file_utils.write_dirpath`` and ``multi_worker_util.is_chief`` use.

    Args:
        strategy: A `tf.distribute.Strategy`, or None for the current one.

    Returns:
        The `WorkerContext`; `SINGLE_WORKER` outside multi-worker training.

    Raises:
        ValueError: ``TF_CONFIG`` is set but malformed.
    """
    if strategy is None and tf.distribute.has_strategy():
        strategy = tf.distribute.get_strategy()
    if strategy is not None:
        found = _from_strategy(strategy)
        return found if found is not None else SINGLE_WORKER
    found = _from_server_def()
    if found is not None:
        return found
    return _from_tf_config(os.environ.get("TF_CONFIG"))


def write_directory(directory: str, context: WorkerContext) -> str:
    """Where this worker writes its checkpoints: `directory` for the chief.

    Other workers get ``<directory>/workertemp_<task_id>``, as in
    ``distributed_file_utils.write_dirpath`` (nothing is created here; see
    `make_write_directory`).
    """
    if context.is_chief:
        return directory
    return _fs.join(directory, f"{WORKER_TEMP_PREFIX}{context.task_id}")


def make_write_directory(directory: str, context: WorkerContext) -> str:
    """`write_directory`, emptied of an earlier crashed save and created.

    Raises:
        tf.errors.OpError: The directory could not be created.
    """
    path = write_directory(directory, context)
    if path != directory:
        remove_write_directory(directory, context)
        tf.io.gfile.makedirs(path)
    return path


def remove_write_directory(directory: str, context: WorkerContext) -> None:
    """Delete a non-chief's ``workertemp_<task_id>`` (never the chief's directory)."""
    path = write_directory(directory, context)
    if path == directory:
        return
    try:
        if tf.io.gfile.exists(path):
            tf.io.gfile.rmtree(path)
    except (tf.errors.OpError, OSError) as exc:
        logger.warning("Could not remove the worker's temporary directory %s: %s", path, exc)


def validate_everywhere(
    context: WorkerContext, directory: str, *, create: bool, read_only: bool
) -> bool:
    """`validate_directory` on every worker; all raise when one fails (see `agree`).

    Every worker needs `directory` (non-chiefs write their ``workertemp_<id>`` inside it).
    """

    def error(message: str, diagnosis: Diagnosis) -> CheckpointDirectoryError:
        return CheckpointDirectoryError(message, diagnosis, directory)

    return agree(
        context,
        "use the checkpoint directory",
        lambda: validate_directory(directory, create=create, read_only=read_only),
        error,
    )


def save_as_worker(
    manager: Any, context: WorkerContext, save: Callable[[], str | None], sync: Callable[[], None]
) -> str | None:
    """Save as a non-chief worker: into its workertemp directory, then delete that.

    TensorFlow's save (`save`) runs unchanged, with its collectives, on the manager's own
    state moved into the temporary directory: its sweep can only delete files there. The
    state is moved back afterwards, so `checkpoints` and `latest_checkpoint` name the chief's
    files, as on the chief. `sync` waits for an asynchronous save to finish in there.
    """
    directory: str = manager.directory
    prefix = _tf.checkpoint_prefix(manager)
    temp = make_write_directory(directory, context)

    def move(path: str, into: str) -> str:
        return _fs.join(into, _fs.basename(path))

    def relocate(into: str) -> None:
        latest = _tf.latest(manager)
        _tf.set_rotation(
            manager,
            collections.OrderedDict((move(p, into), t) for p, t in _tf.rotation(manager).items()),
        )
        _tf.set_latest(manager, None if latest is None else move(latest, into))
        _tf.relocate(manager, into, move(prefix, into))

    relocate(temp)
    try:
        result = save()
    finally:
        try:
            sync()
        finally:
            relocate(directory)
            remove_write_directory(directory, context)
    return None if result is None else move(result, directory)


# Agreement -------------------------------------------------------------------------------

_sequence = 0
_previous_key: str | None = None


def can_agree(context: WorkerContext) -> bool:
    """Whether `agree` will exchange outcomes (collective multi-worker job, service up)."""
    return context.collective and context.multi_worker and _tf.coordination_context() is not None


def _failure_message(exc: BaseException) -> dict[str, Any]:
    diagnosis = getattr(exc, "diagnosis", None)
    return {
        "ok": False,
        "error": describe_exception(exc),
        "message": str(exc),
        "diagnosis": diagnosis.to_dict() if isinstance(diagnosis, Diagnosis) else None,
    }


def _peer_diagnosis(topic: str, worker: int, report: Mapping[str, Any]) -> Diagnosis:
    """The diagnosis a worker reported for its failure, or one describing it."""
    note = f"Worker {worker} failed to {topic}: {report.get('error')}"
    data = report.get("diagnosis")
    if isinstance(data, dict):
        try:
            found = Diagnosis.from_dict(data)
        except (KeyError, ValueError, TypeError):
            pass
        else:
            return replace(found, evidence=(*found.evidence, note + "."))
    return Diagnosis(
        Cause.UNKNOWN,
        f"Worker {worker} failed to {topic}.",
        evidence=(note + ".",),
        suggestions=(f"See worker {worker}'s log for its traceback.",),
        error=report.get("error"),
    )


def agree(
    context: WorkerContext,
    topic: str,
    action: Callable[[], T],
    peer_error: Callable[[str, Diagnosis], BaseException],
    *,
    summarize: Callable[[T], str | None] = lambda _: None,
    detail: Callable[[T], str] | None = None,
    timeout: float = AGREEMENT_TIMEOUT,
) -> T:
    """Run `action` on every worker; raise everywhere unless all succeed and agree.

    Each worker publishes its outcome (success with ``summarize(result)``, or its error) in
    the coordination service's key-value store, then reads the other workers' outcomes. A
    worker whose own `action` raised re-raises at once (after publishing); the others raise
    ``peer_error(message, diagnosis)`` built from the failing worker's diagnosis, or from a
    description of the disagreement when the summaries differ. Outside collective
    multi-worker training (or before the strategy started the coordination service) this is
    just ``action()``.

    Every worker must call `agree` for the same operations in the same order (as it calls
    ``save``/``restore``): keys are numbered by a per-process sequence. A worker deletes its
    key of round ``n - 1`` once it has read every report of round ``n`` (by then every worker
    has read it), so the store does not grow with the number of saves.

    Args:
        context: This worker's `WorkerContext`.
        topic: What is being agreed on, for keys and messages (``"restore"``).
        action: The operation to run locally.
        peer_error: Builds the exception to raise for another worker's failure.
        summarize: What must be equal on every worker (e.g. the restored checkpoint's name).
        detail: How a disagreement shows this worker's result (default: the summary).
        timeout: Seconds to wait for each other worker.

    Returns:
        What `action` returned.
    """
    ctx = _tf.coordination_context() if context.collective and context.multi_worker else None
    if ctx is None:
        return action()
    global _sequence, _previous_key
    _sequence += 1
    base = f"safeckpt/{_sequence}/{topic}"
    own_key = f"{base}/{context.id_in_cluster}"
    try:
        result = action()
    except BaseException as exc:
        try:
            ctx.set_config_key_value(own_key, json.dumps(_failure_message(exc)))
        except Exception as publish_exc:  # keep raising the original error
            logger.warning("Could not tell the other workers about this failure: %s", publish_exc)
        raise
    value = summarize(result)
    mine = {"ok": True, "value": value, "detail": repr(value) if detail is None else detail(result)}
    ctx.set_config_key_value(own_key, json.dumps(mine))
    reports: dict[int, dict[str, Any]] = {context.id_in_cluster: mine}
    for worker in range(context.num_workers):
        if worker == context.id_in_cluster:
            continue
        try:
            text = ctx.get_config_key_value(f"{base}/{worker}", int(timeout * 1000))
            reports[worker] = json.loads(text)
        except (tf.errors.OpError, ValueError) as exc:
            diagnosis = Diagnosis(
                Cause.UNKNOWN,
                f"Worker {worker} did not report whether it could {topic}.",
                evidence=(f"Waiting for worker {worker}: {describe_exception(exc)}.",),
                suggestions=(f"See worker {worker}'s log; it may have crashed or be stuck.",),
                error=describe_exception(exc),
            )
            raise peer_error(
                f"{context.describe()}: worker {worker} did not report whether it could "
                f"{topic} ({describe_exception(exc)}).",
                diagnosis,
            ) from exc
    if _previous_key is not None:
        try:
            ctx.delete_config_key_value(_previous_key)
        except tf.errors.OpError as exc:  # pragma: no cover - harmless leftover
            logger.debug("Could not delete %s: %s", _previous_key, exc)
    _previous_key = own_key
    for worker, report in sorted(reports.items()):
        if not report.get("ok"):
            diagnosis = _peer_diagnosis(topic, worker, report)
            message = f"{context.describe()}: worker {worker} failed to {topic}:\n" + str(
                report.get("message", "")
            )
            raise peer_error(message, diagnosis)
    if len({json.dumps(report.get("value")) for report in reports.values()}) > 1:
        diagnosis = Diagnosis(
            Cause.UNKNOWN,
            f"The workers did not {topic} alike.",
            evidence=tuple(
                f"Worker {worker}: {report.get('detail')}."
                for worker, report in sorted(reports.items())
            ),
            suggestions=(
                "Every worker must pass the same checkpoint directory, on storage all "
                "workers share (the chief's directory), and see the same files in it.",
            ),
        )
        raise peer_error(f"{context.describe()}: {diagnosis}", diagnosis)
    return result
