"""SafeCheckpointManager behaves exactly like tf.train.CheckpointManager on healthy directories.

Every test method of TensorFlow's own ``CheckpointManagerTest`` (in
``tensorflow/python/checkpoint/checkpoint_management_test.py``) is ported here, with the same
scenario and the same assertions, against `safeckpt.SafeCheckpointManager`. Like TensorFlow's
``@run_in_graph_and_eager_modes``, the ported tests run both eagerly and in graph mode (inside
``with tf.Graph().as_default(), tf.compat.v1.Session() as sess:``).

On top of the port: asynchronous saves, a Keras 3 model with its optimizer, a side-by-side
comparison of the files and state file written by both managers, and safeckpt's documented
differences (absolute directories, directory created at construction).

All checkpoints are real, written into pytest's ``tmp_path``; only TensorFlow's clock is faked
where TensorFlow's own tests fake it (the ``time`` module seen by ``checkpoint_management``).
"""

from __future__ import annotations

import inspect
import os
import pathlib
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.python.checkpoint import checkpoint_management
from tensorflow.python.platform import tf_logging
from tensorflow.python.training.checkpoint_state_pb2 import CheckpointState

from safeckpt import SafeCheckpointManager
from testing.checkpoints import tf_manager_parameters

STATE_FILE = "checkpoint"


# --------------------------------------------------------------------------------------------
# Helpers and fixtures
# --------------------------------------------------------------------------------------------


def exists(prefix: str) -> bool:
    """TensorFlow's own test helper (`checkpoint_exists`), minus its deprecation warning."""
    return bool(checkpoint_management.checkpoint_exists_internal(prefix))


def state_of(directory: str | os.PathLike[str]) -> Any:
    state = checkpoint_management.get_checkpoint_state(os.fspath(directory))
    assert state is not None, f"no readable checkpoint state file in {directory}"
    return state


def files_in(directory: str | os.PathLike[str]) -> set[str]:
    """The files of `directory` but safeckpt's writer lease (``.safeckpt-writer-<name>``,
    docs/fallback.md, "Two writers") and metadata files (``<prefix>.safeckpt.json``,
    docs/metadata.md; tests/manager/test_keep_best.py checks they follow the checkpoints),
    the files a saving SafeCheckpointManager adds, by design."""
    return {
        n
        for n in os.listdir(directory)
        if not n.startswith(".safeckpt-writer-") and not n.endswith(".safeckpt.json")
    }


def ckpt_files(*prefixes: str) -> set[str]:
    """The files TensorFlow writes for unsharded checkpoints with these base names."""
    names = set()
    for prefix in prefixes:
        names.add(f"{prefix}.index")
        names.add(f"{prefix}.data-00000-of-00001")
    return names


class Mode:
    """What TensorFlow's test case provides: `evaluate` and initialization for either mode."""

    def __init__(self, sess: Any = None) -> None:
        self.sess = sess

    @property
    def eager(self) -> bool:
        return self.sess is None

    def evaluate(self, value: Any) -> Any:
        if self.sess is not None:
            return self.sess.run(value)
        return tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, value)

    def initialize(self, *variables: Any) -> None:
        if self.sess is not None:
            self.sess.run([v.initializer for v in variables])


@pytest.fixture(params=["eager", "graph"])
def mode(request: pytest.FixtureRequest) -> Iterator[Mode]:
    if request.param == "eager":
        assert tf.executing_eagerly()
        yield Mode()
        return
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        assert not tf.executing_eagerly()
        yield Mode(sess)


