"""The package's structure, checked by parsing its source (docs/architecture.md).

- The import graph of ``safeckpt/*.py`` is acyclic, counting lazy imports inside functions and
  ``TYPE_CHECKING`` imports too.
- No module imports another module's private names.
- Only the adapter ``safeckpt/_tf.py`` imports TensorFlow's private modules or touches
  TensorFlow's private attributes.
- Only ``safeckpt/_translate.py`` classifies errors by their message.
- Modules stay small enough to read in one sitting; ``__init__`` holds no logic.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import safeckpt

#: The package as imported: the checkout in `make test`, site-packages in `make dist`.
PACKAGE = Path(safeckpt.__file__).resolve().parent
REPO = Path(__file__).resolve().parents[1]
ADAPTER = "_tf"
TRANSLATOR = "_translate"

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
}


def _modules(root: Path) -> dict[str, ast.Module]:
    modules = {p.stem: ast.parse(p.read_text(), str(p)) for p in sorted(root.glob("*.py"))}
    assert modules, f"no modules in {root}"
    return modules


def _imports(tree: ast.Module, package: str) -> set[str]:
    """Sibling modules `tree` imports anywhere (top level, functions, TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == package:
                found.update(alias.name for alias in node.names)
            elif node.module.startswith(package + "."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(package + "."):
                    found.add(alias.name.split(".")[1])
    return found


def find_cycle(root: Path, package: str) -> list[str] | None:
    """A cycle in the import graph of the modules in `root`, or None."""
    trees = _modules(root)
    graph = {name: _imports(tree, package) & set(trees) for name, tree in trees.items()}
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


def test_no_module_imports_another_modules_private_names() -> None:
    offenders = []
    for name, tree in _modules(PACKAGE).items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("safeckpt."):
                offenders += [
                    f"{name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")
                ]
    assert offenders == []


def test_only_the_adapter_touches_tensorflow_privates() -> None:
    offenders = []
    for name, tree in _modules(PACKAGE).items():
        if name == ADAPTER:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                offenders += [
                    f"{name}:{node.lineno} imports {m}"
                    for m in modules
                    if m.startswith(("tensorflow.", "keras."))
                    or (m == "keras" and name != "keras")  # the public safeckpt.keras
                ]
            if isinstance(node, ast.Attribute) and node.attr in TF_PRIVATE_ATTRIBUTES:
                offenders.append(f"{name}:{node.lineno} .{node.attr}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"getattr", "setattr", "hasattr"}
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in TF_PRIVATE_ATTRIBUTES
            ):
                offenders.append(f"{name}:{node.lineno} {node.func.id}(…, {node.args[1].value!r})")
    assert offenders == []


def test_the_adapter_documents_every_private_it_uses() -> None:
    source = (PACKAGE / f"{ADAPTER}.py").read_text()
    doc = ast.get_docstring(ast.parse(source)) or ""
    used = {
        node.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr in TF_PRIVATE_ATTRIBUTES
    }
    used |= {a for a in TF_PRIVATE_ATTRIBUTES if f'"{a}"' in source}
    assert used, "the adapter uses no private: then the list above is stale"
    assert sorted(a for a in used if f"``{a}" not in doc) == []


def test_errors_are_classified_by_message_only_in_the_translation_table() -> None:
    offenders = []
    for name, tree in _modules(PACKAGE).items():
        if name == TRANSLATOR:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            for op, right in zip(node.ops, node.comparators, strict=True):
                if (
                    isinstance(op, (ast.In, ast.NotIn))
                    and isinstance(right, ast.Call)
                    and isinstance(right.func, ast.Name)
                    and right.func.id == "str"
                ):
                    offenders.append(f"{name}:{node.lineno}")
    assert offenders == []


def test_modules_are_small_and_init_has_no_logic() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    assert {n: s for n, s in sizes.items() if s > 450} == {}  # until the layout by concern
    init = ast.parse((PACKAGE / "__init__.py").read_text())
    kinds = {type(node).__name__ for node in init.body}
    assert kinds <= {"Expr", "ImportFrom", "Assign"}
    assigned = [t.id for node in init.body if isinstance(node, ast.Assign) for t in node.targets]
    assert set(assigned) <= {"__all__", "__version__"}


def test_public_names_show_the_package_and_the_version_is_single_sourced() -> None:
    from importlib.metadata import version

    import safeckpt

    names = [n for n in safeckpt.__all__ if not n.startswith("__")]
    assert {n: getattr(safeckpt, n).__module__ for n in names} == dict.fromkeys(names, "safeckpt")
    assert names == sorted(names, key=str)
    assert version("safeckpt") == safeckpt.__version__
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and safeckpt.__version__ not in pyproject
