"""``python -m stress.ranking``: the command line of the ranking fuzzer."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from stress.ranking._case import BASELINE, CONFIGS, Config
from stress.ranking._run import replay, run
from stress.ranking._shrink import minimize


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m stress.ranking", description=sys.modules["stress.ranking"].__doc__
    )
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
