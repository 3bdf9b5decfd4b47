"""The HTTP process model of `cargohold serve`: one process, or a supervisor and N workers.

With one worker the app, its HTTP server and the background workers share a process. With
more, the supervisor binds the socket, runs the background workers once, and starts N HTTP
processes that accept on the shared socket. Nothing a request needs lives only in one
process: upload sessions, tags and keys are in the database and storage, so any process
can serve any request.
"""

from __future__ import annotations

import os
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cargohold.config import Settings, load_settings

# Where the HTTP processes of a multi-process server find the configuration folder. It has
# no CARGOHOLD_ prefix: those variables are configuration keys.
CONFIG_DIR_ENV = "_CARGOHOLD_SERVE_CONFIG_DIR"


def worker_count(requested: int | None, settings: Settings) -> int:
    """--workers, else SERVER_WORKERS, else one per CPU."""
    if requested is not None:
        return requested
    if settings.SERVER_WORKERS is not None:
        return settings.SERVER_WORKERS
    return os.cpu_count() or 1


class KeepAliveHttp10Protocol(HttpToolsProtocol):
    """uvicorn closes every HTTP/1.0 connection after one response. Clients such as ab send
    HTTP/1.0 with `Connection: keep-alive`; keep those open when the response has a length,
    and say so in the response, as HTTP/1.0 requires."""

    def on_headers_complete(self) -> None:
        previous = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if (
            cycle is None
            or cycle is previous  # an upgrade: no new request cycle
            or self.parser.get_http_version() != "1.0"
            or not self.parser.should_keep_alive()
            or self.scope.get("type") != "http"
        ):
            return
        cycle_send = cycle.send

        async def send(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"content-length" in names and b"connection" not in names:
                    cycle.keep_alive = True
                    headers.append((b"connection", b"keep-alive"))
                    message = {**message, "headers": headers}
            await cycle_send(message)

        cycle.send = send  # type: ignore[method-assign]


def app_factory():
    """The ASGI app of one HTTP process of a multi-process server (background workers run in
    the supervisor, not here)."""
    from cargohold.app import create_app

    settings = load_settings(os.environ[CONFIG_DIR_ENV])
    return create_app(settings, run_workers=False)


class Server:
    """Everything `serve` starts, built up front so that configuration errors stop it early."""

    def __init__(
        self, settings: Settings, config_dir: str, *, workers: int, run_workers: bool
    ) -> None:
        self.workers = workers
        self.app = None
        self.pool = None
        if workers <= 1:
            from cargohold.app import create_app

            self.app = create_app(settings, run_workers=run_workers)
            return
        os.environ[CONFIG_DIR_ENV] = os.path.abspath(config_dir)
        # Built here even without background workers: it checks the storage configuration.
        pool = _background_workers(settings)
        if run_workers and settings.WORKERS_ENABLED:
            self.pool = pool

    def serve(self, *, host: str, port: int, log_level: str, access_log: bool) -> None:
        options: dict[str, Any] = {
            "host": host,
            "port": port,
            "http": KeepAliveHttp10Protocol,
            "log_level": log_level,
            "access_log": access_log,
            "proxy_headers": True,
            "timeout_keep_alive": 30,
        }
        if self.app is not None:
            uvicorn.run(self.app, **options)
            return
        if self.pool is not None:
            self.pool.start()
        try:
            uvicorn.run(
                "cargohold.server:app_factory", factory=True, workers=self.workers, **options
            )
        finally:
            if self.pool is not None:
                self.pool.stop()


def _background_workers(settings: Settings):
    from cargohold.db.base import make_engine, make_session_factory
    from cargohold.storage import make_store
    from cargohold.workers.runner import WorkerContext, WorkerPool

    store = make_store(settings)
    engine = make_engine(settings.DB_URI, settings.DB_CONNECTION_ARGS)
    return WorkerPool(WorkerContext(settings, make_session_factory(engine), store))
