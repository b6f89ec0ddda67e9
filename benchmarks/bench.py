"""Side-by-side timings: plain `tf.train.CheckpointManager` against `SafeCheckpointManager`.

Run from the repository root (``make bench`` does)::

    python benchmarks/bench.py --output docs/benchmarks.md
    python benchmarks/bench.py --quick          # small sizes, a smoke run in ~a minute

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

Not part of ``make test``; no timing is asserted anywhere else.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import gc
import io
import os
import platform
import pstats
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # run as a script from a checkout without an install
    sys.path.insert(0, str(_ROOT))

import tensorflow as tf  # noqa: E402

import safeckpt  # noqa: E402
from safeckpt import _crc32c  # noqa: E402

MiB = 1024 * 1024

# --- targets (from the issue) ----------------------------------------------------------------

SAVE_MAX = 1.02
RESTORE_QUICK_MAX = 1.05
CONSTRUCT_MAX = 1.10
QUICK_VS_RESTORE_MIN = 50.0
DEEP_VS_CAT_MIN = 0.8


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- statistics ------------------------------------------------------------------------------


@dataclass
class Series:
    """Timings (seconds) of one variant, in round order."""

    name: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def minimum(self) -> float:
        return min(self.samples)

    @property
    def iqr(self) -> tuple[float, float]:
        if len(self.samples) < 4:
            return min(self.samples), max(self.samples)
        q = statistics.quantiles(self.samples, n=4, method="inclusive")
        return q[0], q[2]


def paired_ratio(series: Series, base: Series) -> float:
    """Median over rounds of series/base (both measured in the same round)."""
    return statistics.median(s / b for s, b in zip(series.samples, base.samples, strict=True))


def interleave(
    variants: dict[str, Callable[[], Any]],
    *,
    repeats: int,
    warmup: int,
    before: Callable[[str], object] | None = None,
    inner: int = 1,
) -> dict[str, Series]:
    """Run every variant once per round, order reversed every other round (ABBA...).

    Each sample is the mean of `inner` back-to-back calls (for sub-millisecond operations).
    `before(name)` runs untimed ahead of each sample. Warm-up rounds are discarded.
    """
    names = list(variants)
    out = {n: Series(n) for n in names}
    for round_no in range(warmup + repeats):
        order = names if round_no % 2 == 0 else names[::-1]
        for name in order:
            if before is not None:
                before(name)
            gc.collect()
            fn = variants[name]
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            elapsed = (time.perf_counter() - start) / inner
            if round_no >= warmup:
                out[name].samples.append(elapsed)
    return out


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms" if seconds < 0.1 else f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.3f} s"


def fmt_delta(seconds: float) -> str:
    return ("+" if seconds >= 0 else "-") + fmt_time(abs(seconds))


def fmt_iqr(s: Series) -> str:
    lo, hi = s.iqr
    return f"{fmt_time(lo)} - {fmt_time(hi)}"


# --- machine ---------------------------------------------------------------------------------


def _busy_jiffies() -> int | None:
    """Non-idle CPU time of the whole machine, in clock ticks (Linux /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
    return sum(values) - values[3] - values[4]


def _own_cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class Load:
    """How busy the machine was around the run."""

    before: tuple[float, float, float]
    after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    busy0: int | None = None
    own0: float = 0.0
    wall0: float = 0.0
    other_share: float | None = None  # CPU used by other processes / machine capacity

    @classmethod
    def start(cls) -> Load:
        return cls(os.getloadavg(), busy0=_busy_jiffies(), own0=_own_cpu_seconds(),
                   wall0=time.monotonic())  # fmt: skip

    def stop(self) -> None:
        self.after = os.getloadavg()
        busy1 = _busy_jiffies()
        if self.busy0 is None or busy1 is None:
            return
        tick = os.sysconf("SC_CLK_TCK")
        machine = (busy1 - self.busy0) / tick
        own = _own_cpu_seconds() - self.own0
        capacity = (time.monotonic() - self.wall0) * (os.cpu_count() or 1)
        self.other_share = max(0.0, machine - own) / capacity if capacity > 0 else None


def machine_info(workdir: Path) -> list[tuple[str, str]]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / MiB:.1f} GiB RAM"
    except OSError:
        pass
    fs = ""
    try:
        out = (
            subprocess.run(["df", "-PT", str(workdir)], capture_output=True, text=True, check=True)
            .stdout.splitlines()[-1]
            .split()
        )
        fs = f"{workdir} on {out[0]} ({out[1]})"
    except (OSError, subprocess.CalledProcessError, IndexError):
        fs = str(workdir)
    crc = _crc32c.BACKEND
    if crc == "google_crc32c":
        try:
            from importlib.metadata import version

            crc += f" {version('google-crc32c')}"
        except Exception:  # only decoration
            pass
    return [
        ("CPU", f"{cpu}, {os.cpu_count()} logical CPUs" + (f", {mem}" if mem else "")),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("TensorFlow", tf.__version__),
        ("safeckpt", safeckpt.__version__),
        ("CRC32C backend", f"`{crc}` (`safeckpt._crc32c.BACKEND`)"),
        ("Working directory", fs),
    ]


