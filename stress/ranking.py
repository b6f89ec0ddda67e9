"""Seeded fuzz harness for how `SafeCheckpointManager` ranks checkpoints ("newest usable").

Run from the repository root::

    python -m stress.ranking --cases 2000 [--seed S] [--workdir DIR] [--json OUT]
    python -m stress.ranking --replay repro.json      # one scenario (or a list) from JSON
    python -m stress.ranking --cases 200 --baseline   # plain tf.train.CheckpointManager

Each case draws one scenario family (`stress._ranking_scenarios.FAMILIES`) and one
configuration (``max_to_keep`` in None/1/2/3, ``verify`` quick/deep) from
``random.Random(f"{seed}:{case}")``, writes the checkpoints with plain TensorFlow in its own
temporary directory (removed afterwards), records every file's sha256 and every checkpoint's
value, then constructs a `SafeCheckpointManager`, calls ``restore()``, saves once more and
reopens the directory. The oracle (`stress._ranking_oracle`) computes the documented rule from
the recorded facts and the directory listing alone; it never calls safeckpt's own ranking or
verification. The exit status is 1 on any violation (0 with ``--baseline``). For each
violation kind the smallest scenario is shrunk (ops removed while the violation persists) and
printed as JSON for ``--replay``.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import json
import logging
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import absl.logging
import tensorflow as tf

import safeckpt
from stress import _ranking_oracle as oracle
from stress import _ranking_scenarios as scenarios
from stress._ranking_oracle import NEW_VALUE, SENTINEL, STATE, prefixes_of
from stress._ranking_scenarios import FAMILIES, NAME, sha

absl.logging.set_verbosity(absl.logging.ERROR)
tf.get_logger().setLevel(logging.ERROR)
logging.getLogger("safeckpt").setLevel(logging.CRITICAL)

Scenario = dict[str, Any]


@dataclass(frozen=True)
class Config:
    """The manager under test and its options."""

    subject: str  # "safeckpt", or "tf" for plain tf.train.CheckpointManager
    max_to_keep: int | None
    verify: str

    @property
    def label(self) -> str:
        """Short name for tables."""
        return f"{self.subject}/keep={self.max_to_keep}/{self.verify}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"subject": self.subject, "max_to_keep": self.max_to_keep, "verify": self.verify}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """Inverse of `to_dict`."""
        return cls(d["subject"], d["max_to_keep"], d["verify"])


CONFIGS = tuple(Config("safeckpt", k, v) for k in (None, 1, 2, 3) for v in ("quick", "deep"))
BASELINE = (Config("tf", None, "none"), Config("tf", 2, "none"))


def make_scenario(seed: int, case: int, configs: Sequence[Config] = CONFIGS) -> Scenario:
    """Case ``case`` of ``seed``: the same scenario every time."""
    rng = random.Random(f"{seed}:{case}")
    family = rng.choice(FAMILIES)
    config = rng.choice(list(configs))
    ops = scenarios.generate(rng, family)
    return {"family": family, "seed": seed, "case": case, "config": config.to_dict(), "ops": ops}


# ------------------------------------------------------------------------------------------
# Running one scenario.


class _Model:
    """Fresh variables holding the sentinel, and the checkpoint tracking them."""

    def __init__(self) -> None:
        self.v = tf.Variable(SENTINEL)
        self.step = tf.Variable(-1, dtype=tf.int64)
        self.ckpt = tf.train.Checkpoint(v=self.v, step=self.step)


def _err(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]


def _ckpt_files(directory: str) -> dict[str, str]:
    return {
        f: sha(os.path.join(directory, f))
        for f in sorted(os.listdir(directory))
        if prefixes_of([f]) and os.path.isfile(os.path.join(directory, f))
    }


def _quarantined(directory: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for top, _dirs, files in os.walk(os.path.join(directory, "quarantine")):
        for f in files:
            out.setdefault(f, set()).add(sha(os.path.join(top, f)))
    return out


def _outside(root: str, directory: str) -> dict[str, str]:
    out = {}
    for top, _dirs, files in os.walk(root):
        if os.path.commonpath([top, directory]) == directory:
            continue
        out.update({os.path.join(top, f): sha(os.path.join(top, f)) for f in files})
    return out


def _all_files(directory: str) -> dict[str, str]:
    """Every regular file of `directory` (metadata files included) -> sha256."""
    return {
        f: sha(os.path.join(directory, f))
        for f in sorted(os.listdir(directory))
        if os.path.isfile(os.path.join(directory, f))
    }


def _listing(directory: str) -> oracle.Listing:
    files, text, mtime = {}, None, None
    for f in os.listdir(directory):
        path = os.path.join(directory, f)
        if f == STATE and os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f_in:
                text = f_in.read()
            mtime = os.stat(path).st_mtime_ns
        elif os.path.isfile(path):
            files[f] = os.stat(path).st_mtime_ns
    return oracle.Listing(directory, files, text, mtime)


def _manager(config: Config, model: _Model, directory: str) -> Any:
    if config.subject == "tf":
        return tf.train.CheckpointManager(model.ckpt, directory, max_to_keep=config.max_to_keep)
    return safeckpt.SafeCheckpointManager(
        model.ckpt, directory, max_to_keep=config.max_to_keep, verify=config.verify
    )


def _restore(config: Config, manager: Any) -> tuple[str | None, str]:
    if config.subject == "tf":
        path = manager.restore_or_initialize()
        return path, "restored" if path else "initialized"
    report = manager.restore()
    return report.save_path, report.outcome.value


def drive(config: Config, directory: str) -> oracle.Observed:
    """Construct, restore, save once more, reopen: what the manager did."""
    o = oracle.Observed()
    model = _Model()
    try:
        manager = _manager(config, model, directory)
    except Exception as e:
        o.construct_error = _err(e)
        return o
    o.latest = manager.latest_checkpoint
    try:
        o.save_path, o.outcome = _restore(config, manager)
        o.value = float(model.v.numpy())
    except Exception as e:
        o.restore_error, o.not_found = _err(e), isinstance(e, tf.errors.NotFoundError)
        return o
    model.v.assign(NEW_VALUE)
    try:
        o.new_save = manager.save()
    except Exception as e:
        o.save_error = _err(e)
        return o
    o.after, o.quarantined = _ckpt_files(directory), _quarantined(directory)
    o.all_after = _all_files(directory)
    again = _Model()
    try:
        reopened = _manager(config, again, directory)
        o.reopen_latest = reopened.latest_checkpoint
        _restore(config, reopened)
        o.reopen_value = float(again.v.numpy())
    except Exception as e:
        o.reopen_error = _err(e)
    return o


def execute(scenario: Scenario, tmp: str) -> list[tuple[str, str]]:
    """Build the scenario under ``tmp`` and check the manager under test against the rule."""
    root = os.path.join(tmp, "s")
    run = scenarios.Run(root)
    for op in scenario["ops"]:
        run.apply(op)
    directory = run.dir
    listing = _listing(directory)
    before = oracle.Before(
        directory,
        NAME,
        oracle.rank(listing, NAME),
        dict(run.facts),
        _ckpt_files(directory),
        _outside(root, directory),
    )
    config = Config.from_dict(scenario["config"])
    tf_intact = None
    if config.subject == "safeckpt" and config.max_to_keep is None:
        shutil.copytree(root, os.path.join(tmp, "tf"))  # copy2: same bytes and mtimes
        tf_dir = os.path.join(tmp, "tf", os.path.relpath(directory, root))
        after = drive(Config("tf", None, "none"), tf_dir).after
        tf_intact = {
            c
            for c, w in before.facts.items()
            if before.intact(c) and after and all(after.get(f) == h for f, h in w.hashes.items())
        }
    files_before = _all_files(directory)
    observed = drive(config, directory)
    observed.tf_intact = tf_intact
    observed.outside_after = _outside(root, directory)
    found = oracle.check(before, observed, config.max_to_keep)
    if observed.new_save is not None:  # the save ran: its rotation decided
        found += oracle.metadata_violations(files_before, observed.all_after, observed.new_save)
    return found


def replay(scenario: Scenario, workdir: str | None = None) -> list[tuple[str, str]]:
    """Run one scenario in a temporary directory (removed afterwards)."""
    tmp = tempfile.mkdtemp(prefix="ranking-case-", dir=workdir)
    try:
        return execute(scenario, os.path.realpath(tmp))
    except Exception as e:  # a scenario the harness itself cannot build
        return [("harness_error", _err(e))]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def minimize(scenario: Scenario, kind: str, workdir: str | None = None) -> Scenario:
    """Drop ops one at a time (last first) while ``kind`` is still violated."""
    best = dict(scenario)
    changed = True
    while changed:
        changed = False
        for i in reversed(range(len(best["ops"]))):
            trial = {**best, "ops": best["ops"][:i] + best["ops"][i + 1 :]}
            if any(k == kind for k, _ in replay(trial, workdir)):
                best, changed = trial, True
    return best


# ------------------------------------------------------------------------------------------
# Many cases.


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


def run(
    cases: int, seed: int, workdir: str | None = None, configs: Sequence[Config] = CONFIGS
) -> Summary:
    """Run ``cases`` seeded cases; each in its own temporary directory, removed afterwards."""
    summary = Summary()
    start = time.perf_counter()
    for case in range(cases):
        scenario = make_scenario(seed, case, configs)
        summary.add(scenario, replay(scenario, workdir))
    summary.seconds = time.perf_counter() - start
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m stress.ranking", description=__doc__)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, help="where temporary case dirs go")
    parser.add_argument("--json", default=None, help="write the summary as JSON to this file")
    parser.add_argument("--replay", default=None, help="a scenario (or list) saved as JSON")
    parser.add_argument("--baseline", action="store_true", help="plain tf.train.CheckpointManager")
    parser.add_argument("--no-minimize", action="store_true")
    args = parser.parse_args(argv)
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
    if args.replay:
        with open(args.replay) as f:
            loaded = json.load(f)
        items = loaded if isinstance(loaded, list) else [loaded]
        bad = 0
        for item in items:
            scenario = item.get("scenario", item)
            violations = replay(scenario, args.workdir)
            print(f"{scenario['family']} {Config.from_dict(scenario['config']).label}")
            for kind, detail in violations or [("ok", "no violation")]:
                print(f"  {kind}: {detail}")
            bad += bool(violations)
        return 1 if bad else 0
    configs = BASELINE if args.baseline else CONFIGS
    summary = run(args.cases, args.seed, args.workdir, configs)
    print(summary.table())
    for kind, example in sorted(summary.examples.items()):
        scenario = example["scenario"]
        if not args.no_minimize:
            scenario = minimize(scenario, kind, args.workdir)
            example["minimal"] = scenario
            example["detail"] = dict(replay(scenario, args.workdir)).get(kind, "not reproduced")
        print(f"\n# {kind}: {example['detail']}")
        print(json.dumps({"violation": kind, "scenario": scenario}))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary.to_dict(), f, indent=1)
    return 0 if summary.ok or args.baseline else 1


if __name__ == "__main__":
    sys.exit(main())
