"""Request ids and log output.

Every HTTP request gets an id: the client's `X-Request-ID` when it is a sane token (so a
proxy's id follows the request through), else a fresh one. The id is echoed in the response,
attached to every log line written while the request runs, and stored in the metadata of
the audit log entries the request writes. LOG_FORMAT `json` writes one JSON object per line.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Types only: domain code records request ids without loading the HTTP stack.
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
_HEADER_BYTES = HEADER.encode()
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# Long enough for a UUID or a proxy's $request_id, short and plain enough to be safe in logs.
_ACCEPTED = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def current() -> str | None:
    return _current.get()


def with_request_id(metadata: dict[str, Any]) -> dict[str, Any]:
    """Audit metadata carrying the current request's id (unchanged outside a request)."""
    request_id = _current.get()
    if request_id is None or "request_id" in metadata:
        return metadata
    return {**metadata, "request_id": request_id}


def choose_id(offered: str | None) -> str:
    if offered is not None and _ACCEPTED.match(offered):
        return offered
    return uuid.uuid4().hex


def begin(scope: Scope) -> tuple[str, contextvars.Token[str | None]]:
    """The request's id, made current for logs and audit entries until `end`."""
    offered = None
    for name, value in scope["headers"]:
        if name == _HEADER_BYTES:
            offered = value.decode("latin-1")
            break
    request_id = choose_id(offered)
    return request_id, _current.set(request_id)


def end(token: contextvars.Token[str | None]) -> None:
    _current.reset(token)


def with_id(message: Message, request_id: str) -> Message:
    """A response start carrying the request id, in place of any the app set."""
    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER_BYTES]
    headers.append((_HEADER_BYTES, request_id.encode()))
    return {**message, "headers": headers}


class HttpMiddleware:
    """An ASGI middleware that sees HTTP requests only; lifespan and other scopes pass by."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class RequestIdMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id, token = begin(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = with_id(message, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            end(token)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _current.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Route every logger (uvicorn's included) through one root handler in the chosen format."""
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
