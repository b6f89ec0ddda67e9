"""One way to turn safeckpt's frozen dataclasses into JSON-ready dicts and back.

Every result type (`CheckpointInfo`, `Diagnosis`, `RestoreReport`, `RepairPlan`) uses
`to_jsonable` and `from_jsonable`, so a field added to a dataclass is serialized without
anyone remembering to. Fields with ``metadata={"serialize": False}`` are left out (a live
TensorFlow status object, say). Enums become their values, tuples lists, nested dataclasses
dicts; `from_jsonable` reverses this from the dataclass's type annotations. `dumps` writes
strict JSON text.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import sys
import types
import typing
from typing import Any, TypeVar

from safeckpt._public import defined_in

T = TypeVar("T")


def _serialized(field: dataclasses.Field[Any]) -> bool:
    return bool(field.metadata.get("serialize", True))


def _value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(value)
    if isinstance(value, (tuple, list)):
        return [_value(item) for item in value]
    return value


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def dumps(data: Any, *, indent: int | None = 2) -> str:
    """Strict JSON text of `data`.

    A number that is not finite (``1e999`` read from a state file) is written as ``null``,
    never as ``Infinity`` or ``NaN``, which JSON does not have.
    """
    return json.dumps(_finite(data), indent=indent, allow_nan=False)


def to_jsonable(obj: Any) -> dict[str, Any]:
    """The dataclass `obj` as a dict of JSON types, field by field, in declaration order."""
    return {f.name: _value(getattr(obj, f.name)) for f in dataclasses.fields(obj) if _serialized(f)}


def _build(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return _build(options[0], value)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], item) for item in value)
        return tuple(_build(a, item) for a, item in zip(args, value, strict=True))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_jsonable(tp, value)
    if tp is float and isinstance(value, int):
        return float(value)
    return value


def from_jsonable(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild the dataclass `cls` from `to_jsonable` output; missing keys take defaults."""
    module = sys.modules[defined_in(cls)]
    hints = typing.get_type_hints(cls, globalns=vars(module))
    kwargs = {
        f.name: _build(hints[f.name], data[f.name])
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if _serialized(f) and f.name in data
    }
    return cls(**kwargs)
