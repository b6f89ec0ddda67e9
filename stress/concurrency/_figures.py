"""What a scenario measured: counts per library, and the violations the oracle found."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figures:
    """One scenario's figures.

    Attributes:
        scenario: Its name.
        seconds: Wall time it took.
        counts: Per library (``safeckpt``, ``tf``), metric name -> count.
        violations: What the oracle rejected (safeckpt only; plain TF's failures are counts).
        examples: A few examples per metric, to show what a count means.
    """

    scenario: str
    seconds: float = 0.0
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, library: str, metric: str, n: int = 1, example: str | None = None) -> None:
        """Count `n` of `metric` for `library`; keep up to three examples."""
        self.counts.setdefault(library, Counter())[metric] += n
        if example is not None:
            kept = self.examples.setdefault(f"{library}: {metric}", [])
            if len(kept) < 3:
                kept.append(example)

    def violate(self, text: str) -> None:
        """Record a violation (kept in full: each one is a bug)."""
        self.violations.append(text)

    @property
    def ok(self) -> bool:
        """Whether the oracle found nothing."""
        return not self.violations

    def table(self) -> str:
        """The figures as text: one column per library."""
        libraries = sorted(self.counts)
        metrics = sorted({m for c in self.counts.values() for m in c})
        width = max([len(m) for m in metrics] + [10])
        lines = [f"{self.scenario} ({self.seconds:.0f} s)"]
        lines.append("  " + "".ljust(width) + "".join(lib.rjust(12) for lib in libraries))
        for metric in metrics:
            row = "".join(str(self.counts[lib][metric]).rjust(12) for lib in libraries)
            lines.append("  " + metric.ljust(width) + row)
        for key, kept in sorted(self.examples.items()):
            lines.append(f"  e.g. {key}: {kept[0]}")
        lines.append(f"  violations: {len(self.violations)}")
        lines.extend(f"    - {v}" for v in self.violations[:20])
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "scenario": self.scenario,
            "seconds": round(self.seconds, 1),
            "counts": {lib: dict(c) for lib, c in self.counts.items()},
            "violations": self.violations,
            "examples": self.examples,
        }
