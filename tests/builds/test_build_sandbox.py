"""Hostile builds run by an ordinary account: they cannot read the server, reach its loopback,
or outgrow their limits; and builds that cannot be sandboxed wait instead of running."""

from __future__ import annotations

import http.server
import io
import ipaddress
import pwd
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import ALL_SCOPES, TestUser, bearer_client, create_user, issue_token
from tests.support.builds import (
    busybox_context,
    image_file,
    logs,
    push_image,
    read_image_layers,
    wait_for_build,
)
from tests.support.content import make_repository
from tests.support.repos import create_robot, grant
from tests.support.server import LiveServer

pytestmark = pytest.mark.slow

PROGRAMS = Path(__file__).parent / "programs"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
WGET_LIBRARIES = ("libnss_files.so.2", "libnss_dns.so.2", "libresolv.so.2")


class Canary:
    """An HTTP server on 127.0.0.1 and [::1] (one port) that records every request."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        canary = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                canary.requests.append(self.path)
                body = b"canary secret\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        class V6Server(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6

        self.v4 = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.v4.server_address[1]
        self.v6 = V6Server(("::1", self.port), Handler)
        for server in (self.v4, self.v6):
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def close(self) -> None:
        for server in (self.v4, self.v6):
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    server = Canary()
    yield server
    server.close()


def _sandboxed_server(path: Path, config: dict, env: dict[str, str] | None = None) -> LiveServer:
    # No SSRF_ALLOWED_HOSTS: nothing on this host's loopback is meant to be reachable.
    config = {"SSRF_ALLOWED_HOSTS": [], "BUILD_MAX_CONCURRENT": 2, **config}
    return LiveServer(path, config, env)


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = _sandboxed_server(tmp_path_factory.mktemp("sandboxed"), {}).start()
    yield live
    live.destroy()


class Builder:
    """An ordinary (non-superuser) account on a server, with a private busybox base image
    that also holds the host's wget, and a pull robot for it."""

    def __init__(self, server: LiveServer, work: Path) -> None:
        self.server = server
        self.user = create_user(server)
        self.client = bearer_client(server, issue_token(server, self.user.username, ALL_SCOPES))
        self.base = push_image(server, self.user, "tools", _tools_context(work / "tools"))
        self.robot, _ = create_robot(server, self.user.username)
        self.builds: Path | None = None
        grant(server, f"{self.user.username}/tools", self.robot, "read")

    def build(self, files: dict[str, bytes], timeout: float = 240) -> tuple[str, dict, list]:
        """Upload a build context, wait for the build; returns repo, final status and logs."""
        repo = make_repository(self.server, self.user.username)
        build = start_upload_build(self.client, repo, files, self.robot)
        done = wait_for_build(self.client, repo, build, timeout)
        return repo, done, logs(self.client, repo, done["id"])


def start_upload_build(
    client: httpx.Client, repo: str, files: dict[str, bytes], robot: str | None = None
) -> str:
    drop = client.post("/api/v1/filedrop/", json={"mimeType": "application/gzip"}).json()
    assert httpx.put(drop["url"], content=_tar_gz(files)).status_code == 200
    body = {"file_id": drop["file_id"], "docker_tags": ["latest"]}
    if robot is not None:
        body["pull_robot"] = robot
    started = client.post(f"/api/v1/repository/{repo}/build/", json=body)
    assert started.status_code == 201, started.text
    return started.json()["id"]


def _tools_context(path: Path) -> Path:
    """busybox plus the host's wget with the shared libraries it loads."""
    context = busybox_context(path)
    rootfs = context / "rootfs"
    wget = shutil.which("wget")
    assert wget, "wget is needed on the host"
    needed = [Path(wget)]
    listing = subprocess.run(["ldd", wget], capture_output=True, text=True, check=True).stdout
    needed += [Path(word) for word in listing.split() if word.startswith("/")]
    for library in WGET_LIBRARIES:
        found = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
        needed += [
            Path(line.split("=>")[1].strip())
            for line in found.splitlines()
            if line.strip().startswith(library) and "x86-64" in line
        ][:1]
    for source in needed:
        target = rootfs / str(source.resolve()).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source.resolve(), target)
        alias = rootfs / str(source).lstrip("/")
        if not alias.exists():
            alias.parent.mkdir(parents=True, exist_ok=True)
            alias.symlink_to(source.resolve())
    with (context / "Dockerfile").open("a") as dockerfile:
        dockerfile.write("COPY rootfs/ /\n")
    return context


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def builder(sandboxed: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Builder]:
    account = Builder(sandboxed, tmp_path_factory.mktemp("builder"))
    yield account
    account.client.close()


