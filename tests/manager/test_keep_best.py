"""``keep_best``: the k best checkpoints by a metric survive the ``max_to_keep`` rotation.

The oracle is the documented rule written here as its own small function (`expected_kept`),
fed with the values this test chose for each save; the directory's files are compared with
it after every save, and every kept checkpoint is read back with plain TensorFlow.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tensorflow as tf
from tensorflow.python.checkpoint import checkpoint_management

import safeckpt

REPO = Path(__file__).resolve().parents[2]


def expected_kept(
    values: list[float | None], max_to_keep: int, k: int, mode: str, first_step: int = 1
) -> set[int]:
    """The documented rule: the newest `max_to_keep` saves plus the `k` best by value.

    `values[i]` is the metric of step ``first_step + i`` (None: not recorded). Non-finite
    values never rank; on equal values the higher step ranks first.
    """
    steps = list(range(first_step, first_step + len(values)))
    newest = set(steps[-max_to_keep:])
    ranked = [
        (v if mode == "min" else -v, -s)
        for s, v in zip(steps, values, strict=True)
        if v is not None and math.isfinite(v)
    ]
    best = {-s for _, s in sorted(ranked)[:k]}
    return newest | best


def on_disk(directory: Path, name: str = "ckpt") -> tuple[set[int], set[int]]:
    """Steps with an index file, and steps with a metadata file."""
    indexes, metadata = set(), set()
    for entry in os.listdir(directory):
        if entry.startswith(name + "-") and entry.endswith(".index"):
            indexes.add(int(entry[len(name) + 1 : -len(".index")]))
        if entry.startswith(name + "-") and entry.endswith(".safeckpt.json"):
            metadata.add(int(entry[len(name) + 1 : -len(".safeckpt.json")]))
    return indexes, metadata


def plain_tf_value(prefix: str) -> float:
    """The value of ``v`` in `prefix`, restored by plain TensorFlow (every value consumed)."""
    v = tf.Variable(0.0)
    tf.train.Checkpoint(v=v).restore(prefix).assert_existing_objects_matched()
    return float(v.numpy())


@pytest.mark.parametrize(
    ("max_to_keep", "k", "mode", "seed"),
    [(3, 1, "min", 0), (2, 2, "max", 1), (1, 3, "min", 2), (4, 2, "max", 3)],
)
def test_the_files_follow_the_rule_after_every_save(
    tmp_path: Path, max_to_keep: int, k: int, mode: str, seed: int
) -> None:
    rng = random.Random(seed)
    v = tf.Variable(0.0)
    manager = safeckpt.SafeCheckpointManager(
        tf.train.Checkpoint(v=v), tmp_path, max_to_keep, keep_best=safeckpt.KeepBest("m", mode, k)
    )
    values: list[float | None] = []
    for step in range(1, 25):
        value: float | None = rng.choice([None, math.nan, *[rng.randint(0, 6) / 2] * 6])
        values.append(value)
        v.assign(float(step))
        manager.save(metrics={} if value is None else {"m": value})
        indexes, metadata = on_disk(tmp_path)
        assert indexes == expected_kept(values, max_to_keep, k, mode), (step, values)
        assert metadata == indexes  # metadata files never outlive their checkpoints
    for step in indexes:
        assert plain_tf_value(str(tmp_path / f"ckpt-{step}")) == float(step)
    # restore() still resumes from the newest, not the best.
    report = safeckpt.SafeCheckpointManager(
        tf.train.Checkpoint(v=v), tmp_path, max_to_keep, keep_best=safeckpt.KeepBest("m", mode, k)
    ).restore()
    assert report.step == 24 and float(v.numpy()) == 24.0


_CHILD = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    import safeckpt

    directory, phase = sys.argv[1], sys.argv[2]
    v = tf.Variable(0.0)
    manager = safeckpt.SafeCheckpointManager(
        tf.train.Checkpoint(v=v), directory, 2, keep_best=safeckpt.KeepBest("val_loss")
    )
    out = {}
    if phase == "train":
        for step, loss in enumerate([1.0, 0.2, 0.5, 0.6, 0.7, 0.8, 0.9], 1):
            v.assign(float(step))  # worse for 5 saves > max_to_keep
            manager.save(metrics={"val_loss": loss})
        out["best"] = manager.best_checkpoint
        out["checkpoints"] = manager.checkpoints
    else:
        evaluator = safeckpt.SafeCheckpointManager(
            tf.train.Checkpoint(v=v), directory, 2, keep_best=safeckpt.KeepBest("val_loss"),
            read_only=True,
        )
        best = evaluator.best_checkpoint
        restored = evaluator.restore(best)
        out = {"best": best, "restored": restored.save_path, "value": float(v.numpy())}
        out["trainer_best"] = manager.best_checkpoint
        out["newest"] = manager.restore().save_path
        for value in (0.95, 0.99):
            v.assign(v + 1.0)
            manager.save(metrics={"val_loss": value})
        out["best_after_worse"] = manager.best_checkpoint
        v.assign(v + 1.0)
        manager.save(metrics={"val_loss": 0.1})
        out["best_after_better"] = manager.best_checkpoint
    print(json.dumps(out))
    """
)


