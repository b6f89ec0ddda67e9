"""The package's structure, checked by parsing its source (docs/architecture.md).

Every import between safeckpt modules counts: top level, lazy imports inside functions and
``TYPE_CHECKING`` imports, ``from safeckpt._x import y``, ``from safeckpt import _x`` and
``import safeckpt._x.y`` alike.

- Each package imports only the packages below it (`ALLOWED`, the layers of
  docs/architecture.md); a violation names the import (file:line, both packages, the rule).
- The import graph of the modules is acyclic.
- No module imports another module's private names.
- Only the adapter ``safeckpt/_io/tf.py`` imports TensorFlow (or Keras) or touches
  TensorFlow's private attributes.
- Only ``safeckpt/_manager/`` calls the adapter's functions that change a
  `tf.train.CheckpointManager`'s state (`MANAGER_SETTERS`).
- Only ``safeckpt/_io/translate.py`` classifies errors by their message.
- ``__init__.py`` holds no logic: the packages' are a docstring only.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import safeckpt

#: The package as imported: the checkout in `make test`, site-packages in `make dist`.
PACKAGE = Path(safeckpt.__file__).resolve().parent
REPO = Path(__file__).resolve().parents[1]
ADAPTER = "_io.tf"
TRANSLATOR = "_io.translate"
#: The public value types: safeckpt's top-level private modules (`Cause`, `Diagnosis`, ...).
TYPES = "types"
#: What the package itself exposes: ``safeckpt/__init__.py``, ``keras/``, ``__main__.py``.
PUBLIC = "public"

#: The layers of docs/architecture.md, bottom to top: what each package may import (its own
#: modules always). The adapter is layer 0: below the value types, which may use it
#: (``_errors`` subclasses ``tf.errors``), and the rest of ``_io``.
_BELOW_FORMAT = frozenset({ADAPTER, TYPES, "_io"})
ALLOWED: dict[str, frozenset[str]] = {
    ADAPTER: frozenset(),
    TYPES: frozenset({ADAPTER}),
    "_io": frozenset({ADAPTER, TYPES}),
    "_format": _BELOW_FORMAT,
    "_catalog": _BELOW_FORMAT | {"_format"},
    "_diagnose": _BELOW_FORMAT | {"_format", "_catalog"},
    "_restore": _BELOW_FORMAT | {"_format", "_catalog", "_diagnose"},
    "_multiworker": _BELOW_FORMAT | {"_format", "_catalog"},
    "_manager": _BELOW_FORMAT | {"_format", "_catalog", "_diagnose", "_restore", "_multiworker"},
    "_cli": _BELOW_FORMAT | {"_format", "_catalog", "_diagnose", "_restore", "_multiworker"},
    PUBLIC: _BELOW_FORMAT
    | {"_format", "_catalog", "_diagnose", "_restore", "_multiworker", "_manager", "_cli"},
}

#: The adapter's functions that change a manager's state; only `safeckpt/_manager/` calls them.
MANAGER_SETTERS = {
    "init_manager",
    "finish_without_state",
    "set_rotation",
    "set_latest",
    "record_state",
    "relocate",
    "note_restored_step",
    "put_save_state",
    "record_and_sweep",
    "sweep",
}

#: Private attributes of TensorFlow objects that safeckpt needs (see the adapter's docstring).
TF_PRIVATE_ATTRIBUTES = {
    "_checkpoint",
    "_checkpoint_prefix",
    "_directory",
    "_maybe_delete",
    "_latest_checkpoint",
    "_last_preserved_timestamp",
    "_checkpoint_interval",
    "_step_counter",
    "_last_checkpoint_step",
    "_init_fn",
    "_record_state",
    "_sweep",
    "_prefix",
    "_max_to_keep",
    "_keep_checkpoint_every_n_hours",
    "_evaluate",
    "_self_unconditional_deferred_dependencies",
    "_in_multi_worker_mode",
    "_task_type",
    "_task_id",
    "_num_workers",
    "_id_in_cluster",
    "_collective_ops_server_def",
    "coordination_service",
    "_initial_epoch",
    "_ITERATION_VARIABLE",
    "_symbolic_build",
    "_as_serialized_graph",
    "f_locals",
}


@dataclass(frozen=True)
class Module:
    """One module of the package: its dotted name (without the package's), file and tree."""

    name: str  # "" for the package's __init__, "_format.index", "_format" for its __init__
    path: Path
    tree: ast.Module
    is_init: bool

    @property
    def shown(self) -> str:
        """The file as the error messages show it (``safeckpt/_format/index.py``)."""
        return self.path.as_posix()


def _modules(root: Path) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        is_init = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_init else parts)
        shown = Path(root.name, *path.relative_to(root).parts)
        modules[name] = Module(name, shown, ast.parse(path.read_text(), str(path)), is_init)
    assert modules, f"no modules in {root}"
    return modules


