"""A real cargohold server on loopback, started as a subprocess for the tests to talk to."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn
import yaml
from sqlalchemy.orm import Session

from cargohold.config import load_settings
from cargohold.db.base import make_engine, make_session_factory
from cargohold.storage import make_store
from cargohold.storage.base import BlobStore

REPO_ROOT = Path(__file__).resolve().parents[2]
POSTGRES_ADMIN_DSN = os.environ.get(
    "CARGOHOLD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def app_in_thread(app: Any, **options: Any) -> Iterator[int]:
    """Serve an ASGI app with uvicorn on a thread of this process; yields its port."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", **options)
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not runner.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.started
    try:
        yield port
    finally:
        runner.should_exit = True
        thread.join(30)


def test_backend() -> str:
    """sqlite (default) or postgres, from CARGOHOLD_TEST_DB."""
    return os.environ.get("CARGOHOLD_TEST_DB", "sqlite")


def test_storage() -> str:
    """local (default) or s3 (SeaweedFS), from CARGOHOLD_TEST_STORAGE."""
    return os.environ.get("CARGOHOLD_TEST_STORAGE", "local")


def test_workers() -> int:
    """HTTP processes per test server, from CARGOHOLD_TEST_WORKERS (default 2, as `serve`
    runs on a two-CPU machine: every test also checks that no request depends on which
    process answers it)."""
    return int(os.environ.get("CARGOHOLD_TEST_WORKERS", "2"))


def s3_storage_config() -> dict[str, Any]:
    """Storage keys for a server on its own bucket of the session's SeaweedFS."""
    from tests.support.seaweed import shared_seaweed

    seaweed = shared_seaweed()
    entry = seaweed.storage_config(seaweed.create_bucket("server"))
    return {
        "DISTRIBUTED_STORAGE_CONFIG": {"s3": entry},
        "DISTRIBUTED_STORAGE_PREFERENCE": ["s3"],
        # Blob GETs stream through the server, as on local storage, so that protocol tests
        # see the same responses on both; tests/storage covers the presigned redirects.
        "FEATURE_PROXY_STORAGE": True,
    }


def create_postgres_database() -> str:
    name = f"cargohold_test_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_postgres_database(uri: str) -> None:
    name = uri.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class LiveServer:
    """One `cargohold serve` process with its own config folder, database and storage."""

    def __init__(
        self,
        workdir: Path,
        config: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        *,
        workers: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.workers = workers or test_workers()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        self.extra_env = env or {}
        # The CA file an https server's certificate is checked against.
        self.verify: ssl.SSLContext | bool = True
        self.config: dict[str, Any] = {
            "SERVER_HOSTNAME": self.host,
            "PREFERRED_URL_SCHEME": "http",
            "DATA_DIR": str(workdir / "data"),
            "SUPER_USERS": ["admin"],
            "FEATURE_MAILING": False,
            # Tests build content straight in the database (manifests with no tag yet);
            # a background pass would race them. GC tests run passes themselves.
            "FEATURE_GARBAGE_COLLECTION": False,
            # Test servers stop at once; tests of the drain set their own period.
            "SHUTDOWN_DRAIN_SECONDS": 0,
        }
        self._pg_uri: str | None = None
        if test_backend() == "postgres":
            self._pg_uri = create_postgres_database()
            self.config["DB_URI"] = self._pg_uri
        if test_storage() == "s3" and "DISTRIBUTED_STORAGE_CONFIG" not in (config or {}):
            self.config.update(s3_storage_config())
        self.config.update(config or {})
        # The --host given to `serve`; None leaves it to the default.
        self.listen_host: str | None = "127.0.0.1"
        # Passes --migrate to `serve`: test databases start empty.
        self.migrate = True
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "server.log"
        self._engine = None

    def start(self) -> LiveServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "config.yaml").write_text(yaml.safe_dump(self.config))
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **self.extra_env}
        env.pop("CARGOHOLD_TEST_DB", None)
        env.pop("CARGOHOLD_TEST_STORAGE", None)
        env.pop("CARGOHOLD_TEST_WORKERS", None)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cargohold.cli",
                "--config-dir",
                str(self.workdir),
                "serve",
                *(["--migrate"] if self.migrate else []),
                *(["--host", self.listen_host] if self.listen_host else []),
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.workdir,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                health = httpx.get(self.url + "/health/instance", timeout=1, verify=self.verify)
                if health.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become healthy in 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def kill(self) -> None:
        """Crash the server: SIGKILL to it and to its HTTP processes at once, then wait until
        they are gone. (Left to themselves, the HTTP processes would stop gracefully, and
        finish a request in flight after the crash.)"""
        assert self.process is not None
        children = self.http_processes() if self.workers > 1 else []
        self.process.kill()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()
        deadline = time.monotonic() + 30
        while any(process_running(pid) for pid in children):
            if time.monotonic() > deadline:
                raise AssertionError(f"HTTP processes {children} outlived SIGKILL")
            time.sleep(0.05)

    def destroy(self) -> None:
        self.stop()
        if self._pg_uri:
            drop_postgres_database(self._pg_uri)

    @property
    def settings(self):
        return load_settings(self.workdir, environ={})

    def store(self) -> BlobStore:
        """A driver on the server's own storage, to look at the bytes behind the API."""
        return make_store(self.settings)

    @contextmanager
    def db(self) -> Session:
        """A session on the server's own database, committed on success."""
        if self._engine is None:
            self._engine = make_engine(self.settings.DB_URI)
        session = make_session_factory(self._engine)()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def http_processes(self) -> list[int]:
        """The pids of the processes answering HTTP (the server itself when it has one)."""
        assert self.process is not None
        if self.workers <= 1:
            return [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = [int(pid) for pid in children.read_text().split()]
        return [pid for pid in pids if "spawn_main" in _cmdline(pid)]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def process_running(pid: int) -> bool:
    """Alive and not a zombie waiting for its new parent to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
