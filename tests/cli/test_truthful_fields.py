"""``size_bytes`` and ``mtime``: measured, or None, never a made-up 0 or "?" (issue 24).

The oracle is `os.stat` of the checkpoint's files, taken by the test itself.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import tensorflow as tf

import safeckpt
from safeckpt._catalog.inventory import scan
from safeckpt._cli.main import main
from testing.checkpoints import Trainee, write_checkpoints


def _on_disk(prefix: str) -> tuple[int, float]:
    """Total size and newest modification time of a checkpoint's files, by `os.stat`."""
    directory, base = os.path.split(prefix)
    stats = [
        os.stat(os.path.join(directory, n))
        for n in os.listdir(directory)
        if n == base + ".index" or n.startswith(base + ".data-")
    ]
    return sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats) / 1e9


def _cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(args), stdout=out, stderr=io.StringIO())
    return code, out.getvalue()


def test_unmeasured_is_none_not_zero(tmp_path: Path) -> None:
    write_checkpoints(tmp_path, 2)
    info = safeckpt.CheckpointInfo(prefix="/x/ckpt-1", name="ckpt", step=1)
    assert (info.size_bytes, info.mtime, info.mtime_text()) == (None, None, "")
    assert all(c.size_bytes is None and c.mtime is None for c in scan(str(tmp_path)).checkpoints)
    assert "(step 1)" in str(
        safeckpt.Diagnosis(safeckpt.Cause.HEALTHY, "ok", str(tmp_path), candidates=(info,))
    )


def test_diagnose_measures_a_local_directory(tmp_path: Path) -> None:
    paths = write_checkpoints(tmp_path, 3)
    found = safeckpt.diagnose(tmp_path)
    assert [c.prefix for c in found.candidates] == paths[::-1]
    for candidate in found.candidates:
        size, mtime = _on_disk(candidate.prefix)
        assert candidate.size_bytes == size > 0
        assert candidate.mtime == pytest.approx(mtime, abs=1e-6)
    listed = safeckpt.list_checkpoints(tmp_path)
    assert [c.size_bytes for c in listed] == [_on_disk(p)[0] for p in paths]


def test_doctor_text_and_json_say_what_is_known(tmp_path: Path) -> None:
    paths = write_checkpoints(tmp_path, 2)
    code, text = _cli("doctor", str(tmp_path))
    assert code == 0
    assert "?" not in text and "written ?" not in text
    assert text.count(", written 20") == 2  # local times are measured
    code, raw = _cli("doctor", str(tmp_path), "--json")
    data = json.loads(raw)
    assert sorted(data) == sorted(
        ["cause", "ok", "summary", "directory", "checkpoint", "evidence", "suggestions",
         "candidates", "error"]
    )  # fmt: skip
    sizes = {c["prefix"]: c["size_bytes"] for c in data["candidates"]}
    assert sizes == {p: _on_disk(p)[0] for p in paths}


def test_a_file_that_cannot_be_stated_makes_the_size_unknown(tmp_path: Path) -> None:
    write_checkpoints(tmp_path, 1)
    inventory = scan(str(tmp_path))
    info = inventory.checkpoints[0]
    broken = type(info)(info.prefix, info.name, info.step, (*info.files, "ckpt-1.data-gone"))
    measured = inventory.stated(broken)
    assert measured.size_bytes is None
    assert measured.mtime == pytest.approx(_on_disk(info.prefix)[1], abs=1e-6)


@pytest.mark.slow
def test_doctor_stats_remote_storage_only_with_stat(gcs_dir: str) -> None:
    trainee = Trainee()
    manager = tf.train.CheckpointManager(trainee.checkpoint, gcs_dir, max_to_keep=None)
    for k in range(3):
        trainee.set(k)
        manager.save()
    code, raw = _cli("doctor", gcs_dir, "--json")
    assert code == 0
    assert [c["size_bytes"] for c in json.loads(raw)["candidates"]] == [None] * 3
    code, raw = _cli("doctor", gcs_dir, "--json", "--stat")
    assert code == 0
    sizes = [c["size_bytes"] for c in json.loads(raw)["candidates"]]
    assert all(isinstance(s, int) and s > 0 for s in sizes)
    assert len(set(sizes)) == 1  # the same tiny model each time
