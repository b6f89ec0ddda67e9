"""The closed vocabulary of likely causes a diagnosis can name."""

from __future__ import annotations

from enum import Enum

from safeckpt._public import public


class Vocabulary(str, Enum):
    """A closed vocabulary: members compare equal to, and print as, their string values."""

    def __str__(self) -> str:
        return str(self.value)


@public
class Cause(Vocabulary):
    """The single most likely cause of a checkpoint problem.

    The string values are stable: they appear in JSON output and in logs, and scripts may
    compare against them.
    """

    HEALTHY = "healthy"
    NO_CHECKPOINTS = "no_checkpoints"
    DIRECTORY_MISSING = "directory_missing"
    NOT_A_DIRECTORY = "not_a_directory"
    PERMISSION_DENIED = "permission_denied"
    NAME_MISMATCH = "name_mismatch"
    STATE_FILE_MISSING = "state_file_missing"
    STATE_FILE_CORRUPT = "state_file_corrupt"
    STATE_FILE_STALE = "state_file_stale"
    STATE_FILE_FOREIGN_PATHS = "state_file_foreign_paths"
    STEP_NOT_FOUND = "step_not_found"
    MISSING_INDEX = "missing_index"
    MISSING_DATA_SHARD = "missing_data_shard"
    TRUNCATED_DATA = "truncated_data"
    CORRUPT_INDEX = "corrupt_index"
    CORRUPT_DATA = "corrupt_data"
    OBJECT_GRAPH_CORRUPT = "object_graph_corrupt"
    NOT_A_REGULAR_FILE = "not_a_regular_file"
    INCOMPLETE_SAVE = "incomplete_save"
    FILE_NOT_PREFIX = "file_not_prefix"
    DIRECTORY_NOT_PREFIX = "directory_not_prefix"
    SAVED_MODEL = "saved_model"
    FOREIGN_FORMAT = "foreign_format"
    GLOB_METACHARACTERS = "glob_metacharacters"
    UNSUPPORTED_SCHEME = "unsupported_scheme"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    MODEL_MISMATCH = "model_mismatch"
    OBJECT_GRAPH_MISMATCH = "object_graph_mismatch"
    NAME_BASED_CHECKPOINT = "name_based_checkpoint"
    WORKER_UNAVAILABLE = "worker_unavailable"
    REMOVED_CONCURRENTLY = "removed_concurrently"
    CONCURRENT_WRITER = "concurrent_writer"
    DISK_FULL = "disk_full"
    NONFINITE_VALUES = "nonfinite_values"
    UNKNOWN = "unknown"


#: Causes that describe damage to one checkpoint's own files.
CHECKPOINT_DAMAGE = frozenset(
    {
        Cause.MISSING_INDEX,
        Cause.MISSING_DATA_SHARD,
        Cause.TRUNCATED_DATA,
        Cause.CORRUPT_INDEX,
        Cause.CORRUPT_DATA,
        Cause.OBJECT_GRAPH_CORRUPT,
        Cause.NOT_A_REGULAR_FILE,
        Cause.INCOMPLETE_SAVE,
        Cause.PERMISSION_DENIED,
    }
)

#: Causes that mean "the checkpoint is intact but does not fit the program" (no fallback).
MISMATCH = frozenset(
    {Cause.MODEL_MISMATCH, Cause.OBJECT_GRAPH_MISMATCH, Cause.NAME_BASED_CHECKPOINT}
)

#: Causes that mean "there is no checkpoint where one was expected" (`NotFoundError`).
NOT_FOUND = frozenset(
    {
        Cause.NO_CHECKPOINTS,
        Cause.DIRECTORY_MISSING,
        Cause.NOT_A_DIRECTORY,
        Cause.NAME_MISMATCH,
        Cause.STATE_FILE_MISSING,
        Cause.STATE_FILE_CORRUPT,
        Cause.STATE_FILE_STALE,
        Cause.STATE_FILE_FOREIGN_PATHS,
        Cause.STEP_NOT_FOUND,
        Cause.MISSING_INDEX,
        Cause.FILE_NOT_PREFIX,
        Cause.DIRECTORY_NOT_PREFIX,
        Cause.SAVED_MODEL,
        Cause.GLOB_METACHARACTERS,
        Cause.REMOVED_CONCURRENTLY,
    }
)

#: Causes that prove nothing about a checkpoint's bytes: the storage failed to answer, or
#: TensorFlow failed on files that verify. They are retried, never fallen back past by
#: default (`StorageRetry`), and never lead to quarantine or a fresh start.
UNPROVEN = frozenset({Cause.STORAGE_UNAVAILABLE, Cause.UNKNOWN})
