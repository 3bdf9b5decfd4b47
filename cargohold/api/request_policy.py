"""Rules Quay applies to every /api/ request before its resource runs.

- CORS: every API response carries Quay's CORS headers; OPTIONS on an API route is answered
  here (200, empty, `Allow` listing the route's methods), as Flask answers it for Quay.
- BROWSER_API_CALLS_XHR_ONLY: a GET from a browser must carry `X-Requested-With:
  XMLHttpRequest`, so that a link or an <img> cannot make the browser render API output.
  "A browser" is decided as Quay decides it: the user agent's family, as ua-parser reads it,
  is on Quay's list (so HeadlessChrome, Edge and command-line clients pass).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.datastructures import Headers
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cargohold.api.cors import cors_headers
from cargohold.config import Settings

log = logging.getLogger(__name__)

XHR_REQUIRED = "API calls must be invoked with an X-Requested-With header if called from a browser"
BROWSER_FAMILIES = frozenset(
    {
        "aol", "ask", "camino", "chrome", "firefox", "galeon", "google", "kmeleon", "konqueror",
        "links", "lynx", "msie", "msn", "netscape", "opera", "safari", "seamonkey", "webkit",
        "yahoo",
    }
)  # fmt: skip


def is_browser(user_agent: str) -> bool:
    if not user_agent:
        return False
    # Imported on first use: its table of user-agent patterns is a fifth of the server's
    # import time, and registry-only traffic never needs it.
    from ua_parser import user_agent_parser

    return user_agent_parser.ParseUserAgent(user_agent)["family"].lower() in BROWSER_FAMILIES


_PROBED_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")


def _route_methods(scope: Scope) -> set[str]:
    """The methods the application serves at this path (empty when no route matches it)."""
    routes = scope["app"].router.routes
    methods = {
        method
        for method in _PROBED_METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    }
    if "GET" in methods:
        methods.add("HEAD")
    return methods


def _encode(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class ApiRequestPolicy:
    """ASGI middleware applying the rules above to /api/ paths."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cors = cors_headers(self.settings, headers.get("origin"), anonymous=True)
        if scope["method"] == "GET" and self._refused_browser_get(headers):
            log.warning("refused a browser GET without X-Requested-With on %s", scope["path"])
            await self._respond(send, 400, {"error": XHR_REQUIRED}, cors)
            return
        if scope["method"] == "OPTIONS":
            methods = _route_methods(scope)
            if methods:
                allow = ", ".join(sorted(methods | {"OPTIONS"}))
                await self._respond(send, 200, None, {**cors, "Allow": allow})
                return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + _encode(cors)
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _refused_browser_get(self, headers: Headers) -> bool:
        return (
            self.settings.BROWSER_API_CALLS_XHR_ONLY
            and headers.get("x-requested-with") != "XMLHttpRequest"
            and is_browser(headers.get("user-agent", ""))
        )

    @staticmethod
    async def _respond(send: Send, status: int, body: Any, headers: dict[str, str]) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        content_type = {"Content-Type": "application/json"} if body is not None else {}
        all_headers = {**headers, **content_type, "Content-Length": str(len(payload))}
        await send(
            {"type": "http.response.start", "status": status, "headers": _encode(all_headers)}
        )
        await send({"type": "http.response.body", "body": payload})
