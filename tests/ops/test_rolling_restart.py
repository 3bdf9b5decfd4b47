"""A rolling restart of two replicas behind nginx, under a continuous push loop, loses nothing.

nginx (open source) has no active health checks, so a small checker stands in for the load
balancer's: it polls each replica's /health/instance and takes a replica that answers 503 out
of the upstream with a reload, as a load balancer with health checks would.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import create_user, unique
from tests.support.registry import make_image, sha256, token_for
from tests.support.server import LiveServer, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed"),
]
DRAIN_SECONDS = 3

NGINX_CONF = """
{user}
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 512; }}
http {{
    log_format upstream '$upstream_addr $status $request_method';
    access_log {root}/access.log upstream;
    # A reload closes idle client connections: a request sent on one just then would get no
    # answer at all. One connection per request keeps this test about the replicas.
    keepalive_timeout 0;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    include {root}/upstream.conf;
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_http_version 1.1;
        proxy_read_timeout 600s;
        proxy_send_timeout 600s;
        location / {{
            proxy_pass http://cargohold;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


class Nginx:
    def __init__(self, root: Path, replicas: list[LiveServer]) -> None:
        self.root = root
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.replicas = replicas
        self.process: subprocess.Popen[bytes] | None = None

    def write_upstream(self, down: set[int]) -> None:
        lines = [
            f"    server 127.0.0.1:{replica.port}{' down' if replica.port in down else ''};"
            for replica in self.replicas
        ]
        (self.root / "upstream.conf").write_text(
            "upstream cargohold {\n" + "\n".join(lines) + "\n}\n"
        )

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.write_upstream(set())
        user = "user root root;" if os.geteuid() == 0 else ""
        conf = NGINX_CONF.format(user=user, root=self.root, port=self.port)
        (self.root / "nginx.conf").write_text(conf)
        self.process = subprocess.Popen(
            ["nginx", "-p", str(self.root), "-c", str(self.root / "nginx.conf"), "-g",
             "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://{self.host}/_internal_ping", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError((self.root / "error.log").read_text())

    def reload(self, down: set[int]) -> None:
        self.write_upstream(down)
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class HealthChecker(threading.Thread):
    """Takes replicas whose /health/instance is not 200 out of nginx's upstream, and back."""

    def __init__(self, nginx: Nginx) -> None:
        super().__init__(daemon=True)
        self.nginx = nginx
        self.stopping = threading.Event()
        self.down: set[int] = set()
        self.saw_draining: set[int] = set()

    def _healthy(self, replica: LiveServer) -> bool:
        try:
            response = httpx.get(f"{replica.url}/health/instance", timeout=2)
        except httpx.HTTPError:
            return False
        if response.status_code == 503 and response.json()["data"]["services"] == {
            "database": True,
            "web_gunicorn": False,
        }:
            self.saw_draining.add(replica.port)
        return response.status_code == 200

    def run(self) -> None:
        while not self.stopping.is_set():
            down = {r.port for r in self.nginx.replicas if not self._healthy(r)}
            if down != self.down:
                self.down = down
                self.nginx.reload(down)
            time.sleep(0.2)


class PushLoop(threading.Thread):
    """Pushes images through nginx without pause: monolithic blobs, a slowly streamed chunked
    upload (so that requests are in flight when a replica is told to stop), a manifest."""

    def __init__(self, base_url: str, repo: str, token: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        self.repo = repo
        self.stopping = threading.Event()
        self.requests = 0
        self.pushes = 0
        self.failures: list[str] = []

    def _call(self, method: str, url: str, expected: int, **kwargs) -> httpx.Response | None:
        self.requests += 1
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.failures.append(f"{method} {url}: {exc!r}")
            return None
        if response.status_code != expected:
            self.failures.append(f"{method} {url}: {response.status_code} {response.text[:200]}")
            return None
        return response

    def _slow_body(self, data: bytes) -> Iterator[bytes]:
        for start in range(0, len(data), len(data) // 4):
            time.sleep(0.1)
            yield data[start : start + len(data) // 4]

    def push_once(self) -> None:
        image = make_image({"payload": secrets.token_bytes(64 * 1024)})
        layer, config = image.layers[0].data, image.config.data
        started = self._call("POST", f"/v2/{self.repo}/blobs/uploads/", 202)
        if started is None:
            return
        patched = self._call(
            "PATCH", started.headers["location"], 202, content=self._slow_body(layer),
            headers={"Content-Type": "application/octet-stream"},
        )  # fmt: skip
        if patched is None:
            return
        done = self._call("PUT", patched.headers["location"], 201, params={"digest": sha256(layer)})
        posted = self._call(
            "POST", f"/v2/{self.repo}/blobs/uploads/", 201,
            params={"digest": sha256(config)}, content=config,
        )  # fmt: skip
        if done is None or posted is None:
            return
        tag = f"t{self.pushes}"
        pushed = self._call(
            "PUT", f"/v2/{self.repo}/manifests/{tag}", 201, content=image.manifest,
            headers={"Content-Type": image.media_type},
        )  # fmt: skip
        pulled = pushed and self._call(
            "GET", f"/v2/{self.repo}/manifests/{tag}", 200, headers={"Accept": image.media_type}
        )
        if pulled and pulled.content == image.manifest:
            self.pushes += 1

    def run(self) -> None:
        with self.client:
            while not self.stopping.is_set():
                self.push_once()


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Nginx, list[LiveServer]]]:
    shared = {
        "SHUTDOWN_DRAIN_SECONDS": DRAIN_SECONDS,
        "WORKERS_ENABLED": False,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DATABASE_SECRET_KEY": secrets.token_urlsafe(32),
    }
    first = LiveServer(tmp_path / "a", shared)
    # The second replica uses the first one's database, storage and data folder.
    same = {
        key: first.config[key]
        for key in ("DB_URI", "DISTRIBUTED_STORAGE_CONFIG", "DISTRIBUTED_STORAGE_PREFERENCE",
                    "FEATURE_PROXY_STORAGE", "DATA_DIR")
        if key in first.config
    }  # fmt: skip
    second = LiveServer(tmp_path / "b", {**shared, **same})
    nginx = Nginx(tmp_path / "nginx", [first, second])
    for replica in (first, second):
        replica.config["SERVER_HOSTNAME"] = nginx.host
    try:
        first.start()
        second.start()
        nginx.start()
        yield nginx, [first, second]
    finally:
        nginx.stop()
        second.destroy()
        first.destroy()


def _wait_for(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _restart(replica: LiveServer) -> float:
    """SIGTERM, wait for the process to end, start it again; returns how long it drained."""
    assert replica.process is not None
    told = time.monotonic()
    replica.process.send_signal(signal.SIGTERM)
    replica.process.wait(60)
    drained = time.monotonic() - told
    replica.start()
    return drained


def test_rolling_restart_behind_nginx_loses_no_request(replicas) -> None:
    nginx, (first, second) = replicas
    owner = create_user(first)
    repo = f"{owner.username}/{unique('rolling')}"
    proxied = LiveServer.__new__(LiveServer)
    proxied.url, proxied.host = f"http://{nginx.host}", nginx.host
    token = token_for(proxied, (owner.username, owner.password), f"repository:{repo}:pull,push")

    checker = HealthChecker(nginx)
    checker.start()
    pushers = [PushLoop(proxied.url, repo, token) for _ in range(2)]
    for pusher in pushers:
        pusher.start()
    try:
        _wait_for(lambda: sum(p.pushes for p in pushers) >= 3)
        before = sum(p.pushes for p in pushers)
        drained = [_restart(first)]
        time.sleep(2)
        drained.append(_restart(second))
        time.sleep(2)
        after = sum(p.pushes for p in pushers)
    finally:
        for pusher in pushers:
            pusher.stopping.set()
        for pusher in pushers:
            pusher.join(120)
        checker.stopping.set()
        checker.join(10)

    failures = [failure for pusher in pushers for failure in pusher.failures]
    assert failures == []
    # nginx saw no error either, and both replicas served pushes before and after restarting.
    served = (nginx.root / "access.log").read_text().splitlines()
    assert [line for line in served if not line.split()[1].startswith(("2", "3", "4"))] == []
    for replica in (first, second):
        assert sum(f"127.0.0.1:{replica.port} " in line for line in served) > 10
    assert before > 0 and after - before >= 10, (before, after)
    assert checker.saw_draining == {first.port, second.port}
    for seconds in drained:
        assert seconds >= DRAIN_SECONDS
    for replica in (first, second):
        assert "SIGTERM: draining for 3" in replica.log_text()
    print(f"requests {sum(p.requests for p in pushers)}, pushes {sum(p.pushes for p in pushers)}")
