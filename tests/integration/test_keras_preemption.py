"""`BackupAndRestore(save_before_preemption=True)`: a SIGTERM in the middle of an epoch.

A training child process receives SIGTERM from this test at batch 2 of epoch 1 (of 5
batches). With safeckpt's callback it finishes the batch, backs it up, stops ``fit`` and
then terminates by the signal, as it would have without the callback; the restarted process
continues at batch 3. Every batch is trained exactly once and the final weights equal an
uninterrupted run's (op determinism). Keras's own callback, side by side, dies at once and
trains the interrupted epoch's first batches again. The oracle is the sample ids each child
wrote as it trained, never safeckpt's files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

CHILD = Path(__file__).with_name("_keras_preemption_child.py")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "SAFECKPT_ALLOW_EPHEMERAL": "1"}
TIMEOUT = 300


def run(mode: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHILD), mode, str(root)], capture_output=True,
                          text=True, env=ENV, timeout=TIMEOUT)  # fmt: skip


def preempt(mode: str, root: Path) -> tuple[int, str]:
    """Run `mode`, SIGTERM it when it says it is at batch 2 of epoch 1; its exit status."""
    child = subprocess.Popen([sys.executable, str(CHILD), mode, str(root)], env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (root / "ready").exists():
            assert child.poll() is None, child.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the child never reached batch 2 of epoch 1"
            time.sleep(0.02)
        child.send_signal(signal.SIGTERM)
        (root / "sent").write_text("")
        _, err = child.communicate(timeout=TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode, err


def seen(root: Path, mode: str) -> list[list[int]]:
    path = root / f"{mode}.seen"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def result(root: Path, mode: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((root / f"{mode}.json").read_text())
    return loaded


def test_a_sigterm_mid_epoch_backs_up_that_batch_and_the_restart_continues_after_it(
    tmp_path: Path,
) -> None:
    full = run("full", tmp_path)
    assert full.returncode == 0, full.stderr[-3000:]
    status, err = preempt("preempted", tmp_path)
    # The batch in progress was finished and backed up, fit stopped, then the signal was
    # delivered again to the default handler: the process ended by SIGTERM, not by exit(0).
    assert status == -signal.SIGTERM, err[-3000:]
    assert "SIGTERM received; backing up epoch 1 after 3 batches" in err
    assert not (tmp_path / "preempted.json").exists()  # nothing after fit ran
    assert (tmp_path / "backup").is_dir() and any((tmp_path / "backup").glob("backup-*.index"))
    resumed = run("resumed", tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert result(tmp_path, "resumed")["epochs"] == [1, 2]
    # Epoch 1's batches 0-2 before the signal, 3-4 after the restart: each once.
    assert len(seen(tmp_path, "preempted")) == 5 + 3
    assert seen(tmp_path, "preempted") + seen(tmp_path, "resumed") == seen(tmp_path, "full")
    diff = max(
        float(np.max(np.abs(np.array(a) - np.array(b))))
        for a, b in zip(
            result(tmp_path, "full")["weights"], result(tmp_path, "resumed")["weights"], strict=True
        )
    )
    assert diff <= 1e-6
    assert not (tmp_path / "backup").exists()  # the completed fit deleted its backups


def test_keras_own_callback_side_by_side_dies_at_once_and_repeats_batches(tmp_path: Path) -> None:
    status, err = preempt("keras-preempted", tmp_path)
    assert status == -signal.SIGTERM, err[-3000:]
    assert len(seen(tmp_path, "keras-preempted")) == 5 + 2  # batch 2 never ran
    resumed = run("keras-resumed", tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # Keras resumes at epoch 1's first batch: batches 0 and 1 of epoch 1 are trained twice.
    assert result(tmp_path, "keras-resumed")["epochs"] == [1, 2]
    assert len(seen(tmp_path, "keras-preempted")) + len(seen(tmp_path, "keras-resumed")) == 15 + 2