class FakeTime:
    """Stands in for the `time` module inside `checkpoint_management` (as TF's tests do)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime(3.0)
    monkeypatch.setattr(checkpoint_management, "time", fake)
    return fake


# --------------------------------------------------------------------------------------------
# Ports of CheckpointManagerTest
# --------------------------------------------------------------------------------------------


def test_deletion(mode: Mode, tmp_path: pathlib.Path) -> None:
    """testDeletion."""
    checkpoint = tf.train.Checkpoint()
    manager = SafeCheckpointManager(checkpoint, str(tmp_path), max_to_keep=3)
    first_path = manager.save()
    second_path = manager.save()
    third_path = manager.save()
    fourth_path = manager.save()
    assert exists(fourth_path)
    assert exists(third_path)
    assert exists(second_path)
    assert not exists(first_path)
    assert [second_path, third_path, fourth_path] == manager.checkpoints
    assert files_in(tmp_path) == {STATE_FILE} | ckpt_files("ckpt-2", "ckpt-3", "ckpt-4")


def test_keep_all(mode: Mode, tmp_path: pathlib.Path) -> None:
    """testKeepAll."""
    checkpoint = tf.train.Checkpoint()
    directory = str(tmp_path)
    manager = SafeCheckpointManager(checkpoint, directory, max_to_keep=None)
    first_path = manager.save()
    second_path = manager.save()
    third_path = manager.save()
    assert exists(third_path)
    assert exists(second_path)
    assert exists(first_path)
    assert third_path == manager.latest_checkpoint
    assert [first_path, second_path, third_path] == manager.checkpoints
    del manager
    manager = SafeCheckpointManager(checkpoint, directory, max_to_keep=None)
    fourth_path = manager.save()
    assert [first_path, second_path, third_path, fourth_path] == manager.checkpoints
    del manager
    manager = SafeCheckpointManager(checkpoint, directory, max_to_keep=3)
    assert [first_path, second_path, third_path, fourth_path] == manager.checkpoints
    assert exists(fourth_path)
    assert exists(third_path)
    assert exists(second_path)
    assert exists(first_path)
    fifth_path = manager.save()
    assert [third_path, fourth_path, fifth_path] == manager.checkpoints
    assert exists(fifth_path)
    assert exists(fourth_path)
    assert exists(third_path)
    assert not exists(second_path)
    assert not exists(first_path)


def test_save_restore_state(mode: Mode, tmp_path: pathlib.Path, clock: FakeTime) -> None:
    """testSaveRestoreState: keep_checkpoint_every_n_hours with a patched clock."""
    directory = str(tmp_path)
    clock.now = 3.0
    checkpoint = tf.train.Checkpoint()
    first_manager = SafeCheckpointManager(checkpoint, directory, max_to_keep=2)
    first_time = 10000.0
    first_name = os.path.join(directory, "ckpt-1")
    clock.now = first_time
    first_manager.save()
    state = state_of(directory)
    second_time = first_time + 3610.0
    second_name = os.path.join(directory, "ckpt-2")
    clock.now = second_time
    first_manager.save()
    state = state_of(directory)
    assert [first_time, second_time] == list(state.all_model_checkpoint_timestamps)
    assert [first_name, second_name] == first_manager.checkpoints
    assert second_name == first_manager.latest_checkpoint
    del first_manager

    second_manager = SafeCheckpointManager(
        checkpoint, directory, max_to_keep=2, keep_checkpoint_every_n_hours=1.5
    )
    assert [first_name, second_name] == second_manager.checkpoints
    assert second_name == second_manager.latest_checkpoint
    third_name = os.path.join(directory, "ckpt-3")
    third_time = second_time + 3600.0 * 0.2
    clock.now = third_time
    second_manager.save()
    assert exists(first_name)
    assert exists(second_name)
    assert [second_name, third_name] == second_manager.checkpoints
    state = state_of(directory)
    assert first_time == state.last_preserved_timestamp
    fourth_time = third_time + 3600.0 * 0.5
    clock.now = fourth_time
    fourth_name = os.path.join(directory, "ckpt-4")
    second_manager.save()
    assert exists(first_name)
    assert not exists(second_name)
    assert [third_name, fourth_name] == second_manager.checkpoints
    fifth_time = fourth_time + 3600.0 * 0.5
    clock.now = fifth_time
    fifth_name = os.path.join(directory, "ckpt-5")
    second_manager.save()
    assert [fourth_name, fifth_name] == second_manager.checkpoints
    state = state_of(directory)
    assert first_time == state.last_preserved_timestamp
    del second_manager
    third_manager = SafeCheckpointManager(
        checkpoint, directory, max_to_keep=2, keep_checkpoint_every_n_hours=1.5
    )
    assert fifth_name == third_manager.latest_checkpoint
    clock.now += 10.0
    third_manager.save()
    sixth_name = os.path.join(directory, "ckpt-6")
    state = state_of(directory)
    assert fourth_time == state.last_preserved_timestamp
    assert exists(first_name)
    assert exists(fourth_name)
    assert exists(fifth_name)
    assert exists(sixth_name)
    assert not exists(second_name)
    assert not exists(third_name)
    assert [fifth_name, sixth_name] == third_manager.checkpoints


def test_continue_from_unmanaged(mode: Mode, tmp_path: pathlib.Path) -> None:
    """testContinueFromUnmanaged: checkpoints written by checkpoint.save(other_prefix)."""
    directory = str(tmp_path)
    prefix = os.path.join(directory, "unusual_prefix")
    checkpoint = tf.train.Checkpoint()
    first_path = checkpoint.save(prefix)
    second_path = checkpoint.save(prefix)
    del checkpoint
    checkpoint = tf.train.Checkpoint()
    manager = SafeCheckpointManager(checkpoint, directory, max_to_keep=2)
    assert second_path == manager.latest_checkpoint
    assert manager.checkpoints == []
    checkpoint.restore(manager.latest_checkpoint).run_restore_ops()
    assert mode.evaluate(checkpoint.save_counter) == 2
    third_path = manager.save()
    assert third_path == os.path.join(directory, "ckpt-3")
    assert [third_path] == manager.checkpoints
    fourth_path = manager.save()
    assert [third_path, fourth_path] == manager.checkpoints
    fifth_path = manager.save()
    assert [fourth_path, fifth_path] == manager.checkpoints
    assert exists(first_path)
    assert exists(second_path)
    assert not exists(third_path)
    assert exists(fourth_path)
    assert exists(fifth_path)


def test_clock_reset(mode: Mode, tmp_path: pathlib.Path, clock: FakeTime) -> None:
    """testClockReset: the clock moves backwards between two managers."""
    directory = str(tmp_path)
    clock.now = 10000.0
    checkpoint = tf.train.Checkpoint()
    first_manager = SafeCheckpointManager(
        checkpoint, directory, max_to_keep=1, keep_checkpoint_every_n_hours=1.0
    )
    first_path = first_manager.save()
    clock.now += 3600.0
    second_path = first_manager.save()
    clock.now += 3600.0
    third_path = first_manager.save()
    assert not exists(first_path)
    assert exists(second_path)
    assert exists(third_path)
    assert [third_path] == first_manager.checkpoints
    state = state_of(directory)
    assert state.last_preserved_timestamp == 13600.0
    # Set the clock back in time.
    clock.now = 5000.0
    del first_manager
    with mock.patch.object(tf_logging, "warning") as mock_log:
        second_manager = SafeCheckpointManager(checkpoint, directory, max_to_keep=1)
        assert mock_log.called
        assert "behind the last preserved checkpoint timestamp" in str(mock_log.call_args)
    # We should err on the side of keeping checkpoints around when we're not sure whether they
    # were preserved or not due to clock funkiness.
    assert exists(second_path)
    # We know about the existing checkpoints, but they'll never be deleted and so won't go in
    # the CheckpointState proto on save.
    assert third_path == second_manager.latest_checkpoint
    assert second_manager.checkpoints == []
    clock.now += 10.0
    fourth_path = second_manager.save()
    assert exists(second_path)
    assert exists(third_path)
    assert fourth_path == second_manager.latest_checkpoint
    assert [fourth_path] == second_manager.checkpoints
    clock.now += 10.0
    fifth_path = second_manager.save()
    assert exists(second_path)
    assert exists(third_path)
    assert [fifth_path] == second_manager.checkpoints
    state = state_of(directory)
    assert state.last_preserved_timestamp == 5000.0
    assert list(state.all_model_checkpoint_timestamps) == [5020.0]


def test_custom_numbering(mode: Mode, tmp_path: pathlib.Path) -> None:
    """testCustomNumbering: checkpoint_number as a tf.Variable and as an int."""
    directory = str(tmp_path)
    step = tf.Variable(0, dtype=tf.int64)
    checkpoint = tf.train.Checkpoint(step=step)
    manager = SafeCheckpointManager(checkpoint, directory, max_to_keep=2)
    mode.initialize(step)
    path = None
    for i in range(5):
        path = manager.save(checkpoint_number=step)
        assert path.endswith(f"-{2 * i}"), path
        mode.evaluate(step.assign_add(2))
    assert mode.evaluate(checkpoint.save_counter) == 5
    # Test regular integers.
    last_path = manager.save(checkpoint_number=32)
    assert "-32" in last_path
    assert last_path == os.path.join(directory, "ckpt-32")
    assert last_path == manager.latest_checkpoint
    assert last_path == checkpoint_management.latest_checkpoint(directory)
    state = state_of(directory)
    # Only the most recent two checkpoints are saved.
    assert [path, last_path] == list(state.all_model_checkpoint_paths)
    assert files_in(tmp_path) == {STATE_FILE} | ckpt_files("ckpt-8", "ckpt-32")


def test_custom_checkpoint_prefix(mode: Mode, tmp_path: pathlib.Path) -> None:
    """testCustomCheckpointPrefix: checkpoint_name."""
    directory = str(tmp_path)
    checkpoint = tf.train.Checkpoint()
    manager = SafeCheckpointManager(
        checkpoint, directory, max_to_keep=2, checkpoint_name="ckpt_name"
    )
    path = manager.save(checkpoint_number=5)
    assert os.path.basename(path) == "ckpt_name-5"
    manager = SafeCheckpointManager(checkpoint, directory, max_to_keep=2)
    path = manager.save(checkpoint_number=5)
    assert os.path.basename(path) == "ckpt-5"
    assert files_in(tmp_path) == {STATE_FILE} | ckpt_files("ckpt_name-5", "ckpt-5")


def test_restore_or_initialize(mode: Mode, tmp_path: pathlib.Path) -> None:
    """testRestoreOrInitialize: init_fn runs only when there is nothing to restore."""
    directory = str(tmp_path)

    # Create a checkpoint for initializing.
    init_prefix = os.path.join(directory, "init")
    init_v = tf.Variable(2.0)
    init_ckpt = tf.train.Checkpoint(v=init_v)
    mode.initialize(init_v)
    init_path = init_ckpt.save(init_prefix)

    # Create the checkpoint manager.
    ckpt_dir = os.path.join(directory, "ckpt")
    v = tf.Variable(1.0)
    checkpoint = tf.train.Checkpoint(v=v)
    init_calls = []

    def init_fn() -> None:
        init_calls.append(1)
        checkpoint.restore(init_path).run_restore_ops()

    manager = SafeCheckpointManager(checkpoint, ckpt_dir, max_to_keep=None, init_fn=init_fn)
    mode.initialize(v)
    assert mode.evaluate(v) == 1.0

    # First call should call `init_fn`.
    assert manager.restore_or_initialize() is None
    assert init_calls == [1]
    assert mode.evaluate(v) == 2.0

    # Save a checkpoint and second call should restore from the checkpoints.
    saved = manager.save()
    # init_fn restored save_counter=1 from the init checkpoint, so this is the second save.
    assert saved == os.path.join(ckpt_dir, "ckpt-2")
    assert exists(saved)
    assert manager.restore_or_initialize() == saved
    assert init_calls == [1]


def test_restore_or_initialize_restores_values(mode: Mode, tmp_path: pathlib.Path) -> None:
    """Complements testRestoreOrInitialize: the restored values are the saved ones."""
    v = tf.Variable(1.0)
    checkpoint = tf.train.Checkpoint(v=v)
    mode.initialize(v)
    manager = SafeCheckpointManager(checkpoint, str(tmp_path), max_to_keep=2)
    mode.evaluate(v.assign(7.0))
    saved = manager.save()

    v2 = tf.Variable(0.0)
    checkpoint2 = tf.train.Checkpoint(v=v2)
    mode.initialize(v2)
    manager2 = SafeCheckpointManager(checkpoint2, str(tmp_path), max_to_keep=2)
    assert manager2.latest_checkpoint == saved
    checkpoint2.restore(manager2.latest_checkpoint).assert_consumed().run_restore_ops()
    assert mode.evaluate(v2) == 7.0
    if mode.eager:
        # restore_or_initialize restores immediately when executing eagerly.
        mode.evaluate(v2.assign(0.0))
        assert manager2.restore_or_initialize() == saved
        assert mode.evaluate(v2) == 7.0


def test_checkpoint_manager_fspath_directory(mode: Mode, tmp_path: pathlib.Path) -> None:
    """testCheckpointManagerFSpathDirectory: a pathlib.Path directory."""
    directory = pathlib.Path(tmp_path)
    v = tf.Variable(0.0)
    checkpoint = tf.train.Checkpoint(v=v)
    mode.initialize(v)
    manager = SafeCheckpointManager(
        checkpoint, directory, max_to_keep=2, checkpoint_name="ckpt_name"
    )
    assert manager.directory == str(directory)
    save_path = manager.save()
    expected = str(directory / "ckpt_name-1")
    assert expected == save_path

    restore_path = manager.restore_or_initialize()
    assert str(directory / "ckpt_name-1") == restore_path


def test_latest_checkpoint_fspath_directory(mode: Mode, tmp_path: pathlib.Path) -> None:
    """testLatestCheckpointFSpathDirectory."""
    directory = pathlib.Path(tmp_path)
    checkpoint = tf.train.Checkpoint()
    manager = SafeCheckpointManager(
        checkpoint, directory, max_to_keep=2, checkpoint_name="ckpt_name"
    )
    manager.save()

    cp_dir = checkpoint_management.latest_checkpoint(directory)
    assert str(directory / "ckpt_name-1") == cp_dir
    assert manager.latest_checkpoint == cp_dir


def test_checkpoint_interval(mode: Mode, tmp_path: pathlib.Path) -> None:
    """testCheckpointInterval: step_counter and checkpoint_interval."""
    v = tf.Variable(1.0)
    step_counter = tf.Variable(0)
    mode.initialize(v, step_counter)
    checkpoint = tf.train.Checkpoint(v=v)
    manager = SafeCheckpointManager(
        checkpoint,
        str(tmp_path),
        max_to_keep=None,
        step_counter=step_counter,
        checkpoint_interval=2,
    )
    assert manager.checkpoint_interval == 2

    # step_counter: 0, save an initial checkpoint.
    path = manager.save(check_interval=True)
    assert exists(path)

    # step_counter: 1, no checkpoint saved.
    mode.evaluate(step_counter.assign_add(1))
    path = manager.save(check_interval=True)
    assert path is None

    # step_counter: 2, checkpoint saved.
    mode.evaluate(step_counter.assign_add(1))
    path = manager.save(check_interval=True)
    assert exists(path)

    # No checkpoint saved when calling `save` with the same step counter.
    path = manager.save(check_interval=True)
    assert path is None

    # step_counter: 3, no checkpoint saved.
    mode.evaluate(step_counter.assign_add(1))
    path = manager.save(check_interval=True)
    assert path is None

    # Always save the checkpoint.
    path = manager.save(check_interval=False)
    assert exists(path)
    assert manager.checkpoints == [
        os.path.join(str(tmp_path), name) for name in ("ckpt-1", "ckpt-2", "ckpt-3")
    ]


def test_checkpoint_interval_with_last_checkpoint_step(mode: Mode, tmp_path: pathlib.Path) -> None:
    """testCheckpointIntervalWithLastCheckpointStep."""
    v = tf.Variable(1.0)
    step_counter = tf.Variable(1)
    mode.initialize(v, step_counter)
    checkpoint = tf.train.Checkpoint(v=v)
    manager = SafeCheckpointManager(
        checkpoint,
        str(tmp_path),
        max_to_keep=None,
        step_counter=step_counter,
        checkpoint_interval=2,
        last_checkpoint_step=1,
    )

    # step_counter: 1, no checkpoint saved.
    path = manager.save(check_interval=True)
    assert path is None

    # step_counter: 2, no checkpoint saved since the interval starts at 1.
    mode.evaluate(step_counter.assign_add(1))
    path = manager.save(check_interval=True)
    assert path is None

    # step_counter: 3, checkpoint saved.
    mode.evaluate(step_counter.assign_add(1))
    path = manager.save(check_interval=True)
    assert exists(path)
    assert [path] == manager.checkpoints


def test_checkpoint_interval_with_restore(mode: Mode, tmp_path: pathlib.Path) -> None:
    """testCheckpointIntervalWithRestore."""
    directory = str(tmp_path)
    v = tf.Variable(1.0)
    step_counter = tf.Variable(0)
    mode.initialize(v, step_counter)

    # Prepare a checkpoint.
    checkpoint = tf.train.Checkpoint(v=v)
    checkpoint.save(os.path.join(directory, "ckpt"))

    manager = SafeCheckpointManager(
        checkpoint,
        directory,
        max_to_keep=None,
        step_counter=step_counter,
        checkpoint_interval=2,
    )

    # Restore from the checkpoint.
    assert manager.restore_or_initialize() is not None

    # step_counter: 0, no checkpoint saved because it is restored from the checkpoint with
    # the same step.
    path = manager.save()
    assert path is None
    assert files_in(tmp_path) == {STATE_FILE} | ckpt_files("ckpt-1")


# --------------------------------------------------------------------------------------------
# Beyond TensorFlow's test class
# --------------------------------------------------------------------------------------------


def test_async_save(tmp_path: pathlib.Path) -> None:
    """save(options=CheckpointOptions(enable_async=True)) writes, records and sweeps."""
    v = tf.Variable(0.0)
    checkpoint = tf.train.Checkpoint(v=v)
    manager = SafeCheckpointManager(checkpoint, str(tmp_path), max_to_keep=2)
    options = tf.train.CheckpointOptions(enable_async=True)
    paths = []
    for i in range(4):
        v.assign(float(i + 1))
        paths.append(manager.save(options=options))
        manager.sync()
    checkpoint.sync()
    assert paths == [os.path.join(str(tmp_path), f"ckpt-{i}") for i in range(1, 5)]
    assert manager.checkpoints == paths[2:]
    assert manager.latest_checkpoint == paths[-1]
    assert files_in(tmp_path) == {STATE_FILE} | ckpt_files("ckpt-3", "ckpt-4")
    assert checkpoint_management.latest_checkpoint(str(tmp_path)) == paths[-1]
    assert list(state_of(tmp_path).all_model_checkpoint_paths) == paths[2:]

    restored = tf.Variable(-1.0)
    tf.train.Checkpoint(v=restored).restore(manager.latest_checkpoint).assert_consumed()
    assert restored.numpy() == 4.0


def _tiny_model() -> Any:
    import keras

    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2)])
    return model


def test_keras_model_and_optimizer_round_trip(tmp_path: pathlib.Path) -> None:
    """A Keras 3 model and its optimizer, saved and restored through SafeCheckpointManager."""
    import keras

    keras.utils.set_random_seed(0)
    model = _tiny_model()
    optimizer = keras.optimizers.Adam(learning_rate=0.1)
    x = tf.constant(np.arange(12, dtype="float32").reshape(4, 3) / 10.0)
    y = tf.constant(np.ones((4, 2), dtype="float32"))
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x) - y))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = SafeCheckpointManager(checkpoint, str(tmp_path / "run"), max_to_keep=2)
    saved = manager.save()
    assert saved == str(tmp_path / "run" / "ckpt-1")
    weights = [w.numpy() for w in model.weights]
    opt_values = [np.array(var) for var in optimizer.variables]
    assert int(optimizer.iterations.numpy()) == 2

    keras.utils.set_random_seed(1)
    model2 = _tiny_model()
    optimizer2 = keras.optimizers.Adam(learning_rate=0.1)
    optimizer2.build(model2.trainable_variables)
    assert not all(
        np.array_equal(a, b.numpy()) for a, b in zip(weights, model2.weights, strict=True)
    )
    assert int(optimizer2.iterations.numpy()) == 0
    checkpoint2 = tf.train.Checkpoint(model=model2, optimizer=optimizer2)
    manager2 = SafeCheckpointManager(checkpoint2, str(tmp_path / "run"), max_to_keep=2)
    assert manager2.latest_checkpoint == saved
    assert manager2.restore_or_initialize() == saved
    for expected, actual in zip(weights, model2.weights, strict=True):
        np.testing.assert_array_equal(expected, actual.numpy())
    assert len(optimizer2.variables) == len(opt_values)
    for expected, actual in zip(opt_values, optimizer2.variables, strict=True):
        np.testing.assert_array_equal(expected, np.array(actual))
    assert int(optimizer2.iterations.numpy()) == 2
    np.testing.assert_allclose(model(x).numpy(), model2(x).numpy())
    tf.train.Checkpoint(model=model2, optimizer=optimizer2).restore(saved).assert_consumed()


def _run_sequence(manager_cls: Any, directory: str, clock: FakeTime) -> list[list[str]]:
    """The same saves, restarts and clock moves, against either manager class."""
    v = tf.Variable(0.0)
    step = tf.Variable(0, dtype=tf.int64)
    checkpoint = tf.train.Checkpoint(v=v, step=step)
    seen = []
    clock.now = 1000.0
    manager = manager_cls(checkpoint, directory, 2, keep_checkpoint_every_n_hours=1.0)
    for i in range(5):
        clock.now += 1800.0
        v.assign(float(i))
        manager.save()
        seen.append(manager.checkpoints)
    del manager
    clock.now += 60.0
    manager = manager_cls(checkpoint, directory, max_to_keep=3, checkpoint_name="model")
    for number in (100, 101, 102, 103):
        clock.now += 60.0
        step.assign(number)
        manager.save(checkpoint_number=step)
        seen.append(manager.checkpoints)
    del manager
    manager = manager_cls(checkpoint, directory, None, checkpoint_name="model")
    clock.now += 60.0
    manager.save(checkpoint_number=7)
    seen.append(manager.checkpoints)
    seen.append([manager.latest_checkpoint])
    return [[os.path.relpath(p, directory) for p in paths] for paths in seen]


def test_side_by_side_same_files_and_state(tmp_path: pathlib.Path, clock: FakeTime) -> None:
    """Same saves: same file names on disk and the same relative `checkpoint` state file."""
    tf_dir = str(tmp_path / "tf")
    safe_dir = str(tmp_path / "safe")
    os.mkdir(tf_dir)  # TF creates it on the first save; safeckpt at construction.
    tf_seen = _run_sequence(tf.train.CheckpointManager, tf_dir, clock)
    safe_seen = _run_sequence(SafeCheckpointManager, safe_dir, clock)

    # One deliberate difference: the "model" manager leaves the "ckpt" checkpoints it
    # inherits from the state file alone (two managers often share a directory); TF's
    # rotation takes them in and sweeps them.
    assert [[p for p in seen if not p.startswith("ckpt-")] for seen in tf_seen[5:]] == [
        seen for seen in safe_seen[5:]
    ]
    assert safe_seen[:5] == tf_seen[:5]
    assert files_in(safe_dir) == files_in(tf_dir) | ckpt_files("ckpt-4", "ckpt-5")
    # Preserved by keep_checkpoint_every_n_hours, swept by max_to_keep, then kept (None).
    assert files_in(tf_dir) == {STATE_FILE} | ckpt_files(
        "ckpt-2", "model-101", "model-102", "model-103", "model-7"
    )

    with open(os.path.join(tf_dir, STATE_FILE)) as f:
        tf_text = f.read()
    with open(os.path.join(safe_dir, STATE_FILE)) as f:
        safe_text = f.read()
    assert safe_text == tf_text
    state = text_format.Parse(safe_text, CheckpointState())
    assert state.model_checkpoint_path == "model-7"
    assert list(state.all_model_checkpoint_paths) == [
        "model-101",
        "model-102",
        "model-103",
        "model-7",
    ]
    assert all(not os.path.isabs(p) for p in state.all_model_checkpoint_paths)


# --------------------------------------------------------------------------------------------
# safeckpt's documented differences
# --------------------------------------------------------------------------------------------


def test_relative_directory_becomes_absolute(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TF keeps a relative directory relative; safeckpt makes it absolute (same files)."""
    monkeypatch.chdir(tmp_path)
    tf_manager = tf.train.CheckpointManager(tf.train.Checkpoint(), "tf_rel", max_to_keep=2)
    safe_manager = SafeCheckpointManager(tf.train.Checkpoint(), "safe_rel", max_to_keep=2)
    assert tf_manager.directory == "tf_rel"
    # safeckpt by design: the directory is absolute, and so is everything derived from it.
    assert safe_manager.directory == str(tmp_path / "safe_rel")
    tf_paths = [tf_manager.save() for _ in range(3)]
    safe_paths = [safe_manager.save() for _ in range(3)]
    assert tf_paths == [os.path.join("tf_rel", f"ckpt-{i}") for i in (1, 2, 3)]
    assert safe_paths == [str(tmp_path / "safe_rel" / f"ckpt-{i}") for i in (1, 2, 3)]
    assert safe_manager.checkpoints == safe_paths[1:]
    assert safe_manager.latest_checkpoint == safe_paths[-1]
    assert all(os.path.isabs(p) for p in safe_manager.checkpoints)
    assert files_in("safe_rel") == files_in("tf_rel")
    with open(os.path.join("safe_rel", STATE_FILE)) as f:
        safe_state = text_format.Parse(f.read(), CheckpointState())
    assert list(safe_state.all_model_checkpoint_paths) == ["ckpt-2", "ckpt-3"]

    # A later manager given the relative path again finds the same, absolute, checkpoints.
    monkeypatch.chdir(tmp_path)
    again = SafeCheckpointManager(tf.train.Checkpoint(), "safe_rel", max_to_keep=2)
    assert again.checkpoints == safe_paths[1:]
    assert again.latest_checkpoint == safe_paths[-1]


