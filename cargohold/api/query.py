"""Query-string parsing with Quay's rules (truthy booleans, integer errors as `{"message": {...}}`)."""

from __future__ import annotations

from fastapi import Request

from cargohold.api import deps
from cargohold.api.errors import MessageError


def truthy(request: Request, name: str, default: bool = False) -> bool:
    """Anything but false/False/FALSE/0/null and the empty string is true."""
    return deps.truthy(request.query_params.get(name), default)


def integer(request: Request, name: str, default: int, help_text: str) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise MessageError(400, {name: help_text}) from exc
