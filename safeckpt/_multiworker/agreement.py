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
* Workers exchange typed messages (`safeckpt._multiworker.messages`); one that does not
  parse (another safeckpt version, garbage) is diagnosed, never a `KeyError`.
* Waiting is bounded: a peer that TensorFlow's coordination service reports unhealthy (its
  heartbeat stopped, about 10 s after a crash) or that has not reported within
  ``peer_timeout`` seconds makes this worker raise `WorkerUnavailableError` and post the
  diagnosis, so every live worker raises the same error.

`Agreement` is one manager's side of it (its key, its rounds so far, the keys it posted);
each round is a `Session` holding the coordination service and the round's key; the
process's managers and rounds are counted by a `roster.Registry` (`roster.PROCESS` unless
a test passes its own).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import NoReturn, TypeVar

from safeckpt._catalog.directory import validate_directory
from safeckpt._causes import Cause
from safeckpt._diagnosis import Diagnosis, describe_exception
from safeckpt._errors import CheckpointDirectoryError, restore_error
from safeckpt._io import tf as adapter
from safeckpt._io.tf import CoordinationService, tf
from safeckpt._multiworker import roster
from safeckpt._multiworker.context import WorkerContext
from safeckpt._multiworker.messages import (
    Abort,
    Failure,
    InRound,
    Message,
    MessageError,
    Opening,
    RoundKey,
    Success,
    Topic,
    decode,
    encode,
    manager_digest,
    status_key,
)

logger = logging.getLogger("safeckpt")

T = TypeVar("T")
M = TypeVar("M", bound=Message)

#: Environment variable that sets ``peer_timeout``'s default (for managers a library builds,
#: e.g. tf_keras); read by the manager's argument checks, named in the timeout's diagnosis.
PEER_TIMEOUT_ENV = "SAFECKPT_PEER_TIMEOUT"
#: Seconds between two looks at the other workers' health while waiting.
POLL_INTERVAL = 1.0
_ABORT_CHECK_MS = 50
_SERVICE_GONE = "TensorFlow's coordination service (run by worker 0) could not be asked"


def _peer_diagnosis(worker: int, failure: Failure) -> Diagnosis:
    """The diagnosis a worker reported for its failure, or one describing it."""
    note = f"Worker {worker} failed to {failure.topic.task}: {failure.error}."
    if failure.diagnosis is not None:
        found = failure.diagnosis
        return replace(found, evidence=(*found.evidence, note))
    return Diagnosis(
        Cause.UNKNOWN,
        f"Worker {worker} failed to {failure.topic.task}.",
        evidence=(note,),
        suggestions=(f"See worker {worker}'s log for its traceback.",),
        error=failure.error,
    )


class Agreement:
    """The agreement rounds of one manager (one per `SafeCheckpointManager`).

    Args:
        context: This worker's context for the manager's directory.
        directory: The manager's (normalized) directory.
        checkpoint_name: The manager's (normalized) checkpoint name.
        timeout: Seconds to wait for another worker (validated by the manager's arguments:
            ``peer_timeout``, else `PEER_TIMEOUT_ENV`, else 60).
        registry: Numbers this process's managers and records its rounds (the process's
            own, `roster.PROCESS`, unless a test passes another).
    """

    def __init__(
        self,
        context: WorkerContext,
        directory: str,
        checkpoint_name: str,
        timeout: float,
        registry: roster.Registry | None = None,
    ) -> None:
        self.context = context
        self.directory = directory
        self.timeout = timeout
        self.registry = roster.PROCESS if registry is None else registry
        self.manager = self.registry.enroll(directory, checkpoint_name)
        self.rounds = 0
        #: The keys this worker posted and has not deleted yet.
        self.published: list[str] = []
        self._announced = False
        self._announce(self._service())
        stands_for = context.stands_for
        service = adapter.coordination() if context.multi_worker else None
        if stands_for is not None and service is not None:
            digest = manager_digest(stands_for, checkpoint_name)
            roster.announce_instead(service, digest, context.id_in_cluster, directory)

    @property
    def prefix(self) -> str:
        """``safeckpt/<digest>/<n>/restore``: where this manager's rounds are keyed."""
        return f"{self.manager.path}/restore"

    def _announce(self, service: CoordinationService | None) -> None:
        """Announce this manager (once the coordination service runs)."""
        if service is not None and not self._announced:
            me = self.context.id_in_cluster
            roster.announce(service, self.manager, me, self.directory, self.registry)
            self._announced = True

    def _service(self) -> CoordinationService | None:
        """The coordination service when this manager agrees with others, else None."""
        if not (self.context.collective and self.context.multi_worker):
            return None
        return adapter.coordination()

    def validate(self, *, create: bool, read_only: bool) -> bool:
        """`validate_directory`; a failure is also posted into the first restore round."""
        try:
            return validate_directory(self.directory, create=create, read_only=read_only)
        except CheckpointDirectoryError as exc:
            service = self._service()
            if service is not None:
                session = Session(self, service, self.manager.round(1))
                failure = Failure.of(exc, Topic.DIRECTORY)
                session.post(session.key.report(session.me), failure)
                if session.me == 0:
                    session.post(session.key.start, failure)
            raise

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
        self.rounds += 1
        self._announce(service)
        session = Session(self, service, self.manager.round(self.rounds))
        return session.run(action, summarize, detail)

    def forget(self, service: CoordinationService, keep: tuple[str, ...]) -> None:
        """Delete this worker's keys of earlier rounds: every worker has read them by now."""
        for key in [k for k in self.published if k not in keep]:
            try:
                service.delete(key)
            except tf.errors.OpError as exc:  # pragma: no cover - a harmless leftover
                logger.debug("Could not delete %s: %s", key, exc)
        self.published = [k for k in self.published if k in keep]


