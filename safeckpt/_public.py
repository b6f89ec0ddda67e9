"""`public`: show safeckpt's public names as ``safeckpt.X``, not ``safeckpt._module.X``.

Tracebacks, reprs, ``help()`` and pickles then name what users import (httpx does the same).
`lazy_exports` makes those names importable from ``safeckpt`` on first use.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any, TypeVar

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


def lazy_exports(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` (PEP 562) for `exports`: name -> module.

    A name is imported from its module on first access and then kept as a plain attribute
    of the package, so only what a program uses is imported (the command line never imports
    TensorFlow on a local directory; `SafeCheckpointManager` does, as it always did).
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
