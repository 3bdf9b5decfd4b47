"""Minimal ASGI request/response plumbing for the registry's hot paths.

The /v2 protocol is served by a plain ASGI app rather than framework routes: repository names
contain slashes, bodies are streamed both ways, and pulls must stay cheap per request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from typing import Any, BinaryIO
from urllib.parse import parse_qs

from cargohold.zero_copy import EXTENSION as ZERO_COPY

API_VERSION_HEADER = (b"docker-distribution-api-version", b"registry/2.0")
STREAM_BUFFER = 4 * 1024 * 1024
# How much of an unread body an error answer reads first. A client still writing its body
# when the server answers and closes gets a connection reset instead of the answer (skopeo
# then reports "connection reset by peer" rather than, say, the quota refusal).
ERROR_BODY_DRAIN_LIMIT = 64 * 1024 * 1024


class ClientDisconnected(Exception):
    pass


class Request:
    __slots__ = ("scope", "receive", "method", "path", "_headers", "_query", "_body_read")

    def __init__(self, scope: dict[str, Any], receive) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self._headers: dict[bytes, bytes] | None = None
        self._query: dict[str, list[str]] | None = None
        self._body_read = False

    def header(self, name: bytes) -> str | None:
        if self._headers is None:
            self._headers = {}
            for key, value in self.scope["headers"]:
                self._headers.setdefault(key.lower(), value)
        value = self._headers.get(name)
        return None if value is None else value.decode("latin-1")

    def offers_zero_copy(self) -> bool:
        return ZERO_COPY in self.scope.get("extensions", ())

    def arg(self, name: str) -> str | None:
        if self._query is None:
            raw = self.scope.get("query_string", b"").decode("latin-1")
            self._query = parse_qs(raw, keep_blank_values=True) if raw else {}
        values = self._query.get(name)
        return values[0] if values else None

    def args(self, name: str) -> list[str]:
        self.arg(name)
        assert self._query is not None
        return self._query.get(name, [])

    @property
    def client_ip(self) -> str | None:
        """The caller's address; cargohold.forwarded has put a trusted proxy's word in its place."""
        client = self.scope.get("client")
        return client[0] if client else None

    @property
    def content_length(self) -> int | None:
        value = self.header(b"content-length")
        if value is None:
            return None
        try:
            length = int(value)
        except ValueError:
            return None
        return length if length >= 0 else None

    async def read_body(self, limit: int) -> bytes | None:
        """The whole body when it is at most `limit` bytes, else None (for small documents)."""
        parts: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            parts.append(chunk)
            more = message.get("more_body", False)
        self._body_read = True
        return b"".join(parts)

    async def stream_body(self, executor: Executor, sink: Callable[[bytes], None]) -> int:
        """Feed the body to `sink` in large pieces on a worker thread, one piece in flight
        while the next is received. Returns the number of bytes."""
        loop = asyncio.get_running_loop()
        pending: asyncio.Future | None = None
        parts: list[bytes] = []
        buffered = 0
        total = 0
        more = True
        while more:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                if pending is not None:
                    await pending
                raise ClientDisconnected
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
            if chunk:
                parts.append(chunk)
                buffered += len(chunk)
                total += len(chunk)
            if buffered >= STREAM_BUFFER or (not more and buffered):
                data = parts[0] if len(parts) == 1 else b"".join(parts)
                parts, buffered = [], 0
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(executor, sink, data)
        if pending is not None:
            await pending
        self._body_read = True
        return total

    async def discard_body(self, limit: int = ERROR_BODY_DRAIN_LIMIT) -> None:
        """Read and drop what is left of the body, up to `limit` bytes, before an answer that
        does not need it; a longer body is left for the server to cut off."""
        if self._body_read or self.method in ("GET", "HEAD"):
            return
        if self.content_length == 0 and self.header(b"transfer-encoding") is None:
            return
        size = 0
        more = True
        while more and size <= limit:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                break
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        self._body_read = True


def _header_list(headers: dict[str, str] | None) -> list[tuple[bytes, bytes]]:
    out = [API_VERSION_HEADER]
    if headers:
        out.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
    return out


async def send(
    send_fn,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    content_type: str | None = None,
    head: bool = False,
    content_length: int | None = None,
) -> None:
    header_list = _header_list(headers)
    if content_type is not None:
        header_list.append((b"content-type", content_type.encode("latin-1")))
    length = len(body) if content_length is None else content_length
    header_list.append((b"content-length", str(length).encode()))
    await send_fn({"type": "http.response.start", "status": status, "headers": header_list})
    await send_fn({"type": "http.response.body", "body": b"" if head else body})


async def send_json(
    send_fn, status: int, value: Any, headers: dict[str, str] | None = None
) -> None:
    await send(
        send_fn, status, json.dumps(value).encode(), headers, content_type="application/json"
    )


async def send_file(
    send_fn,
    status: int,
    headers: dict[str, str],
    handle: BinaryIO,
    offset: int,
    count: int,
    *,
    content_type: str,
) -> None:
    """Send `count` bytes of an open file from `offset` through the server's zero-copy
    extension (cargohold.zero_copy), which the caller checked the request offers."""
    header_list = _header_list(headers)
    header_list.append((b"content-type", content_type.encode("latin-1")))
    header_list.append((b"content-length", str(count).encode()))
    await send_fn({"type": "http.response.start", "status": status, "headers": header_list})
    await send_fn(
        {"type": ZERO_COPY, "file": handle, "offset": offset, "count": count, "more_body": True}
    )
    await send_fn({"type": "http.response.body", "body": b""})


async def send_stream(
    send_fn,
    executor: Executor,
    status: int,
    headers: dict[str, str],
    length: int,
    chunks: Iterator[bytes],
    *,
    content_type: str,
) -> None:
    """Stream a blocking iterator's pieces, fetching each on a worker thread."""
    loop = asyncio.get_running_loop()
    header_list = _header_list(headers)
    header_list.append((b"content-type", content_type.encode("latin-1")))
    header_list.append((b"content-length", str(length).encode()))
    await send_fn({"type": "http.response.start", "status": status, "headers": header_list})
    done = object()
    try:
        while True:
            piece = await loop.run_in_executor(executor, next, chunks, done)
            if piece is done:
                break
            await send_fn({"type": "http.response.body", "body": piece, "more_body": True})
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            await loop.run_in_executor(executor, close)
    await send_fn({"type": "http.response.body", "body": b""})
