"""Every command's ``--json`` output matches the schema documented in docs/cli-schema.json.

The schema is data (a small subset of JSON Schema: type, properties, required,
additionalProperties, items, enum, $ref) and the validator below is the test's own, so the
documentation, not the code, decides what is right. Real output of real checkpoints, healthy
and damaged, is validated.
"""

from __future__ import annotations

import io
import json
import shutil
from typing import Any

import pytest

from safeckpt import KeepBest, SafeCheckpointManager
from safeckpt._causes import Cause
from safeckpt._cli.main import main
from testing.checkpoints import Trainee, write_checkpoints
from testing.jsonschema import SCHEMA, problems


def test_the_validator_rejects_what_breaks_the_schema() -> None:
    good = {"a": "x", "b": "y", "identical": True, "only_in_a": [], "only_in_b": [], "changed": []}
    assert problems(good, SCHEMA["commands"]["diff"]) == []
    assert problems({**good, "extra": 1}, SCHEMA["commands"]["diff"]) == [
        "$: undocumented key 'extra'"
    ]
    assert problems({**good, "identical": "yes"}, SCHEMA["commands"]["diff"]) == [
        "$.identical: 'yes' is not boolean"
    ]
    assert problems({"cause": "nonsense"}, {"$ref": "#/$defs/cause"})


def test_the_schema_lists_every_cause() -> None:
    assert SCHEMA["$defs"]["cause"]["enum"] == [c.value for c in Cause]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Any]]:
    root = tmp_path_factory.mktemp("schema")
    good = root / "good"
    good.mkdir()
    write_checkpoints(good, 3)
    bad = root / "bad"
    shutil.copytree(good, bad)
    data = next(bad.glob("ckpt-3.data-*"))
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 1
    data.write_bytes(bytes(raw))
    (bad / "ckpt-2.index").unlink()  # an incomplete checkpoint in the listing
    empty = root / "empty"
    empty.mkdir()
    best = root / "best"  # metadata files, metrics, keep_best, an orphan metadata file
    trainee = Trainee()
    manager = SafeCheckpointManager(
        trainee.checkpoint, str(best), max_to_keep=2, keep_best=KeepBest("val_loss")
    )
    for loss in (0.5, 0.1, 0.4, 0.6):
        manager.save(metrics={"val_loss": loss})
    (best / "ckpt-9.safeckpt.json").write_text("{}")
    commands = [
        ["doctor", str(good)],
        ["doctor", str(bad), "--deep"],
        ["doctor", str(empty)],
        ["doctor", str(root / "missing")],
        ["ls", str(good)],
        ["ls", str(bad)],
        ["verify", str(good)],
        ["verify", str(bad), "--deep"],
        ["verify", str(bad / "ckpt-3")],
        ["repair", str(bad), "--dry-run"],
        ["repair", str(empty), "--dry-run"],
        ["inspect", str(good / "ckpt-1")],
        ["diff", str(good / "ckpt-1"), str(bad / "ckpt-1")],
        ["ls", str(best)],
        ["inspect", str(best / "ckpt-2")],
        ["repair", str(best), "--dry-run"],
    ]
    found = []
    for args in commands:
        out = io.StringIO()
        main([*args, "--json"], stdout=out, stderr=io.StringIO())
        found.append((args[0], json.loads(out.getvalue())))
    return found


def test_every_commands_json_matches_its_documented_schema(runs: list[tuple[str, Any]]) -> None:
    assert {command for command, _ in runs} == set(SCHEMA["commands"])
    for command, output in runs:
        assert problems(output, SCHEMA["commands"][command]) == [], (command, output)
    nulls = [
        c["size_bytes"]
        for command, output in runs
        if command == "ls"
        for c in output["checkpoints"]
    ]
    assert nulls and all(isinstance(n, int) for n in nulls)  # ls measures every checkpoint


def test_the_runs_cover_metrics_best_and_metadata(runs: list[tuple[str, Any]]) -> None:
    listed = [o for c, o in runs if c == "ls" and o["best_by"]]
    assert listed, "no ls run with a keep_best rule"
    marked = [c for c in listed[0]["checkpoints"] if c["best"]]
    assert [c["metrics"] for c in marked] == [{"val_loss": 0.1}]
    assert listed[0]["orphan_metadata"] == ["ckpt-9.safeckpt.json"]
    inspected = [o for c, o in runs if c == "inspect" and o["metadata"] is not None]
    assert inspected and inspected[0]["metadata"]["metrics"] == {"val_loss": 0.1}