def test_directory_created_at_construction(tmp_path: pathlib.Path) -> None:
    """TF creates the directory on the first save; safeckpt when constructed. Same files."""
    directory = tmp_path / "a" / "b"
    manager = SafeCheckpointManager(tf.train.Checkpoint(), directory, max_to_keep=1)
    assert manager.created_directory is True
    assert directory.is_dir()
    assert files_in(directory) == set()
    manager.save()
    manager.save()
    assert files_in(directory) == {STATE_FILE} | ckpt_files("ckpt-2")


# --------------------------------------------------------------------------------------------
# Constructor parity
# --------------------------------------------------------------------------------------------


def test_constructor_takes_tf_parameters_in_tf_order() -> None:
    """TF's parameters, TF's order and defaults; safeckpt's own options are keyword-only."""
    tf_params = tf_manager_parameters()
    safe_params = list(inspect.signature(SafeCheckpointManager.__init__).parameters.values())
    positional = [p for p in safe_params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert [(p.name, p.kind, p.default) for p in positional] == [
        (p.name, p.kind, p.default) for p in tf_params
    ]
    assert all(p.default is not inspect.Parameter.empty for p in safe_params[len(tf_params) :])


def test_positional_call_like_tf(tmp_path: pathlib.Path) -> None:
    """All nine of TF's arguments passed positionally mean the same thing."""
    step = tf.Variable(5)
    calls = []
    manager = SafeCheckpointManager(
        tf.train.Checkpoint(step=step),
        str(tmp_path),
        2,
        None,
        "model",
        step,
        3,
        lambda: calls.append(1),
        5,
    )
    assert manager.checkpoint_interval == 3
    assert manager.restore_or_initialize() is None
    assert calls == [1]
    assert manager.save() is None  # step 5 == last_checkpoint_step
    step.assign(8)
    assert manager.save(checkpoint_number=step) == str(tmp_path / "model-8")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_to_keep": 0},
        {"max_to_keep": -1},
        {"max_to_keep": 2, "checkpoint_interval": 2},  # no step_counter
    ],
)
def test_invalid_arguments_raise_value_error_like_tf(
    tmp_path: pathlib.Path, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        tf.train.CheckpointManager(tf.train.Checkpoint(), str(tmp_path / "tf"), **kwargs)
    with pytest.raises(ValueError):
        SafeCheckpointManager(tf.train.Checkpoint(), str(tmp_path / "safe"), **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"max_to_keep": 2, "keep_checkpoint_every_n_hours": 0}, id="hours-0"),
        pytest.param({"max_to_keep": 2.0}, id="max_to_keep-float"),
    ],
)
def test_values_tf_accepts(tmp_path: pathlib.Path, kwargs: dict[str, Any]) -> None:
    tf_dir, safe_dir = tmp_path / "tf", tmp_path / "safe"
    tf_manager = tf.train.CheckpointManager(tf.train.Checkpoint(), str(tf_dir), **kwargs)
    tf_paths = [tf_manager.save() for _ in range(3)]
    assert tf_manager.checkpoints == tf_paths[1:]
    safe_manager = SafeCheckpointManager(tf.train.Checkpoint(), str(safe_dir), **kwargs)
    safe_paths = [safe_manager.save() for _ in range(3)]
    assert safe_manager.checkpoints == safe_paths[1:]
    assert files_in(safe_dir) == files_in(tf_dir)


