"""A guided tour of safeckpt: train a tiny Keras model, save, and see what safeckpt catches.

The story: train and save; a crash damages the newest checkpoint; the restarted job
resumes from the previous one (and says why); a typo'd directory and an empty one are
diagnosed instead of silently starting from scratch; a renamed attribute that plain TF
restores silently (nothing loaded) is diagnosed with the rename; paths that could never be
restored are refused up front.

Run with `make demo`, or: python examples/demo.py [WORKDIR]   (default: a new temp dir)
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import safeckpt
from safeckpt._cli.main import main as _cli_main


def safeckpt_cli(argv: list[str]) -> int:
    """Run the `safeckpt` command line in-process, indenting its output."""
    import io

    out = io.StringIO()
    code = _cli_main(argv, stdout=out, stderr=out)
    print("  " + out.getvalue().rstrip().replace("\n", "\n  "))
    return code


def heading(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 70 - len(text)))


def build() -> tuple[keras.Model, tf.train.Checkpoint]:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model, tf.train.Checkpoint(model=model, optimizer=model.optimizer)


def weights_equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def main(argv: list[str]) -> int:
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="  [log %(name)s] %(message)s"
    )
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.WARNING)
    if argv:
        workdir = Path(argv[0]).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="safeckpt-demo-"))
    os.chdir(workdir)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)), rng.normal(size=(64, 1))
    checks: dict[str, bool] = {}

    heading("1. Train a tiny Keras model and save with SafeCheckpointManager")
    model, checkpoint = build()
    manager = safeckpt.SafeCheckpointManager(checkpoint, "runs/exp1/checkpoints", max_to_keep=3)
    print(f"  relative 'runs/exp1/checkpoints' was normalized to {manager.directory}")
    weights = {}
    for epoch in range(1, 4):
        model.fit(x, y, epochs=1, verbose=0)
        weights[epoch] = model.get_weights()
        print(f"  epoch {epoch}: saved {manager.save()}")

    heading("2. A crash damages the newest checkpoint; ask the doctor")
    ckpt_dir = workdir / "runs/exp1/checkpoints"
    shard = ckpt_dir / "ckpt-3.data-00000-of-00001"
    with open(shard, "r+b") as handle:
        handle.truncate(shard.stat().st_size // 2)
    print(f"  truncated {shard.name} to half its size (a save cut short by a full disk)")
    _, plain = build()
    try:
        plain.restore(tf.train.latest_checkpoint(str(ckpt_dir)))
        print("  plain TensorFlow restored it?!")
    except Exception as error:
        print(f"  plain TensorFlow: {type(error).__name__}: {str(error).splitlines()[0]}")
    print(f"  $ safeckpt doctor {ckpt_dir}")
    code = safeckpt_cli(["doctor", str(ckpt_dir)])
    print(f"  (exit code {code})")
    print(f"  $ safeckpt verify {ckpt_dir}")
    safeckpt_cli(["verify", str(ckpt_dir)])

    heading("3. Restart: resume with fallback=('previous_valid', 'fresh_init')")
    model2, checkpoint2 = build()
    resumed = safeckpt.SafeCheckpointManager(
        checkpoint2, ckpt_dir, max_to_keep=3, fallback=("previous_valid", "fresh_init")
    )
    report = resumed.restore(resumed.latest_checkpoint)
    print("  RestoreReport:")
    print("    " + str(report).replace("\n", "\n    "))
    same = weights_equal(weights[2], model2.get_weights())
    print(f"  outcome: {report.outcome}; step {report.step}; weights equal epoch 2's: {same}")
    checks["resume fell back to ckpt-2"] = report.outcome == "fell_back" and report.step == 2
    checks["resumed weights"] = same
    model2.fit(x, y, epochs=1, verbose=0)
    path = resumed.save()
    print(f"  trained epoch 3 again: saved {path} (numbered above the damaged ckpt-3, kept as is)")
    checks["re-saved a verified ckpt-3"] = safeckpt.verify(path).ok

    heading("4. A typo'd directory for a job that must find checkpoints")
    try:
        safeckpt.SafeCheckpointManager(
            checkpoint, "runs/exp1/checkpoint", max_to_keep=3, read_only=True
        )
        checks["typo refused"] = False
    except safeckpt.CheckpointDirectoryError as error:
        print(f"  {type(error).__name__}:")
        print("  " + str(error).replace("\n", "\n  "))
        checks["typo refused"] = "did you mean" in str(error)

    heading("5. An empty directory, for a job that must resume (on_empty='raise')")
    (workdir / "runs/exp2/checkpoints").mkdir(parents=True)
    _, checkpoint3 = build()
    strict = safeckpt.SafeCheckpointManager(
        checkpoint3, "runs/exp2/checkpoints", max_to_keep=3, on_empty="raise"
    )
    try:
        strict.restore(strict.latest_checkpoint)
        checks["empty directory raised"] = False
    except tf.errors.NotFoundError as error:
        print(f"  caught by `except tf.errors.NotFoundError`: {type(error).__name__}")
        print("  " + str(error.diagnosis).replace("\n", "\n  "))
        checks["empty directory raised"] = isinstance(error, safeckpt.CheckpointNotFoundError)

    heading("6. A refactoring renamed an attribute: Checkpoint(model=...) is now (net=...)")
    net, _ = build()
    renamed = tf.train.Checkpoint(net=net, optimizer=net.optimizer)
    before = [w.copy() for w in net.get_weights()]
    status = renamed.restore(tf.train.latest_checkpoint(ckpt_dir))
    plain_same = weights_equal(before, net.get_weights())
    print(f"  plain TensorFlow: restore() raised nothing; weights unchanged: {plain_same}")
    status.expect_partial()
    try:
        safeckpt.SafeCheckpointManager(renamed, ckpt_dir, max_to_keep=3).restore()
        checks["rename diagnosed"] = False
    except safeckpt.CheckpointMismatchError as error:
        print("  safeckpt: " + str(error.diagnosis).replace("\n", "\n  "))
        checks["rename diagnosed"] = error.diagnosis is not None and any(
            "looks like the program's `net`" in s for s in error.diagnosis.suggestions
        )

    heading("7. '~' means your home directory, not a folder named '~'")
    os.environ["HOME"] = str(workdir / "home")
    home_manager = safeckpt.SafeCheckpointManager(checkpoint, "~/exp3/ckpts", max_to_keep=1)
    print(f"  '~/exp3/ckpts' -> {home_manager.directory}")
    print(f"  a literal './~' folder exists: {(workdir / '~').exists()}")

    heading("8. Paths that could never be restored are refused up front")
    for bad in ["runs/sweep[lr=0.1]", "gs:/my-bucket/run1", "s3://my-bucket/run1"]:
        try:
            safeckpt.SafeCheckpointManager(checkpoint, bad, max_to_keep=1)
        except safeckpt.CheckpointDirectoryError as error:
            first = str(error).splitlines()[0]
            print(f"  {bad!r}: {first}")

    failed = [name for name, passed in checks.items() if not passed]
    print(f"\nDemo files are in {workdir}")
    print("All demo checks passed." if not failed else f"FAILED checks: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
