"""safeckpt: a drop-in `tf.train.CheckpointManager` that never silently starts from scratch.

Every public name is imported from its module on first use (PEP 562), so ``import safeckpt``
does not import TensorFlow: the command line reads local directories without it, and
``from safeckpt import SafeCheckpointManager`` imports TensorFlow as it always did.
"""

from typing import TYPE_CHECKING

from safeckpt._public import lazy_exports
from safeckpt._version import __version__

if TYPE_CHECKING:
    from safeckpt._catalog.inventory import list_checkpoints
    from safeckpt._causes import Cause
    from safeckpt._diagnose.path import diagnose, verify
    from safeckpt._diagnosis import Diagnosis
    from safeckpt._errorbase import CheckpointDirectoryError, SafeCheckpointError
    from safeckpt._errors import (
        CheckpointCorruptedError,
        CheckpointMismatchError,
        CheckpointNotFoundError,
        CheckpointPermissionError,
        ConcurrentWriterError,
        NoUsableCheckpointError,
        ReadOnlyError,
        RestoreError,
        SaveError,
        StorageUnavailableError,
        WorkerUnavailableError,
    )
    from safeckpt._info import CheckpointInfo
    from safeckpt._manager.manager import SafeCheckpointManager
    from safeckpt._metadata import BestMode, CheckpointMetadata, KeepBest, Variables
    from safeckpt._report import Outcome, RestoreReport
    from safeckpt._restore.policies import (
        FallbackPolicy,
        FreshInit,
        GiveUp,
        PreviousValid,
        Raise,
        RecoveryContext,
        StartFresh,
        TryCheckpoint,
    )
    from safeckpt._settings import MatchMode, OnEmpty, StorageRetry, VerifyLevel

#: Public name -> the module that defines it.
_EXPORTS = {
    "BestMode": "safeckpt._metadata",
    "Cause": "safeckpt._causes",
    "CheckpointCorruptedError": "safeckpt._errors",
    "CheckpointDirectoryError": "safeckpt._errorbase",
    "CheckpointInfo": "safeckpt._info",
    "CheckpointMetadata": "safeckpt._metadata",
    "CheckpointMismatchError": "safeckpt._errors",
    "CheckpointNotFoundError": "safeckpt._errors",
    "CheckpointPermissionError": "safeckpt._errors",
    "ConcurrentWriterError": "safeckpt._errors",
    "Diagnosis": "safeckpt._diagnosis",
    "FallbackPolicy": "safeckpt._restore.policies",
    "FreshInit": "safeckpt._restore.policies",
    "GiveUp": "safeckpt._restore.policies",
    "KeepBest": "safeckpt._metadata",
    "MatchMode": "safeckpt._settings",
    "NoUsableCheckpointError": "safeckpt._errors",
    "OnEmpty": "safeckpt._settings",
    "Outcome": "safeckpt._report",
    "PreviousValid": "safeckpt._restore.policies",
    "Raise": "safeckpt._restore.policies",
    "ReadOnlyError": "safeckpt._errors",
    "RecoveryContext": "safeckpt._restore.policies",
    "RestoreError": "safeckpt._errors",
    "RestoreReport": "safeckpt._report",
    "SafeCheckpointError": "safeckpt._errorbase",
    "SafeCheckpointManager": "safeckpt._manager.manager",
    "SaveError": "safeckpt._errors",
    "StorageRetry": "safeckpt._settings",
    "StartFresh": "safeckpt._restore.policies",
    "StorageUnavailableError": "safeckpt._errors",
    "TryCheckpoint": "safeckpt._restore.policies",
    "Variables": "safeckpt._metadata",
    "VerifyLevel": "safeckpt._settings",
    "WorkerUnavailableError": "safeckpt._errors",
    "diagnose": "safeckpt._diagnose.path",
    "list_checkpoints": "safeckpt._catalog.inventory",
    "verify": "safeckpt._diagnose.path",
}

__all__ = [
    "BestMode",
    "Cause",
    "CheckpointCorruptedError",
    "CheckpointDirectoryError",
    "CheckpointInfo",
    "CheckpointMetadata",
    "CheckpointMismatchError",
    "CheckpointNotFoundError",
    "CheckpointPermissionError",
    "ConcurrentWriterError",
    "Diagnosis",
    "FallbackPolicy",
    "FreshInit",
    "GiveUp",
    "KeepBest",
    "MatchMode",
    "NoUsableCheckpointError",
    "OnEmpty",
    "Outcome",
    "PreviousValid",
    "Raise",
    "ReadOnlyError",
    "RecoveryContext",
    "RestoreError",
    "RestoreReport",
    "SafeCheckpointError",
    "SafeCheckpointManager",
    "SaveError",
    "StartFresh",
    "StorageRetry",
    "StorageUnavailableError",
    "TryCheckpoint",
    "Variables",
    "VerifyLevel",
    "WorkerUnavailableError",
    "__version__",
    "diagnose",
    "list_checkpoints",
    "verify",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