def test_last_checkpoint_step_with_safeckpt_put_in_place_of_tf_manager(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tf_keras's BackupAndRestore is used with `tf.train.CheckpointManager = SafeCheckpointManager`
    # (docs/keras.md). On TF 2.16-2.19 safeckpt then read its own signature for TF's and passed
    # `last_checkpoint_step` to a constructor that has none (TypeError, found by make matrix).
    monkeypatch.setattr(tf.train, "CheckpointManager", SafeCheckpointManager)
    step = tf.Variable(4)
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(step=step), str(tmp_path), 2, step_counter=step,
        checkpoint_interval=3, last_checkpoint_step=4,
    )  # fmt: skip
    assert isinstance(manager, SafeCheckpointManager)
    assert manager.save() is None  # step 4 == last_checkpoint_step
    step.assign(7)
    assert manager.save() == str(tmp_path / "ckpt-1")


def test_which_constructor_is_asked_about_last_checkpoint_step() -> None:
    from safeckpt._io.tf import manager_takes_last_checkpoint_step

    class Old:  # a TensorFlow manager without the keyword (2.16-2.19)
        __module__ = "tensorflow.python.checkpoint.checkpoint_management"

        def __init__(self, checkpoint: object, directory: str) -> None: ...

    class New(Old):  # and with it (2.20+)
        __module__ = "tensorflow.python.checkpoint.checkpoint_management"

        def __init__(self, checkpoint: object, directory: str, last_checkpoint_step: int = 0):
            super().__init__(checkpoint, directory)

    class Safe(Old):  # a subclass of ours that takes it on every version
        def __init__(self, checkpoint: object, directory: str, last_checkpoint_step: int = 0):
            super().__init__(checkpoint, directory)

    class SafeNew(New):
        def __init__(self, checkpoint: object, directory: str, last_checkpoint_step: int = 0):
            super().__init__(checkpoint, directory, last_checkpoint_step)

    assert manager_takes_last_checkpoint_step(Safe) is False
    assert manager_takes_last_checkpoint_step(SafeNew) is True
    assert manager_takes_last_checkpoint_step(SafeCheckpointManager) is (
        "last_checkpoint_step"
        in inspect.signature(checkpoint_management.CheckpointManager.__init__).parameters
    )