def unit(name: str, root: Path) -> str:
    """The package a module belongs to, for the rules (`ALLOWED`)."""
    first = name.split(".")[0]
    if name == ADAPTER:
        return ADAPTER
    if first in {"", "keras", "__main__"}:
        return PUBLIC
    if (root / first).is_dir():
        return first
    return TYPES


@dataclass(frozen=True)
class Import:
    """An import of one package module by another, where it is written."""

    importer: str
    target: str
    line: int


def _resolve(dotted: str, package: str, modules: dict[str, Module]) -> str | None:
    """The module `dotted` (``safeckpt._format.index``) names, without the package's name."""
    if dotted == package:
        return ""
    if not dotted.startswith(package + "."):
        return None
    name = dotted[len(package) + 1 :]
    while name and name not in modules:  # safeckpt._format.index.read_index -> its module
        name = name.rpartition(".")[0]
    return name


def imports_of(module: Module, package: str, modules: dict[str, Module]) -> list[Import]:
    """Every import of a package module in `module` (top level, lazy, TYPE_CHECKING)."""
    found: list[Import] = []
    for node in ast.walk(module.tree):
        dotted: list[str] = []
        if isinstance(node, ast.Import):
            dotted = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package
                parts = module.name.split(".") if module.name else []
                anchor = parts if module.is_init else parts[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([package, *anchor, *([base] if base else [])])
            # `from pkg._a import b`: the module pkg._a.b if there is one, else pkg._a
            dotted = [f"{base}.{alias.name}" for alias in node.names]
        for name in dotted:
            target = _resolve(name, package, modules)
            imp = Import(module.name, target or "", node.lineno)
            if target is not None and target != module.name and imp not in found:
                found.append(imp)
    return found


def rule_violations(root: Path, package: str) -> list[str]:
    """Every import between the packages of `root` that `ALLOWED` forbids, named."""
    modules = _modules(root)
    found = []
    for module in modules.values():
        importer = unit(module.name, root)
        for imp in imports_of(module, package, modules):
            imported = unit(imp.target, root)
            if imported != importer and imported not in ALLOWED[importer]:
                found.append(
                    f"{module.shown}:{imp.line} imports {package}.{imp.target}".rstrip(".")
                    + f": {importer} may not import {imported}"
                )
    return found


def find_cycle(root: Path, package: str) -> list[str] | None:
    """A cycle in the import graph of the modules in `root`, or None."""
    modules = _modules(root)
    graph = {
        name: {
            imp.target
            for imp in imports_of(module, package, modules)
            if not modules[imp.target].is_init or imp.target == ""
        }
        for name, module in modules.items()
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)) is not None:
            return cycle
    return None


def test_each_package_imports_only_the_layers_below_it() -> None:
    violations = rule_violations(PACKAGE, "safeckpt")
    assert violations == [], "\n".join(["imports against the layers:", *violations])


def test_every_package_and_top_level_module_has_a_rule() -> None:
    units = {unit(name, PACKAGE) for name in _modules(PACKAGE)}
    assert units == set(ALLOWED)


#: Ways `pkg/_format/index.py` may import the restore package's `plan` module.
FORBIDDEN_IMPORTS = [
    pytest.param("from pkg._restore import plan\n", 1, id="from-package-import-module"),
    pytest.param("from pkg._restore.plan import decide\n", 1, id="from-module-import-name"),
    pytest.param("import pkg._restore.plan\n", 1, id="import-module"),
    pytest.param("def f():\n    from pkg._restore import plan\n", 2, id="lazy"),
    pytest.param(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg._restore import plan\n",
        3,
        id="type-checking",
    ),
]


