"""The command line, whole process (issue 24): what a user waits for at the prompt.

- Local: ``safeckpt doctor DIR`` against ``python -c "import tensorflow"`` on the same
  directory (three 17 MB checkpoints, the newest with one flipped byte), alternating, in one
  run. Target: doctor ≤ `DOCTOR_MAX_RATIO` times the TensorFlow import.
- gs:// (TensorFlow's real client, fake-gcs-server behind the counting proxy at 20 ms per
  request): ``python -m safeckpt ls DIR`` of 1,000 checkpoints with the command line's
  default (``GCS_READ_CACHE_BLOCK_SIZE_MB=1``) against the same command with TensorFlow's own
  default block size (64 MB) set explicitly. Target: ≤ `LS_MAX_SECONDS` s, and no more
  requests than with TensorFlow's default.

Run alone: ``python benchmarks/bench.py --only cli`` (markdown on stdout).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent

DOCTOR_MAX_RATIO = 0.15
LS_MAX_SECONDS = 10.0
LS_CHECKPOINTS = 1000
LATENCY = 0.020


@dataclass
class CliResult:
    """What the CLI section measured (seconds are medians of whole processes)."""

    rounds: int = 0
    doctor: list[float] = field(default_factory=list)
    tf_import: list[float] = field(default_factory=list)
    doctor_exit: int | None = None
    ls: dict[str, dict[str, Any]] = field(default_factory=dict)  # variant -> seconds, requests
    gcs_skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CliResult:
        return cls(**d)


def _log(message: str) -> None:
    print(f"[bench cli] {message}", file=sys.stderr, flush=True)


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=600, cwd=_ROOT)
    return time.perf_counter() - start, proc.returncode


def _local_directory(root: Path) -> Path:
    """Three checkpoints of 17 MB, the newest with one flipped byte (the issue's setup)."""
    import numpy as np
    import tensorflow as tf

    directory = root / "run"
    w = tf.Variable(np.zeros((2048, 2048), dtype=np.float32))  # 16.8 MB
    step = tf.Variable(0, dtype=tf.int64)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(w=w, step=step), str(directory), 3)
    for k in range(1, 4):
        w.assign(tf.fill(w.shape, float(k)))
        step.assign(k)
        manager.save()
    data = next(directory.glob("ckpt-3.data-*"))
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))
    return directory


def measure_cli(workdir: Path | None, rounds: int, gcs: bool = True) -> CliResult:
    """Measure the section (see the module docstring)."""
    result = CliResult(rounds=rounds)
    scratch = Path(tempfile.mkdtemp(prefix="safeckpt-bench-cli-", dir=workdir))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        directory = _local_directory(scratch)
        doctor = [sys.executable, "-m", "safeckpt", "doctor", str(directory)]
        importing = [sys.executable, "-c", "import tensorflow"]
        _log(f"local: doctor vs import tensorflow, {rounds} rounds")
        for n in range(rounds + 1):  # the first round warms the page cache, discarded
            pair = [(doctor, result.doctor), (importing, result.tf_import)]
            for cmd, into in pair if n % 2 == 0 else pair[::-1]:
                seconds, code = _timed(cmd, env)
                if n:
                    into.append(seconds)
                if cmd is doctor:
                    result.doctor_exit = code
        if gcs:
            _measure_gcs_ls(scratch, result, env)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


def _measure_gcs_ls(scratch: Path, result: CliResult, env: dict[str, str]) -> None:
    from benchmarks._gcs import _write_local
    from testing.gcs import server as _gcs

    reason = _gcs.skip_reason()
    if reason is not None:
        result.gcs_skipped = reason
        return
    _log(f"gs://: writing {LS_CHECKPOINTS} checkpoints, starting the emulator")
    _write_local(scratch / "preload", [LS_CHECKPOINTS])
    with _gcs.GcsEmulator(preload=scratch / "preload", start_timeout=300) as server:
        base = {k: v for k, v in env.items() if k != "GCS_READ_CACHE_BLOCK_SIZE_MB"}
        base |= server.env()
        directory = f"gs://{_gcs.BUCKET}/bench/n{LS_CHECKPOINTS}"
        variants = {
            "cli_default": base,
            "tf_default_64mb": {**base, "GCS_READ_CACHE_BLOCK_SIZE_MB": "64"},
        }
        with server.latency(LATENCY):
            for variant, child_env in variants.items():
                _log(f"gs://: python -m safeckpt ls, {variant}")
                server.reset_counts()
                cmd = [sys.executable, "-m", "safeckpt", "ls", directory]
                seconds, code = _timed(cmd, child_env)
                counts = server.counts()
                result.ls[variant] = {
                    "seconds": seconds,
                    "requests": counts.total,
                    "by_category": dict(counts.by_category),
                    "exit": code,
                }