def _messages(entries: list[dict]) -> str:
    return "\n".join(entry["message"] for entry in entries)


# --- escape -------------------------------------------------------------------------------------


def test_chroot_escape_reads_nothing_of_the_server(builder: Builder, tmp_path: Path) -> None:
    escape = tmp_path / "escape"
    compiled = subprocess.run(
        ["gcc", "-static", "-O2", "-o", str(escape), str(PROGRAMS / "escape.c")],
        capture_output=True,
        text=True,
    )
    assert compiled.returncode == 0, compiled.stderr
    settings = builder.server.settings
    data = Path(settings.DATA_DIR)
    marker = f"/tmp/cargohold-escape-{uuid.uuid4().hex}"
    targets = [
        str(data / "database_secret_key"),
        str(data / "secret_key"),
        str(data / "cargohold.db"),
        str(data / "storage"),
        str(data),
        str(builder.server.workdir / "config.yaml"),
        "/etc/subuid",
        "/etc/shadow",
    ]
    arguments = ", ".join(f'"{item}"' for item in ["/escape", "/loot", marker, *targets])
    dockerfile = f"FROM {builder.base}\nCOPY escape /escape\nRUN [{arguments}]\n"
    repo, done, entries = builder.build(
        {"Dockerfile": dockerfile.encode(), "escape": escape.read_bytes()}
    )
    assert done["phase"] == "complete", _messages(entries)[-3000:]

    layers = read_image_layers(builder.server, builder.user, f"{repo}:latest", tmp_path / "pulled")
    loot = image_file(layers, "/loot")
    assert loot is not None and b"escape attempt finished" in loot
    image = b"".join(layers)
    for secret in (settings.DATABASE_SECRET_KEY, settings.SECRET_KEY):
        assert secret.encode() not in image
    assert b"SQLite format 3" not in image
    assert b"cargohold-build:" not in image  # the host's /etc/subuid and /etc/passwd
    for target in targets:
        assert f"read {target}:".encode() not in loot
        assert f"read /proc/1/root{target}:".encode() not in loot
    # PID 1 is the build step itself, not the host's init; its root is the image's.
    assert b"read /proc/1/cmdline:\n/escape" in loot
    assert b"list /proc/1/root/: escape\n" in loot
    # No host device node is visible, and nothing was created on the host.
    assert b"list /dev: sda" not in loot and b"list /dev: nvme" not in loot
    assert not Path(marker).exists()


# --- network ----------------------------------------------------------------------------------

SPELLINGS = ("127.0.0.1", "[::1]", "127.1", "2130706433", "localhost.")


def test_run_wget_never_reaches_the_loopback(builder: Builder, canary: Canary) -> None:
    urls = " ".join(
        f"http://{host}:{canary.port}/run-{index}" for index, host in enumerate(SPELLINGS)
    )
    script = (
        f"for url in {urls}; do"
        ' if /usr/bin/wget -q -T 5 -t 1 -O /fetched "$url"; then echo "REACHED $url";'
        ' else echo "BLOCKED $url"; fi; done'
    )
    dockerfile = f"FROM {builder.base}\nRUN {script}\n"
    _, done, entries = builder.build({"Dockerfile": dockerfile.encode()})
    text = _messages(entries)
    assert done["phase"] == "complete", text[-3000:]
    output = [entry["message"] for entry in entries if entry.get("type") != "command"]
    assert sum(line.startswith("BLOCKED http://") for line in output) == len(SPELLINGS), text
    assert not [line for line in output if line.startswith("REACHED")]
    assert canary.requests == []