@pytest.mark.parametrize(("source", "line"), FORBIDDEN_IMPORTS)
def test_the_rule_check_names_each_forbidden_import(tmp_path: Path, source: str, line: int) -> None:
    root = tmp_path / "pkg"
    for package in ("_format", "_restore"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text('"""A package."""\n')
    (root / "__init__.py").write_text('"""The package."""\n')
    (root / "_format" / "index.py").write_text(source)
    (root / "_restore" / "plan.py").write_text("from pkg._format import index\n")  # allowed
    assert rule_violations(root, "pkg") == [
        f"pkg/_format/index.py:{line} imports pkg._restore.plan: _format may not import _restore"
    ]
    (root / "_format" / "index.py").write_text("from pkg import _restore\n")  # the package
    assert rule_violations(root, "pkg") == [
        "pkg/_format/index.py:1 imports pkg._restore: _format may not import _restore"
    ]


def test_the_import_graph_is_acyclic() -> None:
    assert find_cycle(PACKAGE, "safeckpt") is None


@pytest.mark.parametrize(
    "second",
    [
        "from pkg._a import x\n",  # top level
        "def f():\n    from pkg import _a\n",  # lazy, inside a function
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg._a\n",
    ],
)
def test_the_cycle_check_finds_cycles(tmp_path: Path, second: str) -> None:
    (tmp_path / "_a.py").write_text("from pkg._b import y\n")
    (tmp_path / "_b.py").write_text(second)
    (tmp_path / "_c.py").write_text("import os\n")
    assert find_cycle(tmp_path, "pkg") == ["_a", "_b", "_a"]


def test_the_cycle_check_follows_modules_in_packages(tmp_path: Path) -> None:
    (tmp_path / "_x").mkdir()
    (tmp_path / "_x" / "__init__.py").write_text('"""X."""\n')
    (tmp_path / "_x" / "a.py").write_text("from pkg._x.b import y\n")
    (tmp_path / "_x" / "b.py").write_text("def f():\n    from pkg._x import a\n")
    assert find_cycle(tmp_path, "pkg") == ["_x.a", "_x.b", "_x.a"]


def test_no_module_imports_another_modules_private_names() -> None:
    offenders = []
    for module in _modules(PACKAGE).values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("safeckpt."):
                offenders += [
                    f"{module.shown}:{node.lineno} {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.endswith("__")  # __version__
                ]
    assert offenders == []


def test_only_the_adapter_touches_tensorflow_privates() -> None:
    offenders = []
    for module in _modules(PACKAGE).values():
        if module.name == ADAPTER:
            continue
        for node in ast.walk(module.tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imported = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                offenders += [
                    f"{module.shown}:{node.lineno} imports {m}"
                    for m in imported
                    if m.split(".")[0] == "tensorflow"
                    or m.startswith("keras.")
                    # Keras itself is imported by the public safeckpt.keras package only
                    or (m == "keras" and module.name.split(".")[0] != "keras")
                ]
            if isinstance(node, ast.Attribute) and node.attr in TF_PRIVATE_ATTRIBUTES:
                offenders.append(f"{module.shown}:{node.lineno} .{node.attr}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"getattr", "setattr", "hasattr"}
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in TF_PRIVATE_ATTRIBUTES
            ):
                offenders.append(
                    f"{module.shown}:{node.lineno} {node.func.id}(…, {node.args[1].value!r})"
                )
    assert offenders == []


def test_the_adapter_documents_every_private_it_uses() -> None:
    source = (PACKAGE / "_io" / "tf.py").read_text()
    doc = ast.get_docstring(ast.parse(source)) or ""
    used = {
        node.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr in TF_PRIVATE_ATTRIBUTES
    }
    used |= {a for a in TF_PRIVATE_ATTRIBUTES if f'"{a}"' in source}
    assert used, "the adapter uses no private: then the list above is stale"
    assert sorted(a for a in used if f"``{a}" not in doc) == []


def _adapter_uses(module: Module) -> list[tuple[int, str]]:
    """(line, name) of each adapter function `module` imports or reads off the adapter."""
    aliases: set[str] = set()  # local names bound to the adapter module
    found: list[tuple[int, str]] = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.ImportFrom) and node.module == "safeckpt._io":
            aliases |= {a.asname or a.name for a in node.names if a.name == "tf"}
        elif isinstance(node, ast.ImportFrom) and node.module == "safeckpt._io.tf":
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            aliases |= {a.asname for a in node.names if a.name == "safeckpt._io.tf" and a.asname}
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Attribute):
            value = node.value
            if (isinstance(value, ast.Name) and value.id in aliases) or ast.unparse(
                value
            ) == "safeckpt._io.tf":
                found.append((node.lineno, node.attr))
    return found


def test_only_the_manager_package_changes_a_managers_state() -> None:
    adapter = _modules(PACKAGE)[ADAPTER].tree
    defined = {n.name for n in adapter.body if isinstance(n, ast.FunctionDef)}
    assert defined >= MANAGER_SETTERS, "a setter was renamed: update MANAGER_SETTERS"
    offenders = [
        f"{module.shown}:{line} uses the adapter's {name}"
        for module in _modules(PACKAGE).values()
        if module.name.split(".")[0] != "_manager" and module.name != ADAPTER
        for line, name in _adapter_uses(module)
        if name in MANAGER_SETTERS
    ]
    assert offenders == []
    users = {
        module.name
        for module in _modules(PACKAGE).values()
        if any(name in MANAGER_SETTERS for _, name in _adapter_uses(module))
    }
    assert users and {u.split(".")[0] for u in users} == {"_manager"}  # the check sees them


