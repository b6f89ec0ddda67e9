"""``python -m stress.hostile``: run seeded cases, print the figures, exit 1 on a violation.

python -m stress.hostile --cases 2000 [--seed S] [--json PATH]
python -m stress.hostile --seed S --only N [--keep] [--minimize]   # one case, verbosely
python -m stress.hostile --case index/dtype/restore@8:112 [--keep]  # a reported case
python -m stress.hostile --cases 400 --families fs --entries save_cleanup,cli_repair
python -m stress.hostile --cases 2000 --code /other/checkout       # its safeckpt
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence

from stress.hostile._case import Case
from stress.hostile._generate import FAMILIES, build, generate, parse_key
from stress.hostile._inputs_index import Pristine
from stress.hostile._oracle import Bounds
from stress.hostile._run import CODE_ENV, CaseResult, Runner, pristine_files, runner
from stress.hostile._summary import Summary

DEFAULT_SEED = 20260219


def _split(text: str | None) -> list[str] | None:
    return [t for t in text.split(",") if t] if text else None


def make_cases(
    active: Runner,
    count: int,
    seed: int,
    *,
    start: int = 0,
    families: Sequence[str] = FAMILIES,
    kinds: Sequence[str] | None = None,
    entries: Sequence[str] | None = None,
    proc_rate: float = 0.0,
) -> list[Case]:
    """`count` cases of `seed` (skipping indices the filters exclude)."""
    pristine = Pristine(pristine_files(active.pristine))
    cases: list[Case] = []
    index = start
    while len(cases) < count and index < start + 200 * count + 1000:
        case = generate(
            seed, index, pristine, families=families, kinds=kinds, entries=entries,
            proc_rate=proc_rate,
        )  # fmt: skip
        if case is not None and (not case.unprivileged or active.can_run_unprivileged):
            cases.append(case)
        index += 1
    return cases


def run(
    count: int,
    seed: int,
    *,
    workdir: str | None = None,
    bounds: Bounds | None = None,
    families: Sequence[str] = FAMILIES,
    kinds: Sequence[str] | None = None,
    entries: Sequence[str] | None = None,
    proc_rate: float = 0.0,
    progress: bool = False,
) -> tuple[Summary, list[CaseResult]]:
    """Run `count` seeded cases; returns the summary and every case's result."""
    summary = Summary(seed=seed, code=os.environ.get(CODE_ENV, ""))
    start = time.monotonic()
    results = []
    with runner(workdir, bounds) as active:
        cases = make_cases(
            active, count, seed, families=families, kinds=kinds, entries=entries,
            proc_rate=proc_rate,
        )  # fmt: skip
        for n, case in enumerate(cases, 1):
            result = active.run_case(case)
            results.append(result)
            summary.add(result)
            if progress and (n % 100 == 0 or n == len(cases)):
                print(
                    f"  {n}/{len(cases)} cases, {summary.violating_cases} violating, "
                    f"{time.monotonic() - start:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
        summary.worker_starts = active.main.starts + (active.nobody.starts if active.nobody else 0)
    summary.seconds = time.monotonic() - start
    return summary, results


def _print_result(result: CaseResult) -> None:
    for line in result.case.describe():
        print(line)
    print(f"  outcome: {result.outcome} ({result.seconds:.1f} s)")
    for key, value in result.facts.items():
        print(f"    {key}: {str(value)[:300]}")
    for kind, detail in result.violations:
        print(f"  VIOLATION {kind}: {detail}")


def minimize(active: Runner, case: Case, kind: str) -> Case:
    """Drop operations one at a time while a violation of `kind` persists."""
    ops = list(case.ops)
    i = 0
    while i < len(ops) and len(ops) > 1:
        trial = dataclasses.replace(case, ops=tuple(ops[:i] + ops[i + 1 :]))
        if any(k == kind for k, _ in active.run_case(trial).violations):
            ops = ops[:i] + ops[i + 1 :]
        else:
            i += 1
    return dataclasses.replace(case, ops=tuple(ops))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stress.hostile",
        description="Hostile inputs against every safeckpt entry point (see stress.hostile).",
    )
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--only", type=int, help="run only case N of the seed, verbosely")
    parser.add_argument("--case", help="run only this case key (family/kind/entry@seed:index)")
    parser.add_argument("--keep", action="store_true", help="with --only: keep the case tree")
    parser.add_argument("--minimize", action="store_true", help="with --only: drop ops")
    parser.add_argument("--families", help=f"comma-separated subset of {','.join(FAMILIES)}")
    parser.add_argument("--kinds", help="comma-separated input kinds")
    parser.add_argument("--entries", help="comma-separated entry points")
    parser.add_argument("--timeout", type=float, default=Bounds.timeout, help="seconds per call")
    parser.add_argument(
        "--proc-rate", type=float, default=0.01,
        help="share of CLI cases also run as a `python -m safeckpt` process (0.01)",
    )  # fmt: skip
    parser.add_argument("--code", help="put this checkout's safeckpt under test")
    parser.add_argument("--workdir", help="where case trees go (default: a temporary directory)")
    parser.add_argument("--json", help="also write the summary as JSON")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.code:
        os.environ[CODE_ENV] = os.path.abspath(args.code)
    bounds = dataclasses.replace(Bounds(), timeout=args.timeout)
    families = _split(args.families) or list(FAMILIES)
    kinds, entries = _split(args.kinds), _split(args.entries)
    if args.only is not None or args.case:
        return _only(args, bounds)
    summary, _results = run(
        args.cases, args.seed, workdir=args.workdir, bounds=bounds, families=families,
        kinds=kinds, entries=entries, proc_rate=args.proc_rate, progress=not args.quiet,
    )  # fmt: skip
    print(summary.table())
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(summary.to_dict(), handle, indent=1)
    return 0 if summary.ok else 1


def _only(args: argparse.Namespace, bounds: Bounds) -> int:
    workdir = args.workdir or (tempfile.mkdtemp(prefix="safeckpt-hostile-") if args.keep else None)
    with runner(workdir, bounds) as active:
        pristine = Pristine(pristine_files(active.pristine))
        if args.case:
            family, kind, entry, seed, index = parse_key(args.case)
            case = build(seed, index, family, kind, entry, pristine)
        else:
            found = generate(args.seed, args.only, pristine, proc_rate=args.proc_rate)
            assert found is not None
            case = found
        result = active.run_case(case, keep=args.keep)
        _print_result(result)
        if args.keep:
            print(f"  case tree kept in {os.path.join(active.workdir, f'case-{case.index}')}")
        if args.minimize and result.violations and len(case.ops) > 1:
            smaller = minimize(active, case, result.violations[0][0])
            print(f"\nminimized to {len(smaller.ops)} of {len(case.ops)} operations:")
            _print_result(active.run_case(smaller))
        return 1 if result.violations else 0