def _child(directory: Path, phase: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(directory), phase],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_best_survives_a_long_decline_and_a_restart(tmp_path: Path) -> None:
    out = _child(tmp_path, "train")
    assert on_disk(tmp_path) == ({2, 6, 7}, {2, 6, 7})
    assert out["best"] == str(tmp_path / "ckpt-2")
    assert out["checkpoints"] == [str(tmp_path / f"ckpt-{s}") for s in (2, 6, 7)]
    # A new process finds the best again from the metadata files.
    out = _child(tmp_path, "resume")
    assert out["best"] == out["restored"] == str(tmp_path / "ckpt-2")
    assert out["value"] == 2.0 and out["trainer_best"] == out["best"]
    assert out["newest"] == str(tmp_path / "ckpt-7")  # resuming is still the newest
    assert out["best_after_worse"] == str(tmp_path / "ckpt-2")
    assert out["best_after_better"] == str(tmp_path / "ckpt-10")
    # ckpt-2 left with its metadata once it was neither newest nor best.
    assert on_disk(tmp_path) == ({9, 10}, {9, 10})
    for step in (9, 10):
        assert plain_tf_value(str(tmp_path / f"ckpt-{step}")) == float(step)


def test_best_checkpoint_passes_over_a_damaged_one(tmp_path: Path) -> None:
    v = tf.Variable(0.0)
    manager = safeckpt.SafeCheckpointManager(
        tf.train.Checkpoint(v=v), tmp_path, 1, keep_best=safeckpt.KeepBest("acc", "max", k=2)
    )
    for step, acc in enumerate([0.9, 0.8, 0.1], 1):
        v.assign(float(step))
        manager.save(metrics={"acc": acc})
    assert manager.best_checkpoint == str(tmp_path / "ckpt-1")
    data = tmp_path / "ckpt-1.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:3])  # truncated
    assert manager.best_checkpoint == str(tmp_path / "ckpt-2")
    report = manager.restore(manager.best_checkpoint)
    assert report.step == 2 and float(v.numpy()) == 2.0


def test_best_checkpoint_is_none_without_the_metric_or_keep_best(tmp_path: Path) -> None:
    v = tf.Variable(0.0)
    plain = safeckpt.SafeCheckpointManager(tf.train.Checkpoint(v=v), tmp_path, 2)
    plain.save(metrics={"loss": 1.0})
    assert plain.best_checkpoint is None and plain.keep_best is None
    best = safeckpt.SafeCheckpointManager(
        tf.train.Checkpoint(v=v), tmp_path, 2, keep_best=safeckpt.KeepBest("other")
    )
    assert best.best_checkpoint is None
    best.save(metrics={"other": math.nan})
    assert best.best_checkpoint is None


def test_keep_best_with_keep_checkpoint_every_n_hours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain TF's preserved checkpoints, plus the best: the two rules add up."""

    class Clock:
        now = 1000.0

        def time(self) -> float:
            return self.now

        def __getattr__(self, name: str) -> object:
            import time

            return getattr(time, name)

    clock = Clock()
    monkeypatch.setattr(checkpoint_management, "time", clock)

    def run(directory: Path, safe: bool) -> set[int]:
        v = tf.Variable(0.0)
        checkpoint = tf.train.Checkpoint(v=v)
        clock.now = 1000.0
        if safe:
            manager = safeckpt.SafeCheckpointManager(
                checkpoint, directory, 2, keep_checkpoint_every_n_hours=1.0,
                keep_best=safeckpt.KeepBest("loss"),
            )  # fmt: skip
        else:
            manager = tf.train.CheckpointManager(
                checkpoint, str(directory), 2, keep_checkpoint_every_n_hours=1.0
            )
        for step in range(1, 11):
            clock.now += 25 * 60
            v.assign(float(step))
            if safe:
                manager.save(metrics={"loss": 0.1 if step == 4 else float(step)})
            else:
                manager.save()
        return on_disk(directory)[0]

    plain = run(tmp_path / "tf", safe=False)
    safe = run(tmp_path / "safe", safe=True)
    assert 4 not in plain and len(plain) > 2  # the hours rule kept some
    assert safe == plain | {4}
    assert on_disk(tmp_path / "safe")[1] == safe


