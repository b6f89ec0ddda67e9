"""gs:// figures: requests and wall time on TensorFlow's real gs:// client, 20 ms per request.

TensorFlow's own ``gs://`` client talks to fake-gcs-server through the counting proxy of
``testing/gcs/``, which adds `LATENCY` to every request (a same-region GCS round trip is
of that order). For directories of `SIZES` checkpoints (written locally with TF, then loaded
into the emulator with its ``-data`` preload, state file included, every checkpoint listed:
``max_to_keep=None``), it counts the requests and times each operation:

- plain `tf.train.CheckpointManager` against `safeckpt.SafeCheckpointManager`: construction,
  ``latest_checkpoint`` (after construction), ``restore_or_initialize()`` and safeckpt's
  ``restore()`` (after construction);
- safeckpt only: ``list_checkpoints(dir)``, ``diagnose(dir)``, ``verify(<newest prefix>)``
  and the command line ``safeckpt ls DIR`` (its ``main()`` in-process, and the whole
  ``python -m safeckpt ls DIR`` process).

Every sequence runs in a fresh Python process, as a job would: TF's caches (the 5-second stat
cache, the block cache) start cold, and nothing one measurement reads makes the next one
cheaper. Each operation is measured once (at 20 ms per request the count sets the time).

`measure_gcs` returns a `GcsResult` (plain data, JSON-able, no TensorFlow needed to render
it); `section` renders it for ``docs/benchmarks.md`` and `checks` judges the issue's
targets. ``python benchmarks/_gcs.py`` prints the section alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # run as a script or as the measuring child
    sys.path.insert(0, str(_ROOT))

#: Seconds added to every request by the proxy.
LATENCY = 0.020
#: Checkpoints in the measured directories.
SIZES = (3, 100, 1000)
#: The sizes of ``bench.py --quick``.
GCS_QUICK_SIZES = (3, 30)
#: Target: safeckpt's construction makes at most this many requests more than TF's.
CONSTRUCT_EXTRA_MAX = 4
#: Target: ``safeckpt ls`` of 1,000 checkpoints takes less than this (seconds).
LS_MAX_SECONDS = 5.0
LS_TARGET_SIZE = 1000
#: Seconds one measuring child may take before it is killed (its figures are then missing).
CHILD_TIMEOUT = 600.0

CATEGORIES = ("metadata", "media", "list", "upload", "rewrite", "delete", "other")

#: The measuring children: (variant, operations in order). Each runs in a fresh process.
SEQUENCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("plain", ("construct", "latest", "roi")),
    ("safe", ("construct", "latest", "restore")),
    ("safe", ("construct", "roi")),
    ("safe", ("list",)),
    ("safe", ("diagnose",)),
    ("safe", ("verify",)),
    ("safe", ("ls",)),
)

#: The variant of `safeckpt ls` run with ``GCS_READ_CACHE_BLOCK_SIZE_MB=1``.
SMALL_BLOCKS = "safe_1mb"

LABELS = {
    "construct": "construction",
    "latest": "`latest_checkpoint` (after construction)",
    "roi": "`restore_or_initialize()` (after construction)",
    "restore": "`restore()` (after construction)",
    "list": "`safeckpt.list_checkpoints(dir)`",
    "diagnose": "`safeckpt.diagnose(dir)`",
    "verify": "`safeckpt.verify(<newest prefix>)`",
    "ls": "`safeckpt ls DIR` (`_cli.main`, in-process)",
}


@dataclass
class GcsOp:
    """One measured operation."""

    op: str
    variant: str  # "plain" or "safe"
    checkpoints: int
    seconds: float
    requests: dict[str, int]
    error: str | None = None

    @property
    def total(self) -> int:
        return sum(self.requests.values())


@dataclass
class GcsResult:
    """Everything the gs:// part measured (or why it did not run)."""

    latency: float = LATENCY
    sizes: list[int] = field(default_factory=list)
    ops: list[GcsOp] = field(default_factory=list)
    process_seconds: dict[str, float] = field(default_factory=dict)  # ls: whole process, by n
    elapsed: float = 0.0
    skipped: str | None = None
    errors: list[str] = field(default_factory=list)  # children that failed

    def get(self, op: str, variant: str, n: int) -> GcsOp | None:
        for o in self.ops:
            if (o.op, o.variant, o.checkpoints) == (op, variant, n):
                return o
        return None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GcsResult:
        ops = [GcsOp(**o) for o in d.get("ops", [])]
        return cls(**{**d, "ops": ops})


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- measuring (the parent) ------------------------------------------------------------------


