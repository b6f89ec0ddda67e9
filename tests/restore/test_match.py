"""A restore that loads nothing is not a success: the program matched against the checkpoint.

Every checkpoint here is written by plain TensorFlow (or Keras) and restored by a program that
differs the way programs do: a renamed attribute, a variable added or removed, a model-only
restore of a training checkpoint, shapes and dtypes that changed, TF1 name-based checkpoints,
an unbuilt Keras model. Each test checks the class, the cause, that the evidence names every
object concerned, the rename suggestion where there is one, and that nothing was assigned.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from safeckpt import (
    Cause,
    CheckpointMismatchError,
    MatchMode,
    Outcome,
    SafeCheckpointManager,
)


class Net(tf.Module):  # type: ignore[misc]
    def __init__(self, fill: float = 0.0, shapes: tuple[int, int] = (4, 3)) -> None:
        super().__init__()
        self.a = tf.Variable(tf.fill([shapes[0]], fill))
        self.b = tf.Variable(tf.fill([3, shapes[1]], fill))


def save(directory: Path, **objects: object) -> str:
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(**objects), str(directory), None)
    path: str = manager.save()
    return path


def step(value: int = 0) -> tf.Variable:
    return tf.Variable(value, dtype=tf.int64)


def restore(directory: Path, match: str = "existing", **objects: object) -> object:
    checkpoint = tf.train.Checkpoint(**objects)
    manager = SafeCheckpointManager(checkpoint, str(directory), None, match=match)
    return manager.restore()


def mismatch(directory: Path, **objects: object) -> CheckpointMismatchError:
    with pytest.raises(CheckpointMismatchError) as raised:
        restore(directory, **objects)
    assert isinstance(raised.value, tf.errors.InvalidArgumentError)
    assert isinstance(raised.value, ValueError)
    assert raised.value.diagnosis is not None
    assert raised.value.attempts == ()  # no fallback: older checkpoints mismatch the same way
    return raised.value


def text(error: CheckpointMismatchError) -> str:
    assert error.diagnosis is not None
    return "\n".join(error.diagnosis.evidence)


def test_a_renamed_root_attribute_is_an_object_graph_mismatch(tmp_path: Path) -> None:
    save(tmp_path, model=Net(1.0), step=step(7))
    net, counter = Net(0.0), step(0)
    error = mismatch(tmp_path, net=net, step=counter)
    assert error.diagnosis is not None
    assert error.diagnosis.cause is Cause.OBJECT_GRAPH_MISMATCH
    evidence = text(error)
    assert "checkpoint: model, step, save_counter" in evidence
    assert "program: net, step, save_counter" in evidence
    assert "net/a" in evidence and "net/b" in evidence and "model/a" in evidence
    assert any(
        "checkpoint's `model` looks like the program's `net`" in s
        for s in error.diagnosis.suggestions
    )
    # Found before anything was assigned: not even the step counter moved.
    assert int(counter.numpy()) == 0
    assert float(net.a.numpy()[0]) == 0.0


def test_a_nested_rename_is_found_by_comparing_subtrees(tmp_path: Path) -> None:
    outer = tf.Module()
    outer.dense = Net(2.0)
    save(tmp_path, model=outer)
    program = tf.Module()
    program.hidden = Net(0.0)
    error = mismatch(tmp_path, model=program)
    assert error.diagnosis is not None
    assert error.diagnosis.cause is Cause.OBJECT_GRAPH_MISMATCH
    assert any(
        "`model/dense` looks like the program's `model/hidden`" in s
        for s in error.diagnosis.suggestions
    )
    assert float(program.hidden.a.numpy()[0]) == 0.0


def test_an_added_variable_gets_no_value_and_stops_the_restore(tmp_path: Path) -> None:
    save(tmp_path, model=Net(1.0))
    net = Net(0.0)
    net.extra = tf.Variable(5.0)
    error = mismatch(tmp_path, model=net)
    assert error.diagnosis is not None
    assert error.diagnosis.cause is Cause.OBJECT_GRAPH_MISMATCH
    assert "model/extra" in text(error)
    assert "1 of the program's 3 variables" in error.diagnosis.summary


def test_a_removed_variable_is_reported_unused_and_consumed_refuses_it(tmp_path: Path) -> None:
    saved = Net(1.0)
    saved.extra = tf.Variable(5.0)
    save(tmp_path, model=saved)
    net = Net(0.0)
    report = restore(tmp_path, model=net)
    assert report.outcome is Outcome.RESTORED  # type: ignore[attr-defined]
    assert report.unused == ("model/extra",)  # type: ignore[attr-defined]
    assert report.unmatched == ()  # type: ignore[attr-defined]
    assert float(net.a.numpy()[0]) == 1.0
    strict = Net(0.0)
    with pytest.raises(CheckpointMismatchError) as raised:
        restore(tmp_path, match="consumed", model=strict)
    assert raised.value.diagnosis is not None
    assert raised.value.diagnosis.cause is Cause.OBJECT_GRAPH_MISMATCH
    assert "model/extra" in text(raised.value)
    assert float(strict.a.numpy()[0]) == 0.0


def _keras_model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    return model


def test_a_model_only_restore_of_a_training_checkpoint_reports_the_optimizer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    trained = _keras_model(1)
    trained.train_on_batch(np.ones((2, 3)), np.ones((2, 1)))
    save(tmp_path, model=trained, optimizer=trained.optimizer)
    fresh = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    with caplog.at_level(logging.INFO, "safeckpt"):
        report = restore(tmp_path, model=fresh)
    assert report.outcome is Outcome.RESTORED  # type: ignore[attr-defined]
    unused = report.unused  # type: ignore[attr-defined]
    assert unused and all(p.startswith(("optimizer/", "model/optimizer")) for p in unused)
    assert "not used by the program" in caplog.text
    for want, got in zip(trained.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(want, got)
    with pytest.raises(CheckpointMismatchError):
        restore(tmp_path, match="consumed", model=keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)]
        ))  # fmt: skip


def test_several_shape_mismatches_are_all_listed_and_nothing_is_assigned(tmp_path: Path) -> None:
    save(tmp_path, model=Net(1.0, (4, 3)))
    net = Net(0.0, (5, 4))
    error = mismatch(tmp_path, model=net)
    assert error.diagnosis is not None
    assert error.diagnosis.cause is Cause.MODEL_MISMATCH
    evidence = text(error)
    assert "model/a: checkpoint (4,) float32, program (5,) float32" in evidence
    assert "model/b: checkpoint (3, 3) float32, program (3, 4) float32" in evidence
    assert float(net.a.numpy()[0]) == 0.0 and float(net.b.numpy()[0, 0]) == 0.0


def test_a_dtype_mismatch_names_mixed_precision(tmp_path: Path) -> None:
    save(tmp_path, w=tf.Variable(tf.ones([2])))
    half = tf.Variable(tf.zeros([2], dtype=tf.float16))
    error = mismatch(tmp_path, w=half)
    assert error.diagnosis is not None
    assert error.diagnosis.cause is Cause.MODEL_MISMATCH
    assert "w: checkpoint (2,) float32, program (2,) float16" in text(error)
    assert any("mixed precision" in s for s in error.diagnosis.suggestions)
    assert half.numpy().tolist() == [0.0, 0.0]


def _tf1_checkpoint(directory: Path, name: str) -> str:
    v = tf.Variable([1.0, 2.0], name=name)
    path: str = tf.compat.v1.train.Saver(var_list=[v]).save(None, str(directory / "model.ckpt"))
    return path


def test_a_tf1_checkpoint_with_matching_names_restores_by_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = _tf1_checkpoint(tmp_path, "weights")
    v = tf.Variable([0.0, 0.0], name="weights")
    manager = SafeCheckpointManager(tf.train.Checkpoint(v=v), str(tmp_path), None)
    with caplog.at_level(logging.WARNING, "safeckpt"):
        report = manager.restore(prefix)
    assert report.save_path == prefix
    assert v.numpy().tolist() == [1.0, 2.0]
    assert "name-based checkpoint" in caplog.text


def test_a_tf1_checkpoint_with_other_names_is_a_name_based_checkpoint(tmp_path: Path) -> None:
    prefix = _tf1_checkpoint(tmp_path, "weights")
    v = tf.Variable([0.0, 0.0], name="kernel")
    manager = SafeCheckpointManager(tf.train.Checkpoint(v=v), str(tmp_path), None)
    with pytest.raises(CheckpointMismatchError) as raised:
        manager.restore(prefix)
    diagnosis = raised.value.diagnosis
    assert diagnosis is not None
    assert diagnosis.cause is Cause.NAME_BASED_CHECKPOINT
    evidence = "\n".join(diagnosis.evidence)
    assert "0 of the program's 1 variables match" in evidence
    assert "weights" in evidence  # the checkpoint's keys
    assert any("convert it once" in s for s in diagnosis.suggestions)
    assert v.numpy().tolist() == [0.0, 0.0]


def test_an_unbuilt_keras_model_is_pending_then_complete_after_build(tmp_path: Path) -> None:
    trained = _keras_model(3)
    save(tmp_path, model=trained)
    unbuilt = keras.Sequential([keras.layers.Dense(4), keras.layers.Dense(1)])
    report = restore(tmp_path, model=unbuilt)
    assert report.outcome is Outcome.RESTORED  # type: ignore[attr-defined]
    assert report.pending  # type: ignore[attr-defined]
    assert report.unmatched == ()  # type: ignore[attr-defined]
    unbuilt.build((None, 3))
    for want, got in zip(trained.get_weights(), unbuilt.get_weights(), strict=True):
        np.testing.assert_array_equal(want, got)


class Tower(keras.Model):  # type: ignore[misc]
    def __init__(self, attribute: str) -> None:
        super().__init__()
        setattr(self, attribute, keras.layers.Dense(2))
        self._attribute = attribute

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return getattr(self, self._attribute)(x)


def test_a_renamed_keras_layer_attribute_names_the_rename(tmp_path: Path) -> None:
    saved = Tower("dense")
    saved(tf.ones((1, 3)))
    save(tmp_path, model=saved)
    program = Tower("hidden")
    program(tf.ones((1, 3)))
    error = mismatch(tmp_path, model=program)
    assert error.diagnosis is not None
    assert error.diagnosis.cause is Cause.OBJECT_GRAPH_MISMATCH
    assert any("`model/dense` looks like" in s and "`model/hidden`" in s
               for s in error.diagnosis.suggestions)  # fmt: skip


def test_a_renamed_sequential_layer_still_restores(tmp_path: Path) -> None:
    # Sequential tracks its layers by position, not by name: the rename changes nothing.
    keras.utils.set_random_seed(5)
    saved = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    save(tmp_path, model=saved)
    program = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense_1")])
    report = restore(tmp_path, model=program)
    assert report.unmatched == () and report.unused == ()  # type: ignore[attr-defined]
    np.testing.assert_array_equal(saved.get_weights()[0], program.get_weights()[0])


def test_partial_lets_a_mismatch_through_and_reports_it(tmp_path: Path) -> None:
    save(tmp_path, model=Net(1.0), step=step(7))
    counter = step(0)
    report = restore(tmp_path, match="partial", net=Net(0.0), step=counter)
    assert report.outcome is Outcome.RESTORED  # type: ignore[attr-defined]
    assert set(report.unmatched) == {"net/a", "net/b"}  # type: ignore[attr-defined]
    assert set(report.unused) == {"model/a", "model/b"}  # type: ignore[attr-defined]
    assert int(counter.numpy()) == 7
    data = report.to_dict()  # type: ignore[attr-defined]
    assert set(data["unmatched"]) == {"net/a", "net/b"}
    assert "received no value: " in str(report)


def test_match_is_validated_and_can_be_overridden_per_call(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="match="):
        SafeCheckpointManager(tf.train.Checkpoint(), str(tmp_path), None, match="strict")
    save(tmp_path, model=Net(1.0))
    manager = SafeCheckpointManager(tf.train.Checkpoint(net=Net()), str(tmp_path), None)
    with pytest.raises(CheckpointMismatchError):
        manager.restore_or_initialize()
    assert manager.restore(match=MatchMode.PARTIAL).outcome is Outcome.RESTORED
    assert manager.restore_or_initialize(match="partial") is not None
