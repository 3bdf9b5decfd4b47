"""The outermost ASGI app: client address from trusted proxies for every request, then /v2
straight to the registry, everything else to the FastAPI stack.

Registry requests are most of a registry's traffic and need nothing of the API's middleware
(session cookies, API request policy and body limit, error pages): they get, with a single
wrapper of `send`, what they do need: a request id, metrics, and a connection that survives
an error raised after the response was sent.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cargohold import request_log
from cargohold.forwarded import TrustedProxies
from cargohold.metrics import Observation


def is_registry_path(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


class Front:
    def __init__(self, api: ASGIApp, registry: ASGIApp, proxies: TrustedProxies) -> None:
        self.api = api
        self.registry = registry
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.proxies.apply(scope)
            if is_registry_path(scope["path"]):
                await self._registry(scope, receive, send)
                return
        elif scope["type"] == "websocket":
            self.proxies.apply(scope)
        await self.api(scope, receive, send)

    async def _registry(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id, token = request_log.begin(scope)
        observation = Observation(scope)
        answered = False

        async def observed_send(message: Message) -> None:
            nonlocal answered
            observation.saw(message)
            if message["type"] == "http.response.start":
                message = request_log.with_id(message, request_id)
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered = True

        try:
            await self.registry(scope, observation.receive(receive), observed_send)
        except Exception:
            # The registry answers its own errors; one raised after the answer was sent
            # would make the server drop the connection and fail the client's next request.
            if not answered:
                raise
        finally:
            observation.finish()
            request_log.end(token)
