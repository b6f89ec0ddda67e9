"""``keep_best`` under MultiWorkerMirroredStrategy: two real worker processes on loopback.

Only the chief writes metadata files; every worker computes the same ``best_checkpoint``
from the files the chief wrote (asked after an agreed ``restore()``, once the chief's saves
are finished)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testing.cluster import run_cluster

WORKER = Path(__file__).with_name("_multiworker_worker.py")


@pytest.mark.slow
def test_every_worker_agrees_on_the_best_checkpoint(tmp_path: Path) -> None:
    directory = tmp_path / "ckpts"
    args = ["--directory", str(directory), "--keep-best", "--steps", "6"]
    chief, other = run_cluster([args, args], "train", script=WORKER)
    # Losses by step: 0.5, 0.1, 0.4, 0.6, 0.7, 0.8 (LOSSES in _multiworker_worker.py).
    best = str(directory / "ckpt-2")
    assert chief["best"] == other["best"] == best
    assert chief["agreed"] == other["agreed"] == str(directory / "ckpt-6")
    expected = [str(directory / f"ckpt-{k}") for k in (2, 4, 5, 6)]
    assert chief["checkpoints"] == other["checkpoints"] == expected
    kept = {p.name for p in directory.iterdir() if p.name.endswith(".index")}
    assert kept == {f"ckpt-{k}.index" for k in (2, 4, 5, 6)}
    metadata = sorted(p.name for p in directory.iterdir() if p.name.endswith(".safeckpt.json"))
    assert metadata == [f"ckpt-{k}.safeckpt.json" for k in (2, 4, 5, 6)]
    written = json.loads((directory / "ckpt-2.safeckpt.json").read_text())
    assert written["writer"]["task"] == "worker:0"  # the chief wrote it
    assert written["metrics"] == {"loss": 0.1}
    assert not any(p.name.startswith("workertemp_") for p in directory.iterdir())
