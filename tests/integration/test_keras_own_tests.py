"""Keras's own tests of its `BackupAndRestore`, run against `safeckpt.keras.BackupAndRestore`.

``keras/src/callbacks/backup_and_restore_test.py`` ships in the Keras wheel. It is copied to a
temporary folder with ``callbacks.BackupAndRestore(`` replaced by
``safeckpt.keras.BackupAndRestore(`` and run by pytest in a child process. Six of its seven
tests pass; ``test_backup_corrupted`` reads Keras's private file names (``_weights_path``),
which this callback does not write (docs/keras.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import pytest

SOURCE = Path(keras.__file__).parent / "src" / "callbacks" / "backup_and_restore_test.py"
PASSING = {
    "test_save_freq_unknown_error",
    "test_best_case_step",
    "test_best_case_epoch",
    "test_model_deleted_case_epoch",
    "test_backup_dir_empty_error",
    "test_backup_dir_none_error",
}


@pytest.mark.skipif(not SOURCE.is_file(), reason=f"the Keras wheel has no {SOURCE.name}")
def test_keras_own_backup_and_restore_tests_pass_with_safeckpt(tmp_path: Path) -> None:
    text = SOURCE.read_text()
    swapped = text.replace("callbacks.BackupAndRestore(", "safeckpt.keras.BackupAndRestore(")
    assert swapped.count("safeckpt.keras.BackupAndRestore(") == 8
    (tmp_path / SOURCE.name).write_text("import safeckpt.keras\n" + swapped)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "-q", "-p", "no:cacheprovider", SOURCE.name],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    outcomes = dict(
        (name, outcome)
        for outcome, name in re.findall(r"^(PASSED|FAILED) \S+::\w+::(\w+)", done.stdout, re.M)
    )
    assert {n for n, o in outcomes.items() if o == "PASSED"} == PASSING, done.stdout[-4000:]
    assert {n for n, o in outcomes.items() if o == "FAILED"} == {"test_backup_corrupted"}
    assert "has no attribute '_weights_path'" in done.stdout
