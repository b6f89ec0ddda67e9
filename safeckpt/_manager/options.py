"""safeckpt's own options of a `SafeCheckpointManager`, validated once, as one value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from safeckpt._io import fs
from safeckpt._manager.arguments import check_bool, check_writes
from safeckpt._restore.plan import RestoreSettings
from safeckpt._restore.policies import FallbackPolicy, normalize_fallback
from safeckpt._settings import (
    AUTO,
    SAVE_RETRY_REMOTE,
    MatchMode,
    OnEmpty,
    StorageRetry,
    VerifyLevel,
    normalize_match,
    normalize_on_empty,
    normalize_save_retry,
    normalize_storage_retry,
    normalize_verify,
)


@dataclass(frozen=True)
class Options:
    """The keyword-only options of `SafeCheckpointManager`, normalized (see its docstring)."""

    create_directory: bool
    read_only: bool
    fallback: tuple[FallbackPolicy, ...]
    on_empty: OnEmpty
    verify: VerifyLevel
    cleanup_temp: bool
    quarantine: bool
    match: MatchMode
    storage_retry: StorageRetry
    writer_lease: bool = True
    save_retry: StorageRetry | str | None = AUTO
    check_finite: bool = False
    allow_ephemeral: bool = False

    def save_retry_for(self, directory: str) -> StorageRetry | None:
        """The retry of saves into `directory`: ``"auto"`` retries on remote storage only."""
        if self.save_retry != AUTO:
            return self.save_retry  # type: ignore[return-value]
        return None if fs.scheme_of(directory) in (None, "file", "ram") else SAVE_RETRY_REMOTE

    def for_worker(self, is_chief: bool) -> Options:
        """Only the chief of a multi-worker job moves files in the shared directory."""
        return self if is_chief else replace(self, quarantine=False)

    def restore_settings(
        self,
        checkpoint: Any,
        directory: str,
        checkpoint_name: str,
        init_fn: Callable[[], Any] | None,
        options: Any,
        match: object,
    ) -> RestoreSettings:
        """What one ``restore()`` call needs (`match` overrides the manager's when given)."""
        return RestoreSettings(
            checkpoint=checkpoint,
            directory=directory,
            checkpoint_name=checkpoint_name,
            verify=self.verify,
            fallback=self.fallback,
            on_empty=self.on_empty,
            quarantine=self.quarantine and not self.read_only,
            init_fn=init_fn,
            options=options,
            match=self.match if match is None else normalize_match(match),
            retry=self.storage_retry,
        )


def manager_options(
    create_directory: object,
    read_only: object,
    fallback: object,
    on_empty: object,
    verify: object,
    cleanup_temp: object,
    quarantine: object,
    match: object,
    storage_retry: object,
    writer_lease: object = True,
    save_retry: object = AUTO,
    check_finite: object = False,
    allow_ephemeral: object = False,
) -> Options:
    """Validate the options; errors name the argument, the value and what is expected.

    Raises:
        TypeError, ValueError: An option is invalid, or writes while ``read_only=True``.
    """
    options = Options(
        create_directory=check_bool("create_directory", create_directory),
        read_only=check_bool("read_only", read_only),
        fallback=normalize_fallback(fallback),
        on_empty=normalize_on_empty(on_empty),
        verify=normalize_verify(verify),
        cleanup_temp=check_bool("cleanup_temp", cleanup_temp),
        quarantine=check_bool("quarantine", quarantine),
        match=normalize_match(match),
        storage_retry=normalize_storage_retry(storage_retry),
        writer_lease=check_bool("writer_lease", writer_lease),
        save_retry=normalize_save_retry(save_retry),
        check_finite=check_bool("check_finite", check_finite),
        allow_ephemeral=check_bool("allow_ephemeral", allow_ephemeral),
    )
    check_writes(
        options.read_only, cleanup_temp=options.cleanup_temp, quarantine=options.quarantine
    )
    return options
