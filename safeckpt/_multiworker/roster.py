"""Who takes part in a multi-worker restore round: the workers that built the same manager.

A round (`safeckpt._multiworker.agreement`) is a decision shared by the workers that restore
the same checkpoint directory. A worker that never builds a manager on it (a manager only the chief
builds, TensorFlow's ``PreemptionCheckpointHandler`` giving a non-chief its own directory)
has nothing to share and must not be waited for. So each worker announces, at construction,
in TensorFlow's coordination service:

* ``<key>/built/<worker>`` for a manager on a shared directory, where ``<key>`` is
  ``safeckpt/<digest of (directory, checkpoint_name)>/<n-th such manager of the process>``;
* ``safeckpt/<digest>/instead/<worker>`` for a manager on its private ``workertemp_<id>``
  directory, naming the shared directory it stands for (`WorkerContext.stands_for`): that
  worker restores its own copy instead (TensorFlow's layouts).

A round waits for a worker that announced its manager. For one that did not (yet), it waits
at most `JOIN_GRACE` seconds (``peer_timeout`` if shorter) from the round's start, and no
longer once that worker announced its private directory instead, or waits for this worker in
another round: then this worker decides without it. Workers started together announce their
managers within milliseconds of each other, so the grace only delays a manager that some
workers never build. A worker that announces later than that still compares its outcome with
the reports of the workers that did take part (they keep them), but cannot make them raise.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from safeckpt._io.tf import tf

#: Seconds a round waits for a worker that has not announced the round's manager.
JOIN_GRACE = 5.0
_POLL_MS = 250

#: The managers (``safeckpt/<digest>/<n>``) this process announced.
_built: set[str] = set()


def announce(service: Any, key: str, worker: int, directory: str) -> None:
    """Tell the other workers that `worker` built the manager `key` on `directory`."""
    with contextlib.suppress(tf.errors.OpError):  # announced already (a retry), or no service
        service.set_config_key_value(f"{key}/built/{worker}", json.dumps({"on": directory}))
    _built.add(key)


def announce_instead(service: Any, digest: str, worker: int, directory: str) -> None:
    """Tell the others that `worker` restores its private `directory` instead of `digest`'s."""
    with contextlib.suppress(tf.errors.OpError):
        service.set_config_key_value(
            f"safeckpt/{digest}/instead/{worker}", json.dumps({"on": directory})
        )


def built_here(round_name: str) -> bool:
    """Whether this process built the manager of `round_name` (``<key>/restore/<k>``)."""
    return round_name.rsplit("/restore/", 1)[0] in _built


def _present(service: Any, key: str, timeout_ms: int) -> bool:
    """Whether `key` is set within `timeout_ms`.

    Raises:
        tf.errors.OpError: The coordination service could not be asked (other than a timeout).
    """
    try:
        service.get_config_key_value(key, timeout_ms)
    except tf.errors.DeadlineExceededError:
        return False
    return True


def takes_part(service: Any, key: str, worker: int, until: float, gone: Callable[[], bool]) -> bool:
    """Whether `worker` takes part in the rounds of manager `key` (see the module docstring).

    Args:
        service: The coordination service client.
        key: The manager, ``safeckpt/<digest>/<n>``.
        worker: The other worker's ``id_in_cluster``.
        until: `time.monotonic` deadline for its announcement (the grace).
        gone: Whether the worker is known not to come now (it waits for this worker in
            another round, or is dead); asked between polls.

    Raises:
        tf.errors.OpError: The coordination service could not be asked.
    """
    digest = key.split("/")[1]
    built = f"{key}/built/{worker}"
    while True:
        if _present(service, f"safeckpt/{digest}/instead/{worker}", 1):
            return _present(service, built, 1)  # announced in this order, so read it after
        remaining = until - time.monotonic()
        if _present(service, built, max(1, min(_POLL_MS, int(remaining * 1000)))):
            return True
        if time.monotonic() >= until or gone():
            return False


__all__ = ["JOIN_GRACE", "announce", "announce_instead", "built_here", "takes_part"]
