"""Everything the package imports at run time is installed by `pip install .`, not only by the
test extras (a missing runtime dependency only shows on a machine without them)."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import cargohold

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_closure(distribution: str) -> set[str]:
    """The distribution and everything it requires without extras, transitively."""
    seen: set[str] = set()
    pending = [distribution]
    while pending:
        name = _canonical(pending.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requirements = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for requirement in requirements:
            if "extra ==" in requirement:
                continue
            pending.append(_NAME.match(requirement).group(0).split("[")[0])
    return seen


def _imported_top_level_modules() -> set[str]:
    modules: set[str] = set()
    for path in Path(cargohold.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"cargohold", "__future__"}


def test_every_imported_package_is_a_runtime_dependency() -> None:
    installed = _runtime_closure("cargohold")
    providers = metadata.packages_distributions()
    missing = {
        module: providers.get(module, [])
        for module in _imported_top_level_modules()
        if not any(_canonical(dist) in installed for dist in providers.get(module, []))
    }
    assert missing == {}
