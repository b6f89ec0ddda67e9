"""Transient is not damage: retrying what the storage failed to read, then raising.

A read can fail because the bytes are bad (a checksum, a file that ends early, a missing
object: damage, proven by what the storage answered) or because the storage did not answer
(a dropped connection, ``5xx``, a timeout: `safeckpt._causes.UNPROVEN`). Only the first may
send a restore to an older checkpoint or to a fresh start; the second is tried again as
`StorageRetry` says and then raised as `StorageUnavailableError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from safeckpt._catalog.inventory import Inventory, scan
from safeckpt._causes import UNPROVEN, Cause
from safeckpt._diagnose.path import diagnose
from safeckpt._diagnosis import Diagnosis
from safeckpt._errors import RestoreError, restore_error
from safeckpt._io.tf import tf
from safeckpt._io.translate import stale_cache_wait
from safeckpt._settings import StorageRetry

logger = logging.getLogger("safeckpt")

_IO = (tf.errors.OpError, OSError)


def retrying(
    retry: StorageRetry, label: str, attempt: Callable[[], Diagnosis | None]
) -> Diagnosis | None:
    """Call `attempt` until it succeeds (None) or fails for a proven reason, or tries run out.

    Returns the last diagnosis (None on success).
    """
    tries = 1
    while True:
        diagnosis = attempt()
        if diagnosis is None or diagnosis.cause not in UNPROVEN:
            return diagnosis
        wait = retry.delay(tries)
        if wait is not None:  # an object changed behind TF's stat cache: wait it out
            wait = max(wait, max(map(stale_cache_wait, (diagnosis.error, *diagnosis.evidence))))
        if wait is None:
            note = f"Tried {tries} time(s); the storage did not serve it."
            return replace(diagnosis, evidence=(*diagnosis.evidence, note))
        logger.warning(
            "Could not read %s (%s: %s); trying again in %.1f s (try %d of %d).",
            label,
            diagnosis.cause.value,
            diagnosis.summary,
            wait,
            tries + 1,
            retry.attempts,
        )
        time.sleep(wait)
        tries += 1


def listed(
    retry: StorageRetry, directory: str, name: str, inventory: Inventory | None = None
) -> Inventory | Diagnosis:
    """The directory's inventory, listed again while the storage fails (see `retrying`).

    Returns the inventory, or the diagnosis of a directory that cannot be listed for a proven
    reason (missing, permission denied). A directory or state file the storage cannot serve
    raises `StorageUnavailableError` after the retries, whatever `StorageRetry.fall_back`
    says: without a listing nothing is known, and a fresh start could write over the run.
    """
    found: list[Inventory] = []

    def attempt() -> Diagnosis | None:
        nonlocal inventory
        current, inventory = inventory, None  # a given inventory counts as the first try
        try:
            current = scan(directory) if current is None else current
        except _IO:
            return diagnose(directory, checkpoint_name=name)
        if current.state.problem is Cause.STORAGE_UNAVAILABLE:
            return Diagnosis(
                Cause.STORAGE_UNAVAILABLE,
                "The checkpoint state file could not be read from the storage.",
                directory,
                evidence=(str(current.state.error),),
                error=current.state.error,
            )
        found.append(current)
        return None

    diagnosis = retrying(retry, directory, attempt)
    if diagnosis is None:
        return found[-1]
    if diagnosis.cause in UNPROVEN:
        raise unreadable_error(diagnosis, retry, ())
    return diagnosis


def unreadable_error(
    diagnosis: Diagnosis, retry: StorageRetry, attempts: Sequence[Diagnosis]
) -> RestoreError:
    """The error for a checkpoint (or directory) the storage did not serve after `retry`."""
    what = diagnosis.checkpoint or diagnosis.directory or "the checkpoint"
    suggestions = (
        *diagnosis.suggestions,
        "Retry when the storage answers: nothing was skipped, moved, deleted or overwritten.",
        "Check network access, credentials and the storage service's status.",
    )
    if diagnosis.checkpoint is not None and not retry.fall_back:
        suggestions = (
            *suggestions,
            "To skip a checkpoint the storage cannot serve as if it were damaged, construct "
            "the manager with storage_retry=safeckpt.StorageRetry(fall_back=True).",
        )
    found = replace(diagnosis, suggestions=tuple(dict.fromkeys(suggestions)))
    message = (
        f"Could not read {what} after {retry.attempts} tr{'y' if retry.attempts == 1 else 'ies'}; "
        "nothing shows that it is damaged, so no fallback was applied.\n" + str(found)
    )
    return restore_error(found, attempts, message)
