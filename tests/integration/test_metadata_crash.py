"""A metadata file never matters to a restore: killed before it, damaged, or orphaned.

The kill is real: a child process SIGKILLs itself just before the metadata file's write (its
temporary file is created) or its rename, after TensorFlow's files are complete and the
state file lists the checkpoint (the hook wraps the call in that process only, as
stress/crash/_child.py does for TensorFlow's calls).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tensorflow as tf

import safeckpt

REPO = Path(__file__).resolve().parents[2]

_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import tensorflow as tf
    import safeckpt
    from safeckpt._io import safeio

    directory, point = sys.argv[1], sys.argv[2]
    v = tf.Variable(0.0)
    manager = safeckpt.SafeCheckpointManager(tf.train.Checkpoint(v=v), directory, 3)
    for step in (1, 2):
        v.assign(float(step))
        manager.save(metrics={"loss": 1.0 / step})

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "write":  # before the temporary file is created
        real = safeio.write_new
        safeio.write_new = lambda path, data, **kw: (
            die() if ".safeckpt.json.safeckpt-tmp-" in path else real(path, data, **kw)
        )
    else:  # the temporary file is written, before its rename
        real_replace = os.replace
        os.replace = lambda a, b: die() if str(b).endswith(".safeckpt.json") else real_replace(a, b)
    v.assign(3.0)
    manager.save(metrics={"loss": 1.0 / 3})
    print("not killed")
    """
)


@pytest.mark.parametrize("point", ["write", "rename"])
def test_a_kill_before_the_metadata_write_leaves_a_usable_checkpoint(
    tmp_path: Path, point: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path), point],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr[-2000:]
    names = set(os.listdir(tmp_path))
    assert {"ckpt-3.index", "ckpt-3.data-00000-of-00001"} <= names
    assert "ckpt-3.safeckpt.json" not in names
    temps = {n for n in names if ".safeckpt.json.safeckpt-tmp-" in n}
    assert bool(temps) == (point == "rename")
    # Plain TF reads it; the state file lists it (recorded before the metadata write).
    assert tf.train.latest_checkpoint(str(tmp_path)) == str(tmp_path / "ckpt-3")
    v = tf.Variable(0.0)
    manager = safeckpt.SafeCheckpointManager(
        tf.train.Checkpoint(v=v), tmp_path, 3, cleanup_temp=True, writer_lease=False
    )
    report = manager.restore()
    assert report.save_path == str(tmp_path / "ckpt-3") and float(v.numpy()) == 3.0
    assert manager.metadata() is None
    assert any("ckpt-3 has no metadata file" in n for n in report.notes)
    assert manager.metadata(str(tmp_path / "ckpt-2")).metrics == {"loss": 0.5}  # type: ignore[union-attr]
    v.assign(4.0)
    manager.save(metrics={"loss": 0.25})  # cleanup_temp removes the killed write's temporary
    after = set(os.listdir(tmp_path))
    assert not {n for n in after if ".safeckpt-tmp-" in n}
    assert {n for n in after if n.endswith(".safeckpt.json")} == {
        "ckpt-2.safeckpt.json",
        "ckpt-4.safeckpt.json",
    }


@pytest.mark.parametrize(
    "damage",
    [b"", b"{not json", b'{"format": "safeckpt-metadata", "version": "9.0"}', "dir", "fifo"],
)
def test_a_corrupted_metadata_file_changes_nothing_about_restore(
    tmp_path: Path, damage: object
) -> None:
    v = tf.Variable(0.0)
    manager = safeckpt.SafeCheckpointManager(
        tf.train.Checkpoint(v=v), tmp_path, 3, keep_best=safeckpt.KeepBest("loss")
    )
    for step in (1, 2, 3):
        v.assign(float(step))
        manager.save(metrics={"loss": float(step)})
    path = tmp_path / "ckpt-3.safeckpt.json"
    path.unlink()
    if damage == "dir":
        path.mkdir()
    elif damage == "fifo":
        os.mkfifo(path)
    else:
        assert isinstance(damage, bytes)
        path.write_bytes(damage)
    results = []
    for verify in ("quick", "deep", "none"):
        v.assign(-1.0)
        fresh = safeckpt.SafeCheckpointManager(
            tf.train.Checkpoint(v=v), tmp_path, 3, verify=verify, read_only=True
        )
        report = fresh.restore()
        results.append((report.save_path, float(v.numpy()), str(report.outcome)))
        assert any("metadata file of ckpt-3" in n for n in report.notes), report.notes
        assert fresh.metadata() is None
    assert set(results) == {(str(tmp_path / "ckpt-3"), 3.0, "restored")}
    # The damaged file is simply not a best candidate.
    assert manager.best_checkpoint == str(tmp_path / "ckpt-1")
