"""The package layout holds: imports go one way (model <- connectors/store <- workflows <- actions
<- app <- service/cli), the sandbox stands apart, and no module import cycle exists.

The imports are read from the source with `ast`, so a new import anywhere (inside a function
too) is checked; only imports under `if TYPE_CHECKING:` are left out, since they never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "crmsync"

# The small modules every layer may use: errors, file reading, logging, cron reading, the
# package's own version.
SHARED = ("crmsync", "crmsync.errors", "crmsync.files", "crmsync.logs", "crmsync.schedule")

# What each part may import besides itself (prefixes; `crmsync.store` covers its submodules).
ALLOWED: dict[str, tuple[str, ...]] = {
    "crmsync.model": (),
    "shared": ("crmsync.model", *SHARED),
    "crmsync.connectors": ("crmsync.model", *SHARED),
    "crmsync.store": ("crmsync.model", *SHARED),
    "crmsync.workflows": ("crmsync.model", "crmsync.store", *SHARED),
    "crmsync.actions": (
        "crmsync.model",
        "crmsync.store",
        "crmsync.workflows",
        "crmsync.connectors",
        *SHARED,
    ),
    "crmsync.config": ("crmsync.model", *SHARED),
    "crmsync.report": ("crmsync.model", *SHARED),
    "crmsync.app": (
        "crmsync.model",
        "crmsync.store",
        "crmsync.workflows",
        "crmsync.connectors",
        "crmsync.actions",
        "crmsync.config",
        "crmsync.report",
        *SHARED,
    ),
    "crmsync.service": (
        "crmsync.model",
        "crmsync.store",
        "crmsync.workflows",
        "crmsync.connectors",
        "crmsync.actions",
        "crmsync.config",
        "crmsync.report",
        "crmsync.app",
        *SHARED,
    ),
    "crmsync.cli": (
        "crmsync.model",
        "crmsync.store",
        "crmsync.workflows",
        "crmsync.connectors",
        "crmsync.actions",
        "crmsync.config",
        "crmsync.report",
        "crmsync.app",
        "crmsync.service",
        "crmsync.sandbox",
        *SHARED,
    ),
    "crmsync.__main__": ("crmsync.cli",),
    "crmsync.sandbox": ("crmsync.errors",),
}

# The store's write side: workflows read the store, they never write it.
STORE_WRITE_SIDE = (
    "crmsync.store.batch",
    "crmsync.store.outbox",
    "crmsync.store.rep_tasks",
    "crmsync.store.migrate",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of crmsync by dotted name (migration scripts included)."""
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: `if TYPE_CHECKING:` bodies are skipped."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The crmsync modules `name` imports: `from a.b import c` is a.b, and a.b.c when c is a
    module."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            submodules = [f"{origin}.{a.name}" for a in node.names if f"{origin}.{a.name}" in known]
            # `from crmsync.store import schema` inside crmsync.store needs only the submodule:
            # the package's __init__ is already running. Elsewhere it runs that __init__ too.
            ancestor = name.startswith(origin + ".")
            targets = submodules
            if not ancestor or len(submodules) < len(node.names):
                targets = [origin, *submodules]
        found.update(t for t in targets if t in known)
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def part_of(name: str) -> str:
    """The layer a module belongs to (the longest key of ALLOWED it falls under)."""
    if name in SHARED or any(name.startswith(s + ".") for s in SHARED[1:]):
        return "shared"
    best = ""
    for part in ALLOWED:
        if part == "shared":
            continue
        if (name == part or name.startswith(part + ".")) and len(part) > len(best):
            best = part
    assert best, f"{name} belongs to no layer: add it to ALLOWED in tests/test_layout.py"
    return best


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or (p != "crmsync" and name.startswith(p + ".")) for p in prefixes)


def violations(edges: dict[str, set[str]]) -> list[str]:
    """Each import that goes against the layering, as `importer -> imported (why)`."""
    out: list[str] = []
    for importer, targets in sorted(edges.items()):
        part = part_of(importer)
        own = part if part != "shared" else None
        for target in sorted(targets):
            if own is not None and _within(target, (own,)):
                continue
            if part == "shared" and part_of(target) == "shared":
                continue
            if part == "crmsync.workflows" and _within(target, STORE_WRITE_SIDE):
                out.append(f"{importer} -> {target} (workflows only read the store)")
            elif not _within(target, ALLOWED[part]):
                out.append(f"{importer} -> {target} ({part_of(target)} is not below {part})")
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles: strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_every_import_goes_down_the_layers() -> None:
    """No module imports a layer above its own (or workflows the store's write side)."""
    assert violations(graph()) == []


def test_no_import_cycles() -> None:
    """No two modules of crmsync import each other, directly or through others."""
    assert cycles(graph()) == []


def test_the_sandbox_is_used_only_by_the_cli() -> None:
    """Only the cli (and its demo) import the sandbox; tests may, production layers may not."""
    users = {
        importer
        for importer, targets in graph().items()
        if not importer.startswith("crmsync.sandbox")
        and any(_within(t, ("crmsync.sandbox",)) for t in targets)
    }
    assert {u for u in users if not _within(u, ("crmsync.cli",))} == set()


def test_modules_stay_small() -> None:
    """Each module does one job in about 400 lines at most (the SOQL grammar excepted)."""
    exempt = {"crmsync.sandbox.salesforce.soql"}
    big = {
        name: n
        for name, path in modules().items()
        if name not in exempt and (n := len(path.read_text(encoding="utf-8").splitlines())) > 420
    }
    assert big == {}


