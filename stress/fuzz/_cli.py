"""The command line, ``python -m stress.fuzz`` (see `stress.fuzz` for the flags).

As root, the permission damage runs in an extra pass: a child ``python -m stress.fuzz``
with a hidden flag, which drops to ``nobody`` (`testing.privileges`) once everything is
imported and writes its summary as JSON for the parent to merge.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence

from stress.fuzz._case import Damage
from stress.fuzz._damage import available_kinds, make_case
from stress.fuzz._model import BASELINE, CONFIGS, Config, build_pristine
from stress.fuzz._oracle import Result, Truth, intact_text
from stress.fuzz._run import evaluate, quiet, run, scratch_dir
from stress.fuzz._shrink import minimize, replay
from stress.fuzz._summary import Summary
from testing.privileges import (
    REPO,
    drop_privileges,
    is_root,
    nobody_exists,
    python_child,
    user_name,
)


def _print_case(damages: Sequence[Damage], truth: Truth, results: Sequence[Result]) -> None:
    for d in damages:
        print(f"damage {d.kind}: {d.detail}")
        for op in d.ops:
            print(f"    {op.describe()}")
    print(f"intact: {intact_text(truth) or '(none)'}")
    for r in results:
        print(
            f"  {r.config:<14} {r.outcome:<34} restored={r.save_path} values={r.content} "
            f"cause={r.cause} late={r.late} tf_caught={r.tf_caught}"
        )
        for kind, detail in r.violations:
            print(f"      VIOLATION {kind}: {detail}")


_CHILD_FLAG = "--as-unprivileged-child"


def _child(argv: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m stress.fuzz <argv>`` in a child that drops to ``nobody``."""
    return python_child(["-m", "stress.fuzz", _CHILD_FLAG, *argv], cwd=REPO)


def _run_unprivileged(args: argparse.Namespace, cases: int) -> Summary:
    """Run `cases` extra cases (seed + 1) as ``nobody``, for the permission damage."""
    out_dir = tempfile.mkdtemp(prefix="safeckpt-fuzz-out-")
    os.chmod(out_dir, 0o777)  # the child runs as nobody
    out = os.path.join(out_dir, "summary.json")
    argv = ["--cases", str(cases), "--seed", str(args.seed + 1), "--json", out, "--quiet"]
    argv += ["--no-table", "--unprivileged-cases", "0"]
    if args.kinds:
        argv += ["--kinds", args.kinds]
    proc = _child(argv)
    try:
        with open(out) as handle:
            return Summary.from_dict(json.load(handle))
    except OSError:
        failed = Summary(seed=args.seed + 1, user="nobody")
        failed.violation_counts["unprivileged pass: harness failed"] += 1
        failed.violations.append({"violation": "harness", "detail": f"exit {proc.returncode}"})
        return failed
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 on any violation)."""
    parser = argparse.ArgumentParser(
        prog="python -m stress.fuzz",
        description=(sys.modules["stress.fuzz"].__doc__ or "").split("\n")[0],
    )
    parser.add_argument("--cases", type=int, default=2000, help="number of cases (2000)")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--json", help="also write the summary (or minimized case) as JSON")
    parser.add_argument("--kinds", help="comma-separated damage kinds (default: all)")
    parser.add_argument("--only", type=int, help="run only this case number, verbosely")
    parser.add_argument("--minimize", action="store_true", help="with --only: shrink the case")
    parser.add_argument("--replay", help="re-run a case written by --minimize --json")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="test plain tf.train.CheckpointManager.restore_or_initialize instead "
        "(for comparison; exit status 0)",
    )
    parser.add_argument(
        "--unprivileged-cases",
        type=int,
        default=None,
        help="as root: extra cases run as 'nobody' with permission damage (default: cases/10)",
    )
    parser.add_argument(
        "--as-nobody", action="store_true", help="as root: run everything as 'nobody'"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--no-table", action="store_true", help="do not print the summary")
    parser.add_argument(_CHILD_FLAG, action="store_true", help=argparse.SUPPRESS)
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(raw)
    if args.as_nobody and is_root() and not args.as_unprivileged_child:
        if not nobody_exists():
            parser.error("--as-nobody: there is no user 'nobody'")
        return _child([a for a in raw if a != "--as-nobody"]).returncode
    if args.as_unprivileged_child:
        drop_privileges()
    kinds = args.kinds.split(",") if args.kinds else None
    configs = BASELINE if args.baseline else CONFIGS
    if args.replay:
        with open(args.replay) as handle:
            found = json.load(handle)
        truth, results = replay(found, configs)
        _print_case([Damage.from_dict(d) for d in found["damages"]], truth, results)
        return 1 if any(r.violations for r in results) and not args.baseline else 0
    if args.only is not None:
        return _run_only(args, kinds, configs)

    def progress(done: int, summary: Summary) -> None:
        if not args.quiet and (done % 100 == 0 or done == args.cases):
            n = sum(summary.violation_counts.values())
            print(f"  {done}/{args.cases} cases, {n} violations", file=sys.stderr, flush=True)

    summary = run(args.cases, args.seed, kinds=kinds, configs=configs, progress=progress)
    extra = args.unprivileged_cases
    if extra is None:
        extra = args.cases // 10 if not args.baseline else 0
    if extra and is_root() and not args.as_unprivileged_child:
        if nobody_exists():
            summary.merge(_run_unprivileged(args, extra))
        else:
            print("no user 'nobody': permission damage not exercised", file=sys.stderr)
    if not args.no_table:
        print(summary.table())
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(summary.to_dict(), handle, indent=1, default=str)
    return 0 if summary.ok or args.baseline else 1


def _run_only(
    args: argparse.Namespace, kinds: Sequence[str] | None, configs: Sequence[Config]
) -> int:
    if args.minimize:
        found = minimize(args.seed, args.only, kinds=kinds, configs=configs)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(found, handle, indent=1)
        shown = {k: v for k, v in found.items() if k != "damages"}
        print(json.dumps(shown, indent=2))
        return 1 if found.get("violation") and not args.baseline else 0
    quiet()
    usable, _skipped = available_kinds(kinds)
    with scratch_dir(None) as root:
        pristine = build_pristine(root)
        case, damages, max_to_keep = make_case(pristine, root, args.seed, args.only, usable)
        try:
            truth, results = evaluate(case, configs, max_to_keep)
        finally:
            case.remove()
    print(f"seed {args.seed}, case {args.only}, max_to_keep={max_to_keep}, as {user_name()}")
    _print_case(damages, truth, results)
    return 1 if any(r.violations for r in results) and not args.baseline else 0
