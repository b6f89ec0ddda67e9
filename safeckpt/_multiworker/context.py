"""Multi-worker training (`tf.distribute.MultiWorkerMirroredStrategy`): who writes where.

Under a multi-worker strategy every worker runs the same program and must call ``save()``
(saving may need collectives, e.g. to read a ``SyncOnReadVariable``), but only the chief may
write the checkpoint directory. As in TensorFlow's own Keras integration
(``tensorflow/python/keras/distribute/distributed_file_utils.py``: ``write_dirpath``,
``remove_temp_dirpath``) the other workers write into a private ``<directory>/workertemp_<task_id>``
and delete it afterwards, while every worker restores from the chief's directory.

A manager built on such a private directory (TensorFlow's Keras builds one for each non-chief
worker) belongs to that worker alone: it writes there itself and agrees with nobody
(`manager_context`). How the workers agree on a restore is the business of
`safeckpt._multiworker.agreement`; a non-chief's save into its directory is the manager's
(`safeckpt._manager.saving.save_as_worker`: only the manager package changes a manager's state).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from safeckpt._format.layout import WORKER_TEMP_PREFIX
from safeckpt._io import fs, safeio
from safeckpt._io import tf as adapter
from safeckpt._io.tf import tf

logger = logging.getLogger("safeckpt")

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
        stands_for: For a manager on a non-chief's private directory, the shared directory
            it stands for (`shared_counterpart`); None otherwise.
    """

    is_chief: bool = True
    task_type: str | None = None
    task_id: int | None = None
    num_workers: int = 1
    id_in_cluster: int = 0
    collective: bool = False
    stands_for: str | None = None

    @property
    def multi_worker(self) -> bool:
        """Whether several workers train together."""
        return self.num_workers > 1

    def coordinated_jobs(self) -> list[tuple[str, int]]:
        """The jobs TensorFlow's coordination service tracks, in `id_in_cluster` order.

        The chief job (when there is one), then the workers, with their task counts.
        """
        chiefs = 1 if self.task_type == "chief" else self.id_in_cluster - (self.task_id or 0)
        jobs = [("chief", chiefs)] if chiefs else []
        return [*jobs, ("worker", self.num_workers - chiefs)]

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
    worker = adapter.strategy_worker(strategy)
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
    server_def = adapter.collective_server_def()
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


def _components(directory: str) -> tuple[str, list[str]]:
    """``(the scheme and "://", the "/"-separated rest)`` of a normalized directory."""
    scheme = fs.scheme_of(directory)
    head = "" if scheme is None else directory[: len(scheme) + 3]
    return head, directory[len(head) :].split("/")


def _private_component(directory: str, context: WorkerContext) -> int | None:
    """Where this non-chief worker's ``workertemp_<task_id>`` is among `directory`'s parts."""
    if context.is_chief or context.task_id is None:
        return None
    name = f"{WORKER_TEMP_PREFIX}{context.task_id}"
    found = [i for i, part in enumerate(_components(directory)[1]) if part == name]
    return found[-1] if found else None


def is_private_directory(directory: str, context: WorkerContext) -> bool:
    """Whether `directory` is this non-chief worker's own: a ``workertemp_<task_id>`` in it.

    Any component counts: TensorFlow's Keras writes into ``<dir>/workertemp_<id>``, its
    ``PreemptionCheckpointHandler`` (``failure_handling._non_chief_checkpoint_dir``) into
    ``<parent>/workertemp_<id>/<base>``.
    """
    return _private_component(directory, context) is not None


def shared_counterpart(directory: str, context: WorkerContext) -> str | None:
    """The shared directory that a worker's private `directory` stands for, or None.

    ``<parent>/workertemp_<id>/<base>`` stands for ``<parent>/<base>`` (TensorFlow's
    ``PreemptionCheckpointHandler``), ``<dir>/workertemp_<id>`` for ``<dir>`` (Keras).
    """
    index = _private_component(directory, context)
    if index is None:
        return None
    head, parts = _components(directory)
    rest = "/".join(parts[:index] + parts[index + 1 :])
    return head + (rest or "/")


def manager_context(directory: str, strategy: Any = None) -> WorkerContext:
    """The `worker_context` of a manager on `directory`.

    On a worker's private directory (`is_private_directory`: TensorFlow builds a non-chief's
    write manager there) the worker is alone: it writes the directory itself (no second
    redirection into ``workertemp_<id>/workertemp_<id>``) and agrees with nobody.
    """
    context = worker_context(strategy)
    if context.multi_worker and is_private_directory(directory, context):
        shared = shared_counterpart(directory, context)
        return replace(context, is_chief=True, collective=False, stands_for=shared)
    return context


def write_directory(directory: str, context: WorkerContext) -> str:
    """Where this worker writes its checkpoints: `directory` for the chief.

    Other workers get ``<directory>/workertemp_<task_id>``, as in
    ``distributed_file_utils.write_dirpath`` (nothing is created here; see
    `make_write_directory`).
    """
    if context.is_chief:
        return directory
    return fs.join(directory, f"{WORKER_TEMP_PREFIX}{context.task_id}")


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
        if safeio.lexists(path):
            safeio.remove_entry(path)  # a link as a link: never what it points to
    except (tf.errors.OpError, OSError) as exc:
        logger.warning("Could not remove the worker's temporary directory %s: %s", path, exc)