# The store's public face: the Store, its errors, history summaries, and the outbox's statements
# (rep_tasks: what reps did to crmsync's tasks, read back by the write-back; owners: each
# connection's owner directory, for task routing; golive: when each workflow went live).
STORE_PUBLIC = (
    "crmsync.store",
    "crmsync.store.errors",
    "crmsync.store.history",
    "crmsync.store.outbox",
    "crmsync.store.rep_tasks",
    "crmsync.store.owners",
    "crmsync.store.golive",
    "crmsync.store.audit_log",
    "crmsync.store.columnar",
    "crmsync.store.deal_records",
    "crmsync.store.stay_counts",
    "crmsync.store.overview",
    "crmsync.store.snapshots",
    "crmsync.store.report_reads",
    "crmsync.store.fences",
    "crmsync.store.marks",
    "crmsync.store.quota",
    "crmsync.store.outbox_counts",
)


def test_only_the_store_touches_its_tables() -> None:
    """Outside `store/`, code uses the Store's public face, never its tables or engine."""
    wrong = sorted(
        f"{importer} -> {target}"
        for importer, targets in graph().items()
        if not _within(importer, ("crmsync.store",))
        for target in targets
        if _within(target, ("crmsync.store",)) and target not in STORE_PUBLIC
    )
    assert wrong == []


def test_no_private_name_crosses_a_module() -> None:
    """An underscore name is private to its module: none is imported from another module."""
    wrong: list[str] = []
    for name, path in modules().items():
        for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("crmsync"):
                wrong += [
                    f"{name}: {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
    assert wrong == []


# Underscore attributes that libraries make public (namedtuple, SQLAlchemy's Row).
LIBRARY_UNDERSCORES = frozenset({"_asdict", "_make", "_replace", "_fields", "_mapping"})


def private_reaches(path: Path, label: str | None = None) -> list[str]:
    """`obj._name` uses where `_name` is not this module's own (set or defined in it) and obj
    is not self or cls: another module's private name reached through an object."""
    label = label or str(path.relative_to(SRC))
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            own.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            own.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            own.add(node.target.id)
    return [
        f"{label}:{node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and node.attr not in LIBRARY_UNDERSCORES
        and node.attr not in own
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    ]


def test_no_private_attribute_is_reached_from_another_module() -> None:
    """No module uses another module's `_name` through an object (`store._reading`)."""
    assert [hit for path in modules().values() for hit in private_reaches(path)] == []


def test_every_module_says_why_it_exists() -> None:
    """Each non-empty module opens with a docstring."""
    missing = [
        name
        for name, path in modules().items()
        if (text := path.read_text(encoding="utf-8")).strip()
        and not ast.get_docstring(ast.parse(text))
    ]
    assert missing == []


# --- the checker itself -------------------------------------------------------------------------


def test_a_wrong_way_import_is_reported() -> None:
    """An import from a lower layer into a higher one is named with both ends."""
    edges = {
        "crmsync.model.opportunity": {"crmsync.store.store"},
        "crmsync.store.store": {"crmsync.model.opportunity"},
        "crmsync.connectors.base": {"crmsync.config.schema"},
        "crmsync.workflows.plan": {"crmsync.store.outbox", "crmsync.store.store"},
        "crmsync.service.jobs": {"crmsync.cli.main"},
        "crmsync.app.sync": {"crmsync.store.store", "crmsync.connectors.base"},
    }
    assert violations(edges) == [
        "crmsync.connectors.base -> crmsync.config.schema (crmsync.config is not below "
        "crmsync.connectors)",
        "crmsync.model.opportunity -> crmsync.store.store (crmsync.store is not below "
        "crmsync.model)",
        "crmsync.service.jobs -> crmsync.cli.main (crmsync.cli is not below crmsync.service)",
        "crmsync.workflows.plan -> crmsync.store.outbox (workflows only read the store)",
    ]


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ],
)
def test_a_cycle_is_found(edges: dict[str, set[str]], expected: list[list[str]]) -> None:
    """Cycles of two and three modules are found; a chain is not a cycle."""
    assert cycles(edges) == expected


def test_imports_are_read_from_source(tmp_path: Path) -> None:
    """Relative, absolute and in-function imports count, a package's __init__ counts unless it
    is the importer's own; TYPE_CHECKING imports do not."""
    path = tmp_path / "mod.py"
    path.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import b\n"
        "from crmsync.x import c\n"
        "if TYPE_CHECKING:\n"
        "    import crmsync.y\n"
        "def f():\n"
        "    import crmsync.z\n",
        encoding="utf-8",
    )
    names = ("crmsync.w", "crmsync.w.b", "crmsync.x", "crmsync.x.c", "crmsync.y", "crmsync.z")
    known = dict.fromkeys(names, path)
    assert imports_of("crmsync.w.a", path, known) == {
        "crmsync.w.b",
        "crmsync.x",
        "crmsync.x.c",
        "crmsync.z",
    }


def test_a_reach_into_another_modules_private_is_found(tmp_path: Path) -> None:
    """`store._reading` from outside is reported; self._x, own names and _asdict are not."""
    path = tmp_path / "probe.py"
    text = (
        "class A:\n"
        "    def f(self, store, row):\n"
        "        self._x = 1\n"
        "        row._asdict()\n"
        "        other = A()\n"
        "        other._x\n"
        "        return store._reading('x')\n"
    )
    path.write_text(text, encoding="utf-8")
    assert private_reaches(path, "probe.py") == ["probe.py:7: store._reading"]
