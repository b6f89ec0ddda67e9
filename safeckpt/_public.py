"""`public`: show safeckpt's public names as ``safeckpt.X``, not ``safeckpt._module.X``.

Tracebacks, reprs, ``help()`` and pickles then name what users import (httpx does the same).
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")

_DEFINED_IN: dict[int, str] = {}


def public(obj: T) -> T:
    """Mark a class or function as part of the ``safeckpt`` namespace."""
    _DEFINED_IN[id(obj)] = obj.__module__
    obj.__module__ = "safeckpt"
    return obj


def defined_in(obj: object) -> str:
    """The module `obj` was defined in (its annotations are resolved there)."""
    return _DEFINED_IN.get(id(obj), getattr(obj, "__module__", "builtins"))