# --- models and checkpoints ------------------------------------------------------------------


class Model(tf.Module):  # type: ignore[misc]
    """`count` float32 vectors totalling about `total_bytes`."""

    def __init__(self, count: int, total_bytes: int, name: str) -> None:
        super().__init__(name=name)
        per = max(1, total_bytes // 4 // count)
        self.weights = [
            tf.Variable(tf.random.uniform([per], seed=i), name=f"w{i}") for i in range(count)
        ]

    @property
    def nbytes(self) -> int:
        return sum(int(v.shape.num_elements()) * 4 for v in self.weights)


def checkpoint_files(prefix: str) -> list[str]:
    return sorted(str(p) for p in Path(prefix).parent.glob(Path(prefix).name + ".*"))


def drop_caches() -> bool:
    """Empty the page cache (root only); False when not permitted."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


# --- part 1: manager operations --------------------------------------------------------------


@dataclass
class Row:
    label: str
    series: Series
    base: Series | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if self.base is None else self.series.median / self.base.median

    @property
    def paired(self) -> float | None:
        return None if self.base is None else paired_ratio(self.series, self.base)


def bench_construction(
    model: Model, root: Path, checkpoints: int, repeats: int, warmup: int, inner: int
) -> list[Row]:
    directory = root / "construct"
    ckpt = tf.train.Checkpoint(model=model)
    writer = tf.train.CheckpointManager(ckpt, str(directory), max_to_keep=checkpoints)
    for _ in range(checkpoints):
        writer.save()
    path = str(directory)
    variants = {
        "plain": lambda: tf.train.CheckpointManager(ckpt, path, max_to_keep=checkpoints),
        "safe": lambda: safeckpt.SafeCheckpointManager(ckpt, path, max_to_keep=checkpoints),
        "safe_ro": lambda: safeckpt.SafeCheckpointManager(
            ckpt, path, max_to_keep=checkpoints, read_only=True
        ),
    }
    res = interleave(variants, repeats=repeats, warmup=warmup, inner=inner)
    base = res["plain"]
    return [
        Row("`tf.train.CheckpointManager(...)`", base),
        Row("`SafeCheckpointManager(...)`", res["safe"], base),
        Row(
            "`SafeCheckpointManager(..., read_only=True)`",
            res["safe_ro"],
            base,
            "no write probe",
        ),
    ]


def bench_save(model: Model, root: Path, repeats: int, warmup: int) -> list[Row]:
    def make(name: str) -> Any:
        ckpt = tf.train.Checkpoint(model=model)  # each has its own save_counter
        directory = str(root / f"save_{name}")
        if name == "plain":
            return tf.train.CheckpointManager(ckpt, directory, max_to_keep=3)
        cleanup = name == "safe_cleanup"
        return safeckpt.SafeCheckpointManager(ckpt, directory, 3, cleanup_temp=cleanup)

    managers: dict[str, Any] = {}
    for name in ("plain", "safe", "safe_cleanup"):
        manager = make(name)
        for _ in range(3):  # every timed save then sweeps one
            manager.save()
        managers[name] = manager
    # sync() first: each save starts without the previous one's dirty pages being written back.
    res = interleave(
        {n: m.save for n, m in managers.items()},
        repeats=repeats,
        warmup=warmup,
        before=lambda _name: os.sync(),
    )
    for name, manager in managers.items():  # the shape stayed: 3 checkpoints each
        assert len(manager.checkpoints) == 3, (name, manager.checkpoints)
    base = res["plain"]
    return [
        Row("`tf.train.CheckpointManager.save()`", base),
        Row("`SafeCheckpointManager.save()`", res["safe"], base),
        Row(
            "`SafeCheckpointManager.save()`, `cleanup_temp=True`",
            res["safe_cleanup"],
            base,
            "rescans the directory after each save",
        ),
    ]


def bench_restore(model: Model, root: Path, repeats: int, warmup: int) -> list[Row]:
    directory = str(root / "restore")
    writer = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), directory, 3)
    for _ in range(3):
        writer.save()
    ckpt = tf.train.Checkpoint(model=model)
    plain = tf.train.CheckpointManager(ckpt, directory, max_to_keep=3)
    safe = {
        level: safeckpt.SafeCheckpointManager(ckpt, directory, max_to_keep=3, verify=level)
        for level in ("none", "quick", "deep")
    }
    latest = plain.latest_checkpoint
    assert latest is not None
    assert all(m.latest_checkpoint == latest for m in safe.values())

    def checked(report: Any) -> None:
        assert report.save_path == latest, report

    variants: dict[str, Callable[[], Any]] = {
        "plain": lambda: ckpt.restore(plain.latest_checkpoint),
        "plain_roi": plain.restore_or_initialize,
        "none": lambda: checked(safe["none"].restore()),
        "quick": lambda: checked(safe["quick"].restore()),
        "deep": lambda: checked(safe["deep"].restore()),
        "quick_roi": safe["quick"].restore_or_initialize,
    }
    res = interleave(variants, repeats=repeats, warmup=warmup)
    base = res["plain"]
    return [
        Row("plain `checkpoint.restore(manager.latest_checkpoint)`", base),
        Row("plain `manager.restore_or_initialize()`", res["plain_roi"], base),
        Row('`SafeCheckpointManager.restore()`, `verify="none"`', res["none"], base),
        Row('`SafeCheckpointManager.restore()`, `verify="quick"` (default)', res["quick"], base),
        Row('`SafeCheckpointManager.restore()`, `verify="deep"`', res["deep"], base),
        Row("`SafeCheckpointManager.restore_or_initialize()`, quick", res["quick_roi"], base),
    ]


# --- part 2: verification of a large checkpoint ----------------------------------------------


@dataclass
class BigResult:
    nbytes: int
    files: list[str]
    warm: dict[str, Series]
    cold: dict[str, Series] | None
    cold_error: str | None
    fallback_deep: Series | None
    fallback_backend: str | None
    fallback_error: str | None


def _python_read(files: Sequence[str]) -> None:
    for name in files:
        with tf.io.gfile.GFile(name, "rb") as f:
            while f.read(8 * MiB):
                pass


def bench_big(root: Path, total: int, count: int, repeats: int, cold_repeats: int) -> BigResult:
    log(f"building a {total / MiB:.0f} MiB checkpoint ({count} variables)")
    model = Model(count, total, "big")
    ckpt = tf.train.Checkpoint(model=model)
    prefix = ckpt.write(str(root / "big" / "ckpt-1"))
    files = checkpoint_files(prefix)
    nbytes = sum(os.path.getsize(f) for f in files)

    def quick() -> None:
        assert safeckpt.verify(prefix).ok

    def deep() -> None:
        assert safeckpt.verify(prefix, deep=True).ok

    def restore() -> None:
        ckpt.restore(prefix)  # eager: the values are assigned before this returns

    def cat() -> None:
        subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)

    variants: dict[str, Callable[[], Any]] = {
        "quick": quick,
        "deep": deep,
        "restore": restore,
        "cat": cat,
        "pyread": lambda: _python_read(files),
    }
    for fn in variants.values():  # every file is in the page cache for everyone
        fn()
    log("1 GB part, warm page cache")
    warm = interleave(variants, repeats=repeats, warmup=0)

    fallback_deep = None
    fallback_backend = None
    fallback_error = None
    default = _crc32c.BACKEND
    try:
        fallback_backend = _crc32c.set_backend("tensorflow-tfrecord")
        log(f"deep verify once with the {fallback_backend} backend")
        fallback_deep = Series("deep_fallback")
        start = time.perf_counter()
        deep()
        fallback_deep.samples.append(time.perf_counter() - start)
    except ValueError as exc:
        fallback_error = str(exc)
    finally:
        _crc32c.set_backend(default)

    cold: dict[str, Series] | None = None
    cold_error: str | None = None
    if cold_repeats > 0:
        if drop_caches():
            log("1 GB part, cold page cache (drop_caches before every run)")
            cold = interleave(
                variants,
                repeats=cold_repeats,
                warmup=0,
                before=lambda _name: drop_caches(),
            )
            for fn in variants.values():  # leave the cache warm again
                fn()
        else:
            cold_error = "writing /proc/sys/vm/drop_caches was not permitted"
    else:
        cold_error = "skipped (--cold-repeats 0, the default with --quick)"
    return BigResult(
        nbytes, files, warm, cold, cold_error, fallback_deep, fallback_backend, fallback_error
    )


# --- profiling (--profile) -------------------------------------------------------------------


def profile(label: str, fn: Callable[[], Any], calls: int, lines: int = 18) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        fn()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("cumulative").print_stats(lines)
    return f"### {label} ({calls} calls)\n\n```\n{out.getvalue().strip()}\n```\n"


def run_profiles(model: Model, root: Path, big_prefix: str | None) -> str:
    directory = str(root / "construct")
    ckpt = tf.train.Checkpoint(model=model)
    parts = [
        profile(
            "SafeCheckpointManager(...) construction",
            lambda: safeckpt.SafeCheckpointManager(ckpt, directory, max_to_keep=5),
            200,
        ),
        profile(
            "tf.train.CheckpointManager(...) construction",
            lambda: tf.train.CheckpointManager(ckpt, directory, max_to_keep=5),
            200,
        ),
    ]
    safe = safeckpt.SafeCheckpointManager(ckpt, str(root / "restore"), max_to_keep=3)
    parts.append(profile("SafeCheckpointManager.restore(), quick", safe.restore, 20))
    if big_prefix is not None:
        parts.append(
            profile(
                "safeckpt.verify(prefix, deep=True) on the large checkpoint",
                lambda: safeckpt.verify(big_prefix, deep=True),
                1,
            )
        )
    return "\n".join(parts)


# --- report ----------------------------------------------------------------------------------


def ratio_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}x"


def table(rows: list[Row]) -> list[str]:
    out = [
        "| operation | median | IQR | min | ratio of medians | median paired ratio | note |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        s = r.series
        out.append(
            f"| {r.label} | {fmt_time(s.median)} | {fmt_iqr(s)} | {fmt_time(s.minimum)} | "
            f"{ratio_text(r.ratio)} | {ratio_text(r.paired)} | {r.note or ('baseline' if r.base is None else '')} |"  # noqa: E501
        )
    return out


def throughput(nbytes: int, seconds: float) -> str:
    return f"{nbytes / MiB / seconds:,.0f} MiB/s"


BIG_LABELS = {
    "quick": "`safeckpt.verify(prefix)` (quick)",
    "deep": "`safeckpt.verify(prefix, deep=True)`",
    "restore": "full restore: `tf.train.Checkpoint.restore(prefix)`",
    "cat": "`cat <files> > /dev/null`",
    "pyread": "Python read, 8 MiB chunks, no CRC (`tf.io.gfile.GFile`)",
}


def big_table(result: BigResult, series: dict[str, Series]) -> list[str]:
    out = [
        "| operation | median | IQR | min | throughput (median) | vs full restore |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    restore = series["restore"].median
    for key, label in BIG_LABELS.items():
        if key not in series:
            continue
        s = series[key]
        speed = throughput(result.nbytes, s.median) if key != "quick" else "(reads the index)"
        vs = f"{restore / s.median:,.1f}x faster" if key != "restore" else "baseline"
        if key != "restore" and s.median > restore:
            vs = f"{s.median / restore:,.2f}x slower"
        out.append(
            f"| {label} | {fmt_time(s.median)} | {fmt_iqr(s)} | {fmt_time(s.minimum)} | "
            f"{speed} | {vs} |"
        )
    return out


@dataclass
class Check:
    target: str
    measured: str
    passed: bool


def checks(
    construct: list[Row], save: list[Row], restore: list[Row], big: BigResult
) -> list[Check]:
    out = []
    r = save[1].ratio or 0.0
    out.append(Check(f"save ≤ {SAVE_MAX:.2f}x plain TF", f"{r:.3f}x", r <= SAVE_MAX))
    r = restore[3].ratio or 0.0
    out.append(
        Check(
            f"restore with quick verify ≤ {RESTORE_QUICK_MAX:.2f}x plain "
            "`checkpoint.restore(latest_checkpoint)`",
            f"{r:.3f}x",
            r <= RESTORE_QUICK_MAX,
        )
    )
    r = construct[1].ratio or 0.0
    out.append(
        Check(f"construction ≤ {CONSTRUCT_MAX:.2f}x plain TF", f"{r:.3f}x", r <= CONSTRUCT_MAX)
    )
    for label, series in (("warm cache", big.warm), ("cold cache", big.cold)):
        if series is None:
            continue
        f = series["restore"].median / series["quick"].median
        out.append(
            Check(
                f"quick verify ≥ {QUICK_VS_RESTORE_MIN:.0f}x faster than a full restore ({label})",
                f"{f:,.0f}x",
                f >= QUICK_VS_RESTORE_MIN,
            )
        )
    for label, series in (("warm cache", big.warm), ("cold cache", big.cold)):
        if series is None:
            continue
        f = series["cat"].median / series["deep"].median  # throughput ratio deep/cat
        out.append(
            Check(
                f"deep verify ≥ {DEEP_VS_CAT_MIN:.1f}x the read throughput of `cat` ({label})",
                f"{f:.2f}x ({throughput(big.nbytes, series['deep'].median)} vs "
                f"{throughput(big.nbytes, series['cat'].median)})",
                f >= DEEP_VS_CAT_MIN,
            )
        )
    return out


def interpretation(
    construct: list[Row],
    save: list[Row],
    restore: list[Row],
    big: BigResult,
    load: Load,
    model_bytes: int,
) -> list[str]:
    plain_c, safe_c, ro_c = construct
    extra_c = safe_c.series.median - plain_c.series.median
    probe = safe_c.series.median - ro_c.series.median
    plain_r, _roi, none_r, quick_r, deep_r, _qroi = restore
    extra_quick = quick_r.series.median - plain_r.series.median
    extra_none = none_r.series.median - plain_r.series.median
    warm = big.warm
    deep_cat = warm["cat"].median / warm["deep"].median
    pyread_cat = warm["cat"].median / warm["pyread"].median
    size = f"{model_bytes / MiB:.0f} MiB"
    text = [
        "Outside multi-worker training `SafeCheckpointManager.save()` runs TensorFlow's "
        f"`save()` unchanged (plus a few checks), so its ratio ({save[1].ratio:.3f}x) measures "
        f"the noise between identical {size} writes; "
        f"`cleanup_temp=True` also scans the directory after each save ({save[2].ratio:.3f}x).",
        f"Construction costs {fmt_time(extra_c)} more than TensorFlow's "
        f"({fmt_time(plain_c.series.median)} → {fmt_time(safe_c.series.median)}): safeckpt "
        "validates the directory (exists, is a directory, can be listed, a probe file is "
        "written and removed), then reads the state file a second time and lists the "
        "directory (one stat per file) to reconcile them. The write probe accounts for "
        f"{fmt_time(probe)} of it (`read_only=True` skips it). These costs are fixed per "
        "manager, independent of the model size, and paid once per job.",
        f"Against the {fmt_time(plain_r.series.median)} restore of the {size} model, "
        f"`SafeCheckpointManager.restore()` costs {fmt_delta(extra_none)} without "
        f"verification and {fmt_delta(extra_quick)} with the default quick verification (the "
        "directory is listed, the index parsed with its block checksums checked, every "
        f'shard\'s size checked); `verify="deep"` reads every byte a second time '
        f"({deep_r.ratio:.2f}x).",
        f"On the {big.nbytes / MiB:,.0f} MiB checkpoint with a warm page cache, deep "
        f"verification reaches {deep_cat:.2f}x the throughput of `cat`. For comparison, "
        "merely reading the files through `tf.io.gfile` in 8 MiB chunks, without any "
        f"checksum, reaches {pyread_cat:.2f}x of `cat`",
    ]
    if pyread_cat <= deep_cat * 1.25:
        text[-1] += (
            ", so the read path (a fresh 8 MiB `bytes` object per read), not the CRC32C, "
            "sets the pace."
        )
    else:
        text[-1] += "."
    if big.cold is not None:
        cold_ratio = big.cold["cat"].median / big.cold["deep"].median
        text.append(
            f"With a cold cache the disk sets the pace: deep verification reaches "
            f"{cold_ratio:.2f}x of `cat` ({throughput(big.nbytes, big.cold['deep'].median)} vs "
            f"{throughput(big.nbytes, big.cold['cat'].median)})."
        )
    if load.other_share is not None and load.other_share > 0.05:
        text.append(
            f"Other processes used {load.other_share:.0%} of the machine's CPU time during this "
            "run: absolute figures are inflated and ratios noisier than on a quiet machine."
        )
    return [" ".join(text)]


def report(
    args: argparse.Namespace,
    sizes: dict[str, Any],
    info: list[tuple[str, str]],
    load: Load,
    construct: list[Row],
    save: list[Row],
    restore: list[Row],
    big: BigResult,
    profiles: str | None,
    started: datetime.datetime,
    elapsed: float,
) -> str:
    cmd = "python " + " ".join(
        shlex.quote(a) for a in [os.path.relpath(__file__, Path.cwd()), *sys.argv[1:]]
    )
    lines = [
        "# Benchmarks",
        "",
        "Plain `tf.train.CheckpointManager` against `SafeCheckpointManager`, side by side in one "
        "process. Generated by `make bench`; do not edit by hand.",
        "",
        f"- Date: {started.strftime('%Y-%m-%d %H:%M %Z').strip()} (run took {elapsed:.0f} s)",
        f"- Command: `{cmd}`" + (" (smoke sizes)" if args.quick else ""),
    ]
    lines += [f"- {k}: {v}" for k, v in info]
    la = ", ".join(f"{x:.2f}" for x in load.before)
    lb = ", ".join(f"{x:.2f}" for x in load.after)
    lines.append(f"- Load average (1, 5, 15 min): {la} before, {lb} after")
    if load.other_share is not None:
        shared = load.other_share > 0.05
        lines.append(
            f"- CPU used by other processes during the run: {load.other_share:.0%} of the "
            "machine" + (" — **the machine was shared; timings are distorted**" if shared else "")
        )
    lines += [
        "",
        "## Targets",
        "",
        "| target | measured | result |",
        "|---|---|---|",
    ]
    for c in checks(construct, save, restore, big):
        lines.append(f"| {c.target} | {c.measured} | {'PASS' if c.passed else '**FAIL**'} |")
    lines += [
        "",
        "## Method",
        "",
        f"Model: {sizes['model_vars']} float32 variables, {sizes['model_bytes'] / MiB:.1f} MiB "
        f"in total. Every operation runs {args.repeats} measured rounds after "
        f"{args.warmup} discarded warm-up round(s); within a round each variant runs once, "
        "and the order is reversed every other round (A B, B A, …) so that neither side "
        "always runs first. All variants run in the same process, on directories of the same "
        "shape, with a `gc.collect()` before each sample. *Ratio of medians* is the safe "
        "median over the plain median; *median paired ratio* is the median of the per-round "
        "ratios (robust to drift in machine load). IQR is the interquartile range.",
        "",
        "## Construction",
        "",
        f"On a directory holding {sizes['construct_ckpts']} checkpoints of the model (state "
        f"file included). Each sample is the mean of {sizes['inner']} constructions.",
        "",
        *table(construct),
        "",
        "## save()",
        "",
        "`max_to_keep=3`; every directory already holds 3 checkpoints, so each save writes "
        f"{sizes['model_bytes'] / MiB:.0f} MiB, updates the state file and sweeps (deletes) the "
        "oldest checkpoint. Each manager saves into its own directory. `os.sync()` runs "
        "(untimed) before every save, so no save pays for the write-back of the previous one.",
        "",
        *table(save),
        "",
        "## Restore of the newest checkpoint",
        "",
        "One directory with 3 checkpoints; every variant restores the same newest checkpoint "
        "into the same variables (`SafeCheckpointManager.restore()` also returns a "
        "`RestoreReport`). The baseline is `checkpoint.restore(manager.latest_checkpoint)`.",
        "",
        *table(restore),
        "",
        f"## Verification of a {big.nbytes / MiB:,.0f} MiB checkpoint",
        "",
        f"{sizes['big_vars']} float32 variables in one shard "
        f"({', '.join(Path(f).name for f in big.files)}); {sizes['big_repeats']} rounds, same "
        "interleaving. `cat` runs as a subprocess (`cat <index> <data> > /dev/null`); "
        "throughput is the total size of the checkpoint's files over the median time.",
        "",
        "### Warm page cache",
        "",
        "Every operation ran once before the measurements, so all files were in the page "
        "cache for every variant.",
        "",
        *big_table(big, big.warm),
        "",
        "### Cold page cache",
        "",
    ]
    if big.cold is not None:
        lines += [
            "`sync; echo 3 > /proc/sys/vm/drop_caches` before every single run "
            f"({sizes['cold_repeats']} rounds).",
            "",
            *big_table(big, big.cold),
        ]
    else:
        lines.append(f"Not measured: {big.cold_error}.")
    lines += ["", "### CRC32C backends", ""]
    deep_default = big.warm["deep"].median
    lines.append(
        f"- `{_crc32c.BACKEND}` (default here): deep verify {fmt_time(deep_default)}, "
        f"{throughput(big.nbytes, deep_default)} (warm median)."
    )
    if big.fallback_deep is not None:
        t = big.fallback_deep.samples[0]
        lines.append(
            f"- `{big.fallback_backend}` (the built-in fallback when `google-crc32c` is not "
            f"installed; `safeckpt._crc32c.set_backend('{big.fallback_backend}')`): deep verify "
            f"{fmt_time(t)}, {throughput(big.nbytes, t)} (one warm run)."
        )
    else:
        lines.append(f"- Fallback backend not measured: {big.fallback_error}")
    lines += [
        "",
        "## Interpretation",
        "",
        *interpretation(construct, save, restore, big, load, sizes["model_bytes"]),
        "",
    ]
    if profiles:
        lines += ["## Profiles (`--profile`)", "", profiles, ""]
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes and few rounds (smoke run)")
    p.add_argument("--repeats", type=int, default=None, help="measured rounds (default 15)")
    p.add_argument("--warmup", type=int, default=None, help="discarded rounds (default 2)")
    p.add_argument("--output", type=Path, default=None, help="write the markdown here")
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
    tf.get_logger().setLevel("ERROR")
    started = datetime.datetime.now().astimezone()
    t0 = time.monotonic()
    load = Load.start()
    scratch = Path(tempfile.mkdtemp(prefix="safeckpt-bench-", dir=args.workdir))
    try:
        info = machine_info(scratch)
        model = Model(200, int(args.model_mb * MiB), "model")
        sizes: dict[str, Any] = {
            "model_vars": 200,
            "model_bytes": model.nbytes,
            "construct_ckpts": 5,
            "inner": 5 if args.quick else 20,
            "big_vars": 8,
            "big_repeats": min(args.repeats, 3 if args.quick else 7),
            "cold_repeats": args.cold_repeats,
        }
        log(f"scratch {scratch}; model {model.nbytes / MiB:.1f} MiB; construction")
        construct = bench_construction(
            model,
            scratch,
            sizes["construct_ckpts"],
            args.repeats * 2,
            args.warmup,
            sizes["inner"],
        )
        log("save()")
        save = bench_save(model, scratch, args.repeats, args.warmup)
        log("restore")
        restore = bench_restore(model, scratch, args.repeats, args.warmup)
        big = bench_big(
            scratch,
            int(args.big_mb * MiB),
            sizes["big_vars"],
            sizes["big_repeats"],
            sizes["cold_repeats"],
        )
        profiles = None
        if args.profile:
            log("profiles")
            big_prefix = str(scratch / "big" / "ckpt-1")
            profiles = run_profiles(model, scratch, big_prefix)
        load.stop()
        text = report(
            args,
            sizes,
            info,
            load,
            construct,
            save,
            restore,
            big,
            profiles,
            started,
            time.monotonic() - t0,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.output is None:
        print(text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + ("" if text.endswith("\n") else "\n"))
        log(f"wrote {args.output}")
    failed = [c for c in checks(construct, save, restore, big) if not c.passed]
    for c in failed:
        log(f"target missed: {c.target}: {c.measured}")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
