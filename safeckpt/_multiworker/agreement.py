"""Multi-worker agreement: the one decision every worker must share, and nothing else.

Under `tf.distribute.MultiWorkerMirroredStrategy` every worker restores from the chief's
directory, and the restore decision (which checkpoint, or a fresh start) is a deterministic
function of its files. What can still differ between workers is I/O, or a worker that failed
to validate the directory. The rule (docs/fallback.md, "Multi-worker training"):

* Rounds happen only in ``restore()`` (and ``restore_or_initialize()``): the decision every
  worker must share. Construction and ``save()`` run none (a save's collectives are
  TensorFlow's). A directory error at construction is published into the manager's first
  restore round, where every other worker raises it too.
* A round is keyed by what it decides: ``safeckpt/<digest of (directory, checkpoint_name)>/
  <n-th manager this process built on them>/restore/<k-th restore of that manager>/<worker>``.
  A manager another worker does not build, or a restore of another directory, can therefore
  not shift anyone's keys.
* A round waits only for the workers that built the same manager (`safeckpt._multiworker.roster`): a
  manager only some workers build is decided by those.
* A manager decides alone outside collective multi-worker training, when TensorFlow's
  coordination service is not running, and on a directory with the worker's own
  ``workertemp_<task_id>`` in it (see `safeckpt._multiworker.context.manager_context`).
* The chief (worker 0, the only writer) opens each round once everything it wrote before is
  complete; the others decide after that, then all exchange outcomes and compare.
* Waiting is bounded: a peer that TensorFlow's coordination service reports unhealthy (its
  heartbeat stopped, about 10 s after a crash) or that has not reported within
  ``peer_timeout`` seconds makes this worker raise `WorkerUnavailableError` and post the
  diagnosis, so every live worker raises the same error.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, NoReturn, TypeVar

from safeckpt._catalog.directory import validate_directory
from safeckpt._causes import Cause
from safeckpt._diagnosis import Diagnosis, describe_exception
from safeckpt._errors import CheckpointDirectoryError, restore_error
from safeckpt._io import tf as adapter
from safeckpt._io.tf import tf
from safeckpt._multiworker import roster
from safeckpt._multiworker.context import WorkerContext

logger = logging.getLogger("safeckpt")

T = TypeVar("T")

#: Environment variable that sets ``peer_timeout``'s default (for managers a library builds,
#: e.g. tf_keras); read by the manager's argument checks, named in the timeout's diagnosis.
PEER_TIMEOUT_ENV = "SAFECKPT_PEER_TIMEOUT"
#: Seconds between two looks at the other workers' health while waiting.
POLL_INTERVAL = 1.0
_ABORT_CHECK_MS = 50

_TOPICS = {"directory": "use the checkpoint directory", "restore": "restore"}

#: How many managers this process built on each (directory, checkpoint_name) key.
_instances: collections.Counter[str] = collections.Counter()
#: The rounds this process has entered (a peer waiting in another one waits forever).
_reached: set[str] = set()


def _digest(directory: str, checkpoint_name: str) -> str:
    return hashlib.sha256(json.dumps([directory, checkpoint_name]).encode()).hexdigest()[:16]


def _failure_report(exc: BaseException, kind: str) -> dict[str, Any]:
    diagnosis = getattr(exc, "diagnosis", None)
    return {
        "ok": False,
        "kind": kind,
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


class Agreement:
    """The agreement rounds of one manager (one per `SafeCheckpointManager`).

    Args:
        context: This worker's context for the manager's directory.
        directory: The manager's (normalized) directory.
        checkpoint_name: The manager's (normalized) checkpoint name.
        timeout: Seconds to wait for another worker (validated by the manager's arguments:
            ``peer_timeout``, else `PEER_TIMEOUT_ENV`, else 60).
    """

    def __init__(
        self, context: WorkerContext, directory: str, checkpoint_name: str, timeout: float
    ) -> None:
        self.context = context
        self.directory = directory
        self.timeout = timeout
        digest = _digest(directory, checkpoint_name)
        _instances[digest] += 1  # counted alike on every worker, even before the service runs
        self.key = f"safeckpt/{digest}/{_instances[digest]}"
        self.prefix = f"{self.key}/restore"
        self._rounds = 0
        self._detail: str | None = None  # this worker's outcome in the current round
        self._published: list[str] = []
        self._announced = False
        self._announce(self._service())
        stands_for = context.stands_for
        service = adapter.coordination_context() if context.multi_worker else None
        if stands_for is not None and service is not None:
            me, name = context.id_in_cluster, checkpoint_name
            roster.announce_instead(service, _digest(stands_for, name), me, directory)

    def _announce(self, service: Any) -> None:
        """Announce this manager (once the coordination service runs)."""
        if service is not None and not self._announced:
            roster.announce(service, self.key, self.context.id_in_cluster, self.directory)
            self._announced = True

    def _service(self) -> Any:
        """The coordination service client when this manager agrees with others, else None."""
        if not (self.context.collective and self.context.multi_worker):
            return None
        return adapter.coordination_context()

    def validate(self, *, create: bool, read_only: bool) -> bool:
        """`validate_directory`; a failure is also posted into the first restore round."""
        try:
            return validate_directory(self.directory, create=create, read_only=read_only)
        except CheckpointDirectoryError as exc:
            service = self._service()
            if service is not None:
                report = json.dumps(_failure_report(exc, "directory"))
                base = f"{self.prefix}/1"
                keys = [f"{base}/{self.context.id_in_cluster}"]
                if self.context.id_in_cluster == 0:
                    keys.append(f"{base}/start")
                for key in keys:
                    self._post(service, key, report)
            raise

    def _post(self, service: Any, key: str, value: str) -> bool:
        try:
            service.set_config_key_value(key, value)
        except tf.errors.OpError as exc:  # keep raising the original error
            logger.warning("Could not tell the other workers (%s): %s", key, exc)
            return False
        self._published.append(key)
        return True

    def decide(
        self,
        action: Callable[[], T],
        summarize: Callable[[T], str | None],
        detail: Callable[[T], str],
    ) -> T:
        """Run the restore `action` on every worker; raise everywhere unless all agree.

        Each worker publishes its outcome (success with ``summarize(result)``, or its error)
        and reads the others'. A worker whose own `action` raised re-raises it (after
        publishing); the others raise the error rebuilt from its diagnosis, or a
        `RestoreError` when the summaries differ.

        Returns:
            What `action` returned.
        """
        service = self._service()
        if service is None:
            return action()
        self._rounds += 1
        base = f"{self.prefix}/{self._rounds}"
        self._detail = None
        _reached.add(base)
        self._status(service, {"round": base, "directory": self.directory, "detail": None})
        try:
            return self._round(service, base, action, summarize, detail)
        finally:
            self._status(service, None)

    def _status(self, service: Any, status: dict[str, Any] | None) -> None:
        """Post (or with None clear) the round this worker is in, for the others' diagnosis."""
        key = f"safeckpt/in_round/{self.context.id_in_cluster}"
        with contextlib.suppress(tf.errors.OpError):
            service.delete_config_key_value(key)
        if status is not None:
            with contextlib.suppress(tf.errors.OpError):
                service.set_config_key_value(key, json.dumps(status))

    def _round(
        self,
        service: Any,
        base: str,
        action: Callable[[], T],
        summarize: Callable[[T], str | None],
        detail: Callable[[T], str],
    ) -> T:
        me = self.context.id_in_cluster
        self._announce(service)
        grace = time.monotonic() + min(roster.JOIN_GRACE, self.timeout)
        if me == 0:
            self._post(service, f"{base}/start", json.dumps({"ok": True}))
        elif self._takes_part(service, base, 0, grace):  # its writes are done once it opens
            start = self._wait(service, base, f"{base}/start", 0, time.monotonic() + self.timeout)
            if not start.get("ok"):
                self._raise_failure(0, start)
        try:
            result = action()
        except BaseException as exc:
            self._post(service, f"{base}/{me}", json.dumps(_failure_report(exc, "restore")))
            raise
        value = summarize(result)
        self._detail = detail(result)
        mine = {"ok": True, "value": value, "detail": self._detail}
        self._post(service, f"{base}/{me}", json.dumps(mine))
        self._status(service, {"round": base, "directory": self.directory, "detail": self._detail})
        reports: dict[int, dict[str, Any]] = {me: mine}
        deadline = time.monotonic() + self.timeout
        for worker in range(self.context.num_workers):
            if worker != me and self._takes_part(service, base, worker, grace):
                reports[worker] = self._wait(service, base, f"{base}/{worker}", worker, deadline)
        abort = self._get(service, f"{base}/abort", _ABORT_CHECK_MS)
        if abort is not None:
            self._raise_abort(abort)
        self._forget(service, keep=(f"{base}/{me}", f"{base}/start"))
        for worker, report in sorted(reports.items()):
            if not report.get("ok"):
                self._raise_failure(worker, report)
        if len({json.dumps(report.get("value")) for report in reports.values()}) > 1:
            diagnosis = Diagnosis(
                Cause.UNKNOWN,
                "The workers did not restore alike.",
                evidence=tuple(
                    f"Worker {worker}: {report.get('detail')}."
                    for worker, report in sorted(reports.items())
                ),
                suggestions=(
                    "Every worker must pass the same checkpoint directory, on storage all "
                    "workers share (the chief's directory), and see the same files in it.",
                ),
            )
            raise restore_error(diagnosis, (), f"{self.context.describe()}: {diagnosis}")
        return result

    def _forget(self, service: Any, keep: tuple[str, ...]) -> None:
        """Delete this worker's keys of earlier rounds: every worker has read them by now."""
        for key in [k for k in self._published if k not in keep]:
            try:
                service.delete_config_key_value(key)
            except tf.errors.OpError as exc:  # pragma: no cover - a harmless leftover
                logger.debug("Could not delete %s: %s", key, exc)
        self._published = [k for k in self._published if k in keep]

    @staticmethod
    def _get(service: Any, key: str, timeout_ms: int) -> dict[str, Any] | None:
        try:
            value = json.loads(service.get_config_key_value(key, timeout_ms))
        except (tf.errors.OpError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def _wait(
        self, service: Any, base: str, key: str, worker: int, deadline: float
    ) -> dict[str, Any]:
        """Another worker's report at `key`, polling its health; bounded by `deadline`."""
        while True:
            remaining = deadline - time.monotonic()
            try:
                text = service.get_config_key_value(
                    key, max(1, int(min(POLL_INTERVAL, remaining) * 1000))
                )
            except tf.errors.DeadlineExceededError:
                pass
            except tf.errors.OpError as exc:  # the coordination service itself is gone
                why = "TensorFlow's coordination service (run by worker 0) could not be asked"
                self._give_up(service, base, worker, f"{why}: {describe_exception(exc)}")
            else:
                try:
                    report = json.loads(text)
                except ValueError:
                    report = None
                if not isinstance(report, dict):
                    self._give_up(service, base, worker, f"its report is unreadable: {text!r}")
                return report
            abort = self._get(service, f"{base}/abort", _ABORT_CHECK_MS)
            if abort is not None:
                self._raise_abort(abort)
            health = adapter.task_health(service, self._jobs(), worker)
            if health is not None:
                self._give_up(
                    service,
                    base,
                    worker,
                    f"TensorFlow's coordination service reports it unhealthy: {health}",
                )
            elsewhere = self._elsewhere(service, worker)
            if elsewhere is not None:
                self._raise_elsewhere(service, base, worker, elsewhere)
            if time.monotonic() >= deadline:
                self._give_up(
                    service,
                    base,
                    worker,
                    f"it did not report within peer_timeout={self.timeout:g} s",
                )

    def _elsewhere(self, service: Any, worker: int) -> dict[str, Any] | None:
        """The status of `worker` when it waits for this worker in a round not reached yet."""
        status = self._get(service, f"safeckpt/in_round/{worker}", _ABORT_CHECK_MS)
        name = str(status.get("round")) if status is not None else ""
        return status if name and name not in _reached and roster.built_here(name) else None

    def _takes_part(self, service: Any, base: str, worker: int, grace: float) -> bool:
        """Whether `worker` built this manager (waiting for it until `grace` at most)."""

        def gone() -> bool:
            if self._elsewhere(service, worker) is not None:
                return True
            return adapter.task_health(service, self._jobs(), worker) is not None

        try:
            found = roster.takes_part(service, self.key, worker, grace, gone)
        except tf.errors.OpError as exc:  # the coordination service itself is gone
            why = "TensorFlow's coordination service (run by worker 0) could not be asked"
            self._give_up(service, base, worker, f"{why}: {describe_exception(exc)}")
        if not found:
            logger.info("Worker %d does not restore %s with us.", worker, self.directory)
        return found

    def _raise_elsewhere(
        self, service: Any, base: str, worker: int, status: Mapping[str, Any]
    ) -> NoReturn:
        """`worker` waits in a round this worker has not reached: neither can go on.

        The diagnosis is posted into both rounds, so that `worker` raises it too.
        """
        theirs = f"the restore of {status.get('directory')}"
        if status.get("detail"):
            theirs += f" (having restored: {status['detail']})"
        ours = f" (having restored: {self._detail})" if self._detail else ""
        diagnosis = Diagnosis(
            Cause.UNKNOWN,
            "The workers did not restore alike: they restore different managers.",
            self.directory,
            evidence=(
                f"{self.context.describe()} waits for worker {worker} in the restore of "
                f"{self.directory}{ours}, round {self._rounds} of this manager.",
                f"Worker {worker} waits in {theirs}, which this worker has not reached.",
            ),
            suggestions=(
                "Every worker must construct the manager with the same directory and "
                "checkpoint_name, on storage all workers share (the chief's directory), and "
                "call restore() on the same managers in the same order.",
            ),
        )
        message = f"{self.context.describe()}: {diagnosis}"
        self._abort(service, [base, str(status.get("round"))], message, diagnosis)
        raise restore_error(diagnosis, (), message)

    def _abort(self, service: Any, bases: list[str], message: str, diagnosis: Diagnosis) -> None:
        """Post the error this worker raises into the rounds others may be waiting in."""
        report = json.dumps({"ok": False, "message": message, "diagnosis": diagnosis.to_dict()})
        for base in bases:
            # Fails when another worker posted first, or when the service is gone: no matter.
            with contextlib.suppress(tf.errors.OpError):
                service.set_config_key_value(f"{base}/abort", report)

    def _jobs(self) -> list[tuple[str, int]]:
        """The coordinated jobs in `id_in_cluster` order: the chief job, then the workers."""
        context = self.context
        if context.task_type == "chief":
            chiefs = 1
        else:
            chiefs = context.id_in_cluster - (context.task_id or 0)
        jobs = [("chief", chiefs)] if chiefs else []
        return [*jobs, ("worker", context.num_workers - chiefs)]

    def _give_up(self, service: Any, base: str, worker: int, why: str) -> NoReturn:
        """Raise `WorkerUnavailableError` here, and post it for every other worker."""
        why = why.rstrip(". ")
        me = self.context.describe()
        diagnosis = Diagnosis(
            Cause.WORKER_UNAVAILABLE,
            f"Worker {worker} did not take part in the restore of {self.directory}: {why}.",
            self.directory,
            evidence=(f"{me} waited for worker {worker}'s report: {why}.",),
            suggestions=(
                f"See worker {worker}'s log: it may have crashed, been preempted or be stuck.",
                "Every worker must construct this manager and call restore() on it alike; "
                "restart all workers together.",
                f"A slow worker needs a longer peer_timeout (or {PEER_TIMEOUT_ENV}); it is "
                f"{self.timeout:g} s.",
            ),
        )
        message = f"{me}: {diagnosis}"
        self._abort(service, [base], message, diagnosis)
        raise restore_error(diagnosis, (), message)

    def _raise_abort(self, report: Mapping[str, Any]) -> NoReturn:
        try:
            diagnosis = Diagnosis.from_dict(report["diagnosis"])
        except (KeyError, ValueError, TypeError):
            diagnosis = Diagnosis(Cause.WORKER_UNAVAILABLE, str(report.get("message")))
        raise restore_error(diagnosis, (), str(report.get("message", diagnosis)))

    def _raise_failure(self, worker: int, report: Mapping[str, Any]) -> NoReturn:
        kind = str(report.get("kind", "restore"))
        topic = _TOPICS.get(kind, kind)
        diagnosis = _peer_diagnosis(topic, worker, report)
        message = f"{self.context.describe()}: worker {worker} failed to {topic}:\n" + str(
            report.get("message", "")
        )
        error: Exception
        if kind == "directory":
            error = CheckpointDirectoryError(message, diagnosis, self.directory)
        else:
            error = restore_error(diagnosis, (), message)
        raise error


__all__ = ["Agreement"]
