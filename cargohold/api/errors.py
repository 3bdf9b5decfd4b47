"""Quay's error bodies for /api/v1.

Two families reach clients: the ApiError problem document (status, type, title, error_type,
detail, error_message) and `{"message": ...}` bodies. Endpoints raise one of the exceptions
below; the handlers in this module render them.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cargohold.auth.context import AuthContext
from cargohold.db.session import ValueRefused
from cargohold.domain import builds, mirror, robot_federation, tags
from cargohold.domain import errors as domain_errors
from cargohold.domain.login_backoff import THROTTLED_MESSAGE, LoginThrottled
from cargohold.domain.service_keys.admin import KeyServerError

log = logging.getLogger(__name__)

NOT_FOUND_TEXT = (
    "The requested URL was not found on the server. If you entered the URL manually please "
    "check your spelling and try again."
)
FORBIDDEN_TEXT = (
    "You don't have the permission to access the requested resource. It is either "
    "read-protected or not readable by the server."
)
BAD_REQUEST_TEXT = "The browser (or proxy) sent a request that this server could not understand."
METHOD_NOT_ALLOWED_TEXT = "The method is not allowed for the requested URL."

ERROR_DESCRIPTIONS = {
    "external_service_timeout": "An external service timed out. Retrying the request may resolve "
    "the issue.",
    "invalid_request": "The request was invalid. It may have contained invalid values or was "
    "improperly formatted.",
    "invalid_response": "The response was invalid.",
    "invalid_token": "The access token provided was invalid.",
    "expired_token": "The access token provided has expired.",
    "insufficient_scope": "The access token did not have sufficient scope to access the "
    "requested resource.",
    "fresh_login_required": "The action requires a fresh login to succeed.",
    "exceeds_license": "The action was refused because the current license does not allow it.",
    "not_found": "The resource was not found.",
    "downstream_issue": "An error occurred in a downstream service.",
    "tag_immutable": "The tag is immutable and cannot be modified or deleted.",
    "token_rotation_failed": "Token rotation failed.",
}


class ApiError(Exception):
    """The ApiError problem document."""

    def __init__(self, status: int, error_type: str, detail: str = "", **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.error_type = error_type
        self.detail = detail
        self.extra = extra


class MessageError(Exception):
    """A `{"message": ...}` body (Quay's DataModelException and abort(...) responses)."""

    def __init__(self, status: int, message: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(message))
        self.status = status
        self.message = message
        self.headers = headers


class JsonError(Exception):
    """An ad-hoc JSON body with a status, for the few endpoints whose errors have their own shape."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = headers


def invalid_request(detail: str, **extra: Any) -> ApiError:
    return ApiError(400, "invalid_request", detail, **extra)


def not_found() -> ApiError:
    return ApiError(404, "not_found", "Not Found")


def unauthorized(auth: AuthContext) -> ApiError:
    """401 for anonymous callers, 403 for logged-in callers lacking rights."""
    if auth.is_anonymous:
        return ApiError(401, "invalid_token", "Requires authentication")
    return ApiError(403, "insufficient_scope", "Unauthorized")


def fresh_login_required() -> ApiError:
    return ApiError(401, "fresh_login_required", "Requires fresh login")


def data_model_error(message: str) -> MessageError:
    """Quay's DataModelException: always 400 with a message body."""
    return MessageError(400, message)


# Each kind of domain refusal and the body Quay answers it with. A domain class that needs
# another answer gets its own row; the most specific row in the class's MRO wins. A shape
# other than "problem" or "message" names the one key of the body (`{"detail": ...}`).
DOMAIN_ERROR_ANSWERS: dict[type[domain_errors.DomainError], tuple[str, int, str]] = {
    domain_errors.Invalid: ("problem", 400, "invalid_request"),
    builds.WebhookRefused: ("error", 400, ""),
    mirror.MirrorSettingRefused: ("detail", 400, ""),
    domain_errors.ModelError: ("message", 400, ""),
    domain_errors.NotFound: ("problem", 404, "not_found"),
    domain_errors.Forbidden: ("problem", 403, "insufficient_scope"),
    robot_federation.FederationError: ("error", 401, ""),
    domain_errors.Conflict: ("message", 409, ""),
    mirror.MirrorConfigExists: ("detail", 409, ""),
    tags.TagImmutable: ("problem", 409, "tag_immutable"),
    domain_errors.QuotaExceeded: ("message", 403, ""),
    domain_errors.Unavailable: ("problem", 503, "downstream_issue"),
    domain_errors.DomainError: ("message", 400, ""),
}


def domain_error_answer(exc: domain_errors.DomainError) -> ApiError | MessageError | JsonError:
    """The HTTP error a domain refusal becomes, from the one table above."""
    for kind in type(exc).__mro__:
        answer = DOMAIN_ERROR_ANSWERS.get(kind)  # type: ignore[arg-type]
        if answer is not None:
            break
    shape, status, error_type = answer
    if shape == "problem":
        detail = exc.message or ("Not Found" if status == 404 else "")
        return ApiError(status, error_type, detail, **exc.extra)
    if shape == "message":
        return MessageError(status, exc.message)
    return JsonError(status, {shape: exc.message})


def error_type_url(request: Request, error_type: str) -> str:
    settings = request.app.state.settings
    return f"{settings.server_url}/api/v1/error/{error_type}"


def api_error_body(request: Request, exc: ApiError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": exc.status,
        "type": error_type_url(request, exc.error_type),
        "title": exc.error_type,
        "error_type": exc.error_type,
        "detail": exc.detail,
        "error_message": exc.detail,
    }
    body.update(exc.extra)
    return body


def _parameter_help(request: Request, name: str) -> str | None:
    """The description a route gives its query parameter: Quay answers a bad value with it."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    for param in getattr(dependant, "query_params", []):
        if param.name == name:
            return param.field_info.description
    return None


def _validation_message(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    query_errors = {
        str(err["loc"][-1]): _parameter_help(request, str(err["loc"][-1])) or "Invalid value"
        for err in errors
        if err.get("loc") and err["loc"][0] in ("query", "header", "path")
    }
    if query_errors:
        return JSONResponse({"message": query_errors}, status_code=400)
    return JSONResponse(
        {"message": BAD_REQUEST_TEXT},
        status_code=400,
    )


def _unstorable_value(request: Request) -> JSONResponse:
    body = api_error_body(
        request, invalid_request("The request contains a value that cannot be stored.")
    )
    return JSONResponse(body, status_code=400)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(api_error_body(request, exc), status_code=exc.status)

    @app.exception_handler(MessageError)
    async def _message_error(request: Request, exc: MessageError) -> JSONResponse:
        return JSONResponse({"message": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(domain_errors.DomainError)
    async def _domain_error(request: Request, exc: domain_errors.DomainError) -> JSONResponse:
        answer = domain_error_answer(exc)
        if isinstance(answer, ApiError):
            return JSONResponse(api_error_body(request, answer), status_code=answer.status)
        if isinstance(answer, JsonError):
            return JSONResponse(answer.body, status_code=answer.status)
        return JSONResponse({"message": answer.message}, status_code=answer.status)

    @app.exception_handler(KeyServerError)
    async def _key_server_error(request: Request, exc: KeyServerError) -> PlainTextResponse:
        # The key server (/keys) answers each refusal in plain text with its own status.
        return PlainTextResponse(exc.message, status_code=exc.status)

    @app.exception_handler(JsonError)
    async def _json_error(request: Request, exc: JsonError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(LoginThrottled)
    async def _login_throttled(request: Request, exc: LoginThrottled) -> PlainTextResponse:
        # Quay answers this one in plain text, from every login path alike.
        return PlainTextResponse(
            THROTTLED_MESSAGE, status_code=429, headers=exc.headers, media_type="text/html"
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_message(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        texts = {404: NOT_FOUND_TEXT, 405: METHOD_NOT_ALLOWED_TEXT, 400: BAD_REQUEST_TEXT}
        message = texts.get(exc.status_code, exc.detail)
        return JSONResponse({"message": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(ValueRefused)
    async def _data_error(request: Request, exc: ValueRefused) -> JSONResponse:
        # The database refused a value the validators let through (a NUL byte, an
        # out-of-range number): the request was bad, and its transaction is rolled back.
        log.warning(
            "database refused a value on %s %s: %s", request.method, request.url.path, exc.orig
        )
        return _unstorable_value(request)

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        # The same on SQLite, whose driver raises this for integers beyond 64 bits before the
        # database sees them.
        log.warning("value out of range on %s %s: %s", request.method, request.url.path, exc)
        return _unstorable_value(request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {
                "status": 500,
                "title": "internal_error",
                "error_type": "internal_error",
                "detail": "Internal server error",
                "error_message": "Internal server error",
            },
            status_code=500,
        )
