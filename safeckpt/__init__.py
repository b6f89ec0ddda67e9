"""safeckpt: a drop-in `tf.train.CheckpointManager` that never silently starts from scratch."""

from safeckpt._catalog.inventory import list_checkpoints
from safeckpt._causes import Cause
from safeckpt._diagnose.path import diagnose, verify
from safeckpt._diagnosis import Diagnosis
from safeckpt._errors import (
    CheckpointCorruptedError,
    CheckpointDirectoryError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    CheckpointPermissionError,
    ConcurrentWriterError,
    NoUsableCheckpointError,
    ReadOnlyError,
    RestoreError,
    SafeCheckpointError,
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
    PreviousValid,
    Raise,
    RecoveryContext,
)
from safeckpt._settings import MatchMode, OnEmpty, StorageRetry, VerifyLevel
from safeckpt._version import __version__

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
    "StorageRetry",
    "StorageUnavailableError",
    "Variables",
    "VerifyLevel",
    "WorkerUnavailableError",
    "__version__",
    "diagnose",
    "list_checkpoints",
    "verify",
]
