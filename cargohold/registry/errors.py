"""The registry's error codes and their bodies: `{"errors": [{"code", "message", "detail"}]}`.

One table: the OCI Distribution Specification's codes, plus the ones Quay adds. Handlers
raise RegistryError with a code (and optionally a more precise message or detail); the app
renders it.
"""

from __future__ import annotations

import json
from typing import Any

from cargohold.domain import errors as domain_errors

# code -> (HTTP status, default message)
ERROR_CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "TAG_INVALID": (400, "manifest tag did not match URI"),
    "UNAUTHORIZED": (401, "access to the requested resource is not authorized"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "The operation is unsupported."),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "INVALID_REQUEST": (400, "invalid request"),
    "TAG_EXPIRED": (404, "tag was deleted or has expired"),
    "TAG_IMMUTABLE": (409, "tag is immutable and cannot be overwritten"),
    "RANGE_INVALID": (416, "requested range not satisfiable"),
    "UNKNOWN": (500, "unknown error"),
}


class RegistryError(Exception):
    def __init__(
        self,
        code: str,
        message: str | None = None,
        detail: Any = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        default_status, default_message = ERROR_CODES[code]
        super().__init__(message or default_message)
        self.code = code
        self.status = status or default_status
        self.message = message or default_message
        self.detail = {} if detail is None else detail
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> bytes:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "detail": self.detail}
        error.update(self.extra)
        return json.dumps({"errors": [error]}).encode()


class PlainError(Exception):
    """A response whose body is not the errors list (Quay's `{"error": ...}` bodies)."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = json.dumps(body).encode()
        self.headers = headers or {}


# Each kind of domain refusal and the registry code it answers with. A domain class that needs
# another code gets its own row; the most specific row in the class's MRO wins.
DOMAIN_ERROR_CODES: dict[type[domain_errors.DomainError], str] = {
    domain_errors.Invalid: "INVALID_REQUEST",
    domain_errors.ModelError: "INVALID_REQUEST",
    domain_errors.NotFound: "NAME_UNKNOWN",
    domain_errors.Forbidden: "DENIED",
    domain_errors.Conflict: "DENIED",
    domain_errors.QuotaExceeded: "DENIED",
    domain_errors.Unavailable: "UNKNOWN",
    domain_errors.DomainError: "UNKNOWN",
}


def registry_error_for(exc: domain_errors.DomainError) -> RegistryError:
    """The registry error a domain refusal becomes, from the one table above."""
    for kind in type(exc).__mro__:
        code = DOMAIN_ERROR_CODES.get(kind)  # type: ignore[arg-type]
        if code is not None:
            return RegistryError(code, exc.message or None, exc.extra or None)
    raise AssertionError("DomainError is in every domain error's MRO")
