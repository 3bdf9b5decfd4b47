"""A webhook receiver on a loopback address other than 127.0.0.1 (which webhooks may never reach).

It records each POST's path, headers and JSON body and answers `status` (or a redirect).
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

LISTENER_HOST = "127.0.0.2"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class WebhookListener:
    host: str
    port: int = 0
    status: int = 200
    redirect_to: str | None = None
    received: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def wait_for(
        self, count: int = 1, timeout: float = 30, path: str | None = None
    ) -> list[Received]:
        """The first `count` requests (to `path`, when given), waiting for the worker."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            matching = [r for r in self.received if path is None or r.path == path]
            if len(matching) >= count:
                return matching
            time.sleep(0.1)
        raise AssertionError(f"{len(self.received)} webhook requests, expected {count} to {path}")


@contextmanager
def webhook_listener(host: str = LISTENER_HOST) -> Iterator[WebhookListener]:
    listener = WebhookListener(host)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server hook
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            listener.received.append(Received(self.path, dict(self.headers), body))
            if listener.redirect_to:
                self.send_response(307)
                self.send_header("Location", listener.redirect_to)
            else:
                self.send_response(listener.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer((host, 0), Handler)
    listener.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        server.shutdown()
        server.server_close()
