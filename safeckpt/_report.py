"""`RestoreReport`: what a restore did, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from safeckpt._causes import Vocabulary
from safeckpt._diagnosis import Diagnosis
from safeckpt._public import public
from safeckpt._serialize import dumps, from_jsonable, to_jsonable


@public
class Outcome(Vocabulary):
    """How a restore ended."""

    RESTORED = "restored"
    """The requested checkpoint (or the newest one, for ``save_path=None``) was restored."""

    FELL_BACK = "fell_back"
    """The newest checkpoint was unusable; an earlier one was restored instead."""

    INITIALIZED = "initialized"
    """Nothing was restored; the model starts from its initialization."""


@public
@dataclass(frozen=True)
class RestoreReport:
    """The result of `SafeCheckpointManager.restore` (also kept as ``manager.last_restore``).

    Attributes:
        save_path: The restored checkpoint prefix, or None when nothing was restored.
        outcome: `Outcome.RESTORED`, `Outcome.FELL_BACK` or `Outcome.INITIALIZED`.
        requested: The explicit path asked for (normalized), or for ``save_path=None`` the
            newest checkpoint found in the directory (None when there was none).
        skipped: The `Diagnosis` of every checkpoint tried and rejected, newest first.
        status: TensorFlow's load status (``tf.train.Checkpoint.restore``'s return value);
            for `Outcome.INITIALIZED` the status of ``restore(None)``.
        step: The step number of `save_path` (the ``N`` of ``ckpt-N``), or None.
        directory: The checkpoint directory.
        reason: Why nothing was restored, for `Outcome.INITIALIZED` (None on a first run
            into an empty directory).
        notes: Facts worth knowing that did not stop the restore (e.g. the state file was
            missing and the checkpoint was found by listing the directory).
        unmatched: Program variables that received no value, by object path (``net/w``).
        unused: Checkpoint values the program did not take (an optimizer left behind).
        pending: Checkpoint values waiting for objects not created yet (an unbuilt Keras
            model): TensorFlow restores them when the objects are built.
    """

    save_path: str | None
    outcome: Outcome
    requested: str | None = None
    skipped: tuple[Diagnosis, ...] = ()
    status: Any = field(default=None, compare=False, repr=False, metadata={"serialize": False})
    step: int | None = None
    directory: str | None = None
    reason: Diagnosis | None = None
    notes: tuple[str, ...] = ()
    unmatched: tuple[str, ...] = ()
    unused: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()

    @property
    def restored(self) -> bool:
        """Whether a checkpoint was restored (`Outcome.RESTORED` or `Outcome.FELL_BACK`)."""
        return self.save_path is not None

    def assert_consumed(self) -> RestoreReport:
        """Call ``status.assert_consumed()``; see `tf.train.Checkpoint.restore`."""
        self._require_status().assert_consumed()
        return self

    def assert_existing_objects_matched(self) -> RestoreReport:
        """Call ``status.assert_existing_objects_matched()``."""
        self._require_status().assert_existing_objects_matched()
        return self

    def assert_nontrivial_match(self) -> RestoreReport:
        """Call ``status.assert_nontrivial_match()``."""
        self._require_status().assert_nontrivial_match()
        return self

    def expect_partial(self) -> RestoreReport:
        """Call ``status.expect_partial()``: silence warnings about values not restored."""
        self._require_status().expect_partial()
        return self

    def run_restore_ops(self, session: Any = None) -> None:
        """Call ``status.run_restore_ops(session)`` (graph mode)."""
        self._require_status().run_restore_ops(session)

    def initialize_or_restore(self, session: Any = None) -> None:
        """Call ``status.initialize_or_restore(session)`` (graph mode)."""
        self._require_status().initialize_or_restore(session)

    def _require_status(self) -> Any:
        if self.status is None:
            raise ValueError(
                "This RestoreReport has no TensorFlow load status (it was rebuilt from a "
                "dictionary); assertions need the report returned by restore()."
            )
        return self.status

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dictionary of every field except `status`."""
        return to_jsonable(self)

    def to_json(self, *, indent: int | None = 2) -> str:
        """`to_dict` as JSON text."""
        return dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RestoreReport:
        """Rebuild a report from `to_dict` output (without `status`)."""
        return from_jsonable(cls, data)

    def __str__(self) -> str:
        if self.save_path is None:
            head = "Initialized from scratch"
            if self.reason is not None:
                head += f": {self.reason.summary}"
        else:
            head = f"Restored {self.save_path}"
            if self.outcome is Outcome.FELL_BACK:
                head += f" (fell back past {len(self.skipped)} unusable checkpoint"
                head += "s)" if len(self.skipped) != 1 else ")"
        lines = [head]
        for diagnosis in self.skipped:
            lines.append(f"  skipped {diagnosis.checkpoint or '?'}: {diagnosis.summary}")
        lines.extend(f"  note: {note}" for note in self.notes)
        for title, paths in (
            ("received no value", self.unmatched),
            ("not used", self.unused),
            ("pending (restored when created)", self.pending),
        ):
            if paths:
                more = f" (+{len(paths) - 5} more)" if len(paths) > 5 else ""
                lines.append(f"  {title}: {', '.join(paths[:5])}{more}")
        return "\n".join(lines)
