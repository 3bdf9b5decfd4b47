"""cargohold.front: /v2 requests reach the registry past the API stack, still with their
request id, metrics and trusted-proxy address, and keep the connection after a late error."""

from __future__ import annotations

import asyncio
import ipaddress
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from cargohold import request_log
from cargohold.forwarded import TrustedProxies
from cargohold.front import Front
from cargohold.metrics import REQUESTS


def _scope(path: str, client: str = "127.0.0.1", headers: list | None = None) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "headers": headers or [],
        "client": (client, 1234),
        "scheme": "http",
    }


def _run(front: Front, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    # On a thread of its own: a browser test earlier in the session may leave an event loop
    # running on this one.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, front(scope, receive, send)).result()
    return sent


def _front(registry: Any, api: Any = None, trusted: str = "10.0.0.0/8") -> Front:
    async def unused(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the API stack saw a /v2 request")

    return Front(api or unused, registry, TrustedProxies([ipaddress.ip_network(trusted)]))


async def _answer(send: Any, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def test_registry_requests_get_an_id_a_count_and_the_proxied_client() -> None:
    seen: dict[str, Any] = {}

    async def registry(scope: Any, receive: Any, send: Any) -> None:
        seen["client"] = scope["client"][0]
        seen["request_id"] = request_log.current()
        await _answer(send, 202)

    counted = REQUESTS.labels("GET", "/v2/{name}/tags/list", "202")
    before = counted._value.get()
    headers = [(b"x-forwarded-for", b"203.0.113.9"), (b"x-request-id", b"lb-1")]
    sent = _run(_front(registry), _scope("/v2/ns/app/tags/list", "10.1.2.3", headers))

    assert seen == {"client": "203.0.113.9", "request_id": "lb-1"}
    assert (b"x-request-id", b"lb-1") in sent[0]["headers"]
    assert counted._value.get() == before + 1
    assert request_log.current() is None


def test_an_untrusted_peer_keeps_its_address() -> None:
    seen: dict[str, Any] = {}

    async def registry(scope: Any, receive: Any, send: Any) -> None:
        seen["client"] = scope["client"][0]
        await _answer(send)

    _run(_front(registry), _scope("/v2/", "192.0.2.7", [(b"x-forwarded-for", b"203.0.113.9")]))
    assert seen["client"] == "192.0.2.7"


def test_an_error_after_the_answer_keeps_the_connection() -> None:
    async def registry(scope: Any, receive: Any, send: Any) -> None:
        await _answer(send)
        raise RuntimeError("late")

    sent = _run(_front(registry), _scope("/v2/"))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]


def test_an_error_before_any_answer_reaches_the_server() -> None:
    async def registry(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("early")

    with pytest.raises(RuntimeError, match="early"):
        _run(_front(registry), _scope("/v2/"))


def test_other_paths_go_to_the_api_stack() -> None:
    paths: list[str] = []

    async def registry(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the registry saw an API request")

    async def api(scope: Any, receive: Any, send: Any) -> None:
        paths.append(scope["path"])
        await _answer(send)

    front = _front(registry, api)
    for path in ("/api/v1/discovery", "/v2x", "/"):
        _run(front, _scope(path))
    assert paths == ["/api/v1/discovery", "/v2x", "/"]
