"""Request bodies checked against a JSON Schema and refused with Quay's wording.

Bodies validated by a pydantic model get the same wording: each pydantic error is reworded
as the jsonschema error Quay would report for the same value.

Quay validates bodies with the jsonschema library and reports its "best match": the
shallowest error, and inside a failed `oneOf`/`anyOf` the deepest error of its branches. The same selection is made here (the library's own `best_match` stopped
descending where branches tie), so a client sees `'limit_bytes' is a required property`
rather than `{} is not valid under any of the given schemas`.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError
from pydantic import BaseModel

from cargohold.api.errors import invalid_request

_WEAK_KEYWORDS = frozenset({"anyOf", "oneOf"})


def _relevance(error: ValidationError) -> tuple[int, bool]:
    return -len(error.path), error.validator not in _WEAK_KEYWORDS


def _wording(error: ValidationError) -> str:
    """The message, in the phrasing of the jsonschema release Quay runs where ours differs."""
    if error.validator == "not":
        return f"{error.validator_value!r} is not allowed for {error.instance!r}"
    if error.validator == "minItems":
        return f"{error.instance!r} is too short"
    return error.message


def schema_error(schema: dict[str, Any], instance: Any) -> str | None:
    """The first line of Quay's validation error for `instance`, or None when it is valid."""
    errors = list(Draft7Validator(schema).iter_errors(instance))
    if not errors:
        return None
    best = max(errors, key=_relevance)
    while best.context:
        best = min(best.context, key=_relevance)
    return _wording(best)


def check_body(schema: dict[str, Any], body: Any) -> None:
    """Raise Quay's invalid_request ApiError when `body` does not satisfy `schema`."""
    message = schema_error(schema, body)
    if message is not None:
        raise invalid_request(message)


# --- the same wording for bodies validated by pydantic models ------------------------------

# pydantic error kinds that mean "the value has the wrong JSON type".
_TYPE_ERRORS = {
    "string_type",
    "bool_type",
    "bool_parsing",
    "int_type",
    "int_parsing",
    "int_from_float",
    "float_type",
    "float_parsing",
    "dict_type",
    "list_type",
    "model_type",
    "model_attributes_type",
    "none_required",
}
_PYDANTIC_JSON_TYPES = {
    "string": "string",
    "bool": "boolean",
    "int": "integer",
    "float": "number",
    "dict": "object",
    "list": "array",
    "model": "object",
    "none": "null",
}


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref", "")
    return defs.get(ref.rsplit("/", 1)[-1], node) if ref else node


def _branches(node: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    return [_resolve(branch, defs) for branch in node.get("anyOf", [node])]


def _field_branches(model: type[BaseModel], loc: tuple[Any, ...]) -> list[dict[str, Any]]:
    """The JSON Schema alternatives of the value at `loc` (union-member tags are skipped)."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    node = schema
    for part in loc:
        for branch in _branches(node, defs):
            if isinstance(part, int) and "items" in branch:
                node = _resolve(branch["items"], defs)
                break
            if isinstance(part, str) and part in branch.get("properties", {}):
                node = _resolve(branch["properties"][part], defs)
                break
    return _branches(node, defs)


def _declared_types(model: type[BaseModel], loc: tuple[Any, ...], kind: str) -> str:
    """Quay's `'string', 'null'`: the JSON types the field accepts, in declaration order."""
    named = [
        branch["type"]
        for branch in _field_branches(model, loc)
        if isinstance(branch.get("type"), str)
    ]
    if not named:
        named = [_PYDANTIC_JSON_TYPES.get(kind.split("_", 1)[0], "object")]
    return ", ".join(repr(name) for name in named)


def _allowed_values(model: type[BaseModel], loc: tuple[Any, ...]) -> list[Any]:
    allowed: list[Any] = []
    for branch in _field_branches(model, loc):
        allowed.extend(branch.get("enum", [branch["const"]] if "const" in branch else []))
    return allowed


def _schema_message(model: type[BaseModel], error: dict[str, Any]) -> str:
    """A pydantic error worded as Quay's jsonschema error for the same value."""
    kind = error["type"]
    loc = tuple(error.get("loc") or ())
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return f"{str(loc[-1])!r} is a required property"
    if kind == "extra_forbidden":
        return f"Additional properties are not allowed ({str(loc[-1])!r} was unexpected)"
    if kind in _TYPE_ERRORS:
        return f"{value!r} is not of type {_declared_types(model, loc, kind)}"
    if kind == "greater_than_equal":
        return f"{value!r} is less than the minimum of {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"{value!r} is greater than the maximum of {ctx.get('le')}"
    if kind in ("string_too_long", "too_long"):
        return f"{value!r} is too long"
    if kind in ("string_too_short", "too_short"):
        return f"{value!r} is too short"
    if kind == "string_pattern_mismatch":
        return f"{value!r} does not match {ctx.get('pattern')!r}"
    if kind in ("literal_error", "enum"):
        return f"{value!r} is not one of {_allowed_values(model, loc)!r}"
    if kind == "value_error":
        # A model's own rule: its message is already the text a client should see.
        return str(ctx.get("error", error["msg"]))
    return f"{value!r} is not valid under the given schema"


def _first_error(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """Quay reports the shallowest error, a missing property before a wrong value.

    pydantic places a missing property at the property; jsonschema places it on the object
    that lacks it, one level up.
    """

    def depth(error: dict[str, Any]) -> tuple[int, bool]:
        missing = error["type"] == "missing"
        return len(error.get("loc") or ()) - (1 if missing else 0), not missing

    return min(errors, key=depth)


def pydantic_error_message(model: type[BaseModel], errors: list[dict[str, Any]]) -> str:
    """The message Quay would give for the first of a model's validation errors."""
    return _schema_message(model, _first_error(errors))
