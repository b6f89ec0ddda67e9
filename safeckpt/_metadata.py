"""What safeckpt records beside each checkpoint, and the ``keep_best`` option (public types).

`CheckpointMetadata` is the content of one ``<prefix>.safeckpt.json`` file (its format:
docs/metadata.md; reading and writing it: `safeckpt._format.metadata`). `KeepBest` is the
``keep_best`` option of `SafeCheckpointManager`, `BestMode` its closed vocabulary.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Any

from safeckpt._causes import Vocabulary
from safeckpt._public import public
from safeckpt._serialize import from_jsonable, to_jsonable


@public
class BestMode(Vocabulary):
    """Whether a lower or a higher value of a metric is better."""

    MIN = "min"
    """Lower is better (a loss)."""

    MAX = "max"
    """Higher is better (an accuracy)."""


@public
@dataclass(frozen=True)
class KeepBest:
    """Keep the `k` best checkpoints by a metric beside the newest ``max_to_keep``.

    ``SafeCheckpointManager(..., keep_best=KeepBest("val_loss", mode="min", k=1))``: the
    rotation never deletes one of the `k` best checkpoints by the metric that ``save(...,
    metrics={"val_loss": ...})`` recorded; a checkpoint leaves the directory only when it is
    neither among the newest ``max_to_keep`` nor among the `k` best. Checkpoints without
    the metric (or with a value that is not a finite number) are never among the best.

    Attributes:
        metric: The key of ``save(metrics=...)`` that ranks checkpoints.
        mode: ``"min"`` (lower is better) or ``"max"``; a `BestMode` once constructed.
        k: How many of the best are kept (at least 1).

    Raises:
        TypeError: `metric` is not a string, `k` not an int, `mode` not a string.
        ValueError: `metric` is empty, `mode` is neither ``"min"`` nor ``"max"``, ``k < 1``.
    """

    metric: str
    mode: str = BestMode.MIN  # a BestMode once constructed (a str enum)
    k: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str):
            raise TypeError(f"KeepBest(metric=...) must be a str, got {self.metric!r}.")
        if not self.metric:
            raise ValueError("KeepBest(metric=...) must not be empty.")
        if not isinstance(self.mode, str):
            raise TypeError(f"KeepBest(mode=...) must be 'min' or 'max', got {self.mode!r}.")
        try:
            object.__setattr__(self, "mode", BestMode(self.mode))
        except ValueError:
            raise ValueError(
                f"KeepBest(mode=...) must be 'min' or 'max', got {self.mode!r}."
            ) from None
        if isinstance(self.k, bool) or not isinstance(self.k, int):
            raise TypeError(f"KeepBest(k=...) must be an int, got {self.k!r}.")
        if self.k < 1:
            raise ValueError(f"KeepBest(k=...) must be at least 1, got {self.k}.")

    def score(self, metrics: dict[str, float] | None) -> float | None:
        """The metric's value in `metrics` when it ranks (a finite number), else None."""
        if metrics is None or self.metric not in metrics:
            return None
        value = metrics[self.metric]
        return value if math.isfinite(value) else None

    def better(self, a: float, b: float) -> bool:
        """Whether the value `a` is strictly better than `b`."""
        return a < b if self.mode == BestMode.MIN else a > b

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dictionary of every field."""
        return to_jsonable(self)


@public
@dataclass(frozen=True)
class Variables:
    """The fingerprint of the variables a checkpoint holds (from its index, after the save).

    Attributes:
        count: How many values the checkpoint's index holds (object graph and bookkeeping
            included).
        digest: ``sha256:<hex>`` of the sorted ``key dtype shape`` lines.
        entries: ``(key, dtype, shape)`` of each value, sorted by key, when there were at most
            `safeckpt._format.metadata.LISTED_VARIABLES` of them; else None (digest only).
    """

    count: int
    digest: str
    entries: tuple[tuple[str, str, tuple[int, ...]], ...] | None = None


@public
@dataclass(frozen=True)
class CheckpointMetadata:
    """What ``SafeCheckpointManager.save()`` recorded beside one checkpoint.

    Read with ``manager.metadata(prefix)``. A checkpoint written by plain TensorFlow or an
    older safeckpt has none (None is returned); it is fully usable all the same.

    Attributes:
        prefix: The checkpoint prefix the file belongs to.
        version: The file format's version, ``"1.0"`` (a reader takes any ``1.x``).
        step: The ``N`` of ``<name>-N``.
        time: Wall-clock time of the save's end (seconds since the epoch).
        safeckpt_version: The safeckpt that wrote it.
        tensorflow_version: The TensorFlow that wrote it.
        python_version: The Python that ran it.
        host: The host name of the writing process.
        pid: Its process id.
        task: The multi-worker task that wrote it (``"worker:0"``), or None outside one.
        variables: The fingerprint of the checkpoint's variables, or None when the index
            could not be read at the save.
        metrics: ``save(metrics=...)``: name -> number (``nan`` and infinities kept).
        metadata: ``save(metadata=...)``: the user's JSON-serializable values.
        keep_best: The writing manager's ``keep_best``, or None.
    """

    prefix: str
    version: str
    step: int | None
    time: float
    safeckpt_version: str
    tensorflow_version: str
    python_version: str
    host: str
    pid: int
    task: str | None = None
    variables: Variables | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    keep_best: KeepBest | None = None

    def time_text(self) -> str:
        """The time as local ISO text (seconds)."""
        return _dt.datetime.fromtimestamp(self.time).isoformat(sep=" ", timespec="seconds")

    def writer_text(self) -> str:
        """Who wrote it, in one line: versions, host, process and time."""
        task = f", {self.task}" if self.task else ""
        return (
            f"safeckpt {self.safeckpt_version}, TensorFlow {self.tensorflow_version}, "
            f"Python {self.python_version} on {self.host} (pid {self.pid}{task}) "
            f"at {self.time_text()}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dictionary of every field (strict JSON through `dumps`)."""
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckpointMetadata:
        """Rebuild it from `to_dict` output."""
        return from_jsonable(cls, data)
