"""Who takes part in a multi-worker restore round: the workers that built the same manager.

Also this process's `Registry`: the managers it built (numbered per directory and name) and
the rounds it entered, one object instead of module globals.

A round (`safeckpt._multiworker.agreement`) is a decision shared by the workers that restore
the same checkpoint directory. A worker that never builds a manager on it (a manager only the chief
builds, TensorFlow's ``PreemptionCheckpointHandler`` giving a non-chief its own directory)
has nothing to share and must not be waited for. So each worker announces, at construction,
in TensorFlow's coordination service:

* a `Built` message at ``<manager>/built/<worker>`` for a manager on a shared directory,
  where ``<manager>`` is ``safeckpt/<digest of (directory, checkpoint_name)>/<n-th such
  manager of the process>`` (`ManagerKey`, numbered by the process's `Registry`);
* an `Instead` message at ``safeckpt/<digest>/instead/<worker>`` for a manager on its
  private ``workertemp_<id>`` directory, naming the shared directory it stands for
  (`WorkerContext.stands_for`): that worker restores its own copy instead (TensorFlow's
  layouts).

A round waits for a worker that announced its manager. For one that did not (yet), it waits
at most `JOIN_GRACE` seconds (``peer_timeout`` if shorter) from the round's start, and no
longer once that worker announced its private directory instead, or waits for this worker in
another round: then this worker decides without it. Workers started together announce their
managers within milliseconds of each other, so the grace only delays a manager that some
workers never build. A worker that announces later than that still compares its outcome with
the reports of the workers that did take part (they keep them), but cannot make them raise.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable

from safeckpt._io.tf import CoordinationService, tf
from safeckpt._multiworker.messages import (
    Built,
    Instead,
    ManagerKey,
    RoundKey,
    encode,
    instead_key,
    manager_digest,
)

#: Seconds a round waits for a worker that has not announced the round's manager.
JOIN_GRACE = 5.0
_POLL_MS = 250


class Registry:
    """What this process did in the agreement: the managers it built, the rounds it entered.

    One per process (`PROCESS`), shared by all its managers: the n-th manager on a
    (directory, checkpoint_name) is numbered by it alike on every worker. A test builds its
    own (or calls `reset`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._managers: collections.Counter[str] = collections.Counter()
        self._built: set[ManagerKey] = set()
        self._reached: set[RoundKey] = set()

    def enroll(self, directory: str, checkpoint_name: str) -> ManagerKey:
        """The key of a new manager on `directory` and `checkpoint_name` (the next number)."""
        digest = manager_digest(directory, checkpoint_name)
        with self._lock:
            self._managers[digest] += 1  # counted alike on every worker, service or not
            return ManagerKey(digest, self._managers[digest])

    def announced(self, manager: ManagerKey) -> None:
        """Record that this process announced `manager` to the others."""
        with self._lock:
            self._built.add(manager)

    def built(self, manager: ManagerKey) -> bool:
        """Whether this process built and announced `manager`."""
        with self._lock:
            return manager in self._built

    def enter(self, round_key: RoundKey) -> None:
        """Record that this process entered `round_key`."""
        with self._lock:
            self._reached.add(round_key)

    def reached(self, round_key: RoundKey) -> bool:
        """Whether this process entered `round_key` (a peer waiting in another waits forever)."""
        with self._lock:
            return round_key in self._reached

    def reset(self) -> None:
        """Forget every manager and round (for tests)."""
        with self._lock:
            self._managers.clear()
            self._built.clear()
            self._reached.clear()


#: This process's registry: the default of every `Agreement`.
PROCESS = Registry()


def announce(
    service: CoordinationService,
    manager: ManagerKey,
    worker: int,
    directory: str,
    registry: Registry,
) -> None:
    """Tell the other workers that `worker` built `manager` on `directory`."""
    with contextlib.suppress(tf.errors.OpError):  # announced already (a retry), or no service
        service.set(manager.built(worker), encode(Built(directory)))
    registry.announced(manager)


def announce_instead(
    service: CoordinationService, digest: str, worker: int, directory: str
) -> None:
    """Tell the others that `worker` restores its private `directory` instead of `digest`'s."""
    with contextlib.suppress(tf.errors.OpError):
        service.set(instead_key(digest, worker), encode(Instead(directory)))


def _present(service: CoordinationService, key: str, timeout_ms: int) -> bool:
    """Whether `key` is set within `timeout_ms`.

    Raises:
        tf.errors.OpError: The coordination service could not be asked (other than a timeout).
    """
    try:
        service.get(key, timeout_ms)
    except tf.errors.DeadlineExceededError:
        return False
    return True


def takes_part(
    service: CoordinationService,
    manager: ManagerKey,
    worker: int,
    until: float,
    gone: Callable[[], bool],
) -> bool:
    """Whether `worker` takes part in the rounds of `manager` (see the module docstring).

    Args:
        service: The coordination service.
        manager: The manager whose round this is.
        worker: The other worker's ``id_in_cluster``.
        until: `time.monotonic` deadline for its announcement (the grace).
        gone: Whether the worker is known not to come now (it waits for this worker in
            another round, or is dead); asked between polls.

    Raises:
        tf.errors.OpError: The coordination service could not be asked.
    """
    built = manager.built(worker)
    while True:
        if _present(service, manager.instead(worker), 1):
            return _present(service, built, 1)  # announced in this order, so read it after
        remaining = until - time.monotonic()
        if _present(service, built, min(_POLL_MS, int(remaining * 1000))):
            return True
        if time.monotonic() >= until or gone():
            return False


__all__ = [
    "JOIN_GRACE",
    "PROCESS",
    "Registry",
    "announce",
    "announce_instead",
    "takes_part",
]
