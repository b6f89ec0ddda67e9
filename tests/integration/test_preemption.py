"""TensorFlow's PreemptionCheckpointHandler with SafeCheckpointManager, next to plain TF.

The handler (tensorflow/python/distribute/failure_handling/failure_handling.py) reads
``manager.directory`` (a non-chief deletes ``os.path.dirname`` of its write manager's at
exit), gives a non-chief a manager on ``<parent>/workertemp_<id>/<base>`` and the chief one
on ``<parent>/<base>`` and calls ``restore_or_initialize()`` on each, and adds its own
``checkpointed_runs`` variable to the user's checkpoint before restoring. The cluster tests
run tests/integration/_preemption_worker.py as separate processes
(MultiWorkerMirroredStrategy, TF_CONFIG on 127.0.0.1, each run bounded by `testing.cluster`'s
hard timeout), preempt one worker with SIGTERM, restart, and check against facts recorded at
write time: the sha256 of the chief's files right after its save, and the values the
checkpoint holds (every step adds 1 per worker to ``v``), read with TensorFlow alone.
Every scenario runs with plain TF too, and both must see the same.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import tensorflow as tf
from tensorflow.python.distribute.failure_handling import failure_handling

import safeckpt
from safeckpt._format.graph import read_checkpoint_graph
from safeckpt._multiworker.context import WorkerContext, is_private_directory, shared_counterpart
from safeckpt._restore.match import compare
from testing.checkpoints import Trainee
from testing.cluster import file_hashes, run_cluster, tf_config

WORKER = Path(__file__).with_name("_preemption_worker.py")
PREEMPTED = 42  # the worker's exit_fn status
RUNS = 8  # handler.run calls in a whole training
PREEMPT_AT = 3  # SIGTERM before this run: every worker saves after run 4 and exits
TWO_WORKERS = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}


# manager.directory: the string TensorFlow returns (finding 1) ------------------------------


def _tf_layouts(root: Path) -> list[str]:
    """Directories TF's handler gives managers (the chief's, a non-chief's), in fresh roots."""
    tails = ("", "/", "/.")
    chief = [str(root / f"chief{i}" / "ckpt") + tail for i, tail in enumerate(tails)]
    other = [
        failure_handling._non_chief_checkpoint_dir(str(root / f"other{i}" / "ckpt") + tail, 1)
        for i, tail in enumerate(tails[:2])
    ]
    return chief + other


def test_directory_is_the_string_tensorflow_returns(tmp_path: Path) -> None:
    """What TF's handler deletes at a non-chief's exit is the same with safeckpt's manager.

    Regression: with ``<root>/ckpt/workertemp_1/`` safeckpt returned the path without its
    ``/``, and ``os.path.dirname`` of it was the chief's whole ``<root>/ckpt``.
    """
    for given in _tf_layouts(tmp_path):
        plain = tf.train.CheckpointManager(tf.train.Checkpoint(), given, max_to_keep=1)
        safe = safeckpt.SafeCheckpointManager(tf.train.Checkpoint(), given, max_to_keep=1)
        assert safe.directory == plain.directory == given
        assert os.path.dirname(safe.directory) == os.path.dirname(plain.directory)
        # The checkpoints are the same files, named by the normalized directory.
        assert safe.save() == os.path.join(os.path.normpath(given), "ckpt-1")


def test_a_relative_directory_is_resolved_once_keeping_its_spelling(
    chdir_tmp: Path, trainee: Trainee
) -> None:
    given = os.path.join("runs", "ckpt", "workertemp_1", "")
    plain = tf.train.CheckpointManager(tf.train.Checkpoint(), given, max_to_keep=1)
    safe = safeckpt.SafeCheckpointManager(trainee.checkpoint, given, max_to_keep=1)
    assert plain.directory == given
    assert safe.directory == str(chdir_tmp / "runs" / "ckpt" / "workertemp_1") + os.sep
    # What the handler would delete: the same folder, resolved where the manager was made.
    assert os.path.dirname(safe.directory) == os.path.abspath(os.path.dirname(plain.directory))
    saved = safe.save()
    os.chdir("/")
    assert saved == str(chdir_tmp / "runs" / "ckpt" / "workertemp_1" / "ckpt-1")
    assert safe.latest_checkpoint == saved
    assert os.path.dirname(safe.directory) == str(chdir_tmp / "runs" / "ckpt" / "workertemp_1")


def test_home_and_variables_are_expanded_in_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trainee: Trainee
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SAFECKPT_TEST_RUNS", str(tmp_path / "runs"))
    home = safeckpt.SafeCheckpointManager(trainee.checkpoint, "~/exp/", max_to_keep=1)
    var = safeckpt.SafeCheckpointManager(trainee.checkpoint, "$SAFECKPT_TEST_RUNS/a/", 1)
    assert home.directory == str(tmp_path / "home" / "exp") + "/"
    assert var.directory == str(tmp_path / "runs" / "a") + "/"


