"""Inventory and state-file reading (safeckpt/_catalog/inventory.py, _format/statefile.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import tensorflow as tf

from safeckpt import Cause, list_checkpoints, verify
from safeckpt._catalog.inventory import scan
from safeckpt._format.statefile import parse_state, read_state, resolve_recorded
from testing.checkpoints import Trainee, write_checkpoints


def test_lists_oldest_to_newest_with_state_flags(ckpt_dir: Path) -> None:
    infos = list_checkpoints(ckpt_dir)
    assert [i.step for i in infos] == [1, 2, 3]
    assert [i.prefix for i in infos] == [str(ckpt_dir / f"ckpt-{k}") for k in (1, 2, 3)]
    assert all(i.in_state_file and i.complete and i.name == "ckpt" for i in infos)
    assert infos[0].files == ("ckpt-1.data-00000-of-00001", "ckpt-1.index")
    assert infos[0].size_bytes == sum((ckpt_dir / f).stat().st_size for f in infos[0].files)
    assert infos[0].mtime is not None


def test_understands_tf_leftovers(ckpt_dir: Path) -> None:
    (ckpt_dir / "ckpt-5_temp").mkdir()
    (ckpt_dir / "ckpt-5_temp" / "part-00000-of-00001.data-00000-of-00001.tempstate1").write_bytes(
        b"x" * 10
    )
    (ckpt_dir / "checkpoint.tmp0123abcd").write_text("partial")
    (ckpt_dir / "workertemp_1").mkdir()
    shutil.copy(ckpt_dir / "ckpt-3.data-00000-of-00001", ckpt_dir / "ckpt-4.data-00000-of-00001")
    inventory = scan(str(ckpt_dir))
    by_step = {i.step: i for i in inventory.checkpoints}
    assert by_step[4].problems == (Cause.MISSING_INDEX,)
    assert by_step[5].problems == (Cause.INCOMPLETE_SAVE,)
    assert by_step[5].files == ("ckpt-5_temp/",)
    assert inventory.worker_temps == ("workertemp_1",)
    assert inventory.leftovers() == [
        str(ckpt_dir / "ckpt-5_temp"),
        str(ckpt_dir / "checkpoint.tmp0123abcd"),
    ]


def test_unlisted_complete_checkpoint_is_found(ckpt_dir: Path) -> None:
    # A crash between the index write and the state write leaves ckpt-4 complete but unlisted.
    t = Trainee()
    t.set(4)
    t.checkpoint.write(str(ckpt_dir / "ckpt-4"))
    infos = list_checkpoints(ckpt_dir)
    assert infos[-1].step == 4
    assert infos[-1].complete
    assert not infos[-1].in_state_file


def test_sharded_checkpoint(tmp_path: Path) -> None:
    variables = {f"v{i}": tf.Variable(tf.fill([300_000], float(i))) for i in range(3)}
    ckpt = tf.train.Checkpoint(**variables)
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=1_500_000)
    options = tf.train.CheckpointOptions(experimental_sharding_callback=policy)
    prefix = ckpt.write(str(tmp_path / "big"), options=options)
    (info,) = list_checkpoints(tmp_path)
    shards = [f for f in info.files if ".data-" in f]
    assert len(shards) > 1
    assert info.complete
    assert verify(prefix, deep=True).ok
    shards_on_disk = sorted(tmp_path.glob("big.data-*"))
    shards_on_disk[-1].unlink()
    (info,) = list_checkpoints(tmp_path)
    assert info.problems == (Cause.MISSING_DATA_SHARD,)


def test_tf1_saver_layout_with_absolute_paths(tmp_path: Path) -> None:
    original = tmp_path / "machineA" / "train"
    original.mkdir(parents=True)
    with tf.Graph().as_default():
        tf.compat.v1.Variable(1.0, name="w")
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, str(original / "model.ckpt"), global_step=100)
    state = (original / "checkpoint").read_text()
    assert str(original) in state  # TF1 writes absolute paths
    moved = tmp_path / "machineB"
    shutil.move(str(original), str(moved))
    (info,) = list_checkpoints(moved)
    assert info.name == "model.ckpt"
    assert info.step == 100
    assert "model.ckpt-100.meta" in info.files
    assert info.in_state_file  # re-anchored by base name
    inventory = scan(str(moved))
    assert all(r.foreign and r.reanchored for r in inventory.recorded)


def test_checkpoint_name_filter(tmp_path: Path) -> None:
    write_checkpoints(tmp_path, 2, name="model")
    Trainee().checkpoint.write(str(tmp_path / "ckpt-9"))
    assert [i.name for i in list_checkpoints(tmp_path)] == ["model", "model", "ckpt"]
    assert [i.step for i in list_checkpoints(tmp_path, checkpoint_name="model")] == [1, 2]


def test_ram_filesystem() -> None:
    t = Trainee()
    manager = tf.train.CheckpointManager(t.checkpoint, "ram://safeckpt-inv/a", None)
    manager.save()
    manager.save()
    infos = list_checkpoints("ram://safeckpt-inv/a")
    assert [i.prefix for i in infos] == [
        "ram://safeckpt-inv/a/ckpt-1",
        "ram://safeckpt-inv/a/ckpt-2",
    ]
    assert verify("ram://safeckpt-inv/a/ckpt-2", deep=True).ok


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"", Cause.STATE_FILE_CORRUPT),
        (b"\xff\xfe", Cause.STATE_FILE_CORRUPT),
        (b"garbage", Cause.STATE_FILE_CORRUPT),
        (b'all_model_checkpoint_paths: "ckpt-1"', Cause.STATE_FILE_CORRUPT),
        (b'model_checkpoint_path: "ckpt-1"', None),
    ],
)
def test_parse_state(raw: bytes, problem: Cause | None) -> None:
    state = parse_state("/d/checkpoint", raw)
    assert state.problem is problem
    if problem is not None:
        assert state.error is not None
        assert state.error.startswith("/d/checkpoint: ")


def test_state_file_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "checkpoint").mkdir()
    assert read_state(str(tmp_path)).problem is Cause.NOT_A_DIRECTORY


@pytest.mark.parametrize(
    ("recorded", "prefix", "foreign", "reanchored"),
    [
        ("ckpt-3", "/run/d/ckpt-3", False, False),
        ("./ckpt-3", "/run/d/ckpt-3", False, False),
        ("/run/d/ckpt-3", "/run/d/ckpt-3", False, False),
        ("/elsewhere/ckpt-3", "/run/d/ckpt-3", True, True),
        ("/elsewhere/ckpt-9", None, True, False),
        ("../../etc/ckpt-9", None, True, False),
        ("../../etc/ckpt-3", "/run/d/ckpt-3", True, True),
        ("C:\\Users\\me\\training\\ckpt-3", "/run/d/ckpt-3", True, True),
        ("training\\ckpt-9", None, True, False),
        ("gs://other/run/ckpt-3", "/run/d/ckpt-3", True, True),
    ],
)
def test_resolve_recorded(
    recorded: str, prefix: str | None, foreign: bool, reanchored: bool
) -> None:
    result = resolve_recorded("/run/d", recorded, {"ckpt-1", "ckpt-3"})
    assert (result.prefix, result.foreign, result.reanchored) == (prefix, foreign, reanchored)
