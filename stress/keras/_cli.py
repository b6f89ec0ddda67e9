"""``python -m stress.keras``: the command line of the Keras resume harness."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from stress.keras._run import run


def main(argv: list[str] | None = None) -> int:
    """The ``python -m stress.keras`` command line."""
    parser = argparse.ArgumentParser(
        prog="python -m stress.keras",
        description="Interrupt Keras fits at random batches, resume them, compare with full runs.",
    )
    parser.add_argument("--trials", type=int, default=40, help="number of trials (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--json", metavar="PATH", help="also write the summary as JSON")
    parser.add_argument("--workdir", help="where to work (default: a new temporary directory)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="safeckpt-keras-"))
    workdir.mkdir(parents=True, exist_ok=True)

    def say(line: str) -> None:
        if not args.quiet:
            print(line, flush=True)

    say(f"work directory: {workdir}")
    summary = run(args.trials, args.seed, workdir, log=say)
    print(summary.table())
    if args.json:
        Path(args.json).write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    if summary.ok and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"work directory kept: {workdir}")
    if summary.violations:
        return 1
    return 2 if summary.errors else 0
