"""Measuring: side-by-side timings of plain TensorFlow and safeckpt, as plain data.

Part 1 (`bench_construction`, `bench_save`, `bench_restore`) times manager operations on a
model, part 2 (`bench_big`) verification of a large checkpoint; `measure` runs everything
and returns a `benchmarks._data.Measurements`. Nothing here writes prose: the labels, the
targets and the report are `benchmarks._render`'s.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import gc
import io
import os
import pstats
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import tensorflow as tf

import safeckpt
from benchmarks._data import BigResult, Measurements, MiB, Profile, Series, log
from benchmarks._machine import LoadMeter, drop_caches, machine_info
from safeckpt._format import crc32c

# --- timing ----------------------------------------------------------------------------------


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


# --- part 1: manager operations --------------------------------------------------------------


def bench_construction(
    model: Model, root: Path, checkpoints: int, repeats: int, warmup: int, inner: int
) -> dict[str, Series]:
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
    return interleave(variants, repeats=repeats, warmup=warmup, inner=inner)


def bench_construction_large(
    root: Path, checkpoints: int, repeats: int, warmup: int
) -> dict[str, Series]:
    """Construction next to `checkpoints` checkpoints, the state file listing the last 5.

    One real checkpoint is written; the others are copies of its two files (their content
    does not matter to a constructor, only their number).
    """
    directory = root / "construct_large"
    ckpt = tf.train.Checkpoint(w=tf.Variable(tf.zeros([4])))
    first = tf.train.CheckpointManager(ckpt, str(directory), max_to_keep=5).save()
    index = Path(first + ".index").read_bytes()
    data = Path(first + ".data-00000-of-00001").read_bytes()
    for k in range(2, checkpoints + 1):
        (directory / f"ckpt-{k}.index").write_bytes(index)
        (directory / f"ckpt-{k}.data-00000-of-00001").write_bytes(data)
    listed = range(checkpoints - 4, checkpoints + 1)
    (directory / "checkpoint").write_text(
        f'model_checkpoint_path: "ckpt-{checkpoints}"\n'
        + "".join(f'all_model_checkpoint_paths: "ckpt-{k}"\n' for k in listed)
    )
    path = str(directory)
    variants = {
        "plain": lambda: tf.train.CheckpointManager(ckpt, path, max_to_keep=5),
        "safe": lambda: safeckpt.SafeCheckpointManager(ckpt, path, max_to_keep=5),
        "safe_latest": lambda: (
            safeckpt.SafeCheckpointManager(ckpt, path, max_to_keep=5).latest_checkpoint
        ),
    }
    return interleave(variants, repeats=repeats, warmup=warmup, inner=5)


def bench_save(model: Model, root: Path, repeats: int, warmup: int) -> dict[str, Series]:
    def make(name: str) -> Any:
        ckpt = tf.train.Checkpoint(model=model)  # each has its own save_counter
        directory = str(root / f"save_{name}")
        if name == "plain":
            return tf.train.CheckpointManager(ckpt, directory, max_to_keep=3)
        cleanup, finite = name == "safe_cleanup", name == "safe_finite"
        best = safeckpt.KeepBest("val_loss") if name == "safe_best" else None
        return safeckpt.SafeCheckpointManager(
            ckpt, directory, 3, cleanup_temp=cleanup, check_finite=finite, keep_best=best
        )

    managers: dict[str, Any] = {}
    for name in ("plain", "safe", "safe_cleanup", "safe_finite", "safe_best"):
        manager = make(name)
        for _ in range(3):  # every timed save then sweeps one
            manager.save()
        managers[name] = manager
    # sync() first: each save starts without the previous one's dirty pages being written back.
    calls: dict[str, Callable[[], Any]] = {n: m.save for n, m in managers.items()}
    calls["safe_best"] = _save_with_metrics(managers["safe_best"])
    res = interleave(
        calls,
        repeats=repeats,
        warmup=warmup,
        before=lambda _name: os.sync(),
    )
    for name, manager in managers.items():  # the shape stayed: 3 checkpoints each
        kept = 4 if name == "safe_best" else 3  # and the best one
        assert len(manager.checkpoints) == kept, (name, manager.checkpoints)
    return res


def _save_with_metrics(manager: Any) -> Callable[[], Any]:
    """A save with metrics and metadata whose metric gets worse each time (issue 23).

    With ``keep_best=KeepBest("val_loss")`` the first (best) checkpoint stays beside the
    newest 3, so the rotation keeps one more checkpoint, every save writes its metadata file
    and removes the one of the checkpoint it sweeps.
    """
    count = iter(range(1, 1 << 30))

    def save() -> Any:
        n = next(count)
        return manager.save(
            metrics={"val_loss": float(n), "accuracy": 1.0 / n},
            metadata={"epoch": n, "config": {"lr": 1e-3, "layers": [64, 64]}},
        )

    return save


def bench_restore(model: Model, root: Path, repeats: int, warmup: int) -> dict[str, Series]:
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
    return interleave(variants, repeats=repeats, warmup=warmup)


# --- part 2: verification of a large checkpoint ----------------------------------------------


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
    default = crc32c.BACKEND
    try:
        fallback_backend = crc32c.set_backend("tensorflow-tfrecord")
        log(f"deep verify once with the {fallback_backend} backend")
        fallback_deep = Series("deep_fallback")
        start = time.perf_counter()
        deep()
        fallback_deep.samples.append(time.perf_counter() - start)
    except ValueError as exc:
        fallback_error = str(exc)
    finally:
        crc32c.set_backend(default)

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
        nbytes,
        files,
        warm,
        cold,
        cold_error,
        fallback_deep,
        fallback_backend,
        fallback_error,
        crc32c.BACKEND,
    )


# --- profiling (--profile) -------------------------------------------------------------------


def profile(label: str, fn: Callable[[], Any], calls: int, lines: int = 18) -> Profile:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        fn()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("cumulative").print_stats(lines)
    return Profile(label, calls, out.getvalue().strip())


def run_profiles(model: Model, root: Path, big_prefix: str | None) -> list[Profile]:
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
    return parts


# --- the whole run ---------------------------------------------------------------------------


def measure(args: argparse.Namespace, command: str) -> Measurements:
    """Run every benchmark with the sizes and rounds of `args` (see ``bench.py --help``)."""
    tf.get_logger().setLevel("ERROR")
    started = datetime.datetime.now().astimezone()
    t0 = time.monotonic()
    meter = LoadMeter()
    scratch = Path(tempfile.mkdtemp(prefix="safeckpt-bench-", dir=args.workdir))
    try:
        info = machine_info(scratch)
        model = Model(200, int(args.model_mb * MiB), "model")
        sizes: dict[str, int] = {
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
        sizes["construct_large_ckpts"] = 1_000 if args.quick else 10_000
        log(f"construction next to {sizes['construct_large_ckpts']:,} checkpoints")
        construct_large = bench_construction_large(
            scratch, sizes["construct_large_ckpts"], args.repeats, args.warmup
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
        load = meter.stop()
        return Measurements(
            date=started.strftime("%Y-%m-%d %H:%M %Z").strip(),
            elapsed=time.monotonic() - t0,
            command=command,
            quick=args.quick,
            repeats=args.repeats,
            warmup=args.warmup,
            sizes=sizes,
            info=info,
            load=load,
            construct=construct,
            construct_large=construct_large,
            save=save,
            restore=restore,
            big=big,
            profiles=profiles,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
