"""The harnesses' metadata oracles catch what they are meant to (plain TF's rotation leaves
metadata files behind; a stale or orphan file is flagged), and pass on safeckpt."""

from __future__ import annotations

import json
import os
from pathlib import Path

import tensorflow as tf

import safeckpt
from stress import ranking
from stress.crash._oracle import Facts, metadata_findings
from stress.ranking._oracle import metadata_violations

SCENARIO = {
    "family": "step_patterns",
    "ops": [
        {"op": "save", "how": "manager", "step": 1},
        {"op": "save", "how": "manager", "step": 2},
        {"op": "save", "how": "manager", "step": 3},
        {  # with timestamps, the next manager's rotation deletes ckpt-1 and ckpt-2
            "op": "state",
            "lines": [
                'model_checkpoint_path: "ckpt-3"',
                *(f'all_model_checkpoint_paths: "ckpt-{s}"' for s in (1, 2, 3)),
                *(f"all_model_checkpoint_timestamps: 170000000{s}.0" for s in (1, 2, 3)),
            ],
        },
        {"op": "metadata", "orphan": 999},
    ],
}


def test_the_ranking_oracle_flags_plain_tf_and_passes_safeckpt(tmp_path: Path) -> None:
    plain = {**SCENARIO, "config": {"subject": "tf", "max_to_keep": 2, "verify": "none"}}
    kinds = {kind for kind, _ in ranking.replay(plain, str(tmp_path))}
    assert {"metadata_outlived", "metadata_missing"} <= kinds
    safe = {**SCENARIO, "config": {"subject": "safeckpt", "max_to_keep": 2, "verify": "quick"}}
    assert ranking.replay(safe, str(tmp_path)) == []


def test_metadata_violations_by_hand() -> None:
    before = {"ckpt-1.index": "a", "ckpt-9.safeckpt.json": "x"}
    after = {
        "ckpt-2.index": "b",
        "ckpt-2.safeckpt.json": "m",
        "ckpt-1.safeckpt.json": "old",  # its checkpoint was deleted: outlived
        "ckpt-9.safeckpt.json": "x",  # an orphan that was there before: not the save's doing
    }
    assert metadata_violations(before, after, "/d/ckpt-2") == [
        ("metadata_outlived", "ckpt-1.safeckpt.json is left without ckpt-1")
    ]
    assert metadata_violations(before, after, "/d/ckpt-3")[-1][0] == "metadata_missing"


def test_the_crash_oracle_flags_orphans_and_stale_files(tmp_path: Path) -> None:
    v = tf.Variable(0.0)
    manager = safeckpt.SafeCheckpointManager(tf.train.Checkpoint(v=v), tmp_path, 3)
    for _ in range(2):
        manager.save()
    complete = {1: Facts(1, "complete"), 2: Facts(2, "complete")}
    assert metadata_findings(str(tmp_path), complete) == []
    (tmp_path / "ckpt-7.safeckpt.json").write_text(json.dumps({"checkpoint": "ckpt-7"}))
    stale = tmp_path / "ckpt-2.safeckpt.json"
    old = os.stat(tmp_path / "ckpt-2.index").st_mtime_ns - 10**9
    os.utime(stale, ns=(old, old))
    (tmp_path / "ckpt-1.safeckpt.json").write_text(json.dumps({"checkpoint": "ckpt-5"}))
    found = metadata_findings(str(tmp_path), complete)
    assert "ckpt-7.safeckpt.json outlived its checkpoint" in found
    assert "ckpt-2.safeckpt.json is older than ckpt-2.index (a stale file)" in found
    assert "ckpt-1.safeckpt.json describes 'ckpt-5'" in found
