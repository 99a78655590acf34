"""The connectors package keeps its layout rules: it imports only the model and a few shared
modules, its modules import one another one way, none reaches into another's private names,
and each stays small, with a docstring saying why it exists.

Imports inside functions and under TYPE_CHECKING count like any other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "crmsync" / "connectors"
ALLOWED = ("crmsync.model", "crmsync.errors", "crmsync.files", "crmsync.logs", "crmsync.schedule")
MAX_LINES = 400
MODULES = sorted(PACKAGE.glob("*.py"))


def _name(path: Path) -> str:
    return f"crmsync.connectors.{path.stem}"


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """Every (module, names) this file imports, wherever the import statement stands."""
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [a.name for a in node.names]
            if node.module == "crmsync.connectors":  # `from crmsync.connectors import x`
                out.extend((f"crmsync.connectors.{n}", []) for n in names)
            else:
                out.append((node.module, names))
    return out


def _graph() -> dict[str, set[str]]:
    """Which connector modules each connector module imports."""
    own = {_name(p) for p in MODULES}
    return {_name(p): {m for m, _ in _imports(p) if m in own and m != _name(p)} for p in MODULES}


def test_the_package_has_modules_to_check() -> None:
    """The checks below look at the real package (a wrong path would pass them vacuously)."""
    names = {p.stem for p in MODULES}
    assert {"base", "salesforce", "hubspot", "salesforce_writes", "hubspot_writes"} <= names


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_imports_only_the_model_and_shared_modules(path: Path) -> None:
    """A connector module imports from crmsync only connectors, the model and shared modules."""
    for module, _ in _imports(path):
        if module.startswith("crmsync.") and not module.startswith("crmsync.connectors"):
            assert module.startswith(ALLOWED), f"{path.name} imports {module}"


def test_connector_modules_import_one_another_one_way() -> None:
    """The import graph inside the package has no cycle, however long."""
    graph = _graph()
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycle = " -> ".join([*path[path.index(node) :], node])
            pytest.fail(f"import cycle: {cycle}")
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, [*path, node])
        done.add(node)

    for start in sorted(graph):
        visit(start, [])


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_no_module_uses_another_modules_private_names(path: Path) -> None:
    """No `from x import _name`, and `._name` only on `self`: never on another module or on an
    object another module made (as `conn._call` was)."""
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("crmsync"):
            for a in node.names:
                assert not a.name.startswith("_"), f"{path.name} imports {node.module}.{a.name}"
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            pytest.fail(f"{path.name}:{node.lineno} uses {ast.unparse(node)}")


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_modules_are_small_and_say_why_they_exist(path: Path) -> None:
    """Each module is at most ~400 lines and opens with a docstring."""
    assert len(path.read_text().splitlines()) <= MAX_LINES
    assert ast.get_docstring(_tree(path)), f"{path.name} has no module docstring"