# Which directories are a worker's own (finding 2) -----------------------------------------


@pytest.mark.parametrize("tail", ["", "/"])
def test_tf_layouts_are_the_non_chiefs_own(tmp_path: Path, tail: str) -> None:
    other = WorkerContext(False, "worker", 1, 2, 1, True)
    chief = WorkerContext(True, "worker", 0, 2, 0, True)
    shared = str(tmp_path / "ckpt")
    handler = os.path.normpath(failure_handling._non_chief_checkpoint_dir(shared + tail, 1))
    keras = str(tmp_path / "ckpt" / "workertemp_1")
    for private in (handler, keras):
        assert is_private_directory(private, other)
        assert shared_counterpart(private, other) == shared
        assert not is_private_directory(private, chief)  # the chief's never are
    assert not is_private_directory(shared, other)
    worker_two = str(tmp_path / "workertemp_2" / "ckpt")  # another worker's
    assert not is_private_directory(worker_two, other)
    gs = "gs://bucket/run/workertemp_1/ckpt"
    assert shared_counterpart(gs, other) == "gs://bucket/run/ckpt"


def test_a_non_chief_writes_its_handler_directory_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trainee: Trainee
) -> None:
    monkeypatch.setenv("TF_CONFIG", tf_config(TWO_WORKERS, "worker", 1))
    private = failure_handling._non_chief_checkpoint_dir(str(tmp_path / "ckpt"), 1)
    manager = safeckpt.SafeCheckpointManager(trainee.checkpoint, private, max_to_keep=1)
    assert manager.save() == os.path.join(private, "ckpt-1")  # not .../workertemp_1 again
    assert sorted(os.listdir(private)) == [
        "checkpoint",
        *_files("ckpt-1"),
        "ckpt-1.safeckpt.json",  # the metadata of the checkpoint this manager wrote itself
    ]


def _files(prefix: str) -> list[str]:
    return [f"{prefix}.data-00000-of-00001", f"{prefix}.index"]


# TF's own bookkeeping (finding 8) ---------------------------------------------------------


def _handler_counter() -> tf.Variable:
    """A variable like the handler's ``checkpointed_runs`` (failure_handling.py)."""
    return tf.Variable(tf.constant(0, dtype=tf.int64), trainable=False, name="checkpointed_runs")


def test_the_handlers_counter_is_not_the_users_program(tmp_path: Path) -> None:
    old = Trainee()  # a run from before the handler was adopted
    old.set(3)
    tf.train.CheckpointManager(old.checkpoint, str(tmp_path), max_to_keep=3).save()
    trainee = Trainee()
    trainee.checkpoint.checkpointed_runs = _handler_counter()  # as the handler attaches it
    manager = safeckpt.SafeCheckpointManager(trainee.checkpoint, tmp_path, max_to_keep=3)
    report = manager.restore()  # match="existing"
    assert report.outcome is safeckpt.Outcome.RESTORED
    assert trainee.value == 3.0
    assert int(trainee.checkpoint.checkpointed_runs.numpy()) == 0
    assert report.unmatched == ()
    assert any("checkpointed_runs is not in ckpt-1" in note for note in report.notes)

    # A program without the handler restores a checkpoint written with it, even strictly.
    trainee.checkpoint.checkpointed_runs.assign(4)
    written = manager.save()
    strict = Trainee()
    again = safeckpt.SafeCheckpointManager(strict.checkpoint, tmp_path, 3, match="consumed")
    assert again.restore().save_path == written
    assert "checkpointed_runs" not in again.last_restore.unused  # type: ignore[union-attr]


def test_a_users_own_variable_of_that_name_still_counts(tmp_path: Path) -> None:
    Trainee().checkpoint.write(str(tmp_path / "plain"))
    trainee = Trainee()
    trainee.checkpoint.checkpointed_runs = tf.Variable(0.0)  # not TF's: a float the user made
    match = compare(trainee.checkpoint, read_checkpoint_graph(str(tmp_path / "plain")))
    assert match.unmatched == ("checkpointed_runs",)
    assert match.bookkeeping == ()


# Real processes: the handler on 1 and 2 workers, preempted and restarted ------------------


def _args(checkpoint_dir: str, manager: str, given: str, *extra: str) -> list[str]:
    return ["--checkpoint-dir", checkpoint_dir, "--manager", manager, "--input", given, *extra]