def test_errors_are_classified_by_message_only_in_the_translation_table() -> None:
    offenders = []
    for module in _modules(PACKAGE).values():
        if module.name == TRANSLATOR:
            continue
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.Compare):
                continue
            for op, right in zip(node.ops, node.comparators, strict=True):
                if (
                    isinstance(op, (ast.In, ast.NotIn))
                    and isinstance(right, ast.Call)
                    and isinstance(right.func, ast.Name)
                    and right.func.id == "str"
                ):
                    offenders.append(f"{module.shown}:{node.lineno}")
    assert offenders == []


def _lazy_table(init: ast.Module) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """The package's ``_EXPORTS`` table, its ``TYPE_CHECKING`` imports and ``__all__``."""
    table: dict[str, str] = {}
    typed: dict[str, str] = {}
    listed: list[str] = []
    for node in init.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "_EXPORTS":
            table = ast.literal_eval(node.value)
        elif isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__all__":
            listed = ast.literal_eval(node.value)
        elif isinstance(node, ast.If):
            typed |= {
                a.name: f"{i.module}"
                for i in node.body
                if isinstance(i, ast.ImportFrom)
                for a in i.names
            }
    return table, typed, listed


def test_init_files_hold_no_logic() -> None:
    modules = _modules(PACKAGE)
    init = modules[""].tree
    # The package's __init__ is a table of lazy re-exports (PEP 562): its docstring, the
    # TYPE_CHECKING imports type checkers and the docs read, the table, __all__, and the
    # __getattr__/__dir__ that `_public.lazy_exports` builds from the table. Nothing else.
    kinds = [type(node).__name__ for node in init.body]
    assert set(kinds) <= {"Expr", "ImportFrom", "Assign", "If"}
    assigned = [
        ast.unparse(t) for node in init.body if isinstance(node, ast.Assign) for t in node.targets
    ]
    assert sorted(assigned) == sorted(["_EXPORTS", "__all__", "(__getattr__, __dir__)"])
    conditional = [node for node in init.body if isinstance(node, ast.If)]
    assert [ast.unparse(node.test) for node in conditional] == ["TYPE_CHECKING"]
    assert all(isinstance(i, ast.ImportFrom) for i in conditional[0].body)
    assert not conditional[0].orelse
    eager = [ast.unparse(n) for n in init.body if isinstance(n, ast.ImportFrom)]
    assert eager == [
        "from typing import TYPE_CHECKING",
        "from safeckpt._public import lazy_exports",
        "from safeckpt._version import __version__",
    ]
    table, typed, listed = _lazy_table(init)
    assert table == typed, "the lazy table and the TYPE_CHECKING imports must agree"
    assert sorted(listed) == sorted([*table, "__version__"])
    packages = {name: m for name, m in modules.items() if m.is_init and name and name != "keras"}
    assert set(packages) == set(ALLOWED) - {ADAPTER, TYPES, PUBLIC}
    not_a_docstring = {
        module.shown: [type(node).__name__ for node in module.tree.body]
        for module in packages.values()
        if len(module.tree.body) != 1 or ast.get_docstring(module.tree) is None
    }
    assert not_a_docstring == {}


def test_the_public_keras_package_init_is_a_lazy_table_too() -> None:
    import importlib

    init = _modules(PACKAGE)["keras"].tree
    kinds = [type(node).__name__ for node in init.body]
    assert set(kinds) <= {"Expr", "ImportFrom", "Assign", "If"}
    eager = [ast.unparse(n) for n in init.body if isinstance(n, ast.ImportFrom)]
    assert eager == [
        "from typing import TYPE_CHECKING",
        "from safeckpt._public import lazy_exports",
    ]
    table, typed, listed = _lazy_table(init)
    assert table == typed and sorted(listed) == sorted(table)
    for name, module in table.items():
        assert name in vars(importlib.import_module(module)), f"{module} has no {name}"


def test_the_lazy_table_names_where_each_public_name_is_defined() -> None:
    import importlib

    table, _, _ = _lazy_table(_modules(PACKAGE)[""].tree)
    for name, module in table.items():
        assert name in vars(importlib.import_module(module)), f"{module} has no {name}"


def test_public_names_show_the_package_and_the_version_is_single_sourced() -> None:
    from importlib.metadata import version

    import safeckpt

    names = [n for n in safeckpt.__all__ if not n.startswith("__")]
    assert {n: getattr(safeckpt, n).__module__ for n in names} == dict.fromkeys(names, "safeckpt")
    assert names == sorted(names, key=str)
    assert version("safeckpt") == safeckpt.__version__
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and safeckpt.__version__ not in pyproject
