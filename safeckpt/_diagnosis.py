"""`Diagnosis`: a likely cause, the evidence for it, and what to do."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from safeckpt._causes import Cause
from safeckpt._info import CheckpointInfo
from safeckpt._public import public
from safeckpt._serialize import dumps, from_jsonable, to_jsonable

#: Evidence lines of one kind a diagnosis lists; the rest are counted ("… and 9 more").
MAX_EVIDENCE = 20


@public
@dataclass(frozen=True)
class Diagnosis:
    """A structured explanation of the state of a checkpoint location.

    Attributes:
        cause: The single most likely cause, the one to fix first.
        summary: One line saying what is wrong (or that all is well).
        directory: The checkpoint directory concerned (absolute path or URI), if known.
        checkpoint: The checkpoint prefix concerned, or None.
        evidence: Facts observed, each naming the file it is about.
        suggestions: Concrete actions, with the exact path or code to use.
        candidates: Checkpoints that could be used instead (newest first).
        error: The original exception's type and first line, when there was one.
    """

    cause: Cause
    summary: str
    directory: str | None = None
    checkpoint: str | None = None
    evidence: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()
    candidates: tuple[CheckpointInfo, ...] = field(default=())
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the location is healthy."""
        return self.cause is Cause.HEALTHY

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dictionary of all fields (and ``ok``)."""
        data = to_jsonable(self)
        return {"cause": data.pop("cause"), "ok": self.ok, **data}

    def to_json(self, *, indent: int | None = 2) -> str:
        """The diagnosis as JSON text (see `to_dict`)."""
        return dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnosis:
        """Rebuild a `Diagnosis` from `to_dict` output."""
        return from_jsonable(cls, data)

    def __str__(self) -> str:
        lines = [f"{self.summary} [{self.cause.value}]"]
        if self.directory:
            lines.append(f"  directory:  {self.directory}")
        if self.checkpoint:
            lines.append(f"  checkpoint: {self.checkpoint}")
        if self.error:
            lines.append(f"  error:      {self.error}")
        if self.evidence:
            lines.append("  What was found:")
            lines.extend(f"    - {item}" for item in self.evidence)
        if self.candidates:
            lines.append("  Usable checkpoints (newest first):")
            lines.extend(
                f"    - {c.prefix}  (step {c.step if c.step is not None else '?'}"
                + (f", written {c.mtime_text()})" if c.mtime is not None else ")")
                for c in self.candidates[:5]
            )
            if len(self.candidates) > 5:
                lines.append(f"    ... and {len(self.candidates) - 5} older")
        if self.suggestions:
            lines.append("  What to do:")
            lines.extend(f"    - {item}" for item in self.suggestions)
        return "\n".join(lines)


def describe_exception(exc: BaseException) -> str:
    """``"<Type>: <first line of the message>"`` for an exception."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def capped(lines: Iterable[str], count: int, limit: int = MAX_EVIDENCE) -> list[str]:
    """The first `limit` of `lines` (an iterable of `count` lines), then "… and N more.".

    Only the lines shown are produced: `lines` may be a generator over a million names.
    """
    head = list(itertools.islice(lines, limit))
    if count > len(head):
        head.append(f"… and {count - len(head):,} more.")
    return head


def human_size(size: int | None) -> str:
    """``1234567`` gives ``"1.2 MB"`` (decimal units); None (not measured) ``"size unknown"``."""
    if size is None:
        return "size unknown"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover
