"""The registry's error codes and their bodies: `{"errors": [{"code", "message", "detail"}]}`.

Two tables: the OCI Distribution Specification's codes, plus the ones Quay adds; and the
answer to each kind of domain refusal (DOMAIN_ERROR_CODES). Handlers raise RegistryError with a
code (and optionally a more precise message or detail) for what they check themselves; domain
errors propagate and the app answers them from the second table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cargohold.domain import errors as domain_errors
from cargohold.domain import manifests, proxy_pull, registry_grants, uploads

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


@dataclass(frozen=True)
class Answer:
    """How the registry answers one class of domain refusal.

    The domain error's `extra` fields are the error's `detail`. `own_message` False answers
    with the code's standard message (Quay gives no more for those codes); `status` overrides
    the code's; `headers` builds response headers from the error and the request's path.
    """

    code: str
    own_message: bool = True
    status: int | None = None
    headers: Callable[[Any, str], dict[str, str]] | None = None


def _upload_position(exc: uploads.RangeMismatch, request_path: str) -> dict[str, str]:
    # Only requests to the upload's own URL append chunks, so that URL is the request's path.
    return {
        "Location": request_path,
        "Range": f"0-{max(exc.expected_start - 1, 0)}",
        "Docker-Upload-UUID": exc.upload_uuid,
    }


# Each kind of domain refusal and the registry's answer, grouped by kind. A domain class that
# needs another answer gets its own row; the most specific row in the class's MRO wins.
DOMAIN_ERROR_CODES: dict[type[domain_errors.DomainError], Answer] = {
    domain_errors.Invalid: Answer("INVALID_REQUEST"),
    manifests.ManifestBlobUnknown: Answer("MANIFEST_BLOB_UNKNOWN"),
    manifests.ManifestInvalid: Answer("MANIFEST_INVALID"),
    manifests.ManifestUnsupported: Answer("MANIFEST_INVALID", status=415),
    uploads.DigestMismatch: Answer("DIGEST_INVALID"),
    uploads.RangeMismatch: Answer("RANGE_INVALID", headers=_upload_position),
    uploads.UploadInvalid: Answer("BLOB_UPLOAD_INVALID"),
    registry_grants.NotAnImageRepository: Answer("UNSUPPORTED"),
    domain_errors.ModelError: Answer("INVALID_REQUEST"),
    domain_errors.NotFound: Answer("NAME_UNKNOWN"),
    manifests.ManifestUnknown: Answer("MANIFEST_UNKNOWN"),
    proxy_pull.UpstreamBlobUnknown: Answer("BLOB_UNKNOWN"),
    proxy_pull.UpstreamManifestUnknown: Answer("MANIFEST_UNKNOWN"),
    uploads.UploadUnknown: Answer("BLOB_UPLOAD_UNKNOWN", own_message=False),
    domain_errors.Forbidden: Answer("DENIED"),
    registry_grants.NamespaceDisabled: Answer("DENIED", status=405),
    domain_errors.Conflict: Answer("DENIED"),
    domain_errors.QuotaExceeded: Answer("DENIED"),
    domain_errors.Unavailable: Answer("UNKNOWN"),
    domain_errors.DomainError: Answer("UNKNOWN"),
}


def registry_error_for(exc: domain_errors.DomainError, request_path: str) -> RegistryError:
    """The registry error a domain refusal becomes, from the one table above."""
    for kind in type(exc).__mro__:
        answer = DOMAIN_ERROR_CODES.get(kind)  # type: ignore[arg-type]
        if answer is not None:
            return RegistryError(
                answer.code,
                exc.message if answer.own_message and exc.message else None,
                exc.extra or None,
                status=answer.status,
                headers=answer.headers(exc, request_path) if answer.headers else None,
            )
    raise AssertionError("DomainError is in every domain error's MRO")
