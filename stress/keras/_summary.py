"""`Trial` (one interrupted and resumed ``fit``) and `Summary` (a run of `stress.keras`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from stress.keras._oracle import Config


@dataclass
class Trial:
    """One configuration, interrupted once and resumed."""

    index: int
    config: Config
    interruption: str
    at_batch: int  # the batch count at which the interruption was sent or raised
    trained: int = 0  # batches the interrupted run trained
    started_after: int | None = None  # batches the resumed run found backed up
    exit_status: int | None = None  # of the interrupted run
    missed: bool = False  # the interrupted run finished before the signal came
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the harness failed, not safeckpt
    seconds: float = 0.0


@dataclass
class Summary:
    """The result of `run`."""

    trials: list[Trial] = field(default_factory=list)
    seed: int = 0
    seconds: float = 0.0

    @property
    def violations(self) -> list[str]:
        """Every failed check, as ``trial N (interruption): message``."""
        return [
            f"trial {t.index} ({t.interruption}): {v}" for t in self.trials for v in t.violations
        ]

    @property
    def errors(self) -> list[str]:
        """Everything the harness could not do as planned."""
        return [f"trial {t.index} ({t.interruption}): {e}" for t in self.trials for e in t.errors]

    @property
    def ok(self) -> bool:
        """No violation and no harness error."""
        return not self.violations and not self.errors

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable summary with every trial."""
        return {
            "seed": self.seed,
            "seconds": round(self.seconds, 1),
            "violations": self.violations,
            "errors": self.errors,
            "trials": [asdict(t) for t in self.trials],
        }

    def table(self) -> str:
        """A human-readable summary."""
        lines = [
            f"keras resume harness: {len(self.trials)} trials, seed {self.seed}, "
            f"{self.seconds:.0f} s",
            "",
            f"{'interruption':<12} {'input':<10} {'trials':>6} {'missed':>6} "
            f"{'mid-epoch':>9} {'violations':>10}",
        ]
        groups = Counter((t.interruption, t.config.input) for t in self.trials)
        for (interruption, kind), count in sorted(groups.items()):
            trials = [
                t for t in self.trials if (t.interruption, t.config.input) == (interruption, kind)
            ]
            mid = sum(1 for t in trials if t.started_after is not None and t.started_after % 6)
            lines.append(
                f"{interruption:<12} {kind:<10} {count:>6} {sum(t.missed for t in trials):>6} "
                f"{mid:>9} {sum(1 for t in trials if t.violations):>10}"
            )
        lines.append(f"violations: {len(self.violations)}, harness errors: {len(self.errors)}")
        lines += [f"  {v}" for v in self.violations + self.errors]
        return "\n".join(lines)
