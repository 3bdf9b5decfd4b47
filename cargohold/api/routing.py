"""An APIRouter that answers every path with and without its trailing slash, no redirect,
and the path convertors that give repository and digest parameters Quay's shapes."""

from __future__ import annotations

import copy
from typing import Any, get_type_hints

from fastapi import APIRouter
from fastapi.routing import APIRoute
from fastapi.utils import generate_unique_id
from pydantic import BaseModel
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import compile_path


class RepositoryPathConvertor(Convertor[str]):
    """`{repository:repopath}`: `namespace/name`, the name possibly nested (`ns/a/b`).

    Quay's `apirepopath` shape. Requiring the namespace segment means a repository named
    after a sub-resource (`ns/build`, `ns/mirror`) can never be read as `ns` plus that
    sub-resource, whatever order the routes are tried in.
    """

    regex = r"[^/]+(?:/[^/]+)+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


class DigestConvertor(Convertor[str]):
    """`{digest:digest}`: `algorithm:hex`, as Quay's manifest routes; anything else does not
    match the route."""

    regex = r"[A-Za-z0-9_+.-]+:[A-Fa-f0-9]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


# Registered at import, before any router module declares a route using them.
register_url_convertor("repopath", RepositoryPathConvertor())
register_url_convertor("digest", DigestConvertor())

# What discovery shows for a body read through deps.JsonBody when no schema is given.
ANY_JSON_OBJECT: dict[str, Any] = {"type": "object", "description": "A JSON object"}


def _reads_json_body(endpoint: Any) -> bool:
    """Whether the endpoint takes a deps.JsonBody parameter."""
    from cargohold.api.deps import json_body

    for hint in get_type_hints(endpoint, include_extras=True).values():
        for marker in getattr(hint, "__metadata__", ()):
            if getattr(marker, "dependency", None) is json_body:
                return True
    return False


class ApiRouter(APIRouter):
    def add_api_route(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        extra = kwargs.get("openapi_extra") or {}
        if "requestBody" not in extra and _reads_json_body(endpoint):
            # Every JSON body is described in discovery, as Quay describes its schemas.
            body = {"content": {"application/json": {"schema": ANY_JSON_OBJECT}}}
            kwargs["openapi_extra"] = {**extra, "requestBody": body}
        super().add_api_route(path, endpoint, **kwargs)
        twin = path.rstrip("/") if path.endswith("/") else path + "/"
        if twin and twin != path:
            self.routes.append(_twin(self.routes[-1], self.prefix + twin))


def _twin(route: APIRoute, path: str) -> APIRoute:
    """The route under its other spelling, hidden from discovery. A copy rather than a new
    route: building one (signature and model analysis) is most of the app's import time."""
    twin = copy.copy(route)
    twin.path = path
    twin.path_regex, twin.path_format, twin.param_convertors = compile_path(path)
    twin.include_in_schema = False
    if route.operation_id:
        twin.operation_id = route.operation_id + "_slash"
    twin.unique_id = twin.operation_id or generate_unique_id(twin)
    return twin


def _inline_definitions(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema with its nested models written in place: a `#/$defs/...`
    reference would point nowhere inside the discovery document."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return inline(schema)


def json_body_schema(schema: type[BaseModel] | dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` describing a JSON body that the endpoint parses itself (see deps.JsonBody).

    Bodies are validated by hand so that errors keep Quay's shapes; this keeps the schema in
    /api/v1/discovery all the same. `schema` is a request model or a JSON Schema.
    """
    described = schema if isinstance(schema, dict) else _inline_definitions(schema)
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": described}},
        }
    }
