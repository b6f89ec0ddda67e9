"""One way to turn safeckpt's frozen dataclasses into JSON-ready dicts and back.

Every result type (`CheckpointInfo`, `Diagnosis`, `RestoreReport`, `RepairPlan`) uses
`to_jsonable` and `from_jsonable`, so a field added to a dataclass is serialized without
anyone remembering to. Fields with ``metadata={"serialize": False}`` are left out (a live
TensorFlow status object, say). Enums become their values, tuples lists, nested dataclasses
dicts; `from_jsonable` reverses this from the dataclass's type annotations. `dumps` writes
strict JSON text. `parse` is `from_jsonable` for data another process sent (the messages
workers exchange, `safeckpt._multiworker.messages`): it checks every field's presence and
type and raises `MalformedError` naming the first that is wrong.
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


class MalformedError(ValueError):
    """Data `parse` cannot rebuild a dataclass from; the message names where and why."""


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _checked(tp: Any, value: Any, where: str) -> Any:
    """`value` (JSON data) as the annotated type `tp`, or `MalformedError` naming `where`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        problems = []
        for option in (a for a in options if a is not type(None)):
            try:
                return _checked(option, value, where)
            except MalformedError as exc:
                problems.append(str(exc))
        raise MalformedError(" or ".join(problems) or f"{where}: unexpected {value!r}")
    if origin is tuple:
        if not isinstance(value, list):
            raise MalformedError(f"{where}: expected a list, got {_type_name(value)}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        if len(args) != len(value):
            raise MalformedError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(
            _checked(a, item, f"{where}[{i}]")
            for i, (a, item) in enumerate(zip(args, value, strict=True))
        )
    if tp is Any:
        return value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except (ValueError, TypeError):
            raise MalformedError(f"{where}: {value!r} is not a {tp.__name__}") from None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return parse(tp, value, where)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool):
        raise MalformedError(f"{where}: expected int, got bool")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise MalformedError(f"{where}: expected {tp.__name__}, got {_type_name(value)}")
    return value


def parse(cls: type[T], data: Any, where: str = "") -> T:
    """Rebuild the dataclass `cls` from `data`, checking that it is what `to_jsonable` writes.

    For data from another process (a message from another worker): `data` must be a dict
    with every serialized field of `cls` that has no default, no other key, and each value
    of its field's annotated type (nested dataclasses, enums and tuples included).

    Args:
        cls: The dataclass to build.
        data: JSON data (``json.loads`` output).
        where: Where `data` sits in a larger document, for the error message.

    Raises:
        MalformedError: `data` is not such a dict; the message names the first bad field.
    """
    prefix = f"{where}." if where else ""
    if not isinstance(data, dict):
        raise MalformedError(f"{where or cls.__name__}: expected an object, got {_type_name(data)}")
    module = sys.modules[defined_in(cls)]
    hints = typing.get_type_hints(cls, globalns=vars(module))
    fields = [f for f in dataclasses.fields(cls) if _serialized(f)]  # type: ignore[arg-type]
    unknown = sorted(set(data) - {f.name for f in fields}, key=str)
    if unknown:
        raise MalformedError(f"{where or cls.__name__}: unexpected field {unknown[0]!r}")
    kwargs = {}
    for f in fields:
        if f.name in data:
            kwargs[f.name] = _checked(hints[f.name], data[f.name], prefix + f.name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise MalformedError(f"{prefix}{f.name}: missing")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # the dataclass's own checks
        raise MalformedError(f"{where or cls.__name__}: {exc}") from None
