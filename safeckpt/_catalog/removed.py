"""A restore candidate another process removed meanwhile (its rotation), told from damage.

A checkpoint that was complete in the listing and whose files then vanish while it is being
verified or read was not damaged: a trainer's ``max_to_keep`` rotation deleted it. The
directory is listed again (`relisted_if_gone`) and the restore goes on with the new newest;
only after `RELISTS` such removals in one restore does it raise, with the cause
``removed_concurrently``.
"""

from __future__ import annotations

from safeckpt._catalog.inventory import Inventory, scan
from safeckpt._causes import NOT_FOUND, UNPROVEN, Cause
from safeckpt._diagnosis import Diagnosis
from safeckpt._info import CheckpointInfo
from safeckpt._io import fs
from safeckpt._io.errors import io_errors

#: How many removed candidates one restore steps over before it raises.
RELISTS = 5

#: What verification or TensorFlow's reader report when a checkpoint's files are gone.
_GONE = NOT_FOUND | {Cause.MISSING_DATA_SHARD}


def relisted_if_gone(
    info: CheckpointInfo, diagnosis: Diagnosis, *, unproven: bool = False
) -> Inventory | None:
    """A new inventory when `info` is no longer complete in it (removed), else None.

    Only a diagnosis of missing files is looked into (with `unproven`, also a read that
    failed for no proven reason: a file that vanished while it was read); damage (a
    truncated shard, a bad checksum) is damage whatever a listing says.
    """
    if diagnosis.cause not in _GONE and not (unproven and diagnosis.cause in UNPROVEN):
        return None
    try:
        fresh = scan(fs.dirname(info.prefix))
    except io_errors():
        return None
    still = next((c for c in fresh.checkpoints if c.prefix == info.prefix), None)
    return None if still is not None and still.complete else fresh


def removed_diagnosis(info: CheckpointInfo, removed: list[str]) -> Diagnosis:
    """The diagnosis when another process kept removing the candidates, newest last."""
    return Diagnosis(
        Cause.REMOVED_CONCURRENTLY,
        f"{info.basename} was removed while it was being restored: another process deleted "
        "it (most likely its max_to_keep rotation), and so was each newer one tried after it.",
        fs.dirname(info.prefix),
        info.prefix,
        (
            f"Listed complete, then gone before they could be read: {', '.join(removed)}.",
            f"The directory was listed again {len(removed)} times during this restore.",
        ),
        (
            "Another process saves into this directory and deletes old checkpoints faster "
            "than this one can read them: give it a larger max_to_keep, or restore less often.",
            "Retry the restore: nothing here is damaged.",
        ),
    )