def _write_local(root: Path, sizes: Sequence[int]) -> None:
    """``root/bucket/bench/n<N>/``: N checkpoints of a tiny model, all listed in the state file."""
    import tensorflow as tf

    for n in sizes:
        w = tf.Variable(tf.zeros([4]))
        step = tf.Variable(0, dtype=tf.int64)
        ckpt = tf.train.Checkpoint(w=w, step=step)
        directory = root / "bucket" / "bench" / f"n{n}"
        manager = tf.train.CheckpointManager(ckpt, str(directory), max_to_keep=None)
        for k in range(1, n + 1):
            w.assign(tf.fill([4], float(k)))
            step.assign(k)
            manager.save()


def measure_gcs(
    workdir: Path | None = None,
    sizes: Sequence[int] = SIZES,
    latency: float = LATENCY,
) -> GcsResult:
    """Measure the gs:// figures (see the module docstring); never raises for a child."""
    from testing.gcs import server as _gcs

    t0 = time.monotonic()
    reason = _gcs.skip_reason()
    if reason is not None:
        return GcsResult(latency=latency, sizes=list(sizes), skipped=reason)
    scratch = Path(tempfile.mkdtemp(prefix="safeckpt-bench-gcs-", dir=workdir))
    result = GcsResult(latency=latency, sizes=list(sizes))
    try:
        log(f"gs://: writing {', '.join(map(str, sizes))} checkpoints locally")
        _write_local(scratch / "preload", sizes)
        log("gs://: starting the emulator (preloading them)")
        with _gcs.GcsEmulator(preload=scratch / "preload", start_timeout=300) as gcs:
            env = {**os.environ, **gcs.env(), "TF_CPP_MIN_LOG_LEVEL": "3"}
            env["PYTHONPATH"] = os.pathsep.join(
                [str(_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
            )
            with gcs.latency(latency):
                for n in sizes:
                    directory = f"gs://{_gcs.BUCKET}/bench/n{n}"
                    for variant, ops in SEQUENCES:
                        log(f"gs://: {n} checkpoints, {variant}: {', '.join(ops)}")
                        spec = {
                            "emulator": gcs.describe(),
                            "dir": directory,
                            "checkpoints": n,
                            "variant": variant,
                            "ops": list(ops),
                        }
                        _run_child(spec, env, result)
                # TF zeroes a GCS_READ_CACHE_BLOCK_SIZE_MB (64) buffer for every file it
                # reads; `ls` reads 2 small files per checkpoint (docs/remote.md, "Tuning").
                spec = {**spec, "variant": SMALL_BLOCKS, "ops": ["ls"]}
                _run_child(spec, {**env, "GCS_READ_CACHE_BLOCK_SIZE_MB": "1"}, result)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result.elapsed = time.monotonic() - t0
    return result


def _run_child(spec: dict[str, Any], env: dict[str, str], result: GcsResult) -> None:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT, cwd=_ROOT
        )
    except subprocess.TimeoutExpired:
        result.errors.append(f"{spec['variant']} {spec['ops']} at {spec['checkpoints']}: timeout")
        return
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1:] or [""]
        result.errors.append(
            f"{spec['variant']} {spec['ops']} at {spec['checkpoints']}: "
            f"exit {proc.returncode}: {last[0][:300]}"
        )
        return
    seen = {(o.op, o.variant, o.checkpoints) for o in result.ops}
    for o in json.loads(proc.stdout.strip().splitlines()[-1]):
        op = GcsOp(**o)
        if (op.op, op.variant, op.checkpoints) not in seen:  # "construct" is measured twice
            result.ops.append(op)
    if spec["ops"] == ["ls"] and spec["variant"] == "safe":
        result.process_seconds[str(spec["checkpoints"])] = wall


# --- the measuring child ---------------------------------------------------------------------


