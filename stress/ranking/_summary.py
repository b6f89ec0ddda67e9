"""`Summary`: what many `stress.ranking` cases did, by family and violation kind."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from stress.ranking._case import Config, Scenario
from stress.ranking._scenarios import FAMILIES


@dataclass
class Summary:
    """Counts by family and violation kind, and the smallest scenario of each kind."""

    cases: int = 0
    seconds: float = 0.0
    families: Counter[str] = field(default_factory=Counter)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_config: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No violation at all."""
        return not self.counts

    @property
    def kinds(self) -> set[str]:
        """Every violation kind seen."""
        return {k for _f, k in self.counts}

    def add(self, scenario: Scenario, violations: list[tuple[str, str]]) -> None:
        """Count one case."""
        self.cases += 1
        self.families[scenario["family"]] += 1
        for kind in dict(violations):
            self.counts[scenario["family"], kind] += 1
            self.by_config[Config.from_dict(scenario["config"]).label, kind] += 1
            old = self.examples.get(kind)
            if old is None or len(scenario["ops"]) < len(old["scenario"]["ops"]):
                detail = dict(violations)[kind]
                self.examples[kind] = {"violation": kind, "detail": detail, "scenario": scenario}

    def table(self) -> str:
        """Families x violation kinds, as text."""
        kinds = sorted(self.kinds)
        width = max([len(f) for f in FAMILIES] + [6])
        head = f"{'family':<{width}} {'cases':>5} " + " ".join(f"{k:>{len(k)}}" for k in kinds)
        lines = [head]
        for fam in FAMILIES:
            cells = " ".join(f"{self.counts[fam, k]:>{len(k)}}" for k in kinds)
            lines.append(f"{fam:<{width}} {self.families[fam]:>5} {cells}")
        for k in kinds:
            where = sorted((c, n) for (c, kk), n in self.by_config.items() if kk == k)
            lines.append(f"  {k} by config: " + ", ".join(f"{c} {n}" for c, n in where))
        per100 = 100 * self.seconds / max(self.cases, 1)
        lines.append(f"{self.cases} cases in {self.seconds:.1f} s ({per100:.1f} s per 100 cases)")
        lines.append("no violations" if self.ok else f"violation kinds: {', '.join(kinds)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        counts = [{"family": f, "kind": k, "n": n} for (f, k), n in sorted(self.counts.items())]
        return {
            "cases": self.cases,
            "seconds": self.seconds,
            "families": dict(self.families),
            "counts": counts,
            "examples": self.examples,
        }