@pytest.mark.parametrize("host", SPELLINGS)
def test_add_never_reaches_the_loopback(builder: Builder, canary: Canary, host: str) -> None:
    dockerfile = f"FROM {builder.base}\nADD http://{host}:{canary.port}/add /added\n"
    _, done, entries = builder.build({"Dockerfile": dockerfile.encode()})
    assert done["phase"] == "error", _messages(entries)[-3000:]
    assert canary.requests == []


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "[::1]"])
def test_from_a_loopback_registry_is_refused(builder: Builder, canary: Canary, host: str) -> None:
    """The worker pulls base images on the host's network, so FROM goes through the guard."""
    dockerfile = f"FROM {host}:{canary.port}/someone/base:latest\nRUN true\n"
    _, done, entries = builder.build({"Dockerfile": dockerfile.encode()})
    assert done["phase"] == "error"
    errors = [entry["message"] for entry in entries if entry.get("type") == "error"]
    assert errors and "is not allowed" in errors[-1], _messages(entries)[-2000:]
    assert canary.requests == []


def _rejected_ranges(rules: str, uid: str) -> list[tuple[IPAddress, IPAddress]]:
    """The address ranges of the filter's reject rules for the build user, as nft prints them
    (prefixes, single addresses and merged a-b intervals)."""
    ranges = []
    for line in rules.splitlines():
        line = line.strip()
        if not (line.startswith(f"meta skuid {uid} ") and "reject" in line and "{" in line):
            continue
        for element in line[line.index("{") + 1 : line.index("}")].split(","):
            element = element.strip()
            if "-" in element:
                low, high = element.split("-")
                ranges.append((ipaddress.ip_address(low), ipaddress.ip_address(high)))
            else:
                network = ipaddress.ip_network(element)
                ranges.append((network[0], network[-1]))
    return ranges


def test_network_filter_rules_cover_internal_ranges(builder: Builder) -> None:
    """The host-side filter, read back from the kernel (no packet is sent to these ranges)."""
    listing = subprocess.run(
        ["nft", "list", "table", "inet", "cargohold_build"], capture_output=True, text=True
    )
    assert listing.returncode == 0, listing.stderr
    uid = str(pwd.getpwnam("cargohold-build").pw_uid)
    rejected = _rejected_ranges(listing.stdout, uid)
    internal = (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "169.254.169.254/32",
        "127.0.0.0/8",
        "100.64.0.0/10",
        "::1/128",
        "fe80::/10",
        "fc00::/7",
    )
    for text in internal:
        network = ipaddress.ip_network(text)
        assert any(
            low.version == network.version and low <= network[0] and network[-1] <= high
            for low, high in rejected
        ), text
    # Before the reject rules only single ports are let through: the host's DNS servers, and
    # the `host:port` entries of SSRF_ALLOWED_HOSTS (of whichever test server wrote the table).
    accepts = [line for line in listing.stdout.splitlines() if line.strip().endswith("accept")]
    assert all(" dport " in line for line in accepts), accepts


def test_allowed_loopback_host_is_reachable(tmp_path: Path, canary: Canary) -> None:
    """SSRF_ALLOWED_HOSTS opens the host's loopback on purpose, through the sandbox gateway;
    which also shows that RUN steps do have a network."""
    live = _sandboxed_server(tmp_path / "allowing", {"SSRF_ALLOWED_HOSTS": ["127.0.0.1/32"]})
    live.start()
    try:
        account = Builder(live, tmp_path / "work")
        script = f"/usr/bin/wget -q -T 5 -t 1 -O /fetched http://10.0.2.2:{canary.port}/allowed"
        dockerfile = f"FROM {account.base}\nRUN {script}\n"
        repo, done, entries = account.build({"Dockerfile": dockerfile.encode()})
        assert done["phase"] == "complete", _messages(entries)[-3000:]
        assert canary.requests == ["/allowed"]
        layers = read_image_layers(live, account.user, f"{repo}:latest", tmp_path / "pulled")
        assert image_file(layers, "/fetched") == b"canary secret\n"
        account.client.close()
    finally:
        canary.requests.clear()
        live.destroy()


# --- limits -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Builder]:
    path = tmp_path_factory.mktemp("limited")
    config = {
        "BUILD_TIMEOUT": 20,
        "BUILD_PIDS_LIMIT": 100,
        "BUILD_STORAGE_LIMIT_MB": 40,
        "BUILD_MEMORY_LIMIT_MB": 256,
    }
    # Its own folder for builds (the build user must reach it, so not under pytest's private
    # one), to see that no build leaves anything behind.
    builds = Path(tempfile.mkdtemp(prefix="cargohold-test-builds-"))
    builds.chmod(0o711)
    live = _sandboxed_server(path, {**config, "BUILD_WORK_DIR": str(builds)}).start()
    account = Builder(live, path / "work")
    account.builds = builds
    yield account
    account.client.close()
    live.destroy()
    shutil.rmtree(builds)


