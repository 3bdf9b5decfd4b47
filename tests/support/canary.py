"""A loopback HTTP server that records every request: the target an attack must never reach."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Canary:
    port: int
    requests: list[str] = field(default_factory=list)
    redirect_to: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def canary_server(host: str = "127.0.0.1") -> Iterator[Canary]:
    """Answers 200 (or a redirect to `redirect_to`) and notes each request's path."""
    canary = Canary(port=0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            canary.requests.append(self.path)
            if canary.redirect_to:
                self.send_response(302)
                self.send_header("Location", canary.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = b"canary secret\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET
        do_POST = do_GET
        do_CONNECT = do_GET

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer((host, 0), Handler)
    canary.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield canary
    finally:
        server.shutdown()
        server.server_close()
