"""A guided tour of safeckpt: train a tiny Keras model, save, and see what safeckpt catches.

Run with `make demo`.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import safeckpt
from safeckpt._cli import main as _cli_main


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


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="  [log %(name)s] %(message)s")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="safeckpt-demo-"))
    os.chdir(workdir)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)), rng.normal(size=(64, 1))

    heading("1. Train a tiny Keras model and save with SafeCheckpointManager")
    model, checkpoint = build()
    manager = safeckpt.SafeCheckpointManager(checkpoint, "runs/exp1/checkpoints", max_to_keep=3)
    print(f"  relative 'runs/exp1/checkpoints' was normalized to {manager.directory}")
    for epoch in range(1, 4):
        model.fit(x, y, epochs=1, verbose=0)
        print(f"  epoch {epoch}: saved {manager.save()}")

    shutil.copy(
        workdir / "runs/exp1/checkpoints/ckpt-3.data-00000-of-00001", workdir / "ckpt-3-backup.data"
    )

    heading("2. A typo'd directory for a job that must find checkpoints")
    try:
        safeckpt.SafeCheckpointManager(
            checkpoint, "runs/exp1/checkpoint", max_to_keep=3, read_only=True
        )
    except safeckpt.CheckpointDirectoryError as error:
        print(f"  {type(error).__name__}:")
        print("  " + str(error).replace("\n", "\n  "))

    heading("3. '~' means your home directory, not a folder named '~'")
    os.environ["HOME"] = str(workdir / "home")
    home_manager = safeckpt.SafeCheckpointManager(checkpoint, "~/exp2/ckpts", max_to_keep=1)
    print(f"  '~/exp2/ckpts' -> {home_manager.directory}")
    print(f"  a literal './~' folder exists: {(workdir / '~').exists()}")

    heading("4. Paths that could never be restored are refused up front")
    for bad in ["runs/sweep[lr=0.1]", "gs:/my-bucket/run1", "s3://my-bucket/run1"]:
        try:
            safeckpt.SafeCheckpointManager(checkpoint, bad, max_to_keep=1)
        except safeckpt.CheckpointDirectoryError as error:
            first = str(error).splitlines()[0]
            print(f"  {bad!r}: {first}")

    heading("5. Damage the newest checkpoint and ask the doctor")
    ckpt_dir = workdir / "runs/exp1/checkpoints"
    shard = ckpt_dir / "ckpt-3.data-00000-of-00001"
    with open(shard, "r+b") as handle:
        handle.truncate(shard.stat().st_size // 2)
    print(f"  truncated {shard.name} to half its size (an interrupted copy)")
    print(f"  $ safeckpt doctor {ckpt_dir}")
    code = safeckpt_cli(["doctor", str(ckpt_dir)])
    print(f"  (exit code {code})")
    print(f"  $ safeckpt ls {ckpt_dir}")
    safeckpt_cli(["ls", str(ckpt_dir)])
    shutil.copy(workdir / "ckpt-3-backup.data", shard)
    print("  (restored the shard from a copy for the next step)")

    heading("6. Resume from the saved run in a fresh model")
    model2, checkpoint2 = build()
    resumed = safeckpt.SafeCheckpointManager(checkpoint2, workdir / "runs/exp1/checkpoints", 3)
    path = resumed.restore_or_initialize()
    same = all(
        np.allclose(a, b) for a, b in zip(model.get_weights(), model2.get_weights(), strict=True)
    )
    print(f"  restored {path}; weights identical to the trained model: {same}")
    print(f"\nDemo files are in {workdir}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
