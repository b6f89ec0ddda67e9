"""Side-by-side timings: plain `tf.train.CheckpointManager` against `SafeCheckpointManager`.

Run from the repository root (``make bench`` does)::

    python benchmarks/bench.py --output docs/benchmarks.md
    python benchmarks/bench.py --quick          # small sizes, a smoke run in ~a minute
    python benchmarks/bench.py --json run.json  # also save the measured data
    python benchmarks/bench.py --from-json run.json --output docs/benchmarks.md  # re-render

Part 1 (a 200-variable, 64 MB model): construction on a directory holding several
checkpoints, ``save()`` with ``max_to_keep=3`` (each save sweeps one), and restore of the
newest checkpoint (plain ``checkpoint.restore(manager.latest_checkpoint)`` and TF's
``restore_or_initialize`` against ``SafeCheckpointManager.restore()`` at each verify level).
Plain and safe runs alternate within every round (order reversed every other round, so
neither side always goes first), in one process, on directories of the same shape; warm-up
rounds are discarded.

Part 2 (a 1 GB checkpoint): ``safeckpt.verify`` quick and deep against a full TensorFlow
restore into variables and ``cat <files> > /dev/null``, with a warm page cache and, when
``/proc/sys/vm/drop_caches`` is writable (root), with a cold one.

Part 3 (`benchmarks._gcs`, on unless ``--no-gcs`` or fake-gcs-server cannot run): requests
and wall time on TensorFlow's real gs:// client at 20 ms per request, for 3, 100 and 1,000
checkpoints, plain against safeckpt (construction, ``latest_checkpoint``, restore), and
safeckpt's listing, diagnosis, verification and ``safeckpt ls``.

Part 4 (`benchmarks._cli`): the command line as whole processes: ``safeckpt doctor DIR``
against ``python -c "import tensorflow"``, and ``python -m safeckpt ls`` of 1,000 gs://
checkpoints with the CLI's default block size against TensorFlow's. ``--only cli`` runs it
alone.

Measuring (`benchmarks._measure`) returns plain data (`benchmarks._data`); rendering
(`benchmarks._render`) turns it into the markdown. ``--from-json`` renders saved data without
measuring (and without importing TensorFlow). Not part of ``make test``; no timing is
asserted anywhere else.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # run as a script from a checkout without an install
    sys.path.insert(0, str(_ROOT))

from benchmarks._cli import CliResult, measure_cli  # noqa: E402
from benchmarks._cli import checks as cli_checks  # noqa: E402
from benchmarks._cli import section as cli_section  # noqa: E402
from benchmarks._data import Measurements, log  # noqa: E402
from benchmarks._gcs import GCS_QUICK_SIZES, SIZES, GcsResult, measure_gcs  # noqa: E402
from benchmarks._render import checks, report  # noqa: E402


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes and few rounds (smoke run)")
    p.add_argument("--repeats", type=int, default=None, help="measured rounds (default 15)")
    p.add_argument("--warmup", type=int, default=None, help="discarded rounds (default 2)")
    p.add_argument("--output", type=Path, default=None, help="write the markdown here")
    p.add_argument("--json", type=Path, default=None, help="also write the measured data here")
    p.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="render data saved by --json instead of measuring",
    )
    p.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: tmp)")
    p.add_argument(
        "--cold-repeats",
        type=int,
        default=None,
        help="rounds with a cold page cache, 0 to skip (default 3; 0 with --quick)",
    )
    p.add_argument("--profile", action="store_true", help="append cProfile listings")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--model-mb", type=float, default=None, help="model size (default 64)")
    p.add_argument("--big-mb", type=float, default=None, help="large checkpoint (default 1024)")
    p.add_argument(
        "--gcs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the gs:// part (benchmarks/_gcs.py; default: on when fake-gcs-server can run)",
    )
    p.add_argument(
        "--only",
        choices=["cli"],
        default=None,
        help="measure one section alone and print its markdown (cli: benchmarks/_cli.py)",
    )
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 15
    if args.warmup is None:
        args.warmup = 1 if args.quick else 2
    if args.model_mb is None:
        args.model_mb = 4.0 if args.quick else 64.0
    if args.big_mb is None:
        args.big_mb = 32.0 if args.quick else 1024.0
    if args.cold_repeats is None:
        args.cold_repeats = 0 if args.quick else min(args.repeats, 3)
    if args.repeats < 1 or args.warmup < 0:
        p.error("--repeats must be >= 1 and --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.only == "cli":
        alone = measure_cli(args.workdir, args.repeats, gcs=args.gcs is not False)
        print("\n".join(cli_section(alone)))
        for c in cli_checks(alone):
            log(f"{'PASS' if c.passed else 'FAIL'}: {c.target}: {c.measured}")
        return 0
    gcs: GcsResult | None = None
    cli: CliResult | None = None
    if args.from_json is not None:
        saved = json.loads(args.from_json.read_text())
        data = Measurements.from_dict(saved)
        if saved.get("gcs") is not None:
            gcs = GcsResult.from_dict(saved["gcs"])
        if saved.get("cli") is not None:
            cli = CliResult.from_dict(saved["cli"])
    else:
        from benchmarks._measure import measure  # imports TensorFlow

        shown = sys.argv[1:] if argv is None else list(argv)
        cmd = "python " + " ".join(
            shlex.quote(a) for a in [os.path.relpath(__file__, Path.cwd()), *shown]
        )
        data = measure(args, cmd)
        if args.gcs is not False:
            sizes = GCS_QUICK_SIZES if args.quick else SIZES
            gcs = measure_gcs(args.workdir, sizes)
            if gcs.skipped is not None and args.gcs:
                log(f"gs:// part not measured: {gcs.skipped}")
        cli = measure_cli(args.workdir, min(args.repeats, 5), gcs=args.gcs is not False)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        saved = {
            **data.to_dict(),
            "gcs": None if gcs is None else gcs.to_dict(),
            "cli": None if cli is None else cli.to_dict(),
        }
        args.json.write_text(json.dumps(saved, indent=1) + "\n")
        log(f"wrote {args.json}")
    text = report(data, gcs) + "\n".join(cli_section(cli))
    if args.output is None:
        print(text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + ("" if text.endswith("\n") else "\n"))
        log(f"wrote {args.output}")
    failed = [c for c in [*checks(data, gcs), *cli_checks(cli)] if not c.passed]
    for c in failed:
        log(f"target missed: {c.target}: {c.measured}")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
