"""A small validator for the subset of JSON Schema docs/cli-schema.json uses.

`type`, `properties`, `required`, `additionalProperties`, `items`, `enum`, `$ref`: enough to
check every command's ``--json`` output against the documented schema without a dependency.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "cli-schema.json").read_text())
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


def command_problems(command: str, value: Any) -> list[str]:
    """Where `command`'s ``--json`` output `value` breaks its documented schema."""
    return problems(value, SCHEMA["commands"][command])
