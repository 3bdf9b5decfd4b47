"""Webhook body templates: a JSON document whose strings may hold `${jsonpath}` placeholders.

A string that is exactly one placeholder becomes the value found (any JSON type); other
placeholders are replaced by the value's text, `(none)` when nothing is found, and lists
joined with commas, as Quay does.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jsonpath_ng import parse as parse_json_path

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_WHOLE = re.compile(r"^\$\{([^}]*)\}$")
MISSING = "(none)"


class JsonTemplateError(ValueError):
    """The template is not JSON or holds an expression that cannot be parsed."""


class JsonTemplate:
    def __init__(self, text: str) -> None:
        try:
            self._document = json.loads(text)
        except ValueError as exc:
            raise JsonTemplateError(f"Could not parse template: {exc}") from exc
        # Applying to nothing parses every expression once, so errors show at creation.
        self.apply({})

    def apply(self, data: dict[str, Any]) -> Any:
        return _apply(self._document, data)


def _apply(node: Any, data: dict[str, Any]) -> Any:
    if isinstance(node, str):
        return _fill(node, data)
    if isinstance(node, dict):
        return {_text(_fill(key, data)): _apply(value, data) for key, value in node.items()}
    if isinstance(node, list):
        return [_apply(item, data) for item in node]
    return node


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _fill(text: str, data: dict[str, Any]) -> Any:
    whole = _WHOLE.match(text)
    if whole:
        return _find(whole.group(1), data)

    def replace(match: re.Match[str]) -> str:
        found = _find(match.group(1), data)
        if found is None:
            return MISSING
        if isinstance(found, list):
            return ",".join(str(item) for item in found)
        return str(found)

    return _PLACEHOLDER.sub(replace, text)


def _find(expression: str, data: dict[str, Any]) -> Any:
    if not expression.strip():
        raise JsonTemplateError("Empty expression found")
    try:
        path = parse_json_path(expression)
    except Exception as exc:  # the parser raises lexer, parser and plain errors alike
        raise JsonTemplateError(f"For expression `{expression}`: {exc}") from exc
    matches = [match.value for match in path.find(data)]
    if not matches:
        return None
    return matches[0] if len(matches) == 1 else matches
