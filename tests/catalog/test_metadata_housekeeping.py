"""Orphan metadata files (their checkpoint gone): reported, never a checkpoint, removed by
``cleanup_temp`` and ``repair``, and never taken for the metadata of a new checkpoint."""

from __future__ import annotations

import json
import os
from pathlib import Path

import tensorflow as tf

import safeckpt
from safeckpt._catalog.inventory import scan
from safeckpt._catalog.repair import apply_repair, plan_repair


def _saves(directory: Path, count: int, **kwargs: object) -> safeckpt.SafeCheckpointManager:
    v = tf.Variable(0.0)
    manager = safeckpt.SafeCheckpointManager(tf.train.Checkpoint(v=v), directory, 5, **kwargs)
    for step in range(1, count + 1):
        v.assign(float(step))
        manager.save(metrics={"loss": float(step)})
    return manager


def _orphan(directory: Path, step: int) -> None:
    """What a kill between the sweep's delete of ckpt-N and of its metadata leaves."""
    for name in (f"ckpt-{step}.index", f"ckpt-{step}.data-00000-of-00001"):
        (directory / name).unlink()


def test_an_orphan_is_reported_and_never_a_checkpoint(tmp_path: Path) -> None:
    _saves(tmp_path, 3)
    _orphan(tmp_path, 1)
    inventory = scan(str(tmp_path))
    assert inventory.orphan_metadata == ("ckpt-1.safeckpt.json",)
    assert [c.step for c in inventory.checkpoints if c.complete] == [2, 3]
    assert [c.step for c in safeckpt.list_checkpoints(tmp_path) if c.complete] == [2, 3]


def test_cleanup_temp_removes_orphans_of_its_name(tmp_path: Path) -> None:
    _saves(tmp_path, 3)
    _orphan(tmp_path, 1)
    (tmp_path / "other-1.safeckpt.json").write_text("{}")  # another name's: not ours
    v = tf.Variable(0.0)
    manager = safeckpt.SafeCheckpointManager(
        tf.train.Checkpoint(v=v), tmp_path, 5, cleanup_temp=True, writer_lease=False
    )
    manager.restore()
    manager.save()
    names = set(os.listdir(tmp_path))
    assert "ckpt-1.safeckpt.json" not in names
    assert "other-1.safeckpt.json" in names
    assert {"ckpt-2.safeckpt.json", "ckpt-3.safeckpt.json", "ckpt-4.safeckpt.json"} <= names


def test_repair_removes_orphans(tmp_path: Path) -> None:
    _saves(tmp_path, 3)
    _orphan(tmp_path, 2)
    plan = plan_repair(str(tmp_path))
    assert plan.orphan_metadata == ("ckpt-2.safeckpt.json",)
    apply_repair(plan)
    assert not (tmp_path / "ckpt-2.safeckpt.json").exists()
    assert (tmp_path / "ckpt-3.safeckpt.json").exists()
    assert plan_repair(str(tmp_path)).orphan_metadata == ()


def test_a_new_checkpoint_never_inherits_a_stale_metadata_file(tmp_path: Path) -> None:
    """ckpt-4's files were removed by hand, its metadata stayed; the next ckpt-4 is new."""
    _saves(tmp_path, 4, writer_lease=False)
    stale = json.loads((tmp_path / "ckpt-4.safeckpt.json").read_text())
    _orphan(tmp_path, 4)
    v = tf.Variable(0.0)
    checkpoint = tf.train.Checkpoint(v=v)
    manager = safeckpt.SafeCheckpointManager(checkpoint, tmp_path, 5, writer_lease=False)
    manager.restore()  # ckpt-3: the next save is ckpt-4 again
    assert int(checkpoint.save_counter.numpy()) == 3
    prefix = manager.save(metrics={"loss": 0.5})
    assert prefix == str(tmp_path / "ckpt-4")
    fresh = json.loads((tmp_path / "ckpt-4.safeckpt.json").read_text())
    assert fresh["metrics"] == {"loss": 0.5} and fresh["time"] > stale["time"]


def test_plain_tensorflow_manager_restores_everything_written(tmp_path: Path) -> None:
    _saves(tmp_path, 4, keep_best=safeckpt.KeepBest("loss"))
    v = tf.Variable(0.0)
    plain = tf.train.CheckpointManager(tf.train.Checkpoint(v=v), str(tmp_path), 5)
    assert plain.latest_checkpoint == str(tmp_path / "ckpt-4")
    for prefix in plain.checkpoints:
        tf.train.Checkpoint(v=v).restore(prefix).assert_consumed()
        assert float(v.numpy()) == float(prefix.rsplit("-", 1)[1])
