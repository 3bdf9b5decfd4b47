"""Counts the SQL statements and the CPU of a monolithic blob push (POST, then PUT with the body).

The app runs in this process, driven through ASGI with no sockets, so `time.process_time`
covers all of its work (the handlers' threads included) and little else.
Run from the checkout root: `python -m bench.blob_push` (CARGOHOLD_TEST_DB picks the backend;
`--trace` prints one push's statements).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import event

from cargohold.app import create_app
from tests.support.accounts import create_user, unique
from tests.support.registry import make_repository, pull_push, sha256, token_for
from tests.support.server import LiveServer

ROUNDS = 300
LAYER_BYTES = 16 * 1024


class Statements:
    """The statements the engine runs, counted per request."""

    def __init__(self, engine) -> None:
        self.texts: list[str] = []
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement, _params, _context, _many) -> None:
        self.texts.append(" ".join(statement.split()))

    def take(self) -> list[str]:
        taken, self.texts = self.texts, []
        return taken


async def _call(app, method: str, target: str, token: str, body: bytes = b"") -> tuple[int, dict]:
    path, _, query = target.partition("?")
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]
    if body:
        headers.append((b"content-length", str(len(body)).encode()))
        headers.append((b"content-type", b"application/octet-stream"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    started: dict = {}

    async def receive():
        if incoming:
            return incoming.pop(0)
        await asyncio.Event().wait()

    async def send(message) -> None:
        if message["type"] == "http.response.start":
            started.update(message)

    await app(scope, receive, send)
    return started["status"], {k.decode(): v.decode() for k, v in started["headers"]}


async def _push(app, repo: str, token: str, data: bytes) -> None:
    status, headers = await _call(app, "POST", f"/v2/{repo}/blobs/uploads/", token)
    assert status == 202, status
    status, _ = await _call(app, "PUT", f"{headers['location']}?digest={sha256(data)}", token, data)
    assert status == 201, status


async def _measure(app, statements: Statements, repo: str, token: str, trace: bool) -> None:
    await _push(app, repo, token, os.urandom(LAYER_BYTES))
    statements.take()
    data = os.urandom(LAYER_BYTES)
    status, headers = await _call(app, "POST", f"/v2/{repo}/blobs/uploads/", token)
    post = statements.take()
    await _call(app, "PUT", f"{headers['location']}?digest={sha256(data)}", token, data)
    put = statements.take()
    print(f"statements: POST {len(post)}, PUT {len(put)}")
    if trace:
        for name, texts in (("POST", post), ("PUT", put)):
            for text in texts:
                print(f"  {name}: {text[:150]}")
    layers = [os.urandom(LAYER_BYTES) for _ in range(ROUNDS)]
    began_cpu, began_wall = time.process_time(), time.perf_counter()
    for data in layers:
        await _push(app, repo, token, data)
    cpu = (time.process_time() - began_cpu) / ROUNDS * 1000
    wall = (time.perf_counter() - began_wall) / ROUNDS * 1000
    kinds = Counter(text.split()[0] for text in statements.take())
    print(f"per blob over {ROUNDS}: CPU {cpu:.2f} ms, wall {wall:.2f} ms, {dict(kinds)}")


def main() -> None:
    server = LiveServer(Path(tempfile.mkdtemp()) / "bench", workers=1).start()
    try:
        owner = create_user(server)
        repo = make_repository(server, owner.username, unique("bench"), public=False)
        token = token_for(server, (owner.username, owner.password), pull_push(repo))
        server.stop()
        app = create_app(server.settings)
        statements = Statements(app.state.engine)
        asyncio.run(_measure(app, statements, repo, token, "--trace" in sys.argv))
    finally:
        server.destroy()


if __name__ == "__main__":
    main()