def test_two_managers_sharing_a_directory_keep_their_own_best(tmp_path: Path) -> None:
    va, vb = tf.Variable(0.0), tf.Variable(0.0)
    a = safeckpt.SafeCheckpointManager(
        tf.train.Checkpoint(v=va), tmp_path, 1, checkpoint_name="a",
        keep_best=safeckpt.KeepBest("loss"),
    )  # fmt: skip
    b = safeckpt.SafeCheckpointManager(
        tf.train.Checkpoint(v=vb), tmp_path, 1, checkpoint_name="b",
        keep_best=safeckpt.KeepBest("loss", "max"),
    )  # fmt: skip
    losses = [0.5, 0.1, 0.7, 0.9, 0.3, 0.8]
    for step, loss in enumerate(losses, 1):
        va.assign(float(step))
        vb.assign(float(step))
        a.save(metrics={"loss": loss})
        b.save(metrics={"loss": loss})
    assert on_disk(tmp_path, "a") == ({2, 6}, {2, 6})
    assert on_disk(tmp_path, "b") == ({4, 6}, {4, 6})
    assert a.best_checkpoint == str(tmp_path / "a-2")
    assert b.best_checkpoint == str(tmp_path / "b-4")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((3,), TypeError),
        (("",), ValueError),
        (("m", "lowest"), ValueError),
        (("m", 1), TypeError),
        (("m", "min", 0), ValueError),
        (("m", "min", 1.0), TypeError),
        (("m", "min", True), TypeError),
    ],
)
def test_keep_best_is_validated(args: tuple, error: type) -> None:
    with pytest.raises(error, match="KeepBest"):
        safeckpt.KeepBest(*args)


def test_keep_best_argument_is_checked(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="keep_best"):
        safeckpt.SafeCheckpointManager(
            tf.train.Checkpoint(v=tf.Variable(0.0)), tmp_path, 2, keep_best="val_loss"
        )
    best = safeckpt.KeepBest("acc", mode="max", k=2)
    assert best.mode is safeckpt.BestMode.MAX and best.mode == "max"
    assert best.to_dict() == {"metric": "acc", "mode": "max", "k": 2}


def test_asynchronous_saves_write_metadata_after_their_files(tmp_path: Path) -> None:
    v = tf.Variable(0.0)
    checkpoint = tf.train.Checkpoint(v=v)
    manager = safeckpt.SafeCheckpointManager(
        checkpoint, tmp_path, 2, keep_best=safeckpt.KeepBest("loss")
    )
    options = tf.train.CheckpointOptions(experimental_enable_async_checkpoint=True)
    for step, loss in enumerate([0.5, 0.1, 0.3, 0.4, 0.6], 1):
        v.assign(float(step))
        manager.save(options=options, metrics={"loss": loss})
    checkpoint.sync()
    assert on_disk(tmp_path) == ({2, 4, 5}, {2, 4, 5})
    assert manager.best_checkpoint == str(tmp_path / "ckpt-2")
    assert [manager.metadata(str(tmp_path / f"ckpt-{s}")).metrics["loss"] for s in (2, 4, 5)] == [  # type: ignore[union-attr]
        0.1,
        0.4,
        0.6,
    ]


def test_saves_work_when_tf_train_checkpoint_manager_is_patched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tf_keras users replace ``tf.train.CheckpointManager`` by safeckpt's: the sweep still
    reaches TensorFlow's own (no recursion)."""
    monkeypatch.setattr(tf.train, "CheckpointManager", safeckpt.SafeCheckpointManager)
    v = tf.Variable(0.0)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=v), str(tmp_path), 1)
    for step in (1, 2, 3):
        v.assign(float(step))
        manager.save()
    assert on_disk(tmp_path) == ({3}, {3})
