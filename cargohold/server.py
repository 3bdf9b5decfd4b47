"""The HTTP process model of `cargohold serve`: one process, or a supervisor and N workers.

With one worker the app, its HTTP server and the background workers share a process. With
more, the supervisor binds the socket, runs the background workers once, and starts N HTTP
processes that accept on the shared socket. Nothing a request needs lives only in one
process: upload sessions, tags and keys are in the database and storage, so any process
can serve any request.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import multiprocessing
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cargohold import zero_copy
from cargohold.config import Settings, load_settings
from cargohold.serving import Drain, DrainingServer, DrainingSupervisor, TlsFiles

# Where the HTTP processes of a multi-process server find the configuration folder. It has
# no CARGOHOLD_ prefix: those variables are configuration keys.
CONFIG_DIR_ENV = "_CARGOHOLD_SERVE_CONFIG_DIR"
# The file whose presence tells the HTTP processes that the supervisor is draining.
DRAIN_MARKER_ENV = "_CARGOHOLD_SERVE_DRAIN_MARKER"


# glibc's mallopt parameter for the number of malloc arenas.
_M_ARENA_MAX = -8
# Threads that allocate get arenas of their own, up to 8 per CPU, and each keeps freed memory
# for reuse: with a thread pool per HTTP process that held about 20 MiB more per process at
# the benchmark's peak than two arenas, for no measurable speed.
MALLOC_ARENAS = 2


def limit_malloc_arenas() -> bool:
    """Cap glibc's malloc arenas in this process and, through the environment, in the HTTP
    processes it starts; an administrator's MALLOC_ARENA_MAX wins. False where the C library
    is not glibc."""
    os.environ.setdefault("MALLOC_ARENA_MAX", str(MALLOC_ARENAS))
    try:
        arenas = int(os.environ["MALLOC_ARENA_MAX"])
        libc = ctypes.CDLL("libc.so.6")
        return libc.mallopt(_M_ARENA_MAX, arenas) == 1
    except (ValueError, OSError, AttributeError):
        return False


def worker_count(requested: int | None, settings: Settings) -> int:
    """--workers, else SERVER_WORKERS, else one per CPU."""
    if requested is not None:
        return requested
    if settings.SERVER_WORKERS is not None:
        return settings.SERVER_WORKERS
    return os.cpu_count() or 1


class RegistryHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with two additions.

    - HTTP/1.0 keep-alive: uvicorn closes every HTTP/1.0 connection after one response.
      Clients such as ab send HTTP/1.0 with `Connection: keep-alive`; those stay open when
      the response has a length, and the response says so, as HTTP/1.0 requires.
    - Zero-copy file bodies on plain HTTP (cargohold.zero_copy), for blob pulls.
    """

    def on_headers_complete(self) -> None:
        previous = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is None or cycle is previous or self.scope.get("type") != "http":
            return  # an upgrade: no new request cycle
        if self.scheme == "http":
            zero_copy.offer(self.scope, cycle)
        if self.parser.get_http_version() == "1.0" and self.parser.should_keep_alive():
            _keep_http10_alive(cycle)


def _keep_http10_alive(cycle: Any) -> None:
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

    cycle.send = send


# prctl option: the signal this process gets when the thread that started it ends.
_PR_SET_PDEATHSIG = 1


def end_with_supervisor() -> bool:
    """Have this HTTP process told to stop (SIGTERM) when its supervisor ends, however it
    ends: one killed outright (the OOM killer) would otherwise leave its HTTP processes
    serving on the port, and a restarted server could not bind it. The supervisor starts
    its processes from its main thread, which lives as long as it does. False where the C
    library is not glibc."""
    parent = multiprocessing.parent_process()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if parent is not None and os.getppid() != parent.pid:
        # The supervisor ended before the request to be told was made.
        os.kill(os.getpid(), signal.SIGTERM)
    return True


def app_factory():
    """The ASGI app of one HTTP process of a multi-process server (background workers run in
    the supervisor, not here)."""
    from cargohold import request_log
    from cargohold.app import create_app

    end_with_supervisor()
    settings = load_settings(os.environ[CONFIG_DIR_ENV])
    request_log.configure(settings.LOG_FORMAT)
    drain = Drain(marker=Path(os.environ[DRAIN_MARKER_ENV]))
    return create_app(settings, run_workers=False, drain=drain)


class Server:
    """Everything `serve` starts, built up front so that configuration errors stop it early."""

    def __init__(
        self,
        settings: Settings,
        config_dir: str,
        *,
        workers: int,
        run_workers: bool,
        drain: Drain,
    ) -> None:
        limit_malloc_arenas()
        self.workers = workers
        self.settings = settings
        self.app = None
        self.pool = None
        self.run_workers = run_workers and settings.WORKERS_ENABLED
        self.drain = drain
        if workers <= 1:
            from cargohold.app import create_app

            self.app = create_app(settings, run_workers=run_workers, drain=drain)
            return
        os.environ[CONFIG_DIR_ENV] = os.path.abspath(config_dir)
        # The HTTP processes read the configuration again: hand them the address settled here
        # (derived from the bind when none was configured). JSON is a quoted YAML string.
        os.environ["CARGOHOLD_SERVER_HOSTNAME"] = json.dumps(settings.SERVER_HOSTNAME)
        marker_dir = tempfile.mkdtemp(prefix="cargohold-drain-")
        atexit.register(shutil.rmtree, marker_dir, True)
        os.environ[DRAIN_MARKER_ENV] = os.path.join(marker_dir, "draining")
        # Built here even without background workers: it checks the storage configuration.
        self.worker_context = _worker_context(settings)

    def serve(
        self,
        *,
        host: str,
        port: int,
        log_level: str,
        access_log: bool,
        tls: TlsFiles | None,
        drain_seconds: float,
    ) -> None:
        options: dict[str, Any] = {
            "host": host,
            "port": port,
            "http": RegistryHttpProtocol,
            "log_level": log_level,
            "access_log": access_log,
            # cargohold.forwarded reads proxy headers, from TRUSTED_PROXIES only.
            "proxy_headers": False,
            "timeout_keep_alive": 30,
            "ssl_certfile": tls.cert if tls else None,
            "ssl_keyfile": tls.key if tls else None,
        }
        if self.settings.LOG_FORMAT == "json":
            # uvicorn's loggers go through the root handler instead of its own format.
            options["log_config"] = None
        if self.app is not None:
            config = uvicorn.Config(self.app, **options)
            DrainingServer(config, self.drain, drain_seconds).run()
            return
        config = uvicorn.Config(
            "cargohold.server:app_factory", factory=True, workers=self.workers, **options
        )
        marker = Path(os.environ[DRAIN_MARKER_ENV])
        supervisor = DrainingSupervisor(config, [config.bind_socket()], marker, drain_seconds)
        if self.run_workers:
            supervisor.when_serving(self._start_workers)
        try:
            supervisor.run()
        finally:
            if self.pool is not None:
                self.pool.stop()

    def _start_workers(self) -> None:
        """Runs once the HTTP processes serve: importing and starting the workers earlier
        would take CPU from their start-up."""
        from cargohold.workers.runner import WorkerPool

        self.pool = WorkerPool(self.worker_context)
        self.pool.start()


def _worker_context(settings: Settings):
    from cargohold.db.base import engine_for, make_session_factory
    from cargohold.storage import make_store
    from cargohold.workers.runner import WorkerContext

    store = make_store(settings)
    return WorkerContext(settings, make_session_factory(engine_for(settings)), store)
