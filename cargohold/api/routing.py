"""An APIRouter that answers every path with and without its trailing slash, no redirect."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter


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
