"""Multi-worker training (safeckpt/_multiworker/context.py and its use by SafeCheckpointManager).

The fast tests run in-process: TF_CONFIG alone makes this process a worker of a cluster that
is never started (no strategy, no coordination service), which exercises who writes where.
The slow test runs two real MultiWorkerMirroredStrategy workers as separate processes (gRPC
on loopback), each running tests/integration/_multiworker_worker.py with its own TF_CONFIG;
each cluster run (`testing.cluster.run_cluster`) is bounded by a hard timeout, after which
both workers are killed and the test fails with their output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tensorflow as tf

import safeckpt
from safeckpt._manager.arguments import PEER_TIMEOUT_ENV, check_peer_timeout
from safeckpt._multiworker.agreement import Agreement
from safeckpt._multiworker.context import (
    WorkerContext,
    make_write_directory,
    manager_context,
    remove_write_directory,
    worker_context,
    write_directory,
)
from testing.checkpoints import Trainee, write_checkpoints
from testing.cluster import run_cluster, tf_config

WORKER = Path(__file__).with_name("_multiworker_worker.py")
KERAS_WORKER = Path(__file__).with_name("_keras_worker.py")


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


TWO_WORKERS = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
CHIEF_AND_WORKERS = {"chief": ["h:1"], "worker": ["h:2", "h:3"]}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (None, WorkerContext()),
        ("", WorkerContext()),
        (tf_config(TWO_WORKERS, "worker", 0), WorkerContext(True, "worker", 0, 2, 0, True)),
        (tf_config(TWO_WORKERS, "worker", 1), WorkerContext(False, "worker", 1, 2, 1, True)),
        (tf_config(CHIEF_AND_WORKERS, "chief", 0), WorkerContext(True, "chief", 0, 3, 0, True)),
        (tf_config(CHIEF_AND_WORKERS, "worker", 0), WorkerContext(False, "worker", 0, 3, 1, True)),
        (tf_config(CHIEF_AND_WORKERS, "worker", 1), WorkerContext(False, "worker", 1, 3, 2, True)),
        (tf_config({"worker": ["h:1"]}, "worker", 0), WorkerContext(True, "worker", 0, 1, 0)),
        (tf_config({"evaluator": ["h:9"]}, "evaluator", 0), WorkerContext(True, "evaluator", 0)),
        # Parameter-server training: only the coordinator runs the program; no agreement.
        (
            tf_config({**CHIEF_AND_WORKERS, "ps": ["h:4"]}, "chief", 0),
            WorkerContext(True, "chief", 0, 3, 0, False),
        ),
    ],
)
def test_worker_context_from_tf_config(
    monkeypatch: pytest.MonkeyPatch, config: str | None, expected: WorkerContext
) -> None:
    if config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", config)
    assert worker_context() == expected


@pytest.mark.parametrize("config", ["{not json", "[1, 2]", '{"cluster": [], "task": {}}'])
def test_malformed_tf_config_is_an_error(monkeypatch: pytest.MonkeyPatch, config: str) -> None:
    monkeypatch.setenv("TF_CONFIG", config)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        worker_context()


def test_a_strategy_in_scope_wins_over_tf_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_CONFIG", tf_config(TWO_WORKERS, "worker", 1))
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        assert worker_context() == WorkerContext()


def test_write_directory_is_workertemp_for_non_chiefs(tmp_path: Path) -> None:
    chief = WorkerContext(True, "worker", 0, 2, 0, True)
    other = WorkerContext(False, "worker", 1, 2, 1, True)
    directory = str(tmp_path)
    assert write_directory(directory, chief) == directory
    assert write_directory(directory, other) == str(tmp_path / "workertemp_1")

    (tmp_path / "workertemp_1").mkdir()
    (tmp_path / "workertemp_1" / "ckpt-7_temp").mkdir()  # left by a crashed save
    assert make_write_directory(directory, other) == str(tmp_path / "workertemp_1")
    assert _names(tmp_path / "workertemp_1") == []
    remove_write_directory(directory, other)
    assert _names(tmp_path) == []
    assert make_write_directory(directory, chief) == directory
    remove_write_directory(directory, chief)
    assert tmp_path.is_dir()


def test_agreement_without_a_cluster_just_runs_the_action(tmp_path: Path) -> None:
    other = WorkerContext(False, "worker", 1, 2, 1, True)
    agreement = Agreement(other, str(tmp_path), "ckpt", 5.0)
    assert agreement._service() is None  # no coordination service in this process

    def fail() -> None:
        raise KeyError("local")

    assert agreement.decide(lambda: 42, str, repr) == 42
    with pytest.raises(KeyError, match="local"):
        agreement.decide(fail, str, repr)
    assert agreement.validate(create=True, read_only=False) is False
    with pytest.raises(safeckpt.CheckpointDirectoryError):
        Agreement(other, str(tmp_path / "missing"), "ckpt", 5.0).validate(
            create=False, read_only=False
        )


def test_rounds_are_keyed_by_directory_name_and_instance(tmp_path: Path) -> None:
    context = WorkerContext(True, "worker", 0, 2, 0, True)
    a1 = Agreement(context, str(tmp_path / "a"), "ckpt", 5.0)
    b1 = Agreement(context, str(tmp_path / "b"), "ckpt", 5.0)  # cannot shift a's numbering
    a2 = Agreement(context, str(tmp_path / "a"), "ckpt", 5.0)
    other_name = Agreement(context, str(tmp_path / "a"), "model", 5.0)
    digest, number = a1.prefix.split("/")[1:3]
    assert a2.prefix == f"safeckpt/{digest}/{int(number) + 1}/restore"
    assert (
        len({a1.prefix.split("/")[1], b1.prefix.split("/")[1], other_name.prefix.split("/")[1]})
        == 3
    )


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [(None, None, 60.0), (None, "2.5", 2.5), (3, "2.5", 3.0), (0.25, None, 0.25)],
)
def test_peer_timeout(
    monkeypatch: pytest.MonkeyPatch, value: float | None, env: str | None, expected: float
) -> None:
    if env is None:
        monkeypatch.delenv(PEER_TIMEOUT_ENV, raising=False)
    else:
        monkeypatch.setenv(PEER_TIMEOUT_ENV, env)
    assert check_peer_timeout(value) == expected


@pytest.mark.parametrize(
    ("value", "env", "error", "match"),
    [
        ("60", None, TypeError, "peer_timeout must be a number of seconds.*str: '60'"),
        (True, None, TypeError, "peer_timeout must be a number"),
        (0, None, ValueError, "peer_timeout=0 is not a valid time: expected a positive"),
        (-1.0, None, ValueError, "peer_timeout=-1.0"),
        (float("inf"), None, ValueError, "peer_timeout=inf"),
        (None, "soon", ValueError, "SAFECKPT_PEER_TIMEOUT='soon' is not a valid time"),
        (None, "-3", ValueError, "SAFECKPT_PEER_TIMEOUT='-3'"),
    ],
)
def test_bad_peer_timeout(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    value: Any,
    env: str | None,
    error: type[Exception],
    match: str,
) -> None:
    if env is None:
        monkeypatch.delenv(PEER_TIMEOUT_ENV, raising=False)
    else:
        monkeypatch.setenv(PEER_TIMEOUT_ENV, env)
    with pytest.raises(error, match=match):
        safeckpt.SafeCheckpointManager(Trainee().checkpoint, tmp_path, 3, peer_timeout=value)


def test_a_workertemp_directory_is_the_workers_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # TensorFlow's Keras builds the non-chief's write manager on <dir>/workertemp_<id>.
    monkeypatch.setenv("TF_CONFIG", tf_config(TWO_WORKERS, "worker", 1))
    private = tmp_path / "workertemp_1"
    context = manager_context(str(private))
    assert context == WorkerContext(True, "worker", 1, 2, 1, False, stands_for=str(tmp_path))
    assert manager_context(str(tmp_path)) == worker_context()
    manager = safeckpt.SafeCheckpointManager(Trainee().checkpoint, private, max_to_keep=1)
    assert manager.save() == str(private / "ckpt-1")  # not workertemp_1/workertemp_1
    assert _names(private) == [
        "checkpoint",
        "ckpt-1.data-00000-of-00001",
        "ckpt-1.index",
        "ckpt-1.safeckpt.json",  # its metadata (docs/metadata.md), deleted with the directory
    ]


def test_non_chief_saves_into_workertemp_and_never_touches_the_chiefs_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "ckpts"
    write_checkpoints(directory, 3)  # the chief's ckpt-1..3
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    monkeypatch.setenv("TF_CONFIG", tf_config(TWO_WORKERS, "worker", 1))
    trainee = Trainee()
    manager = safeckpt.SafeCheckpointManager(
        trainee.checkpoint, directory, max_to_keep=2, quarantine=True, cleanup_temp=True
    )
    assert not manager.quarantine  # only the chief moves files
    assert manager.restore().save_path == str(directory / "ckpt-3")

    paths = [manager.save(), manager.save()]

    # The chief's names, in the chief's directory, with TF's rotation (max_to_keep=2)...
    assert paths == [str(directory / "ckpt-4"), str(directory / "ckpt-5")]
    assert manager.latest_checkpoint == paths[-1]
    assert manager.checkpoints == paths
    # ...but nothing written, swept or left behind there: the chief does that.
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before


@pytest.mark.slow
def test_both_workers_fall_back_to_the_same_checkpoint(tmp_path: Path) -> None:
    directory = tmp_path / "ckpts"
    shared = ["--directory", str(directory)]

    # Worker 1 alone builds two more managers first (on its workertemp_1, saved and restored
    # there, and on a directory of its own, saved): no agreement may wait for the chief. The
    # chief alone restores a manager on a directory of its own first: nobody waits for it
    # (regression: the chief waited peer_timeout for worker 1, then both raised).
    alone = tmp_path / "alone"
    best = tmp_path / "best"
    chief, other = run_cluster(
        [[*shared, "--alone-directory", str(best)], [*shared, "--extra-directory", str(alone)]],
        "train",
        script=WORKER,
    )
    assert chief["alone_restore"]["outcome"] == "initialized"
    assert chief["alone_restore"]["directory"] == str(best)
    assert _names(best) == []
    private = directory / "workertemp_1"
    # One checkpoint object, so one save_counter: TensorFlow numbers the second save 2.
    assert other["extra_saves"] == [str(private / "ckpt-1"), str(alone / "ckpt-2")]
    assert other["extra_restore"] == str(private / "ckpt-1")  # not workertemp_1/workertemp_1
    assert _names(alone) == []  # a non-chief's save on a shared directory is the chief's job
    expected = [str(directory / f"ckpt-{k}") for k in (1, 2, 3, 4)]
    assert [s["path"] for s in chief["saves"]] == expected
    assert [s["path"] for s in other["saves"]] == expected  # the chief's paths, not workertemp
    assert chief["saves"] == other["saves"]
    assert chief["checkpoints"] == other["checkpoints"] == expected[1:]
    assert _names(directory) == [
        ".safeckpt-writer-ckpt",  # the chief's writer lease (none on the other worker)
        "checkpoint",
        *(
            f"ckpt-{k}.{suffix}"
            for k in (2, 3, 4)
            for suffix in ("data-00000-of-00001", "index", "safeckpt.json")  # the chief's metadata
        ),
    ]
    saved_w = {s["step"]: s["w"] for s in chief["saves"]}
    assert len(set(saved_w.values())) == 4  # every step changed the weights

    shard = directory / "ckpt-4.data-00000-of-00001"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    # After resuming, each worker restores once more through a second manager: the chief on
    # the shared directory, worker 1 on a directory of its own. No worker built the other's
    # manager, so each decides alone (as TF's PreemptionCheckpointHandler layout needs):
    # neither waits for the other beyond the grace, neither raises.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    results = run_cluster(
        [
            [*shared, "--probe-directory", str(directory)],
            [*shared, "--probe-directory", str(elsewhere)],
        ],
        "resume",
        script=WORKER,
    )
    for result in results:
        report = result["restore"]
        assert report["outcome"] == "fell_back", report
        assert report["save_path"] == str(directory / "ckpt-3")
        assert [d["checkpoint"] for d in report["skipped"]] == [str(directory / "ckpt-4")]
        assert report["skipped"][0]["cause"] == "truncated_data"
        assert result["restored_step"] == 3
        assert result["restored_w"] == saved_w[3]
    assert results[0]["restored_seen"] == results[1]["restored_seen"]
    # Training goes on from step 3; the next save is numbered above the damaged ckpt-4 (on
    # every worker alike), which stays as it was.
    assert results[0]["saves"] == results[1]["saves"]
    assert results[0]["saves"][0]["path"] == str(directory / "ckpt-5")
    assert results[0]["saves"][0]["step"] == 4
    assert safeckpt.verify(str(directory / "ckpt-5"), deep=True).ok
    assert not safeckpt.verify(str(directory / "ckpt-4")).ok
    assert not [n for n in _names(directory) if n.startswith("workertemp_")]

    chief_probe, other_probe = (r.get("probe", r.get("probe_error")) for r in results)
    assert chief_probe["outcome"] == "restored", chief_probe
    assert chief_probe["save_path"] == str(directory / "ckpt-5")  # the new save
    assert other_probe["outcome"] == "initialized", other_probe
    assert other_probe["directory"] == str(elsewhere)
    assert _names(elsewhere) == []


def _keras_cluster(api: str, directory: Path, *extra: str) -> list[dict[str, Any]]:
    args = ["--api", api, "--directory", str(directory), *extra]
    return run_cluster([args, args], "run", script=KERAS_WORKER)


@pytest.mark.slow
def test_tf_keras_backup_and_restore_with_safeckpt_resumes_both_workers(tmp_path: Path) -> None:
    """TF's own Keras 2 callback, with tf.train.CheckpointManager swapped for safeckpt's.

    tf_keras builds one manager on the chief and two on the other worker (the same one on
    <backup>/chief plus a write manager on <backup>/workertemp_1): before the per-manager
    agreement, both workers hung here until a 10-minute timeout.
    """
    pytest.importorskip("tf_keras", reason="tf-keras (make .venv/.installed installs it)")
    backup = tmp_path / "backup"
    first = _keras_cluster("tf_keras", backup, "--interrupt-after", "1")
    for result in first:
        assert result["interrupted"] == "interrupted after epoch 1"
        assert result["epochs"] == [0, 1]
        assert result["restore"]["outcome"] == "initialized"
    assert first[0]["weights"] == first[1]["weights"]
    chief_dir = str(backup / "chief")
    assert first[0]["managers"] == [{"type": "SafeCheckpointManager", "directory": chief_dir}]
    assert first[1]["managers"] == [
        {"type": "SafeCheckpointManager", "directory": chief_dir},
        {"type": "SafeCheckpointManager", "directory": str(backup / "workertemp_1")},
    ]
    assert _names(backup) == ["chief"]  # tf_keras removes workertemp_1 after each save
    assert _names(backup / "chief") == [
        ".safeckpt-writer-ckpt",  # the chief's writer lease
        "checkpoint",
        "ckpt-2.data-00000-of-00001",
        "ckpt-2.index",
        "ckpt-2.safeckpt.json",  # its metadata, written by the chief (docs/metadata.md)
    ]

    second = _keras_cluster("tf_keras", backup)  # both workers restarted
    for result in second:
        assert result["restore"]["outcome"] == "restored"
        assert result["restore"]["save_path"] == str(backup / "chief" / "ckpt-2")
        assert result["restored_weights"] == first[0]["weights"][-1]
        assert result["epochs"] == [2, 3]  # both resume after the interrupted epoch
        assert "interrupted" not in result
    assert second[0]["weights"] == second[1]["weights"]
    assert _names(backup) == []  # a finished fit deletes the backup (tf_keras's chief)


@pytest.mark.slow
def test_safeckpt_keras_backup_and_restore_resumes_both_workers(tmp_path: Path) -> None:
    """safeckpt.keras.BackupAndRestore on a Keras 3 model, hooks driven by a training loop.

    Keras 3's own model.fit does not run under MultiWorkerMirroredStrategy on TF 2.21 (it
    fails converting PerReplica values, with or without any callback: docs/keras.md), so
    the loop calls the hooks fit would call.
    """
    backup = tmp_path / "backup"
    first = _keras_cluster("safeckpt_keras", backup, "--interrupt-after", "1")
    for result in first:
        assert result["interrupted"] == "interrupted after epoch 1"
        assert result["epochs"] == [0, 1]
    assert first[0]["weights"] == first[1]["weights"]
    assert _names(backup) == [
        ".safeckpt-writer-backup",  # the chief's writer lease
        "backup-1.data-00000-of-00001",
        "backup-1.index",
        "backup-1.safeckpt.json",
        "backup-2.data-00000-of-00001",
        "backup-2.index",
        "backup-2.safeckpt.json",
        "checkpoint",
    ]

    second = _keras_cluster("safeckpt_keras", backup)
    for result in second:
        assert result["restore"]["outcome"] == "restored"
        assert result["restore"]["save_path"] == str(backup / "backup-2")
        assert result["restored_weights"] == first[0]["weights"][-1]
        assert result["epochs"] == [2, 3]
    assert second[0]["weights"] == second[1]["weights"]
    # The chief deleted its backups at the end. The directory itself goes too, unless worker 1
    # was still removing its workertemp_1 inside it at that moment (then it is left empty).
    assert not backup.exists() or _names(backup) == []


@pytest.mark.slow
def test_a_worker_killed_in_a_restore_makes_the_other_raise_soon(tmp_path: Path) -> None:
    fault = ["--directory", str(tmp_path / "ckpts"), "--peer-timeout", "60"]
    chief, dead = run_cluster(
        [fault, [*fault, "--fault", "die"]], "fault", script=WORKER, dies=(1,)
    )
    assert dead == {"exit": 9}
    error = chief["error"]
    assert error["type"] == "WorkerUnavailableError"
    assert error["unavailable"]  # a tf.errors.UnavailableError too
    assert error["cause"] == "worker_unavailable"
    assert "Worker 1 did not take part in the restore" in error["summary"]
    assert "heartbeat" in error["summary"]  # TensorFlow's coordination service noticed
    assert chief["seconds"] < 30  # about 10 s (TF's heartbeat timeout), not peer_timeout


@pytest.mark.slow
def test_a_stuck_worker_makes_every_worker_raise_the_same_error(tmp_path: Path) -> None:
    fault = ["--directory", str(tmp_path / "ckpts"), "--peer-timeout", "2"]
    chief, stuck = run_cluster(
        [[*fault, "--linger", "6"], [*fault, "--fault", "stall", "--stall", "5"]],
        "fault",
        script=WORKER,
    )
    assert chief["seconds"] < 4.5  # peer_timeout, not the stall
    assert stuck["seconds"] >= 5
    for result in (chief, stuck):
        assert result["error"]["type"] == "WorkerUnavailableError"
        assert result["error"]["cause"] == "worker_unavailable"
    assert chief["error"]["summary"] == stuck["error"]["summary"]
    assert "did not report within peer_timeout=2 s" in chief["error"]["summary"]


@pytest.mark.slow
def test_a_directory_error_on_one_worker_is_raised_by_every_worker(tmp_path: Path) -> None:
    directory = tmp_path / "ckpts"  # missing when worker 1 (create_directory=False) checks it
    args = ["--directory", str(directory)]
    chief, other = run_cluster(
        [[*args, "--after-peer"], [*args, "--fault", "bad-directory", "--linger", "3"]],
        "fault",
        script=WORKER,
    )
    assert other["error"]["type"] == "CheckpointDirectoryError"
    assert directory.is_dir()  # the chief created it, and its own check passed
    error = chief["error"]  # raised by the chief's restore(), from worker 1's diagnosis
    assert error["type"] == "CheckpointDirectoryError"
    assert error["cause"] == "directory_missing"
    assert "worker 1 failed to use the checkpoint directory" in error["message"]
    assert chief["seconds"] < 10


@pytest.mark.slow
def test_a_report_from_another_safeckpt_version_is_diagnosed_on_every_worker(
    tmp_path: Path,
) -> None:
    """Worker 1 posts its report in a message format this safeckpt does not read."""
    fault = ["--directory", str(tmp_path / "ckpts"), "--peer-timeout", "60"]
    chief, foreign = run_cluster(
        [[*fault, "--linger", "3"], [*fault, "--fault", "foreign"]], "fault", script=WORKER
    )
    for result in (chief, foreign):
        assert result["error"]["type"] == "WorkerUnavailableError"
        assert result["error"]["cause"] == "worker_unavailable"
    assert chief["error"]["summary"] == foreign["error"]["summary"]
    summary = chief["error"]["summary"]
    assert "Worker 1 did not take part in the restore" in summary
    assert "its report is unreadable: message format 2, while this safeckpt reads format 1" in (
        summary
    )


@pytest.mark.slow
def test_a_worker_that_builds_the_manager_late_still_restores_alike(tmp_path: Path) -> None:
    """Worker 1 builds the manager 7 s after the chief restored it (past the 5 s grace).

    The chief need not wait for it; worker 1 still waits for the chief's round to be open
    and compares its outcome with the chief's report: both initialize, nobody raises.
    """
    args = ["--directory", str(tmp_path / "ckpts")]
    chief, late = run_cluster(
        [[*args, "--linger", "15"], [*args, "--delay", "7"]], "fault", script=WORKER
    )
    for result in (chief, late):
        assert "error" not in result, result["error"]
        assert result["restore"]["outcome"] == "initialized"
        assert result["restore"]["directory"] == str(tmp_path / "ckpts")
