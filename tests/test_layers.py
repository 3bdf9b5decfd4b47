"""The import contract: which package may import what (DESIGN.md, "Layers and where code lives").

Every module under cargohold/ is parsed, never imported, so a module that fails to import
still gets checked. Rules are written by package prefix, so a module added to a package is
covered by that package's rules the day it appears.

Layer rules count every import: at module level, inside functions and under TYPE_CHECKING,
since each one is an edge a reader has to follow. Cycles count only module-level imports
outside TYPE_CHECKING: those are the ones that run when a module is loaded, and an import
deferred into a function is the usual way to break a load-time cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cargohold

PACKAGE_ROOT = Path(cargohold.__file__).parent
HTTP_FRAMEWORKS = ("fastapi", "starlette")
HTTP_LAYERS = ("cargohold.api", "cargohold.registry", "cargohold.web")

# (importing package, packages it never imports, why)
RULES: list[tuple[str, tuple[str, ...], str]] = [
    ("cargohold.api", ("sqlalchemy",), "HTTP code reaches the database through domain"),
    ("cargohold.registry", ("sqlalchemy",), "HTTP code reaches the database through domain"),
    ("cargohold.web", ("sqlalchemy",), "HTTP code reaches the database through domain"),
    ("cargohold.api", ("cargohold.registry",), "the two HTTP layers never import each other"),
    ("cargohold.registry", ("cargohold.api",), "the two HTTP layers never import each other"),
    ("cargohold.domain", HTTP_FRAMEWORKS + HTTP_LAYERS, "domain is HTTP-free"),
    ("cargohold.auth", HTTP_FRAMEWORKS + HTTP_LAYERS, "auth is HTTP-free"),
    ("cargohold.db", ("cargohold.domain",) + HTTP_FRAMEWORKS + HTTP_LAYERS, "db holds bytes"),
    (
        "cargohold.workers",
        HTTP_FRAMEWORKS + HTTP_LAYERS,
        "workers call domain, as the HTTP layers do",
    ),
    (
        "cargohold.storage",
        ("cargohold.db", "cargohold.domain") + HTTP_FRAMEWORKS + HTTP_LAYERS,
        "storage holds bytes, not records or rules",
    ),
    (
        "cargohold.adapters",
        ("cargohold.db", "cargohold.domain") + HTTP_FRAMEWORKS + HTTP_LAYERS,
        "adapters wrap outside tools, not records or rules",
    ),
]

# Everything below app.py never reaches up to the wiring or the process model.
ENTRY_POINTS = ("cargohold.app", "cargohold.cli", "cargohold.server", "cargohold.serving")
LAYERS = (
    "cargohold.api",
    "cargohold.registry",
    "cargohold.web",
    "cargohold.workers",
    "cargohold.domain",
    "cargohold.auth",
    "cargohold.db",
    "cargohold.storage",
    "cargohold.adapters",
)
RULES += [(layer, ENTRY_POINTS, "only the entry points load the app") for layer in LAYERS]
# Top-level helpers every layer may use, so they use none of the layers.
SHARED_MODULES = (
    "cargohold.config",
    "cargohold.config_dump",
    "cargohold.forwarded",
    "cargohold.request_log",
    "cargohold.private_files",
    "cargohold.outbound",
)
RULES += [
    (shared, HTTP_LAYERS + ("cargohold.workers", "cargohold.domain"), "shared by every layer")
    for shared in SHARED_MODULES
]
# Counted by workers and the app; it reads queue depths through domain when scraped.
RULES.append(
    ("cargohold.metrics", HTTP_LAYERS + ("cargohold.workers",), "workers and the app count here")
)


@dataclass(frozen=True)
class Import:
    importer: str
    line: int
    # Everything the statement may name: `from a import b` names `a` and `a.b`.
    names: tuple[str, ...]
    at_load_time: bool


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for path in sorted(PACKAGE_ROOT.rglob("*.py"))
        if "migrations" not in path.relative_to(PACKAGE_ROOT).parts
    }


def _is_type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _walk(node: ast.AST, at_load_time: bool) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        deferred = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        child_at_load = at_load_time and not deferred and not _is_type_checking_block(child)
        yield child, at_load_time
        yield from _walk(child, child_at_load)


def imports_of(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node, at_load_time in _walk(tree, True):
        if isinstance(node, ast.Import):
            names = tuple(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, path, node)
            names = (source, *(f"{source}.{alias.name}" for alias in node.names))
        else:
            continue
        yield Import(module, node.lineno, names, at_load_time)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_violations(modules: dict[str, Path]) -> list[str]:
    found = []
    for module, path in modules.items():
        for statement in imports_of(module, path):
            for importer, forbidden, why in RULES:
                if not _within(module, importer):
                    continue
                hits = sorted({p for p in forbidden for n in statement.names if _within(n, p)})
                for hit in hits:
                    where = path.relative_to(PACKAGE_ROOT.parent)
                    found.append(f"{where}:{statement.line} imports {hit} ({why})")
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The cargohold module a dotted name loads (`from pkg import mod` names a module,
    `from mod import func` names its module)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def load_time_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for module, path in modules.items():
        for statement in imports_of(module, path):
            if not statement.at_load_time:
                continue
            for name in statement.names:
                target = _resolve(name, modules) if _within(name, "cargohold") else None
                if target is not None and target != module:
                    graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_every_package_keeps_to_its_layer() -> None:
    violations = layer_violations(all_modules())
    assert violations == [], "import contract broken:\n" + "\n".join(violations)


def test_no_import_cycles_at_load_time() -> None:
    found = cycles(load_time_graph(all_modules()))
    assert found == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_contract_sees_edges_and_cycles() -> None:
    """Guards the checks above against passing because they see nothing."""
    graph = load_time_graph(all_modules())
    assert "cargohold.api.health" in graph["cargohold.app"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
