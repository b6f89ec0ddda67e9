"""The metadata file beside each checkpoint: its format, writing, reading, and names.

Real checkpoints saved by `SafeCheckpointManager`; the file's content is checked against
values this test computes itself (the variables' keys, shapes and dtypes it created).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import socket
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import safeckpt
from safeckpt._catalog.inventory import scan
from safeckpt._format.layout import classify
from safeckpt._format.metadata import decode, encode, read_metadata


def _model() -> tuple[tf.train.Checkpoint, tf.Variable, tf.Variable]:
    kernel = tf.Variable(tf.ones([3, 4]), name="kernel")
    bias = tf.Variable(tf.zeros([4], tf.float64), name="bias")
    return tf.train.Checkpoint(kernel=kernel, bias=bias), kernel, bias


def _raw(prefix: str) -> dict:
    return json.loads(Path(prefix + ".safeckpt.json").read_text(encoding="utf-8"))


def test_save_writes_the_documented_file(tmp_path: Path) -> None:
    checkpoint, _, _ = _model()
    manager = safeckpt.SafeCheckpointManager(checkpoint, tmp_path, max_to_keep=3)
    before = tf.timestamp().numpy()
    prefix = manager.save(metrics={"val_loss": 0.31, "acc": 1}, metadata={"lr": [1e-3, "cos"]})
    data = _raw(prefix)
    assert data["format"] == "safeckpt-metadata" and data["version"] == "1.0"
    assert data["checkpoint"] == "ckpt-1" and data["step"] == 1
    assert before - 1 <= data["time"] <= tf.timestamp().numpy() + 1
    assert data["writer"] == {
        "safeckpt": safeckpt.__version__,
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "task": None,
    }
    assert data["metrics"] == {"val_loss": 0.31, "acc": 1.0}
    assert data["metadata"] == {"lr": [1e-3, "cos"]}
    assert data["keep_best"] is None
    # The fingerprint: the index's keys, dtypes and shapes, as this test knows them.
    expected = sorted(
        [
            ["_CHECKPOINTABLE_OBJECT_GRAPH", "string", []],
            ["bias/.ATTRIBUTES/VARIABLE_VALUE", "float64", [4]],
            ["kernel/.ATTRIBUTES/VARIABLE_VALUE", "float32", [3, 4]],
            ["save_counter/.ATTRIBUTES/VARIABLE_VALUE", "int64", []],
        ]
    )
    assert data["variables"]["entries"] == expected
    lines = "".join(f"{k}\t{d}\t{','.join(map(str, s))}\n" for k, d, s in expected)
    assert data["variables"]["digest"] == "sha256:" + hashlib.sha256(lines.encode()).hexdigest()
    assert data["variables"]["count"] == 4


def test_metadata_returns_a_frozen_dataclass(tmp_path: Path) -> None:
    checkpoint, _, _ = _model()
    manager = safeckpt.SafeCheckpointManager(checkpoint, tmp_path, max_to_keep=3)
    assert manager.metadata() is None  # no checkpoint yet
    first = manager.save(metrics={"loss": 2.0})
    manager.save(metrics={"loss": 1.0}, metadata={"note": "second"})
    latest = manager.metadata()
    assert isinstance(latest, safeckpt.CheckpointMetadata)
    assert latest.step == 2 and latest.metrics == {"loss": 1.0}
    assert latest.metadata == {"note": "second"}
    assert manager.metadata(first).metrics == {"loss": 2.0}  # type: ignore[union-attr]
    assert manager.metadata(first + ".index").step == 1  # type: ignore[union-attr]
    with pytest.raises(dataclasses.FrozenInstanceError):
        latest.step = 5  # type: ignore[misc]
    again = safeckpt.CheckpointMetadata.from_dict(json.loads(json.dumps(latest.to_dict())))
    assert again == latest


def test_non_finite_metrics_are_stored_as_strict_json(tmp_path: Path) -> None:
    checkpoint, _, _ = _model()
    manager = safeckpt.SafeCheckpointManager(checkpoint, tmp_path, max_to_keep=3)
    prefix = manager.save(metrics={"a": float("nan"), "b": float("inf"), "c": -math.inf})
    text = Path(prefix + ".safeckpt.json").read_text()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the file"))
    assert _raw(prefix)["metrics"] == {"a": "NaN", "b": "Infinity", "c": "-Infinity"}
    read = manager.metadata()
    assert read is not None and math.isnan(read.metrics["a"])
    assert read.metrics["b"] == math.inf and read.metrics["c"] == -math.inf


def test_numpy_and_tensor_scalars_are_numbers(tmp_path: Path) -> None:
    checkpoint, _, _ = _model()
    manager = safeckpt.SafeCheckpointManager(checkpoint, tmp_path, max_to_keep=3)
    prefix = manager.save(
        metrics={"np": np.float32(0.5), "tensor": tf.constant(2.5), "i": np.int64(3)},
        metadata={"n": np.int32(7)},
    )
    assert _raw(prefix)["metrics"] == {"np": 0.5, "tensor": 2.5, "i": 3.0}
    assert _raw(prefix)["metadata"] == {"n": 7}


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"metrics": {"val_loss": "low"}}, "metrics['val_loss']"),
        ({"metrics": {"ok": 1.0, "flag": True}}, "metrics['flag']"),
        ({"metrics": {3: 1.0}}, "3"),
        ({"metrics": [("a", 1.0)]}, "metrics"),
        ({"metadata": {"run": {"when": object()}}}, "metadata['run']['when']"),
        ({"metadata": {"x": float("nan")}}, "metadata['x']"),
        ({"metadata": {"x": {1: 2}}}, "metadata['x']"),
        ({"metadata": "text"}, "metadata"),
    ],
)
def test_a_bad_value_is_a_type_error_before_anything_is_written(
    tmp_path: Path, kwargs: dict, named: str
) -> None:
    checkpoint, _, _ = _model()
    manager = safeckpt.SafeCheckpointManager(checkpoint, tmp_path, max_to_keep=3)
    manager.save()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    counter = int(checkpoint.save_counter.numpy())
    with pytest.raises(TypeError, match=named.replace("[", r"\[").replace("]", r"\]")):
        manager.save(**kwargs)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # the lease too
    assert int(checkpoint.save_counter.numpy()) == counter


def test_a_newer_minor_version_is_read_and_a_newer_major_is_a_problem(tmp_path: Path) -> None:
    checkpoint, _, _ = _model()
    manager = safeckpt.SafeCheckpointManager(checkpoint, tmp_path, max_to_keep=3)
    prefix = manager.save(metrics={"m": 1.0})
    data = _raw(prefix)
    data.update(version="1.7", shiny_new_key={"x": 1})
    data["writer"]["gpu"] = "A100"
    Path(prefix + ".safeckpt.json").write_text(json.dumps(data))
    read = read_metadata(prefix)
    assert read.problem is None and read.metadata is not None
    assert read.metadata.version == "1.7" and read.metadata.metrics == {"m": 1.0}
    data["version"] = "2.0"
    Path(prefix + ".safeckpt.json").write_text(json.dumps(data))
    read = read_metadata(prefix)
    assert read.metadata is None and "2.0" in (read.problem or "")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b'{"format": "other"}',
        b"\xff\xfe",
        b"[1, 2]",
        b'{"format": "safeckpt-metadata", "version": "1.0"}',
        b"NaN",
    ],
)
def test_a_damaged_file_is_a_problem_never_an_exception(tmp_path: Path, content: bytes) -> None:
    checkpoint, _, _ = _model()
    manager = safeckpt.SafeCheckpointManager(checkpoint, tmp_path, max_to_keep=3)
    prefix = manager.save(metrics={"m": 1.0})
    Path(prefix + ".safeckpt.json").write_bytes(content)
    read = read_metadata(prefix)
    assert read.metadata is None and read.problem
    assert manager.metadata() is None


def test_encode_decode_round_trip(tmp_path: Path) -> None:
    checkpoint, _, _ = _model()
    manager = safeckpt.SafeCheckpointManager(
        checkpoint, tmp_path, max_to_keep=3, keep_best=safeckpt.KeepBest("m", mode="max", k=2)
    )
    prefix = manager.save(metrics={"m": 0.25}, metadata={"a": {"b": [1, None, True]}})
    meta = manager.metadata()
    assert meta is not None
    assert decode(prefix, encode(meta)) == meta
    assert meta.keep_best == safeckpt.KeepBest("m", mode="max", k=2)
    assert meta.keep_best.mode is safeckpt.BestMode.MAX


def test_names_are_never_taken_for_checkpoint_files_or_junk(tmp_path: Path) -> None:
    listing = classify(
        [
            "ckpt-1.index",
            "ckpt-1.data-00000-of-00001",
            "ckpt-1.safeckpt.json",
            "ckpt-2.safeckpt.json",  # its checkpoint is gone
            "ckpt-3.safeckpt.json.safeckpt-tmp-12-abcdef",  # a killed write
            "notes.txt",
        ]
    )
    assert set(listing.prefixes) == {"ckpt-1"}
    assert listing.metadata == ["ckpt-1", "ckpt-2"]
    assert listing.metadata_temps == ["ckpt-3.safeckpt.json.safeckpt-tmp-12-abcdef"]
    assert listing.other == ["notes.txt"]


def test_tensorflow_ignores_the_file(tmp_path: Path) -> None:
    checkpoint, kernel, _ = _model()
    manager = safeckpt.SafeCheckpointManager(checkpoint, tmp_path, max_to_keep=3)
    kernel.assign(tf.fill([3, 4], 5.0))
    prefix = manager.save(metrics={"m": 1.0})
    assert tf.train.latest_checkpoint(str(tmp_path)) == prefix
    assert tf.io.gfile.glob(prefix + ".data-?????-of-?????") == [prefix + ".data-00000-of-00001"]
    fresh, kernel2, _ = _model()
    fresh.restore(prefix).assert_consumed()
    assert float(kernel2.numpy().max()) == 5.0


def test_inventory_and_list_checkpoints_carry_metadata(tmp_path: Path) -> None:
    checkpoint, _, _ = _model()
    manager = safeckpt.SafeCheckpointManager(checkpoint, tmp_path, max_to_keep=5)
    manager.save(metrics={"m": 1.0})
    manager.save()
    tf.train.Checkpoint(x=tf.Variable(1.0)).write(str(tmp_path / "ckpt-3"))  # plain TF
    (tmp_path / "ckpt-9.safeckpt.json").write_text("{}")  # orphan
    inventory = scan(str(tmp_path))
    assert [c.metadata_file for c in inventory.checkpoints] == [
        "ckpt-1.safeckpt.json",
        "ckpt-2.safeckpt.json",
        None,
    ]
    assert inventory.orphan_metadata == ("ckpt-9.safeckpt.json",)
    assert "ckpt-9.safeckpt.json" not in inventory.other
    infos = safeckpt.list_checkpoints(tmp_path)
    assert [c.metrics for c in infos] == [{"m": 1.0}, {}, None]
    assert [c.step for c in infos] == [1, 2, 3]
    assert infos[0].to_dict()["metrics"] == {"m": 1.0}
    assert safeckpt.CheckpointInfo.from_dict(infos[0].to_dict()) == infos[0]
