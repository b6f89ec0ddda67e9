"""safeckpt: a drop-in `tf.train.CheckpointManager` that never silently starts from scratch."""

from safeckpt._causes import Cause
from safeckpt._diagnose import diagnose
from safeckpt._diagnosis import Diagnosis
from safeckpt._errors import (
    CheckpointCorruptedError,
    CheckpointDirectoryError,
    CheckpointNotFoundError,
    CheckpointPermissionError,
    ReadOnlyError,
    RestoreError,
    SafeCheckpointError,
    SaveError,
)
from safeckpt._info import CheckpointInfo
from safeckpt._inventory import list_checkpoints
from safeckpt._manager import SafeCheckpointManager
from safeckpt._verify import verify

__version__ = "0.1.0"

__all__ = [
    "Cause",
    "CheckpointCorruptedError",
    "CheckpointDirectoryError",
    "CheckpointInfo",
    "CheckpointNotFoundError",
    "CheckpointPermissionError",
    "Diagnosis",
    "ReadOnlyError",
    "RestoreError",
    "SafeCheckpointError",
    "SafeCheckpointManager",
    "SaveError",
    "__version__",
    "diagnose",
    "list_checkpoints",
    "verify",
]
