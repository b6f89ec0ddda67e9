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
from pathlib import Path
from typing import Any

import pytest

from safeckpt._causes import Cause
from safeckpt._cli.main import main
from testing.checkpoints import write_checkpoints

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "cli-schema.json").read_text())
_TYPES = {
    "string": str,
    "boolean": bool,
    "array": list,
    "object": dict,
    "null": type(None),
}


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def problems(value: Any, schema: dict[str, Any], at: str = "$") -> list[str]:
    """Where `value` breaks `schema` (empty: it matches)."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return problems(value, SCHEMA["$defs"][name], at)
    found: list[str] = []
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, k) for k in kinds):
            return [f"{at}: {value!r} is not {' or '.join(kinds)}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{at}: {value!r} not one of {schema['enum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        found += [f"{at}: missing {k!r}" for k in schema.get("required", []) if k not in value]
        if schema.get("additionalProperties") is False:
            found += [f"{at}: undocumented key {k!r}" for k in value if k not in props]
        for key, sub in props.items():
            if key in value:
                found += problems(value[key], sub, f"{at}.{key}")
    if isinstance(value, list) and "items" in schema:
        for n, item in enumerate(value):
            found += problems(item, schema["items"], f"{at}[{n}]")
    return found


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
