"""A resumed `fit` is the same `fit`: callbacks' state, mid-epoch resume, unbuilt models.

Each scenario runs `_keras_resume_child.py` in a child process under op determinism: an
uninterrupted ``fit`` with `ModelCheckpoint(save_best_only=True)`, `EarlyStopping(patience=2,
restore_best_weights=True)` and `ReduceLROnPlateau`, the same ``fit`` interrupted, and its
resumption. The oracle is the uninterrupted run, recorded by the child's own callbacks and a
layer that logs the sample ids of every batch trained: never safeckpt's files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CHILD = Path(__file__).with_name("_keras_resume_child.py")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "SAFECKPT_ALLOW_EPHEMERAL": "1"}
#: Batches of the interrupted run the backup holds: every 3 of 5 per epoch, stopped at 23.
BACKED_UP = 21


SCENARIOS = ("epoch", "reversed", "unbuilt", "batch", "dataset", "pydataset", "unbuilt_batch")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every scenario, run by one child process (TensorFlow is imported once)."""
    folder = tmp_path_factory.mktemp("keras-resume")
    done = subprocess.run([sys.executable, str(CHILD), ",".join(SCENARIOS), str(folder)],
                          capture_output=True, text=True, env=ENV, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith('{"scenario"')]
    return {line["scenario"]: line for line in lines}


def scenario(name: str, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    assert name in results, f"the child did not run {name}"
    return results[name]


def max_difference(a: list[Any], b: list[Any]) -> float:
    return max(float(np.max(np.abs(np.array(x) - np.array(y)))) for x, y in zip(a, b, strict=True))


def assert_same_fit(full: dict[str, Any], first: dict[str, Any], resumed: dict[str, Any]) -> None:
    # The same ModelCheckpoint(save_best_only=True) saves, none repeated or lost ...
    assert sorted(first["files"] + resumed["files"]) == full["files"]
    # ... EarlyStopping stops at the same epoch ...
    assert resumed["epochs"][-1] == full["epochs"][-1]
    # ... ReduceLROnPlateau gives every epoch the same learning rate ...
    rates = {**first["rates"], **resumed["rates"]}
    assert rates == full["rates"]
    # ... the epochs' losses (the metrics of a mid-epoch resume included) are the same ...
    for epoch, loss in resumed["losses"].items():
        assert loss == pytest.approx(full["losses"][epoch], abs=1e-6)
    # ... and EarlyStopping(restore_best_weights=True) ends with the same weights.
    assert max_difference(full["weights"], resumed["weights"]) <= 1e-6


@pytest.mark.parametrize("name", ["epoch", "reversed", "unbuilt"])
def test_resumed_at_an_epoch_end_is_the_same_fit(
    name: str, results: dict[str, dict[str, Any]]
) -> None:
    result = scenario(name, results)
    full, first, resumed = result["full"], result["first"], result["resumed"]
    # Interrupted on a plateau: with the callbacks' state forgotten, ModelCheckpoint would
    # save again (best = inf), EarlyStopping would not stop, the rate would not drop.
    assert first["files"], "the scenario must save before the interruption"
    assert max(full["rates"].values()) > min(full["rates"].values()), "the rate must drop"
    assert resumed["epochs"][0] == 5  # interrupted at the end of epoch 4
    assert first["seen"] + resumed["seen"] == full["seen"]
    assert_same_fit(full, first, resumed)


@pytest.mark.parametrize("name", ["batch", "dataset", "pydataset", "unbuilt_batch"])
def test_resumed_in_the_middle_of_an_epoch_sees_every_batch_once(
    name: str, results: dict[str, dict[str, Any]]
) -> None:
    result = scenario(name, results)
    full, first, resumed = result["full"], result["first"], result["resumed"]
    assert len(first["seen"]) == BACKED_UP + 2  # two batches trained after the last backup
    assert resumed["epochs"][0] == 4  # 21 batches = 4 epochs of 5, and 1 of epoch 4
    assert first["seen"][:BACKED_UP] + resumed["seen"] == full["seen"]
    assert_same_fit(full, first, resumed)
