"""Quay's cross-origin rules: which CORS headers a response carries.

API resources are "anonymous" cross-origin resources: without CORS_ORIGIN any origin may read
them, without cookies. /config and /csrf_token carry CORS headers only for configured origins.
One configured origin (or a request from one of several) may send cookies and the CSRF header.
"""

from __future__ import annotations

from cargohold.config import Settings

ALLOWED_METHODS = "DELETE, GET, HEAD, OPTIONS, POST, PUT"
MAX_AGE_S = "21600"
_BASE_HEADERS = ("Authorization", "Content-Type", "X-Requested-With")
_CREDENTIAL_HEADERS = ("Cookie", "X-CSRF-Token")


def _allowed_origin(settings: Settings, request_origin: str | None) -> str:
    origins = settings.CORS_ORIGIN
    if len(origins) == 1:
        return origins[0]
    if len(origins) > 1 and request_origin in origins:
        return request_origin
    return "*"


def cors_headers(settings: Settings, request_origin: str | None, *, anonymous: bool) -> dict:
    """The Access-Control-* headers for a response, or none at all."""
    origin = _allowed_origin(settings, request_origin)
    if origin == "*" and not anonymous:
        return {}
    allowed_headers = list(_BASE_HEADERS)
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Max-Age": MAX_AGE_S,
    }
    if origin != "*":
        allowed_headers += _CREDENTIAL_HEADERS
        headers["Access-Control-Allow-Credentials"] = "true"
    if len(settings.CORS_ORIGIN) > 1:
        headers["Vary"] = "Origin"
    headers["Access-Control-Allow-Headers"] = ", ".join(h.upper() for h in allowed_headers)
    return headers