def _preempt_and_resume(
    root: Path, manager: str, given: str, workers: int, slash: bool, preempted: int
) -> dict[str, Any]:
    """Train, preempt, restart and finish; check everything against write-time facts."""
    checkpoint_dir = str(root / "ckpt") + ("/" if slash else "")
    args = _args(checkpoint_dir, manager, given)
    first = run_cluster(
        [[*args, "--preempt-at", str(PREEMPT_AT), "--preempt-worker", str(preempted)]] * workers,
        "train",
        script=WORKER,
        status=PREEMPTED,
    )
    saved_at = PREEMPT_AT + 1
    for result in first:
        assert result["start_at"] == 0
        assert result["exit_at"] == saved_at
        assert result["exit_v"] == workers * saved_at
    chief_files = first[0]["files_at_exit"]  # right after the chief's save
    assert {"checkpoint", *_files("ckpt-1")} <= set(chief_files)
    # Every worker has exited: the chief's checkpoint is intact, byte for byte.
    assert file_hashes(str(root / "ckpt")) == chief_files
    reader = tf.train.load_checkpoint(str(root / "ckpt" / "ckpt-1"))
    assert reader.get_tensor("model/v/.ATTRIBUTES/VARIABLE_VALUE") == workers * saved_at
    assert reader.get_tensor("checkpointed_runs/.ATTRIBUTES/VARIABLE_VALUE") == saved_at

    second = run_cluster([args] * workers, "train", script=WORKER)
    for result in second:
        assert result["start_at"] == saved_at  # resumed at the right step...
        assert result["start_v"] == workers * saved_at  # ...with the saved values
        assert result["final_at"] == RUNS
        assert result["final_v"] == workers * RUNS
    return {
        "first": [{k: r[k] for k in ("exit_at", "exit_v")} for r in first],
        "second": [{k: r[k] for k in ("start_at", "start_v", "final_v")} for r in second],
    }


def _same_as_tf(tmp_path: Path, given: str, workers: int, slash: bool, preempted: int) -> None:
    seen = {
        manager: _preempt_and_resume(tmp_path / manager, manager, given, workers, slash, preempted)
        for manager in ("tf", "safeckpt")
    }
    assert seen["safeckpt"] == seen["tf"]


@pytest.mark.slow
def test_handler_built_managers_keep_the_chiefs_checkpoint(tmp_path: Path) -> None:
    """The handler builds the managers (TF's class swapped for safeckpt's), ``ckpt/``.

    Regression (finding 1): the non-chief's exit deleted the chief's whole directory; the
    restart resumed at run 0.
    """
    _same_as_tf(tmp_path, "checkpoint", workers=2, slash=True, preempted=1)


@pytest.mark.slow
def test_one_manager_per_worker_in_tfs_layout_restores_on_both(tmp_path: Path) -> None:
    """The program builds one manager per worker in TF's layout and passes it in.

    Regression (finding 2): the chief on ``<root>/ckpt`` and worker 1 on
    ``<root>/workertemp_1/ckpt`` restored in rounds that never paired: worker 1 raised
    "they restore different managers", the chief died in a collective.
    """
    _same_as_tf(tmp_path, "manager", workers=2, slash=False, preempted=0)


@pytest.mark.slow
def test_one_worker_handler_resumes(tmp_path: Path) -> None:
    _same_as_tf(tmp_path, "manager", workers=1, slash=True, preempted=0)


#: Every layout: 1 and 2 workers, both inputs, with and without a trailing ``/``, each worker
#: preempted in turn.
LAYOUTS = [
    pytest.param(workers, given, slash, preempted, id=f"{workers}w-{given}-{slash=}-p{preempted}")
    for workers in (1, 2)
    for given in ("checkpoint", "manager")
    for slash in (False, True)
    for preempted in range(workers)
]


@pytest.mark.stress
@pytest.mark.parametrize(("workers", "given", "slash", "preempted"), LAYOUTS)
def test_handler_matrix(
    tmp_path: Path, workers: int, given: str, slash: bool, preempted: int
) -> None:
    """Every layout, next to plain TF (make stress)."""
    _same_as_tf(tmp_path, given, workers, slash, preempted)


@pytest.mark.slow
def test_adopting_the_handler_on_existing_checkpoints(tmp_path: Path) -> None:
    """MirroredStrategy; checkpoints written by a plain manager; then the handler.

    Regression (finding 8): the handler adds ``checkpointed_runs`` before restoring, and
    safeckpt raised ``CheckpointMismatchError [object_graph_mismatch]``.
    """
    directory = str(tmp_path / "ckpt")
    (written,) = run_cluster([_args(directory, "tf", "manager", "--write")], "adopt", script=WORKER)
    assert [os.path.basename(p) for p in written["written"]] == ["ckpt-1", "ckpt-2", "ckpt-3"]
    before = file_hashes(str(tmp_path / "ckpt"))
    results = {
        manager: run_cluster([_args(directory, manager, "manager")], "adopt", script=WORKER)[0]
        for manager in ("tf", "safeckpt")
    }
    for result in results.values():
        assert "error" not in result, result["error"]
        assert result["v"] == 3.0  # ckpt-3 holds v = 3
        assert result["start_at"] == 0  # TF starts its counter over, as it does itself
    report = results["safeckpt"]["restore"]
    assert report["outcome"] == "restored"
    assert report["save_path"] == str(tmp_path / "ckpt" / "ckpt-3")
    assert any("checkpointed_runs" in note for note in report["notes"])
    assert file_hashes(str(tmp_path / "ckpt")) == before  # restoring wrote nothing
