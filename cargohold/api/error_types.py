"""GET /api/v1/error/{error_type}: what each ApiError type means."""

from __future__ import annotations

from fastapi import Request

from cargohold.api.errors import ERROR_DESCRIPTIONS, error_type_url, not_found
from cargohold.api.routing import ApiRouter

router = ApiRouter(tags=["error"])


@router.get("/api/v1/error/{error_type}", operation_id="getErrorDescription")
def get_error_description(error_type: str, request: Request) -> dict[str, str]:
    """The description of one error type, as linked from every ApiError's `type`."""
    description = ERROR_DESCRIPTIONS.get(error_type)
    if description is None:
        raise not_found()
    return {
        "type": error_type_url(request, error_type),
        "title": error_type,
        "description": description,
    }
