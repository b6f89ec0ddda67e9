"""The figures of a run: cases, outcomes, violations by kind, and distinct findings.

A finding is a violation kind, where it came from and the input kind, with case keys.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from stress.hostile._run import CaseResult


def signature(kind: str, detail: str, result: CaseResult) -> str:
    """What makes two violations the same finding."""
    where = ""
    found = re.search(r" at (\w+\.py:\d+)$", detail)
    if found:
        where = found.group(1)
    return f"{kind} | {where or '-'} | {result.case.family}/{result.case.kind}"


@dataclass
class Finding:
    signature: str
    count: int = 0
    entries: Counter[str] = field(default_factory=Counter)
    cases: list[str] = field(default_factory=list)
    detail: str = ""
    input: str = ""


@dataclass
class Summary:
    seed: int
    cases: int = 0
    seconds: float = 0.0
    families: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    entries: Counter[str] = field(default_factory=Counter)
    unprivileged: int = 0
    processes: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    violation_kinds: Counter[str] = field(default_factory=Counter)
    violating_cases: int = 0
    findings: dict[str, Finding] = field(default_factory=dict)
    slowest: list[tuple[float, str]] = field(default_factory=list)
    worker_starts: int = 0
    code: str = ""

    @property
    def ok(self) -> bool:
        return not self.violating_cases

    def add(self, result: CaseResult) -> None:
        case = result.case
        self.cases += 1
        self.families[case.family] += 1
        self.kinds[f"{case.family}/{case.kind}"] += 1
        self.entries[case.entry] += 1
        self.unprivileged += case.unprivileged
        self.processes += case.proc
        self.outcomes[result.outcome] += 1
        self.slowest = sorted([*self.slowest, (result.seconds, case.id)], reverse=True)[:5]
        if not result.violations:
            return
        self.violating_cases += 1
        for kind, detail in result.violations:
            self.violation_kinds[kind] += 1
            sig = signature(kind, detail, result)
            finding = self.findings.setdefault(sig, Finding(sig, detail=detail, input=case.detail))
            finding.count += 1
            finding.entries[case.entry] += 1
            if len(finding.cases) < 5:
                finding.cases.append(case.key)

    def table(self) -> str:
        lines = [
            f"safeckpt hostile-input harness: {self.cases} cases, seed {self.seed}, "
            f"{self.seconds:.0f} s{f', code under test: {self.code}' if self.code else ''}",
            "  families: "
            + ", ".join(f"{k} {n}" for k, n in sorted(self.families.items()))
            + f"; {self.unprivileged} as the unprivileged user; {self.processes} also as a "
            f"`python -m safeckpt` process; worker starts: {self.worker_starts}",
            f"  input kinds: {len(self.kinds)}, entry points: {len(self.entries)}",
            "",
            "Outcomes: " + ", ".join(f"{k} {n}" for k, n in self.outcomes.most_common()),
            "",
            f"Violations: {sum(self.violation_kinds.values())} in {self.violating_cases} cases",
        ]
        for kind, n in self.violation_kinds.most_common():
            lines.append(f"  {kind:<40}{n:>6}")
        if self.findings:
            lines += [
                "",
                f"Distinct findings ({len(self.findings)}): violation | where | input kind",
            ]
            for f in sorted(self.findings.values(), key=lambda f: -f.count):
                entries = ", ".join(f"{e} {n}" for e, n in f.entries.most_common(6))
                more = len(f.entries) - 6
                lines.append(f"  {f.signature}  x{f.count}")
                lines.append(f"      entry points: {entries}{f' +{more} more' if more > 0 else ''}")
                lines.append(f"      e.g. --case {f.cases[0]}")
                lines.append(f"      input: {f.input[:110]}")
                lines.append(f"      {f.detail[:200]}")
        lines += ["", "Slowest cases: " + ", ".join(f"{c} {s:.1f} s" for s, c in self.slowest)]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "cases": self.cases,
            "seconds": self.seconds,
            "code": self.code,
            "families": dict(self.families),
            "kinds": dict(self.kinds),
            "entries": dict(self.entries),
            "unprivileged": self.unprivileged,
            "processes": self.processes,
            "outcomes": dict(self.outcomes),
            "violation_kinds": dict(self.violation_kinds),
            "violating_cases": self.violating_cases,
            "findings": [
                {
                    "signature": f.signature,
                    "count": f.count,
                    "entries": dict(f.entries),
                    "cases": f.cases,
                    "detail": f.detail,
                    "input": f.input,
                }
                for f in self.findings.values()
            ],
            "ok": self.ok,
        }
