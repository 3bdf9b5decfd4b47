"""The API's request body limit: 413 before the endpoint runs, so nothing oversized is stored.

/v2 never reaches this (the registry streams blobs of any size), and neither do the build
archive uploads, which stream to storage as well.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Werkzeug's RequestEntityTooLarge, in the `{"message": ...}` shape of Quay's other aborts.
TOO_LARGE_MESSAGE = "The data value transmitted exceeds the capacity limit."
_STREAMED_UPLOADS = re.compile(r"^/userfiles/[^/]+$")


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    """The client disconnected before its body was complete: there is no one to answer."""


class ApiBodyLimit:
    """Read each API body whole, up to `limit` bytes, before handing the request on."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_streamed(scope):
            await self.app(scope, receive, send)
            return
        try:
            if _declared_length(scope) > self.limit:
                raise BodyTooLarge
            body = await self._read(receive)
        except BodyTooLarge:
            await _send_too_large(send)
            return
        except ClientGone:
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise BodyTooLarge
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)


def _is_streamed(scope: Scope) -> bool:
    path: str = scope["path"]
    if path == "/v2" or path.startswith("/v2/"):
        return True
    return scope["method"] == "PUT" and _STREAMED_UPLOADS.match(path) is not None


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands out the buffered body once, then waits on the connection."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_too_large(send: Send) -> None:
    body = json.dumps({"message": TOO_LARGE_MESSAGE}).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # The rest of the body is unread: the connection cannot carry another request.
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
