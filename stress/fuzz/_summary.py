"""The summary of a fuzzing run: figures per configuration, and the report table.

`Summary.add` folds in one `CaseRecord`, `merge` adds another run (the unprivileged pass),
`to_dict`/`from_dict` carry it through JSON, and `table` is what the CLI prints.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from stress.fuzz._case import Damage
from stress.fuzz._oracle import Result, Truth, intact_text


@dataclass
class CaseRecord:
    """One case: its damages and the result of every configuration."""

    index: int
    damages: list[Damage]
    truth: Truth
    results: list[Result]
    max_to_keep: int | None


@dataclass
class Summary:
    """Aggregated results of a fuzzing run."""

    seed: int
    cases: int = 0
    configs: tuple[str, ...] = ()
    user: str = ""
    kinds: str = ""  # the --kinds restriction, if any
    damage_kinds: Counter[str] = field(default_factory=Counter)
    skipped_kinds: dict[str, str] = field(default_factory=dict)
    damages_per_case: Counter[int] = field(default_factory=Counter)
    cases_with_intact: int = 0
    cases_without_intact: int = 0
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    errors: dict[str, Counter[str]] = field(default_factory=dict)
    tf_caught: dict[str, Counter[str]] = field(default_factory=dict)
    late: dict[str, Counter[str]] = field(default_factory=dict)
    benign: dict[str, Counter[str]] = field(default_factory=dict)
    silent_init_with_damaged: dict[str, int] = field(default_factory=dict)
    pinned: dict[str, int] = field(default_factory=dict)
    violation_counts: Counter[str] = field(default_factory=Counter)
    violations: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no case violated the oracle."""
        return not self.violations

    def add(self, record: CaseRecord, keep: int = 200) -> None:
        """Fold one case into the summary."""
        self.cases += 1
        self.damages_per_case[len(record.damages)] += 1
        for damage in record.damages:
            self.damage_kinds[damage.kind] += 1
        if record.truth.intact:
            self.cases_with_intact += 1
        else:
            self.cases_without_intact += 1
        for r in record.results:
            self.outcomes.setdefault(r.config, Counter())[r.outcome] += 1
            if r.outcome.startswith(("raised", "escaped")):
                key = f"{r.outcome}/{r.cause}" if r.cause else r.outcome
                self.errors.setdefault(r.config, Counter())[key] += 1
            if r.tf_caught:
                self.tf_caught.setdefault(r.config, Counter())[_after_slip(r, record.truth)] += 1
            self.late.setdefault(r.config, Counter())[r.late] += 1
            for kind in r.benign:
                self.benign.setdefault(r.config, Counter())[kind] += 1
            if r.pinned:
                self.pinned[r.config] = self.pinned.get(r.config, 0) + 1
            if (
                r.outcome == "initialized"
                and r.silent
                and record.truth.family_files
                and not record.truth.intact
            ):
                self.silent_init_with_damaged[r.config] = (
                    self.silent_init_with_damaged.get(r.config, 0) + 1
                )
            for kind, detail in r.violations:
                self.violation_counts[f"{r.config} {kind}"] += 1
                if len(self.violations) < keep:
                    self.violations.append(
                        {
                            "seed": self.seed,
                            "user": self.user,
                            "kinds": self.kinds,
                            "case": record.index,
                            "config": r.config,
                            "max_to_keep": record.max_to_keep,
                            "violation": kind,
                            "detail": detail,
                            "outcome": r.outcome,
                            "restored": r.save_path,
                            "intact": intact_text(record.truth),
                            "damages": [f"{d.kind}: {d.detail}" for d in record.damages],
                        }
                    )

    def merge(self, other: Summary) -> None:
        """Add another run's figures (e.g. the unprivileged pass) to this one."""
        self.cases += other.cases
        self.damage_kinds.update(other.damage_kinds)
        self.damages_per_case.update(other.damages_per_case)
        self.cases_with_intact += other.cases_with_intact
        self.cases_without_intact += other.cases_without_intact
        for mine, theirs in (
            (self.outcomes, other.outcomes),
            (self.errors, other.errors),
            (self.tf_caught, other.tf_caught),
            (self.late, other.late),
            (self.benign, other.benign),
        ):
            for key, counter in theirs.items():
                mine.setdefault(key, Counter()).update(counter)
        for mine_n, theirs_n in (
            (self.silent_init_with_damaged, other.silent_init_with_damaged),
            (self.pinned, other.pinned),
        ):
            for key, n in theirs_n.items():
                mine_n[key] = mine_n.get(key, 0) + n
        self.violation_counts.update(other.violation_counts)
        self.violations += other.violations
        self.skipped_kinds = {
            k: v for k, v in self.skipped_kinds.items() if other.damage_kinds.get(k, 0) == 0
        }
        self.seconds += other.seconds
        self.user += f" + {other.user}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict):
                value = {str(k): dict(v) if isinstance(v, dict) else v for k, v in value.items()}
            out[f.name] = list(value) if isinstance(value, tuple) else value
        out["ok"] = self.ok
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Summary:
        """Inverse of `to_dict` (for the unprivileged child)."""
        d = dict(d)
        d.pop("ok", None)
        s = cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})
        s.configs = tuple(s.configs)
        s.damage_kinds = Counter(s.damage_kinds)
        s.damages_per_case = Counter({int(k): v for k, v in s.damages_per_case.items()})
        s.violation_counts = Counter(s.violation_counts)
        for name in ("outcomes", "errors", "tf_caught", "late", "benign"):
            setattr(s, name, {k: Counter(v) for k, v in getattr(s, name).items()})
        return s

    def table(self) -> str:
        """The human-readable summary."""
        lines = [
            f"safeckpt corruption fuzzer: {self.cases} cases, seed {self.seed}, "
            f"{self.seconds:.0f} s, as {self.user}",
            f"  cases with an intact checkpoint left: {self.cases_with_intact}, "
            f"without: {self.cases_without_intact}; damages per case: "
            + ", ".join(f"{n}: {c}" for n, c in sorted(self.damages_per_case.items())),
            "",
            "Damage kinds applied:",
        ]
        kinds = sorted(self.damage_kinds.items(), key=lambda x: (-x[1], x[0]))
        for i in range(0, len(kinds), 4):
            lines.append("  " + "".join(f"{k:<22}{n:>5}   " for k, n in kinds[i : i + 4]))
        for kind, why in sorted(self.skipped_kinds.items()):
            lines.append(f"  {kind:<22} skipped: {why}")
        configs = list(self.configs)
        width = 52  # of the label column
        lines += ["", "Outcomes per configuration (verify/fallback):"]
        header = "  " + f"{'':<{width}}" + "".join(f"{c:>16}" for c in configs)
        lines.append(header)
        rows = sorted({o for c in configs for o in self.outcomes.get(c, {})})
        for row in rows:
            cells = "".join(f"{self.outcomes.get(c, Counter()).get(row, 0):>16}" for c in configs)
            lines.append(f"  {row:<{width}}{cells}")
        error_rows = sorted({e for c in configs for e in self.errors.get(c, {})})
        if error_rows:
            lines += ["", "Errors raised (class/cause):"]
            for row in error_rows:
                cells = "".join(f"{self.errors.get(c, Counter()).get(row, 0):>16}" for c in configs)
                lines.append(f"  {row[:width]:<{width}}{cells}")
        slip_rows = sorted({e for c in configs for e in self.tf_caught.get(c, {})})
        lines += ["", "Damage that passed verification and was caught by TensorFlow's own"]
        lines += ["checksums inside restore(), and what the fallback then did:"]
        if not slip_rows:
            lines.append("  (none)")
        for row in slip_rows:
            cells = "".join(f"{self.tf_caught.get(c, Counter()).get(row, 0):>16}" for c in configs)
            lines.append(f"  {row:<{width}}{cells}")
        late_rows = sorted({e for c in configs for e in self.late.get(c, {})})
        lines += ["", "model.late, created after restore() (deferred restoration):"]
        for row in late_rows:
            cells = "".join(f"{self.late.get(c, Counter()).get(row, 0):>16}" for c in configs)
            lines.append(f"  {row:<{width}}{cells}")
        benign_rows = sorted({e for c in configs for e in self.benign.get(c, {})})
        if benign_rows:
            lines += [
                "",
                "Restored although not byte-identical (values verified exact), by damage:",
            ]
            for row in benign_rows:
                cells = "".join(f"{self.benign.get(c, Counter()).get(row, 0):>16}" for c in configs)
                lines.append(f"  {row:<{width}}{cells}")
        if self.pinned:
            cells = "".join(f"{self.pinned.get(c, 0):>16}" for c in configs)
            lines += [
                "",
                "Restored the older checkpoint a newer, readable state file names (allowed):",
            ]
            lines.append(f"  {'(TensorFlow does the same)':<{width}}{cells}")
        if self.silent_init_with_damaged:
            cells = "".join(f"{self.silent_init_with_damaged.get(c, 0):>16}" for c in configs)
            lines += ["", "Fresh start without a reason while only damaged files were left:"]
            lines.append(f"  {'(not a violation: none intact)':<{width}}{cells}")
        lines += [""]
        if self.ok:
            lines.append("VIOLATIONS: none")
        else:
            lines.append(f"VIOLATIONS: {sum(self.violation_counts.values())}")
            for key, n in sorted(self.violation_counts.items()):
                lines.append(f"  {key:<50}{n:>6}")
            lines.append(
                "First violations (replay one: python -m stress.fuzz --seed S --only CASE,"
            )
            lines.append("add --minimize to shrink it, --as-nobody for the unprivileged pass):")
            for v in self.violations[:12]:
                who = " --as-nobody" if str(v.get("user", "")).startswith("nobody") else ""
                who += f" --kinds {v['kinds']}" if v.get("kinds") else ""
                lines.append(
                    f"  --seed {v.get('seed')} --only {v.get('case')}{who} [{v.get('config')}] "
                    f"{v.get('violation')}: {v.get('detail')}"
                )
                lines.append(f"      damages: {'; '.join(v['damages'])}")
        return "\n".join(lines)


def _after_slip(result: Result, truth: Truth) -> str:
    if result.outcome in ("restored", "fell_back"):
        ok = not any(k in ("not_newest", "wrong_values") for k, _ in result.violations)
        return "fell back to newest intact" if ok else "fell back to a wrong one"
    if result.outcome == "initialized":
        return "fresh start (none intact)" if not truth.intact else "fresh start (INTACT LEFT)"
    return f"raised ({'none intact' if not truth.intact else 'INTACT LEFT'})"
