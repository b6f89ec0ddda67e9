"""``check_finite=True``: a non-finite state is never saved over good checkpoints."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import tensorflow as tf

from safeckpt import Cause, SafeCheckpointManager, SaveError
from testing.checkpoints import Trainee


def _files(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def test_a_nan_state_raises_and_writes_and_sweeps_nothing(tmp_path: Path) -> None:
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, tmp_path, max_to_keep=2, check_finite=True)
    for k in (1, 2):
        trainee.set(k)
        manager.save()
    before = _files(tmp_path)
    trainee.w.assign([float("nan"), 1.0, float("-inf"), float("nan")])
    with pytest.raises(SaveError) as info:
        manager.save()
    diagnosis = info.value.diagnosis
    assert diagnosis is not None and diagnosis.cause is Cause.NONFINITE_VALUES
    assert diagnosis.evidence == ("w:0: 2 NaN and 1 infinite of 4 values",)
    assert _files(tmp_path) == before  # the lease, the state file, ckpt-1 and ckpt-2 as they were
    assert int(trainee.checkpoint.save_counter.numpy()) == 2
    assert manager.checkpoints == [str(tmp_path / "ckpt-1"), str(tmp_path / "ckpt-2")]
    trainee.set(3)  # back to finite: saves again, with the next number
    assert manager.save() == str(tmp_path / "ckpt-3")


def test_plain_tensorflow_sweeps_the_finite_checkpoints(tmp_path: Path) -> None:
    # What the option prevents: two NaN saves with max_to_keep=2 leave no finite checkpoint.
    trainee = Trainee()
    manager = tf.train.CheckpointManager(trainee.checkpoint, str(tmp_path), max_to_keep=2)
    trainee.set(1)
    manager.save()
    trainee.w.assign(tf.fill([4], float("nan")))
    manager.save()
    manager.save()
    reader = tf.train.load_checkpoint(manager.latest_checkpoint)
    assert not (tmp_path / "ckpt-1.index").exists()
    assert tf.math.is_nan(reader.get_tensor("w/.ATTRIBUTES/VARIABLE_VALUE")[0])


def test_every_floating_variable_is_checked_and_the_first_ones_are_named(tmp_path: Path) -> None:
    layers = {f"v{i}": tf.Variable(tf.ones([3, 3])) for i in range(8)}
    half = tf.Variable(tf.ones([2], tf.bfloat16))
    count = tf.Variable(7, dtype=tf.int64)  # integers cannot be NaN: not checked
    checkpoint = tf.train.Checkpoint(half=half, count=count, nested={"inner": layers})
    manager = SafeCheckpointManager(checkpoint, tmp_path, max_to_keep=2, check_finite=True)
    assert manager.save() is not None
    half.assign(tf.constant([1.0, float("inf")], tf.bfloat16))
    for i in range(7):
        layers[f"v{i}"].assign(tf.fill([3, 3], float("nan")))
    with pytest.raises(SaveError) as info:
        manager.save()
    diagnosis = info.value.diagnosis
    assert diagnosis is not None
    assert diagnosis.summary.startswith("8 of 9 floating-point variables")
    assert len(diagnosis.evidence) == 6  # five named, then "... and 3 more variables"
    assert diagnosis.evidence[-1] == "... and 3 more variables"
    assert any("0 NaN and 1 infinite of 2 values" in line for line in diagnosis.evidence)
    assert sorted(p.name for p in tmp_path.glob("ckpt-*")) == [
        "ckpt-1.data-00000-of-00001",
        "ckpt-1.index",
        "ckpt-1.safeckpt.json",  # the first save's metadata; nothing of ckpt-2
    ]


def test_off_by_default(tmp_path: Path) -> None:
    trainee = Trainee()
    trainee.w.assign(tf.fill([4], float("nan")))
    manager = SafeCheckpointManager(trainee.checkpoint, tmp_path, max_to_keep=2)
    assert manager.save() == str(tmp_path / "ckpt-1")
    with pytest.raises(TypeError, match="check_finite"):
        SafeCheckpointManager(trainee.checkpoint, tmp_path, max_to_keep=2, check_finite="yes")


def _oracle(values: list[float]) -> bool:
    """Finite, decided element by element in Python (not by a reduction)."""
    import math

    return all(math.isfinite(float(x)) for x in values)


BIG = 3.0e38  # two of them overflow a float32 sum


@pytest.mark.parametrize(
    ("dtype", "values"),
    [
        (tf.float32, [BIG, BIG, 1.0]),  # the sum overflows, every value is finite
        (tf.float32, [BIG, -BIG, BIG]),
        (tf.float16, [60000.0] * 8),  # a float16 sum would overflow at 65504
        (tf.bfloat16, [1.0, 2.0]),
        (tf.float64, [1e308, 1e308]),
        (tf.float32, [float("inf"), float("-inf")]),  # the sum is NaN
        (tf.float32, [float("nan"), 0.0]),
        (tf.float16, [float("inf"), 1.0]),
        (tf.float64, [1.0, float("-inf")]),
        (tf.float32, [0.0] * 3 + [float("nan")]),
    ],
)
def test_the_check_agrees_with_an_element_by_element_oracle(
    tmp_path: Path, dtype: tf.DType, values: list[float]
) -> None:
    checkpoint = tf.train.Checkpoint(
        v=tf.Variable(tf.constant(values, dtype=dtype)), ok=tf.Variable([1.0, 2.0])
    )
    manager = SafeCheckpointManager(checkpoint, tmp_path, max_to_keep=2, check_finite=True)
    if _oracle(values):
        assert manager.save() == str(tmp_path / "ckpt-1")
    else:
        with pytest.raises(SaveError) as info:
            manager.save()
        assert info.value.diagnosis is not None
        assert info.value.diagnosis.evidence[0].startswith("Variable:0: ")
        assert not list(tmp_path.glob("ckpt-*"))


def test_variables_of_a_distribution_strategy_are_checked(tmp_path: Path) -> None:
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        good = tf.Variable([1.0, 2.0])
        bad = tf.Variable([1.0, float("nan")])
    manager = SafeCheckpointManager(
        tf.train.Checkpoint(good=good, bad=bad), tmp_path, max_to_keep=2, check_finite=True
    )
    with pytest.raises(SaveError, match="1 of 2 floating-point variables"):
        manager.save()
    bad.assign([1.0, 3.0])
    assert manager.save() == str(tmp_path / "ckpt-1")
