"""Diagnosing a restore candidate: before TensorFlow reads it, and after TensorFlow failed.

Failures are classified by probing the files (verification), not by TensorFlow's irregular
exception classes or messages.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

from safeckpt._causes import Cause
from safeckpt._diagnose.path import diagnose
from safeckpt._diagnosis import Diagnosis, describe_exception
from safeckpt._format.layout import INDEX_SUFFIX
from safeckpt._format.verify import check_prefix
from safeckpt._info import CheckpointInfo
from safeckpt._io import fs
from safeckpt._io.tf import tf
from safeckpt._io.translate import cause_of
from safeckpt._settings import VerifyLevel

#: What TensorFlow raises while restoring a checkpoint (see the notes on its irregular classes).
RESTORE_ERRORS = (tf.errors.OpError, IndexError, ValueError, UnicodeDecodeError, OSError)


def stage_diagnosis(prefix: str, exc: BaseException) -> Diagnosis:
    """Diagnose an error TensorFlow raised while restoring `prefix`, by probing its files."""
    directory = fs.dirname(prefix)
    try:
        has_index = tf.io.gfile.exists(prefix + INDEX_SUFFIX)
    except RESTORE_ERRORS:
        has_index = False
    probe = check_prefix(prefix, deep=True) if has_index else diagnose(prefix)
    seen = f"TensorFlow raised {describe_exception(exc)}"
    if not probe.ok:
        return replace(probe, evidence=(*probe.evidence, seen + "."), error=describe_exception(exc))
    storage = cause_of(exc, Cause.UNKNOWN)
    if storage in (Cause.STORAGE_UNAVAILABLE, Cause.PERMISSION_DENIED):
        # The files verify now: the storage failed while TensorFlow read them.
        return Diagnosis(
            storage,
            f"The storage did not serve {fs.basename(prefix)} while TensorFlow read it.",
            directory,
            prefix,
            (f"{prefix}: every tensor's checksum matches (deep check).", seen + "."),
            ("Retry when the storage answers.",),
            error=describe_exception(exc),
        )
    mismatch = isinstance(exc, (ValueError, tf.errors.InvalidArgumentError)) and not isinstance(
        exc, UnicodeDecodeError
    )
    if mismatch:
        return Diagnosis(
            Cause.MODEL_MISMATCH,
            f"{fs.basename(prefix)} is intact but does not fit the program's variables.",
            directory,
            prefix,
            (f"{prefix}: every tensor's checksum matches (deep check).", seen + "."),
            (
                "Restore with the model configuration the checkpoint was written with "
                "(layer sizes, dtypes, mixed precision policy), or start this configuration "
                "in a new directory.",
                f"List what the checkpoint holds: tf.train.list_variables({prefix!r}).",
            ),
            error=describe_exception(exc),
        )
    return Diagnosis(
        Cause.UNKNOWN,
        f"TensorFlow could not restore {fs.basename(prefix)}, although its files verify.",
        directory,
        prefix,
        (f"{prefix}: every tensor's checksum matches (deep check).", seen + "."),
        (f"Run `safeckpt doctor {directory}` and retry; the storage may have failed briefly.",),
        error=describe_exception(exc),
    )


def create_save_counter(checkpoint: Any) -> None:
    """Create `tf.train.Checkpoint`'s lazily built ``save_counter`` before a restore.

    Otherwise TensorFlow restores it in a second ``RestoreV2`` op, after the one that assigns
    every existing variable: a damaged ``save_counter`` tensor then fails the restore with the
    model already holding the rejected checkpoint's values (and a fresh start would not be
    fresh). Created first, it is read by the same op, which fails before assigning anything.
    """
    with contextlib.suppress(AttributeError):
        _ = checkpoint.save_counter


def inventory_diagnosis(info: CheckpointInfo, level: VerifyLevel) -> Diagnosis:
    """Diagnose a candidate without restoring it (inventory problems, then verification)."""
    directory = fs.dirname(info.prefix)
    known = {
        Cause.STATE_FILE_STALE: (
            f"The state file names {info.basename}, whose files are gone.",
            (f"{info.prefix}.index does not exist.",),
        ),
        Cause.INCOMPLETE_SAVE: (
            f"{info.basename} was never completed (an interrupted save).",
            tuple(f"{fs.join(directory, f)} is left over." for f in info.files),
        ),
    }
    for cause, (summary, evidence) in known.items():
        if cause in info.problems:
            return Diagnosis(cause, summary, directory, info.prefix, evidence)
    if level is VerifyLevel.NONE and not info.problems:
        return Diagnosis(
            Cause.HEALTHY, f"{info.basename} was not verified.", directory, info.prefix
        )
    return check_prefix(info.prefix, deep=level is VerifyLevel.DEEP)