@dataclass(frozen=True)
class Check:
    target: str
    measured: str
    passed: bool


def checks(r: CliResult | None) -> list[Check]:
    """The issue's CLI targets."""
    if r is None:
        return []
    out = []
    if r.doctor and r.tf_import:
        d, t = statistics.median(r.doctor), statistics.median(r.tf_import)
        out.append(
            Check(
                f"`safeckpt doctor DIR` ≤ {DOCTOR_MAX_RATIO:.2f}x `python -c 'import tensorflow'`",
                f"{d:.2f} s vs {t:.2f} s ({d / t:.3f}x)",
                d / t <= DOCTOR_MAX_RATIO and r.doctor_exit in (0, 1),  # ran to the end
            )
        )
    cli, tf64 = r.ls.get("cli_default"), r.ls.get("tf_default_64mb")
    if cli is not None and tf64 is not None:
        ok = cli["exit"] == 0 and cli["seconds"] <= LS_MAX_SECONDS
        ok = ok and cli["requests"] <= tf64["requests"]
        out.append(
            Check(
                f"`safeckpt ls` of {LS_CHECKPOINTS:,} checkpoints on gs:// at "
                f"{LATENCY * 1e3:.0f} ms/request ≤ {LS_MAX_SECONDS:.0f} s, whole process, "
                "requests no more than with TF's default block size",
                f"{cli['seconds']:.1f} s, {cli['requests']:,} requests (TF's 64 MB default: "
                f"{tf64['seconds']:.1f} s, {tf64['requests']:,} requests)",
                ok,
            )
        )
    return out


def section(r: CliResult | None) -> list[str]:
    """The markdown of the section."""
    if r is None:
        return []
    lines = [
        "",
        "## The command line, whole process",
        "",
        "Each figure is one whole process as a user starts it (Python start-up, imports, the "
        f"work), median of {r.rounds} alternating rounds. Local: a directory of three 17 MB "
        "checkpoints, the newest with one flipped byte (the issue's setup: the quick check "
        "`doctor` runs does not read tensor bytes, `--deep` finds it); "
        "`safeckpt doctor` imports no TensorFlow on a local directory. The gs:// figures are "
        "whole processes too, TensorFlow's import included (the median above).",
        "",
        "| command | median | min | max |",
        "|---|---|---|---|",
    ]
    for label, series in (
        ("`safeckpt doctor DIR`", r.doctor),
        ("`python -c 'import tensorflow'`", r.tf_import),
    ):
        if series:
            lines.append(
                f"| {label} | {statistics.median(series):.2f} s | {min(series):.2f} s | "
                f"{max(series):.2f} s |"
            )
    if r.gcs_skipped:
        lines += ["", f"gs:// not measured: {r.gcs_skipped}"]
    elif r.ls:
        lines += [
            "",
            f"`python -m safeckpt ls DIR` of {LS_CHECKPOINTS:,} checkpoints on gs:// "
            f"(fake-gcs-server, {LATENCY * 1e3:.0f} ms per request), whole process:",
            "",
            "| `GCS_READ_CACHE_BLOCK_SIZE_MB` | seconds | requests | by kind |",
            "|---|---|---|---|",
        ]
        names = {"cli_default": "unset (the CLI sets 1)", "tf_default_64mb": "64 (TF's default)"}
        for variant, o in r.ls.items():
            kinds = ", ".join(f"{k} {v:,}" for k, v in o["by_category"].items() if v)
            lines.append(f"| {names[variant]} | {o['seconds']:.1f} | {o['requests']:,} | {kinds} |")
    return lines
