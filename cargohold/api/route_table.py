"""The application's HTTP operations (method + path template), for coverage counts and tests."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI

_PARAMETER = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


def _routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every endpoint route, looking inside included routers."""
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from _routes(nested.routes)
        else:
            yield route


def operations(app: FastAPI, prefix: str = "/api/v1") -> list[tuple[str, str]]:
    """Sorted (method, path) pairs under `prefix`; trailing-slash twins count once, in the form
    declared first, and HEAD (answered for every GET) is left out."""
    seen: dict[tuple[str, str], str] = {}
    for route in _routes(app.router.routes):
        path = getattr(route, "path", "")
        if not path.startswith(prefix):
            continue
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                seen.setdefault((method, path.rstrip("/") or "/"), path)
    return sorted((method, path) for (method, _), path in seen.items())


def shape(path: str) -> str:
    """The path with every parameter written `{}`, for comparing templates across servers."""
    return _PARAMETER.sub("{}", path).rstrip("/")


def repository_subresource_words(app: FastAPI) -> set[str]:
    """Fixed path segments that follow a repository path in some /api/v1 route."""
    words: set[str] = set()
    for _, path in operations(app):
        _, found, rest = path.partition("{repository:repopath}/")
        if found:
            words.update(part for part in rest.split("/") if part and not part.startswith("{"))
    return words
