"""``python -m stress.crash``: the command line of the crash harness."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from stress.crash._run import run


def main(argv: list[str] | None = None) -> int:
    """The ``python -m stress.crash`` command line."""
    parser = argparse.ArgumentParser(
        prog="python -m stress.crash", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--kills", type=int, default=200, help="number of kills (default 200)")
    parser.add_argument("--size-mb", type=float, default=200, help="model size in MiB (200)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--json", metavar="PATH", help="also write the summary as JSON")
    parser.add_argument("--workdir", help="where to work (default: a new temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--points", help="comma-separated kill points to cycle instead of the default schedule"
    )
    parser.add_argument("--chain-length", type=int, default=8, help="kills per directory (8)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="safeckpt-crash-"))
    workdir.mkdir(parents=True, exist_ok=True)
    points = None
    if args.points:
        cycle = [p.strip() for p in args.points.split(",") if p.strip()]
        points = [cycle[i % len(cycle)] for i in range(args.kills)]

    def say(line: str) -> None:
        if not args.quiet:
            print(line, flush=True)

    say(f"work directory: {workdir}")
    summary = run(
        args.kills,
        args.size_mb,
        args.seed,
        workdir,
        points=points,
        chain_length=args.chain_length,
        log=say,
    )
    print(summary.table())
    if args.json:
        Path(args.json).write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    if summary.ok and not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"work directory kept: {workdir}")
    if summary.violations:
        return 1
    return 2 if summary.errors else 0
