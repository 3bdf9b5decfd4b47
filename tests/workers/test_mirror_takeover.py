"""A mirror sync whose worker is killed mid-copy is taken over by another worker once its
heartbeat stops, and the killed worker's skopeo dies with it."""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mirror.conftest import MirrorSetup, mirror_setup
from tests.mirror.test_mirror_sync import configure, local_tags
from tests.support.organizations import log_entries
from tests.support.registry import make_image
from tests.support.server import LiveServer
from tests.support.throttle import ThrottledProxy
from tests.support.upstream import UpstreamRegistry
from tests.workers.conftest import WorkerStarter

pytestmark = pytest.mark.slow
HEARTBEAT = {"CARGOHOLD_WORKER_HEARTBEAT_TIMEOUT": "3"}


@pytest.fixture
def server(server_factory) -> LiveServer:
    """No workers in the server: they run as separate processes in this test."""
    return server_factory(
        {"WORKERS_ENABLED": False, "REPO_MIRROR_INTERVAL": 1, "SSRF_ALLOWED_HOSTS": ["127.0.0.1"]}
    )


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[UpstreamRegistry]:
    registry = UpstreamRegistry(tmp_path / "upstream").start()
    yield registry
    registry.stop()


@pytest.fixture
def setup(server: LiveServer) -> Iterator[MirrorSetup]:
    made = mirror_setup(server)
    yield made
    made.client.close()


def skopeo_processes(marker: str, command: bytes | None = None) -> list[int]:
    """Pids of running skopeo processes whose command line names `marker` (and `command`,
    when given, as one of its words)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if (
            state != "Z"
            and any(a.endswith(b"skopeo") for a in argv)
            and marker.encode() in b" ".join(argv)
            and (command is None or command in argv)
        ):
            found.append(int(entry))
    return found


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_mirror_worker_is_taken_over(
    server: LiveServer,
    upstream: UpstreamRegistry,
    setup: MirrorSetup,
    start_worker: WorkerStarter,
    tmp_path: Path,
) -> None:
    repo = f"upstream/{setup.owner.username}"
    # Random bytes do not compress: a 2 MiB layer at 64 KiB/s takes half a minute to copy.
    image = make_image({"payload.bin": secrets.token_bytes(2 * 1024 * 1024)})
    digest = upstream.push(repo, "v1", image, tmp_path)
    host, port = upstream.host.split(":")
    proxy = ThrottledProxy(host, int(port), rate=64 * 1024).start()
    try:
        configure(setup, f"{proxy.host}/{repo}", ["v1"])
        assert setup.client.post(setup.url + "/sync-now").status_code == 204

        first = start_worker(server, "repomirror", env=HEARTBEAT)
        copying = wait_for(
            lambda: skopeo_processes(proxy.host, b"copy"),
            60,
            "skopeo copy to start",
        )
        assert setup.client.get(setup.url).json()["sync_status"] == "SYNCING"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        # The kernel kills the orphaned skopeo with its worker (parent-death signal).
        wait_for(lambda: not skopeo_processes(proxy.host), 10, f"skopeo {copying} to die")

        proxy.rate = None
        # The claim is still held until its heartbeat lapses; then another worker takes it.
        takeover = start_worker(server, "all", env=HEARTBEAT)
        view = wait_for(
            lambda: (
                (v := setup.client.get(setup.url).json())["sync_status"] in ("SUCCESS", "FAIL")
                and v
            ),
            120,
            "the taken-over sync to end",
        )
        assert view["sync_status"] == "SUCCESS", takeover.log_path.read_text()[-3000:]
        assert local_tags(setup) == {"v1": digest}
        starts = [
            e for e in log_entries(server, "repo_mirror_sync_started") if e["repo"] == "mirrored"
        ]
        assert len(starts) == 2  # the killed worker's start and the takeover's
        assert takeover.poll() is None
    finally:
        proxy.stop()
