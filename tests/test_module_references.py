"""Every `module.name` the package uses on one of its own modules exists (catches a function
removed in one place while another module still calls it, before any test reaches that path)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import cargohold


def _own_module_aliases(tree: ast.Module) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cargohold"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                try:
                    importlib.import_module(full)
                except ImportError:
                    continue
                aliases[alias.asname or alias.name] = full
    return aliases


def test_attributes_used_on_own_modules_exist() -> None:
    missing = []
    for path in Path(cargohold.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text())
        aliases = _own_module_aliases(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and not hasattr(importlib.import_module(aliases[node.value.id]), node.attr)
            ):
                missing.append(f"{path.name}:{node.lineno} {node.value.id}.{node.attr}")
    assert missing == []
