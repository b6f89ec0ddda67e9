"""The command line, ``python -m stress.concurrency`` (see `stress.concurrency`)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence

from stress import crash
from stress.concurrency import _scenarios
from stress.concurrency._figures import Figures


def _scenario_table(seconds: float, rounds: int) -> dict[str, Callable[[str], Figures]]:
    return {
        "construction": lambda root: _scenarios.construction(root, rounds=rounds),
        "slow_directory": lambda root: _scenarios.slow_directory(root, seconds=seconds / 4),
        "evaluator": lambda root: _scenarios.evaluator(root, seconds=seconds),
        "busy_doctor": lambda root: _scenarios.busy_doctor(root, seconds=seconds),
        "two_writers": lambda root: _scenarios.two_writers(root, tries=max(3, rounds // 50)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenarios, print their figures; 1 when any violated the oracle."""
    parser = argparse.ArgumentParser(
        prog="python -m stress.concurrency",
        description=(sys.modules["stress.concurrency"].__doc__ or "").split("\n")[0],
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=60.0,
        help="how long the evaluator and doctor scenarios run, per library (60)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=500,
        help="construction rounds of 8 processes, per library (500)",
    )
    parser.add_argument("--only", action="append", help="run only this scenario (repeatable)")
    parser.add_argument("--json", help="also write the figures as JSON")
    args = parser.parse_args(argv)  # fmt: skip
    table = _scenario_table(args.seconds, args.rounds)
    names = args.only or list(table)
    unknown = sorted(set(names) - set(table))
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {sorted(table)}")
    if "slow_directory" in names and not crash.strace_available():
        print("slow_directory: skipped (strace is not installed or may not trace)")
        names.remove("slow_directory")
    results = []
    root = tempfile.mkdtemp(prefix="safeckpt-concurrency-")
    try:
        for name in names:
            figures = table[name](root)
            results.append(figures)
            print(figures.table(), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump([f.to_dict() for f in results], handle, indent=1)
    violations = sum(len(f.violations) for f in results)
    print(f"{len(results)} scenario(s), {violations} violation(s)")
    return 1 if violations else 0