@pytest.mark.parametrize(
    ("step", "limit"),
    [
        ("dd if=/dev/zero of=/big bs=1M count=100", "BUILD_STORAGE_LIMIT_MB = 40"),
        ("for i in $(seq 300); do sleep 30 & done; wait", "BUILD_PIDS_LIMIT = 100"),
        ("sleep 300", "took longer than 20 seconds (BUILD_TIMEOUT)"),
        # busybox sort holds the one 400 MB line in memory.
        (
            "head -c 400000000 /dev/zero | tr '\\0' a | sort > /dev/null",
            "BUILD_MEMORY_LIMIT_MB = 256",
        ),
    ],
    ids=["storage", "processes", "time", "memory"],
)
def test_build_over_a_limit_ends_in_error(limited: Builder, step: str, limit: str) -> None:
    dockerfile = f"FROM {limited.base}\nRUN echo step-started && {step}\n"
    _, done, entries = limited.build({"Dockerfile": dockerfile.encode()})
    assert done["phase"] == "error"
    # The step itself ran into the limit (not the runtime starting it).
    assert any(e["message"] == "step-started" for e in entries), _messages(entries)[-2000:]
    errors = [entry["message"] for entry in entries if entry.get("type") == "error"]
    assert errors and limit in errors[-1], _messages(entries)[-2000:]
    # The worker removes the build's folder right after recording the outcome.
    deadline = time.monotonic() + 15
    while list(limited.builds.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(limited.builds.iterdir()) == []


# --- legitimate builds -------------------------------------------------------------------------


def test_multi_stage_build_and_run_step_writing_a_file(builder: Builder, tmp_path: Path) -> None:
    dockerfile = (
        f"FROM {builder.base} AS compile\n"
        "RUN echo built-in-stage-one > /artifact\n"
        f"FROM {builder.base}\n"
        "COPY --from=compile /artifact /artifact\n"
        "RUN echo written-by-run > /hello.txt\n"
    )
    started = time.monotonic()
    repo, done, entries = builder.build({"Dockerfile": dockerfile.encode()})
    assert done["phase"] == "complete", _messages(entries)[-3000:]
    print(f"multi-stage build queued to complete: {time.monotonic() - started:.2f} s")
    layers = read_image_layers(builder.server, builder.user, f"{repo}:latest", tmp_path)
    assert image_file(layers, "/artifact") == b"built-in-stage-one\n"
    assert image_file(layers, "/hello.txt") == b"written-by-run\n"


# --- failing closed -----------------------------------------------------------------------------


def test_builds_wait_when_the_host_cannot_sandbox(tmp_path: Path) -> None:
    live = _sandboxed_server(tmp_path / "nosandbox", {"BUILD_USER": "no-such-build-user"}).start()
    try:
        user: TestUser = create_user(live)
        with bearer_client(live, issue_token(live, user.username, ALL_SCOPES)) as client:
            repo = make_repository(live, user.username)
            build = start_upload_build(client, repo, {"Dockerfile": b"FROM scratch\n"})
            expected = "Builds cannot start on this server: the build user 'no-such-build-user'"
            deadline = time.monotonic() + 30
            messages: list[str] = []
            while time.monotonic() < deadline and not any(expected in m for m in messages):
                messages = [e["message"] for e in logs(client, repo, build)]
                time.sleep(0.3)
            assert any(expected in m for m in messages), messages
            assert (
                client.get(f"/api/v1/repository/{repo}/build/{build}/status").json()["phase"]
                == "waiting"
            )
        assert expected in live.log_text()
    finally:
        live.destroy()


def test_server_files_are_private(sandboxed: LiveServer) -> None:
    data = Path(sandboxed.settings.DATA_DIR)
    assert data.stat().st_mode & 0o077 == 0
    for path in data.rglob("*"):
        assert path.stat().st_mode & 0o077 == 0, path
