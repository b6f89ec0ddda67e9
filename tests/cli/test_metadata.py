"""Metadata in the diagnoses and the command line: mismatch evidence, doctor, ls, inspect."""

from __future__ import annotations

import io
import json
import platform
from pathlib import Path

import pytest
import tensorflow as tf

import safeckpt
from safeckpt._cli.main import main


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), stdout=out, stderr=io.StringIO())
    return code, out.getvalue()


def _run_with_best(directory: Path) -> None:
    v = tf.Variable(0.0)
    manager = safeckpt.SafeCheckpointManager(
        tf.train.Checkpoint(v=v), directory, 2, keep_best=safeckpt.KeepBest("val_loss")
    )
    for step, loss in enumerate([0.5, 0.2, 0.4, 0.6, 0.9], 1):
        v.assign(float(step))
        manager.save(metrics={"val_loss": loss, "acc": 1 - loss}, metadata={"epoch": step})


def test_ls_shows_the_metrics_and_marks_the_recorded_best(tmp_path: Path) -> None:
    _run_with_best(tmp_path)
    code, text = run("ls", str(tmp_path))
    assert code == 0
    lines = text.splitlines()
    assert lines[1].split() == [
        "STEP", "PREFIX", "SIZE", "WRITTEN", "STATE", "BEST", "METRICS", "STATUS",
    ]  # fmt: skip
    cells = {line.split()[1]: line.split() for line in lines[2:5]}
    assert set(cells) == {"ckpt-2", "ckpt-4", "ckpt-5"}
    assert cells["ckpt-2"][-3:] == ["*", "acc=0.8,val_loss=0.2", "ok"]
    assert cells["ckpt-4"][-3] == cells["ckpt-5"][-3] == "-"
    assert "best (ckpt): 1 by val_loss (min)" in text
    code, text = run("ls", str(tmp_path), "--json")
    data = json.loads(text)
    assert [(c["step"], c["best"], c["metrics"]["val_loss"]) for c in data["checkpoints"]] == [
        (2, True, 0.2),
        (4, False, 0.6),
        (5, False, 0.9),
    ]
    assert data["best_by"] == {"ckpt": {"metric": "val_loss", "mode": "min", "k": 1}}
    # Keys of the existing output are all still there.
    assert {"prefix", "name", "step", "files", "size_bytes", "mtime", "in_state_file"} <= set(
        data["checkpoints"][0]
    )


def test_ls_best_option_overrides(tmp_path: Path) -> None:
    _run_with_best(tmp_path)
    data = json.loads(run("ls", str(tmp_path), "--json", "--best", "acc:max:2")[1])
    assert [c["step"] for c in data["checkpoints"] if c["best"]] == [2, 4]
    assert run("ls", str(tmp_path), "--best", "acc:sideways")[0] == 2


def test_ls_without_metadata_is_unchanged(tmp_path: Path) -> None:
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)), str(tmp_path), 3)
    manager.save()
    data = json.loads(run("ls", str(tmp_path), "--json")[1])
    assert data["checkpoints"][0]["metrics"] is None
    assert data["checkpoints"][0]["best"] is False and data["best_by"] == {}


def test_inspect_shows_the_metadata(tmp_path: Path) -> None:
    _run_with_best(tmp_path)
    code, text = run("inspect", str(tmp_path / "ckpt-2"))
    assert code == 0
    assert f"Python {platform.python_version()}" in text
    assert "metrics: acc=0.8 val_loss=0.2" in text and "epoch=2" in text
    assert "keep_best: val_loss (min), k=1" in text
    data = json.loads(run("inspect", str(tmp_path / "ckpt-2"), "--json")[1])
    assert data["metadata"]["metrics"] == {"val_loss": 0.2, "acc": 0.8}
    assert data["metadata"]["step"] == 2
    (tmp_path / "ckpt-4.safeckpt.json").write_text("{")
    assert "metadata: " in run("inspect", str(tmp_path / "ckpt-4"))[1]
    assert "damaged" in run("inspect", str(tmp_path / "ckpt-4"))[1]
    data = json.loads(run("inspect", str(tmp_path / "ckpt-4"), "--json")[1])
    assert "not JSON" in data["metadata"]["problem"]


def test_doctor_says_who_wrote_the_newest_and_names_orphans(tmp_path: Path) -> None:
    _run_with_best(tmp_path)
    (tmp_path / "ckpt-1.safeckpt.json").write_text("{}")  # an orphan
    diagnosis = safeckpt.diagnose(tmp_path)
    assert diagnosis.ok
    text = "\n".join(diagnosis.evidence)
    assert (
        f"ckpt-5 was written by safeckpt {safeckpt.__version__}, TensorFlow {tf.__version__}"
        in text
    )
    assert "val_loss=0.9" in text
    assert "ckpt-1.safeckpt.json describes a checkpoint whose files are gone" in text
    assert any("was written by" in e for e in safeckpt.diagnose(tmp_path / "ckpt-2").evidence)


def test_a_mismatch_says_what_wrote_the_checkpoint_and_what_changed(tmp_path: Path) -> None:
    old = tf.train.Checkpoint(
        dense=tf.Variable(tf.zeros([4, 8])), gone=tf.Variable(1.0), bias=tf.Variable(tf.zeros([8]))
    )
    safeckpt.SafeCheckpointManager(old, tmp_path, 2).save(metrics={"loss": 1.5})
    new = tf.train.Checkpoint(
        dense=tf.Variable(tf.zeros([4, 16])),
        added=tf.Variable(2.0),
        bias=tf.Variable(tf.zeros([8])),
    )
    manager = safeckpt.SafeCheckpointManager(new, tmp_path, 2, read_only=True)
    with pytest.raises(safeckpt.CheckpointMismatchError) as raised:
        manager.restore()
    evidence = "\n".join(raised.value.diagnosis.evidence)
    assert f"ckpt-1 was written by safeckpt {safeckpt.__version__}" in evidence
    assert "at step 1" in evidence and "fingerprint sha256:" in evidence
    assert "added since (in the program, not in the checkpoint): 1: added" in evidence
    assert "removed since (in the checkpoint, not in the program): 1: gone" in evidence
    # Shapes differ too: with match="partial" off, the reshaped variable is named when the
    # object graph matches.
    partial = tf.train.Checkpoint(dense=tf.Variable(tf.zeros([4, 16])), gone=tf.Variable(1.0),
                                  bias=tf.Variable(tf.zeros([8])))  # fmt: skip
    with pytest.raises(safeckpt.CheckpointMismatchError) as raised:
        safeckpt.SafeCheckpointManager(partial, tmp_path, 2, read_only=True).restore()
    evidence = "\n".join(raised.value.diagnosis.evidence)
    assert "reshaped or retyped since: 1: dense" in evidence
