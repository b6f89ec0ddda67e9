"""`Trial` (one kill and the resume after it) and `Summary` (a run of `stress.crash`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from stress.crash._child import MAX_TO_KEEP
from stress.crash._inject import POINTS, RANDOM

#: How a resume chose what to restore. The first three are right; the others violations.
OUTCOMES = {
    "resumed-newest": "restored the newest complete checkpoint",
    "fell-back": "skipped an incomplete newer one, restored the newest complete checkpoint",
    "initialized-correctly": "started fresh, nothing complete on disk",
    "wrong-checkpoint": "restored something else than the newest complete checkpoint",
    "started-fresh": "started fresh although a complete checkpoint existed",
    "restore-failed": "restore() raised",
}


@dataclass
class Trial:
    """One kill and the resume after it."""

    index: int
    chain: int
    point: str
    cleanup_temp: bool
    target: int | None = None  # the save the kill was aimed at
    landed: str = ""  # where it landed (see `where_landed`), or "after_save"
    killed_step: int | None = None  # the save that was running when the process died
    complete_before: list[int] = field(default_factory=list)
    leftovers_before: list[str] = field(default_factory=list)
    disk_before: list[str] = field(default_factory=list)  # "name size mtime" after the kill
    newest_complete: int | None = None
    newest_unlisted: bool = False  # the state file did not list the newest complete one
    outcome: str = ""  # how the resume chose; see `OUTCOMES` (violations are kept apart)
    restore_outcome: str | None = None
    restored: int | None = None
    skipped: list[str] = field(default_factory=list)
    saved: int | None = None
    complete_after: list[int] = field(default_factory=list)
    leftovers_after: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the harness failed, not safeckpt
    kill_delay: float | None = None  # random kills: seconds after the save started
    logs: list[str] = field(default_factory=list)  # side logs of the killed and resumed process
    seconds: float = 0.0

    @property
    def as_intended(self) -> bool | None:
        """Whether a deterministic kill landed where it was aimed (None for random kills)."""
        if self.point == RANDOM:
            return None
        return self.landed == self.point


@dataclass
class Summary:
    """The result of `run`."""

    kills: int
    size_mb: float
    seed: int
    workdir: str
    strace: bool
    trials: list[Trial] = field(default_factory=list)
    seconds: float = 0.0
    skipped_points: list[str] = field(default_factory=list)
    safeckpt: str = ""  # the package the children imported

    @property
    def violations(self) -> list[str]:
        """Every failed check, as ``trial N (point): message``."""
        return [f"trial {t.index} ({t.point}): {v}" for t in self.trials for v in t.violations]

    @property
    def errors(self) -> list[str]:
        """Everything the harness could not do as planned."""
        return [f"trial {t.index} ({t.point}): {e}" for t in self.trials for e in t.errors]

    @property
    def ok(self) -> bool:
        """No violation and no harness error."""
        return not self.violations and not self.errors

    def outcomes(self) -> Counter[str]:
        """How many trials ended in each outcome."""
        return Counter(t.outcome for t in self.trials)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable summary with every trial."""
        return {
            "kills": self.kills,
            "size_mb": self.size_mb,
            "seed": self.seed,
            "workdir": self.workdir,
            "strace": self.strace,
            "seconds": round(self.seconds, 1),
            "skipped_points": self.skipped_points,
            "safeckpt": self.safeckpt,
            "outcomes": dict(self.outcomes()),
            "resumed_from_unlisted": sum(
                1 for t in self.trials if t.newest_unlisted and t.restored == t.newest_complete
            ),
            "violations": self.violations,
            "errors": self.errors,
            "trials": [asdict(t) | {"as_intended": t.as_intended} for t in self.trials],
        }

    def table(self) -> str:
        """A human-readable summary table."""
        lines = [
            f"crash harness: {len(self.trials)} kills of a {self.size_mb:g} MiB model, "
            f"seed {self.seed}, max_to_keep={MAX_TO_KEEP}, {self.seconds:.0f} s, "
            f"safeckpt from {self.safeckpt or '?'}"
            + ("" if self.strace else " (strace unavailable: C++-level points skipped)"),
            "",
            f"{'kill point':<18} {'kills':>5} {'landed':>7} {'newest':>7} {'fell':>5} "
            f"{'init':>5} {'wrong':>6} {'unlisted':>8} {'violations':>10}",
        ]
        order = [*POINTS, RANDOM]
        for point in order:
            trials = [t for t in self.trials if t.point == point]
            if not trials:
                continue
            landed = "-" if point == RANDOM else str(sum(1 for t in trials if t.as_intended))
            count = Counter(t.outcome for t in trials)
            unlisted = sum(1 for t in trials if t.newest_unlisted)
            bad = sum(1 for t in trials if t.violations)
            lines.append(
                f"{point:<18} {len(trials):>5} {landed:>7} {count['resumed-newest']:>7} "
                f"{count['fell-back']:>5} {count['initialized-correctly']:>5} "
                f"{_wrong(count):>6} {unlisted:>8} {bad:>10}"
            )
        total = self.outcomes()
        lines.append(
            f"{'total':<18} {len(self.trials):>5} {'':>7} {total['resumed-newest']:>7} "
            f"{total['fell-back']:>5} {total['initialized-correctly']:>5} {_wrong(total):>6} "
            f"{sum(1 for t in self.trials if t.newest_unlisted):>8} "
            f"{sum(1 for t in self.trials if t.violations):>10}"
        )
        randoms = [t for t in self.trials if t.point == RANDOM]
        if randoms:
            where = Counter(t.landed for t in randoms)
            lines += [
                "",
                "random kills landed: " + ", ".join(f"{k} {v}" for k, v in where.most_common()),
            ]
        left = Counter(
            "cleanup_temp=True" if t.cleanup_temp else "cleanup_temp=False"
            for t in self.trials
            if t.leftovers_after
        )
        lines += [
            "",
            "columns: landed = deterministic kill landed at the aimed point; newest = resumed "
            "from the newest complete checkpoint; fell = fell back past an incomplete newer "
            "one to the newest complete; init = started fresh with nothing complete on disk; "
            "wrong = resumed from anything else, started fresh although a complete checkpoint "
            "existed, or restore() raised; unlisted = the newest complete checkpoint was not in "
            "the state file yet; violations = trials with any failed check (wrong resume, a "
            "complete checkpoint lost or overwritten, leftovers with cleanup_temp=True).",
            f"trials with leftovers after the resumed save: {dict(left) or 0}",
            f"violations: {len(self.violations)}; harness errors: {len(self.errors)}",
        ]
        lines += [f"  VIOLATION {v}" for v in self.violations]
        lines += [f"  ERROR {e}" for e in self.errors]
        return "\n".join(lines)


def _wrong(count: Counter[str]) -> int:
    return sum(n for outcome, n in count.items() if outcome in _WRONG)


_WRONG = ("wrong-checkpoint", "started-fresh", "restore-failed")
