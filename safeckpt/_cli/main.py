"""The ``safeckpt`` command line: doctor, ls, verify, repair, inspect, diff."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, TextIO

from safeckpt._catalog.inventory import Inventory, scan, with_sizes
from safeckpt._catalog.repair import apply_repair, plan_repair
from safeckpt._catalog.volume import ephemeral_allowed, ephemeral_note, low_space_note
from safeckpt._causes import Cause
from safeckpt._cli import graph
from safeckpt._cli.best import best_of, best_prefixes, metrics_text, parse_best, with_metrics
from safeckpt._cli.progress import Meter
from safeckpt._diagnose.alternatives import with_alternatives
from safeckpt._diagnose.path import diagnose, listed_problem, verify
from safeckpt._diagnosis import Diagnosis, describe_exception, human_size
from safeckpt._errorbase import CheckpointDirectoryError, SafeCheckpointError
from safeckpt._format.layout import INDEX_SUFFIX
from safeckpt._format.verify import check_prefix
from safeckpt._info import CheckpointInfo
from safeckpt._io import fs, paths
from safeckpt._io.errors import io_errors
from safeckpt._io.pool import map_io
from safeckpt._io.translate import cause_of
from safeckpt._metadata import KeepBest
from safeckpt._serialize import dumps
from safeckpt._version import __version__

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

#: TensorFlow's gs:// client reads files through a block cache whose blocks default to
#: 64 MB, and zeroes a whole block for every file it reads; ``safeckpt`` reads many small
#: files (indexes, state files). Set before TensorFlow is imported, unless the user set it.
GCS_BLOCK_ENV, GCS_BLOCK_MB = "GCS_READ_CACHE_BLOCK_SIZE_MB", "1"

_EPILOG = f"""\
On a local directory no command imports TensorFlow (it starts in well under a second).
gs:// and other URIs use TensorFlow's filesystems: for them the command sets
{GCS_BLOCK_ENV}={GCS_BLOCK_MB} before TensorFlow is imported, unless it is set already
(TensorFlow's default, 64 MB blocks, makes listing many checkpoints several times slower).
Progress is shown on stderr when it is a terminal (not with --quiet); --json output is the
same either way. Exit codes: 0 healthy / done, 1 problems found, 2 usage error.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="safeckpt",
        description="Diagnose, list, verify, repair and inspect TensorFlow checkpoints.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"safeckpt {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress line on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    doctor = sub.add_parser("doctor", help="diagnose a directory, prefix or file", parents=[common])
    doctor.add_argument("path")
    doctor.add_argument("--name", help="the checkpoint_name to expect (default: detected)")
    doctor.add_argument("--deep", action="store_true", help="also check tensor checksums")
    doctor.add_argument("--json", action="store_true", help="print the diagnosis as JSON")
    doctor.add_argument(
        "--stat",
        action="store_true",
        help="on remote storage, also measure the usable checkpoints' sizes and times (one "
        "request per file; local directories are always measured)",
    )
    ls = sub.add_parser("ls", help="list the checkpoints of a directory", parents=[common])
    ls.add_argument("directory")
    ls.add_argument("--name", help="only checkpoints with this checkpoint_name")
    ls.add_argument(
        "--best",
        metavar="METRIC[:min|max][:K]",
        type=_best_argument,
        help="mark the K best by this metric (default: the keep_best their metadata records)",
    )
    ls.add_argument("--json", action="store_true")
    verify_cmd = sub.add_parser(
        "verify", help="verify one checkpoint or all in a directory", parents=[common]
    )
    verify_cmd.add_argument("path", metavar="PREFIX|DIR")
    verify_cmd.add_argument("--deep", action="store_true", help="check every tensor's CRC32C")
    verify_cmd.add_argument("--json", action="store_true")
    repair = sub.add_parser(
        "repair", help="rewrite the state file from verified checkpoints", parents=[common]
    )
    repair.add_argument("directory")
    repair.add_argument("--name", help="the checkpoint_name to record (default: detected)")
    repair.add_argument("--dry-run", action="store_true", help="show the change, write nothing")
    repair.add_argument("--json", action="store_true")
    inspect = sub.add_parser(
        "inspect", help="show what a checkpoint holds, as its object tree", parents=[common]
    )
    inspect.add_argument("prefix", metavar="PREFIX")
    inspect.add_argument("--json", action="store_true")
    diff = sub.add_parser("diff", help="compare the structure of two checkpoints", parents=[common])
    diff.add_argument("a", metavar="PREFIX_A")
    diff.add_argument("b", metavar="PREFIX_B")
    diff.add_argument("--json", action="store_true")
    return parser


def storage_notes(path: str, name: str | None) -> list[str]:
    """What a local directory's storage means for its checkpoints (`safeckpt._catalog.volume`)."""
    local = fs.local_path(path)
    if local is None or not os.path.isdir(local):
        return []
    directory = os.path.abspath(local)
    notes = [] if ephemeral_allowed(False) else [ephemeral_note(directory)]
    notes.append(low_space_note(directory, name or "ckpt"))
    return [n for n in notes if n is not None]


def _best_argument(text: str) -> KeepBest | None:
    try:
        return parse_best(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _print_json(data: Any, out: TextIO) -> None:
    print(dumps(data), file=out)


def _doctor(args: argparse.Namespace, out: TextIO, meter: Meter) -> int:
    diagnosis = diagnose(args.path, checkpoint_name=args.name, deep=args.deep)
    remote = diagnosis.candidates and fs.scheme_of(diagnosis.candidates[0].prefix) is not None
    if args.stat and remote:  # local candidates are measured by diagnose itself
        todo = diagnosis.candidates
        done = lambda k, n: meter.items("measuring", k, n)  # noqa: E731
        measured = map_io(todo[0].prefix, with_sizes, todo, done=done)
        meter.finish()
        diagnosis = replace(diagnosis, candidates=tuple(measured))
    notes = storage_notes(args.path, args.name)  # never a failure: the exit code ignores them
    if args.json:
        _print_json({**diagnosis.to_dict(), **({"notes": notes} if notes else {})}, out)
    else:
        print(diagnosis, file=out)
        for note in notes:
            print(f"note: {note}", file=out)
    return EXIT_OK if diagnosis.ok else EXIT_PROBLEMS


def _status(info: CheckpointInfo) -> str:
    """``ok``, or the problems found by the inventory, or by a quick verification."""
    if not info.complete:
        return ",".join(p.value for p in info.problems)
    checked = check_prefix(info.prefix)  # quick: index, shard sizes, object graph
    return "ok" if checked.ok else checked.cause.value


def _ls(args: argparse.Namespace, out: TextIO, meter: Meter) -> int:
    directory = paths.normalize_directory(args.directory)
    given: KeepBest | None = args.best
    inventory = scan(directory)

    def with_status(info: CheckpointInfo) -> tuple[CheckpointInfo, str]:
        # One task per checkpoint: its stats, its metrics, then its check (the stat cache
        # serves it), so that remote requests run in one parallel pass.
        return with_metrics(inventory.stated(info)), _status(info)

    family = inventory.family(args.name)
    done = lambda k, n: meter.items("checked", k, n)  # noqa: E731
    rows_found = map_io(directory, with_status, family, done=done if len(family) > 1 else None)
    meter.finish()
    infos = [info for info, _ in rows_found]
    statuses = [status for _, status in rows_found]
    rules = best_of(infos, given)
    best = best_prefixes([i for i, s in rows_found if s == "ok"], rules)
    if args.json:
        _print_json(
            {
                "directory": directory,
                "state_file": {
                    "exists": inventory.state.exists,
                    "latest": inventory.state.latest,
                    "problem": inventory.state.problem.value if inventory.state.problem else None,
                    "error": inventory.state.error,
                },
                "checkpoints": [
                    {**i.to_dict(), "status": status, "best": i.prefix in best}
                    for i, status in zip(infos, statuses, strict=True)
                ],
                "leftovers": inventory.leftovers(),
                "best_by": {name: rule.to_dict() for name, rule in rules.items()},
                "orphan_metadata": list(inventory.orphan_metadata),
            },
            out,
        )
        return EXIT_OK
    print(f"{directory}: {len(infos)} checkpoint{'s' if len(infos) != 1 else ''}", file=out)
    # Metrics and the best only when there are any: a plain TensorFlow directory's table is
    # unchanged, and STATUS stays the last column.
    recorded = bool(rules) or any(i.metrics for i in infos)
    extra = ("BEST", "METRICS") if recorded else ()
    rows = [("STEP", "PREFIX", "SIZE", "WRITTEN", "STATE", *extra, "STATUS")]
    for info, status in zip(infos, statuses, strict=True):
        marks = (
            ("*" if info.prefix in best else "-", metrics_text(info.metrics)) if recorded else ()
        )
        rows.append(
            (
                "-" if info.step is None else str(info.step),
                info.basename,
                human_size(info.size_bytes) if info.size_bytes is not None else "unknown",
                info.mtime_text(),
                "yes" if info.in_state_file else "no",
                *marks,
                status,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), file=out
        )
    state = inventory.state
    if not state.exists:
        print("state file: missing", file=out)
    elif state.problem:
        print(f"state file: {state.problem.value}: {state.error}", file=out)
    else:
        print(f"state file: latest {state.latest}", file=out)
    for leftover in inventory.leftovers():
        print(f"leftover: {leftover}", file=out)
    for name, rule in rules.items():
        print(f"best ({name}): {rule.k} by {rule.metric} ({rule.mode}), marked *", file=out)
    for orphan in inventory.orphan_metadata:
        print(f"orphan metadata: {fs.join(directory, orphan)}", file=out)
    return EXIT_OK


def _verify(args: argparse.Namespace, out: TextIO, meter: Meter) -> int:
    path = paths.normalize_directory(args.path, "path")
    if fs.isdir(path) and not fs.exists(path + INDEX_SUFFIX):
        inventory = scan(path)
        results = _verify_all(inventory, args.deep, meter) if inventory.checkpoints else []
        results = results or [diagnose(path)]
    else:
        results = [_verify_one(path, args.deep, meter)]
    if args.json:
        _print_json([d.to_dict() for d in results], out)
    else:
        for diagnosis in results:
            mark = "OK  " if diagnosis.ok else "FAIL"
            print(
                f"{mark} {diagnosis.checkpoint or diagnosis.directory}: {diagnosis.summary}",
                file=out,
            )
            if not diagnosis.ok:
                for line in diagnosis.evidence:
                    print(f"       - {line}", file=out)
    return EXIT_OK if all(d.ok for d in results) else EXIT_PROBLEMS


def _verify_all(inventory: Inventory, deep: bool, meter: Meter) -> list[Diagnosis]:
    """Every checkpoint of a directory, from one listing.

    Incomplete ones are described by their files' names (nothing read), the others verified;
    what to restore instead is worked out once per name, from these results. The work
    grows with the number of checkpoints, not with its square.
    """
    infos = list(inventory.checkpoints)
    remote = fs.scheme_of(inventory.directory) is not None
    done = 0

    def one(info: CheckpointInfo) -> Diagnosis:
        if info.problems:
            return listed_problem(inventory, info)
        if remote or not deep:
            return check_prefix(info.prefix, deep=deep)

        # Deep, local, one checkpoint after another: its bytes, and how many are done.
        def progress(bytes_done: int, total: int) -> None:
            meter.bytes(f"{done + 1} of {len(infos)}: {info.basename}", bytes_done, total)

        return check_prefix(info.prefix, deep=deep, progress=progress)

    if remote:  # latency-bound: in parallel
        counted = lambda k, n: meter.items("verified", k, n)  # noqa: E731
        results = map_io(inventory.directory, one, infos, done=counted)
    else:
        results = []
        for info in infos:
            results.append(one(info))
            done += 1
            if not deep:
                meter.items("verified", done, len(infos))
            else:
                meter.finish()
    meter.finish()
    good: dict[str, list[str]] = {}  # checkpoint name -> prefixes that verified, newest first
    for info, found in zip(infos, results, strict=True):
        if found.ok:
            good.setdefault(info.name, []).insert(0, info.prefix)
    return [
        found if found.ok else with_alternatives(found, info.prefix, good.get(info.name, [])[:3])
        for info, found in zip(infos, results, strict=True)
    ]


def _verify_one(prefix: str, deep: bool, meter: Meter) -> Diagnosis:
    def progress(done: int, total: int) -> None:
        meter.bytes(fs.basename(prefix), done, total)

    try:
        return verify(prefix, deep=deep, progress=progress if deep else None)
    finally:
        meter.finish()


def _repair(args: argparse.Namespace, out: TextIO) -> int:
    directory = paths.normalize_directory(args.directory)
    plan = plan_repair(directory, args.name)
    if not args.dry_run:
        plan = apply_repair(plan)
    if args.json:
        _print_json({**plan.to_dict(), "dry_run": args.dry_run}, out)
        return EXIT_OK if plan.latest else EXIT_PROBLEMS
    for item in plan.skipped:
        print(f"left out {item.prefix}: {item.reason}", file=out)
    if plan.latest is None:
        print(
            f"No checkpoint named {plan.name!r} in {directory} verifies; nothing written.", file=out
        )
        return EXIT_PROBLEMS
    if not plan.changed:
        print(f"{directory}/checkpoint already lists exactly the verified checkpoints.", file=out)
        return EXIT_OK
    verb = "would record" if args.dry_run else "recorded"
    print(f"{verb} {len(plan.recorded)} checkpoints, latest {plan.latest}", file=out)
    print("--- old state file" if plan.old_state is not None else "--- (no state file)", file=out)
    if plan.old_state:
        print(plan.old_state.rstrip(), file=out)
    print("+++ new state file", file=out)
    print((plan.new_state or "").rstrip(), file=out)
    if plan.backup:
        print(f"old state file kept as {plan.backup}", file=out)
    if args.dry_run:
        print("dry run: nothing was written", file=out)
    return EXIT_OK


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run the command line with `argv` (default: ``sys.argv[1:]``); return the exit code.

    Exit codes: 0 healthy / done, 1 problems found, 2 usage error (bad arguments or a path
    that cannot be used at all).
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if exc.code in (0, None) else EXIT_USAGE
    meter = Meter(err, quiet=args.quiet)
    try:
        if args.command == "doctor":
            return _doctor(args, out, meter)
        if args.command == "ls":
            return _ls(args, out, meter)
        if args.command == "verify":
            return _verify(args, out, meter)
        if args.command == "inspect":
            return graph.inspect(args, out)
        if args.command == "diff":
            return graph.diff(args, out)
        return _repair(args, out)
    except CheckpointDirectoryError as exc:
        print(f"safeckpt {args.command}: {exc}", file=err)
        return EXIT_USAGE
    except SafeCheckpointError as exc:  # inspect/diff of something that is not a checkpoint
        print(f"safeckpt {args.command}: {exc}", file=err)
        return EXIT_PROBLEMS
    except io_errors() as exc:
        cause = cause_of(exc, default=Cause.UNKNOWN)
        print(f"safeckpt {args.command}: {describe_exception(exc)} [{cause.value}]", file=err)
        return EXIT_PROBLEMS


def console_main() -> None:
    """Entry point of the ``safeckpt`` console script (and of ``python -m safeckpt``).

    Sets `GCS_BLOCK_ENV` before anything imports TensorFlow, unless the user set it.
    """
    os.environ.setdefault(GCS_BLOCK_ENV, GCS_BLOCK_MB)
    sys.exit(main())
