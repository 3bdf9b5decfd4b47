"""One HTTP/1.1 connection held open across requests, to see whether the server keeps it."""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any

from tests.support.server import LiveServer


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class KeepAliveConnection:
    """Requests on a single socket; `request` fails if the server dropped it in between."""

    def __init__(self, server: LiveServer | int, headers: dict[str, str] | None = None) -> None:
        port = server if isinstance(server, int) else server.port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = headers or {}
        self.connection.connect()
        self.socket: socket.socket | None = self.connection.sock

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        # http.client opens a new socket silently when the old one was closed; refuse that.
        assert self.connection.sock is self.socket, "the server closed the connection"
        self.connection.request(
            method, path, body=body, headers={**self.headers, **(headers or {})}
        )
        response = self.connection.getresponse()
        answer = Answer(response.status, response.headers, response.read())
        assert self.connection.sock is self.socket, "the server closed the connection"
        return answer

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> KeepAliveConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
