"""An APIRouter that answers every path with and without its trailing slash, no redirect."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel


class ApiRouter(APIRouter):
    def add_api_route(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().add_api_route(path, endpoint, **kwargs)
        twin = path.rstrip("/") if path.endswith("/") else path + "/"
        if twin and twin != path:
            twin_kwargs = dict(kwargs)
            twin_kwargs["include_in_schema"] = False
            if twin_kwargs.get("operation_id"):
                twin_kwargs["operation_id"] = twin_kwargs["operation_id"] + "_slash"
            super().add_api_route(twin, endpoint, **twin_kwargs)


def json_body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` describing a JSON body that the endpoint parses itself (see deps.JsonBody).

    Bodies are validated by hand so that errors keep Quay's shapes; this keeps the schema in
    /api/v1/discovery all the same.
    """
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
