"""safeckpt/_io/safeio.py on local paths: answered with `os`, never importing TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = """
import sys
from safeckpt._io import safeio
assert safeio.remove_file(sys.argv[1] + "/missing.safeckpt.json") is False
target = sys.argv[1] + "/orphan.safeckpt.json"
open(target, "w").close()
assert safeio.remove_file(target) is True
print("tensorflow" in sys.modules)
"""


def test_remove_file_on_a_local_path_never_imports_tensorflow(tmp_path: Path) -> None:
    # A metadata file that vanished before `repair`/`cleanup_temp` removed it is "nothing
    # was there", decided without TensorFlow's error classes.
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    assert not (tmp_path / "orphan.safeckpt.json").exists()