def _child(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Run one sequence cold (a fresh process); the JSON of its `GcsOp`\\ s."""
    import tensorflow as tf

    import safeckpt
    from safeckpt._cli import main as cli
    from testing.gcs import server as _gcs

    tf.get_logger().setLevel("ERROR")
    gcs = _gcs.GcsEmulator.attach(spec["emulator"])
    directory, n, variant = spec["dir"], spec["checkpoints"], spec["variant"]
    ckpt = tf.train.Checkpoint(w=tf.Variable(tf.zeros([4])), step=tf.Variable(0, dtype=tf.int64))
    out: list[dict[str, Any]] = []
    manager: Any = None

    def construct() -> Any:
        nonlocal manager
        if variant == "plain":
            manager = tf.train.CheckpointManager(ckpt, directory, max_to_keep=None)
        else:
            manager = safeckpt.SafeCheckpointManager(ckpt, directory, max_to_keep=None)
        return manager

    def ls() -> int:
        return cli.main(["ls", directory], stdout=io.StringIO(), stderr=io.StringIO())

    actions: dict[str, Callable[[], Any]] = {
        "construct": construct,
        "latest": lambda: manager.latest_checkpoint,
        "roi": lambda: manager.restore_or_initialize(),
        "restore": lambda: manager.restore(),
        "list": lambda: safeckpt.list_checkpoints(directory),
        "diagnose": lambda: safeckpt.diagnose(directory),
        "verify": lambda: safeckpt.verify(f"{directory}/ckpt-{n}"),
        "ls": ls,
    }
    for op in spec["ops"]:
        gcs.reset_counts()
        error = None
        start = time.perf_counter()
        try:
            value = actions[op]()
        except Exception as exc:  # measured and reported, not fatal
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
            value = None
        seconds = time.perf_counter() - start
        counts = gcs.counts()
        if error is None:
            error = _check(op, value, directory, n)
        out.append(
            dataclasses.asdict(GcsOp(op, variant, n, seconds, dict(counts.by_category), error))
        )
        if error is not None and op == "construct":
            break
    return out


def _check(op: str, value: Any, directory: str, n: int) -> str | None:
    """Whether the operation did what it should (a wrong answer is reported as an error)."""
    newest = f"{directory}/ckpt-{n}"
    if op == "latest" and value != newest:
        return f"latest_checkpoint is {value!r}, not {newest!r}"
    if op == "list" and len(value) != n:
        return f"list_checkpoints found {len(value)} checkpoints, not {n}"
    if op in ("diagnose", "verify") and not value.ok:
        return f"{op} says not ok: {str(value)[:200]}"
    if op == "ls" and value != 0:
        return f"safeckpt ls exited {value}"
    return None


# --- rendering (no TensorFlow) ---------------------------------------------------------------


@dataclass
class Check:
    target: str
    measured: str
    passed: bool


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds < 1.0 else f"{seconds:.2f} s"


def _breakdown(o: GcsOp) -> str:
    parts = [f"{c} {o.requests[c]}" for c in CATEGORIES if o.requests.get(c)]
    return ", ".join(parts) or "none"


def checks(g: GcsResult | None) -> list[Check]:
    """The issue's gs:// targets, each measured and judged (none when not measured)."""
    if g is None or g.skipped is not None:
        return []
    out = []
    for n in g.sizes:
        plain, safe = g.get("construct", "plain", n), g.get("construct", "safe", n)
        target = f"gs:// construction ≤ TF's requests + {CONSTRUCT_EXTRA_MAX} ({n:,} checkpoints)"
        if plain is None or safe is None or safe.error or plain.error:
            error = (safe and safe.error) or (plain and plain.error) or "not measured"
            out.append(Check(target, f"not measured: {error}", False))
            continue
        extra = safe.total - plain.total
        out.append(
            Check(
                target,
                f"{safe.total} vs {plain.total} ({extra:+d})",
                extra <= CONSTRUCT_EXTRA_MAX,
            )
        )
    if LS_TARGET_SIZE not in g.sizes:  # a --quick run
        return out
    ls = g.get("ls", "safe", LS_TARGET_SIZE)
    target = (
        f"`safeckpt ls` of {LS_TARGET_SIZE:,} checkpoints on gs:// at "
        f"{g.latency * 1e3:.0f} ms/request < {LS_MAX_SECONDS:.0f} s"
    )
    if ls is None or ls.error:
        out.append(Check(target, f"not measured: {ls.error if ls else 'missing'}", False))
    else:
        whole = g.process_seconds.get(str(LS_TARGET_SIZE))
        shown = f"{_fmt(ls.seconds)} ({ls.total} requests)"
        if whole is not None:
            shown += f"; whole process incl. Python and TF import {_fmt(whole)}"
        small = g.get("ls", SMALL_BLOCKS, LS_TARGET_SIZE)
        if small is not None and not small.error:
            shown += f"; with `GCS_READ_CACHE_BLOCK_SIZE_MB=1` {_fmt(small.seconds)}"
        out.append(Check(target, shown, ls.seconds < LS_MAX_SECONDS))
    return out


def section(g: GcsResult | None) -> list[str]:
    """The gs:// section of ``docs/benchmarks.md`` (markdown lines)."""
    lines = ["## gs:// (TensorFlow's GCS client, 20 ms per request)", ""]
    if g is None:
        return [*lines, "Not measured (`--no-gcs`, or saved data without it).", ""]
    if g.skipped is not None:
        return [*lines, f"Not measured: {g.skipped}.", ""]
    ms = g.latency * 1e3
    lines += [
        "TensorFlow's own `gs://` client (libcurl, retries, 5 s stat cache) talks to "
        "fake-gcs-server on loopback through the counting proxy of `testing/gcs/`, which adds "
        f"**{ms:.0f} ms to every request**. Each directory holds N checkpoints of a tiny model "
        "written by TF with `max_to_keep=None` (all listed in the state file). Every sequence "
        "runs in a fresh process (cold caches, as a job starts), each operation once; "
        "*requests* are those the proxy saw during the call; the operations after "
        "construction are counted without it. Managers are built with `max_to_keep=None`.",
        "",
        "| target | measured | result |",
        "|---|---|---|",
    ]
    for c in checks(g):
        lines.append(f"| {c.target} | {c.measured} | {'PASS' if c.passed else '**FAIL**'} |")
    lines += [
        "",
        "### Plain TF against safeckpt",
        "",
        "| operation | checkpoints | plain TF: requests | plain TF: time "
        "| safeckpt: requests | safeckpt: time | extra requests | safeckpt's requests by kind |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for op, plain_op in (("construct", "construct"), ("latest", "latest"), ("roi", "roi")):
        for n in g.sizes:
            lines.append(_pair_row(g, LABELS[op], plain_op, op, n))
    for n in g.sizes:
        lines.append(
            _pair_row(g, "`restore()` (plain: `restore_or_initialize()`)", "roi", "restore", n)
        )
    lines += [
        "",
        "### safeckpt only",
        "",
        "| operation | checkpoints | requests | time | requests by kind |",
        "|---|---:|---:|---:|---|",
    ]
    for op in ("list", "diagnose", "verify", "ls"):
        for n in g.sizes:
            o = g.get(op, "safe", n)
            if o is None:
                lines.append(f"| {LABELS[op]} | {n:,} | — | — | not measured |")
                continue
            note = f"**{o.error}**" if o.error else _breakdown(o)
            lines.append(f"| {LABELS[op]} | {n:,} | {o.total:,} | {_fmt(o.seconds)} | {note} |")
    for n in g.sizes:
        o = g.get("ls", SMALL_BLOCKS, n)
        if o is not None:
            note = f"**{o.error}**" if o.error else _breakdown(o)
            lines.append(
                f"| `safeckpt ls DIR` with `GCS_READ_CACHE_BLOCK_SIZE_MB=1` | {n:,} | "
                f"{o.total:,} | {_fmt(o.seconds)} | {note} |"
            )
    for n in g.sizes:
        whole = g.process_seconds.get(str(n))
        if whole is not None:
            lines.append(
                f"| `python -m safeckpt ls DIR`, whole process (Python start, TF import) | "
                f"{n:,} | — | {_fmt(whole)} | |"
            )
    if g.errors:
        lines += ["", "Failed measurements:", ""]
        lines += [f"- {e}" for e in g.errors]
    lines += ["", f"The gs:// part took {g.elapsed:.0f} s.", ""]
    return lines


def _pair_row(g: GcsResult, label: str, plain_op: str, safe_op: str, n: int) -> str:
    p, s = g.get(plain_op, "plain", n), g.get(safe_op, "safe", n)

    def cell(o: GcsOp | None) -> tuple[str, str]:
        if o is None:
            return "—", "not measured"
        if o.error:
            return f"{o.total:,}", f"**error**: {o.error[:120]}"
        return f"{o.total:,}", _fmt(o.seconds)

    (pr, pt), (sr, st) = cell(p), cell(s)
    extra = f"{s.total - p.total:+,}" if p is not None and s is not None else "—"
    kinds = _breakdown(s) if s is not None else ""
    return f"| {label} | {n:,} | {pr} | {pt} | {sr} | {st} | {extra} | {kinds} |"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="gs:// benchmark section alone (markdown on stdout)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="e.g. 3,100,1000")
    p.add_argument("--json", type=Path, default=None, help="also write the measured data here")
    args = p.parse_args(argv)
    if args.child is not None:
        print(json.dumps(_child(json.loads(args.child))))
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = measure_gcs(sizes=[int(s) for s in args.sizes.split(",")])
    if args.json is not None:
        args.json.write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    print("\n".join(section(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