class Session:
    """One round of one manager on this worker: the coordination service and the round's key.

    Args:
        agreement: The manager's agreement (its directory, timeout, registry, posted keys).
        service: TensorFlow's coordination service.
        key: The round.
    """

    def __init__(self, agreement: Agreement, service: CoordinationService, key: RoundKey) -> None:
        self.agreement = agreement
        self.context = agreement.context
        self.directory = agreement.directory
        self.timeout = agreement.timeout
        self.service = service
        self.key = key
        self.me = agreement.context.id_in_cluster
        self.detail: str | None = None  # this worker's outcome, once it has one

    def post(self, key: str, message: Message) -> None:
        """Post `message` at `key` (a failure to is logged: the caller's error goes on)."""
        try:
            self.service.set(key, encode(message))
        except tf.errors.OpError as exc:  # keep raising the original error
            logger.warning("Could not tell the other workers (%s): %s", key, exc)
            return
        self.agreement.published.append(key)

    def run(
        self,
        action: Callable[[], T],
        summarize: Callable[[T], str | None],
        detail: Callable[[T], str],
    ) -> T:
        """The round: see `Agreement.decide`."""
        self.agreement.registry.enter(self.key)
        self._status(InRound(self.key, self.directory))
        try:
            return self._run(action, summarize, detail)
        finally:
            self._status(None)

    def _status(self, status: InRound | None) -> None:
        """Post (or with None clear) the round this worker is in, for the others' diagnosis."""
        key = status_key(self.me)
        with contextlib.suppress(tf.errors.OpError):
            self.service.delete(key)
        if status is not None:
            with contextlib.suppress(tf.errors.OpError):
                self.service.set(key, encode(status))

    def _run(
        self,
        action: Callable[[], T],
        summarize: Callable[[T], str | None],
        detail: Callable[[T], str],
    ) -> T:
        key, me = self.key, self.me
        grace = time.monotonic() + min(roster.JOIN_GRACE, self.timeout)
        if me == 0:
            self.post(key.start, Opening())
        elif self._takes_part(0, grace):  # its writes are done once it opens
            deadline = time.monotonic() + self.timeout
            start = self._wait(key.start, 0, deadline, Opening, Failure)
            if isinstance(start, Failure):
                self._raise_failure(0, start)
        try:
            result = action()
        except BaseException as exc:
            self.post(key.report(me), Failure.of(exc, Topic.RESTORE))
            raise
        mine = Success(summarize(result), detail(result))
        self.detail = mine.detail
        self.post(key.report(me), mine)
        self._status(InRound(key, self.directory, self.detail))
        reports: dict[int, Message] = {me: mine}
        deadline = time.monotonic() + self.timeout
        for worker in range(self.context.num_workers):
            if worker != me and self._takes_part(worker, grace):
                reports[worker] = self._wait(key.report(worker), worker, deadline, Success, Failure)
        self._check_abort()
        self.agreement.forget(self.service, keep=(key.report(me), key.start))
        for worker, report in sorted(reports.items()):
            if isinstance(report, Failure):
                self._raise_failure(worker, report)
        outcomes = {w: r for w, r in sorted(reports.items()) if isinstance(r, Success)}
        if len({outcome.summary for outcome in outcomes.values()}) > 1:
            diagnosis = Diagnosis(
                Cause.UNKNOWN,
                "The workers did not restore alike.",
                evidence=tuple(
                    f"Worker {worker}: {outcome.detail}." for worker, outcome in outcomes.items()
                ),
                suggestions=(
                    "Every worker must pass the same checkpoint directory, on storage all "
                    "workers share (the chief's directory), and see the same files in it.",
                ),
            )
            raise restore_error(diagnosis, (), f"{self.context.describe()}: {diagnosis}")
        return result

    def _read(self, key: str, timeout_ms: int) -> str | None:
        """The text at `key`, or None when it is not set within `timeout_ms` (or unreadable)."""
        try:
            return self.service.get(key, timeout_ms)
        except tf.errors.OpError:
            return None

    def _check_abort(self) -> None:
        """Raise the error another worker posted when it gave up on this round."""
        text = self._read(self.key.abort, _ABORT_CHECK_MS)
        if text is None:
            return
        try:
            abort = decode(text, Abort)
        except MessageError as exc:
            diagnosis = Diagnosis(
                Cause.WORKER_UNAVAILABLE,
                f"Another worker gave up on the restore of {self.directory}, and its message "
                "is unreadable.",
                self.directory,
                evidence=(f"{self.key.abort}: {exc}.",),
                suggestions=(
                    "See the other workers' logs; every worker must run the same safeckpt version.",
                ),
            )
            raise restore_error(diagnosis, (), f"{self.context.describe()}: {diagnosis}") from None
        raise restore_error(abort.diagnosis, (), abort.message)

    def _wait(self, key: str, worker: int, deadline: float, *expected: type[M]) -> M:
        """Another worker's message at `key`, polling its health; bounded by `deadline`."""
        while True:
            remaining = deadline - time.monotonic()
            try:
                text = self.service.get(key, int(min(POLL_INTERVAL, remaining) * 1000))
            except tf.errors.DeadlineExceededError:
                pass
            except tf.errors.OpError as exc:  # the coordination service itself is gone
                self._give_up(worker, f"{_SERVICE_GONE}: {describe_exception(exc)}")
            else:
                try:
                    return decode(text, *expected)
                except MessageError as exc:
                    self._give_up(worker, f"its report is unreadable: {exc}")
            self._check_abort()
            health = self.service.task_health(self.context.coordinated_jobs(), worker)
            if health is not None:
                why = f"TensorFlow's coordination service reports it unhealthy: {health}"
                self._give_up(worker, why)
            elsewhere = self._elsewhere(worker)
            if elsewhere is not None:
                self._raise_elsewhere(worker, elsewhere)
            if time.monotonic() >= deadline:
                self._give_up(worker, f"it did not report within peer_timeout={self.timeout:g} s")

    def _elsewhere(self, worker: int) -> InRound | None:
        """The status of `worker` when it waits for this worker in a round not reached yet.

        A status that does not parse says nothing about where `worker` is: it is ignored
        (its reports, read by `_wait`, are diagnosed).
        """
        text = self._read(status_key(worker), _ABORT_CHECK_MS)
        if text is None:
            return None
        try:
            status = decode(text, InRound)
        except MessageError as exc:
            logger.debug("Worker %d's status is unreadable: %s", worker, exc)
            return None
        registry = self.agreement.registry
        if registry.reached(status.round) or not registry.built(status.round.manager):
            return None
        return status

    def _takes_part(self, worker: int, grace: float) -> bool:
        """Whether `worker` built this manager (waiting for it until `grace` at most)."""

        def gone() -> bool:
            if self._elsewhere(worker) is not None:
                return True
            jobs = self.context.coordinated_jobs()
            return self.service.task_health(jobs, worker) is not None

        manager = self.key.manager
        try:
            found = roster.takes_part(self.service, manager, worker, grace, gone)
        except tf.errors.OpError as exc:  # the coordination service itself is gone
            self._give_up(worker, f"{_SERVICE_GONE}: {describe_exception(exc)}")
        if not found:
            logger.info("Worker %d does not restore %s with us.", worker, self.directory)
        return found

    def _raise_elsewhere(self, worker: int, status: InRound) -> NoReturn:
        """`worker` waits in a round this worker has not reached: neither can go on.

        The diagnosis is posted into both rounds, so that `worker` raises it too.
        """
        theirs = f"the restore of {status.directory}"
        if status.detail:
            theirs += f" (having restored: {status.detail})"
        ours = f" (having restored: {self.detail})" if self.detail else ""
        diagnosis = Diagnosis(
            Cause.UNKNOWN,
            "The workers did not restore alike: they restore different managers.",
            self.directory,
            evidence=(
                f"{self.context.describe()} waits for worker {worker} in the restore of "
                f"{self.directory}{ours}, round {self.key.number} of this manager.",
                f"Worker {worker} waits in {theirs}, which this worker has not reached.",
            ),
            suggestions=(
                "Every worker must construct the manager with the same directory and "
                "checkpoint_name, on storage all workers share (the chief's directory), and "
                "call restore() on the same managers in the same order.",
            ),
        )
        message = f"{self.context.describe()}: {diagnosis}"
        self._abort([self.key, status.round], Abort(message, diagnosis))
        raise restore_error(diagnosis, (), message)

    def _abort(self, rounds: list[RoundKey], abort: Abort) -> None:
        """Post the error this worker raises into the rounds others may be waiting in."""
        text = encode(abort)
        for round_key in rounds:
            # Fails when another worker posted first, or when the service is gone: no matter.
            with contextlib.suppress(tf.errors.OpError):
                self.service.set(round_key.abort, text)

    def _give_up(self, worker: int, why: str) -> NoReturn:
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
        self._abort([self.key], Abort(message, diagnosis))
        raise restore_error(diagnosis, (), message)

    def _raise_failure(self, worker: int, failure: Failure) -> NoReturn:
        diagnosis = _peer_diagnosis(worker, failure)
        topic = failure.topic.task
        message = (
            f"{self.context.describe()}: worker {worker} failed to {topic}:\n{failure.message}"
        )
        if failure.topic is Topic.DIRECTORY:
            raise CheckpointDirectoryError(message, diagnosis, self.directory)
        raise restore_error(diagnosis, (), message)


__all__ = ["PEER_TIMEOUT_ENV", "Agreement", "Session"]
