"""`serve --workers 2`: requests of one client land on different processes and still agree.

Each connection is pinned to the process that accepted it, found through /proc, so the tests
know that consecutive requests were answered by different processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.accounts import TestUser, create_user, unique
from tests.support.keepalive import KeepAliveConnection
from tests.support.registry import make_image, make_repository, pull_push, sha256, token_for
from tests.support.server import LiveServer, process_running


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("two-workers"), workers=2).start()
    yield live
    live.destroy()


@pytest.fixture(scope="module")
def owner(pair: LiveServer) -> TestUser:
    return create_user(pair, unique("multi"))


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _server_side_inode(server_port: int, client_port: int) -> str:
    wanted_local = f"0100007F:{server_port:04X}"
    wanted_remote = f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted_local and fields[2] == wanted_remote:
            return fields[9]
    raise AssertionError(f"no server socket for client port {client_port}")


def owner_pid(server: LiveServer, connection: KeepAliveConnection) -> int:
    """The HTTP process holding the server side of `connection` (after one request on it)."""
    assert connection.socket is not None
    inode = _server_side_inode(server.port, connection.socket.getsockname()[1])
    for pid in server.http_processes():
        if inode in _socket_inodes(pid):
            return pid
    raise AssertionError("no HTTP process holds the connection")


def connections_on_two_processes(
    server: LiveServer, token: str
) -> tuple[KeepAliveConnection, KeepAliveConnection]:
    """Two kept-alive connections answered by different processes."""
    headers = {"Authorization": f"Bearer {token}"}
    by_pid: dict[int, KeepAliveConnection] = {}
    for _ in range(200):
        connection = KeepAliveConnection(server, headers)
        assert connection.request("GET", "/v2/").status == 200
        pid = owner_pid(server, connection)
        if pid in by_pid:
            connection.connection.close()
        else:
            by_pid[pid] = connection
        if len(by_pid) == 2:
            first, second = by_pid.values()
            return first, second
    raise AssertionError(f"every connection went to the same process: {list(by_pid)}")


def test_two_http_processes_and_background_workers_once(pair: LiveServer) -> None:
    assert len(pair.http_processes()) == 2
    # The supervisor runs each background worker, once its HTTP processes serve; the HTTP
    # processes run none.
    workers = ("gc", "repomirror", "notification")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        log = pair.log_text()
        if all(f"worker {worker} started" in log for worker in workers):
            break
        time.sleep(0.2)
    for worker in workers:
        assert log.count(f"worker {worker} started") == 1, worker


def test_chunked_upload_across_processes(pair: LiveServer, owner: TestUser) -> None:
    repo = make_repository(pair, owner.username, unique("chunks"), public=False)
    token = token_for(pair, (owner.username, owner.password), pull_push(repo))
    first, second = connections_on_two_processes(pair, token)
    assert owner_pid(pair, first) != owner_pid(pair, second)
    pieces = [secrets.token_bytes(300_000) for _ in range(4)]
    data = b"".join(pieces)
    started = first.request("POST", f"/v2/{repo}/blobs/uploads/", b"")
    assert started.status == 202
    location = started.headers["Location"]
    offset = 0
    for number, piece in enumerate(pieces):
        connection = (first, second)[number % 2]
        answer = connection.request(
            "PATCH",
            location,
            piece,
            {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(piece) - 1}",
            },
        )
        assert answer.status == 202, answer.body
        offset += len(piece)
        assert answer.headers["Range"] == f"0-{offset - 1}"
        location = answer.headers["Location"]
    digest = sha256(data)
    separator = "&" if "?" in location else "?"
    done = second.request("PUT", f"{location}{separator}digest={digest}", b"")
    assert done.status == 201, done.body
    for connection in (first, second):
        pulled = connection.request("GET", f"/v2/{repo}/blobs/{digest}")
        assert pulled.status == 200
        assert hashlib.sha256(pulled.body).hexdigest() == digest.split(":", 1)[1]


def test_tag_moved_in_one_process_is_read_in_the_other(pair: LiveServer, owner: TestUser) -> None:
    repo = make_repository(pair, owner.username, unique("moves"), public=False)
    token = token_for(pair, (owner.username, owner.password), pull_push(repo))
    writer, reader = connections_on_two_processes(pair, token)
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    for round_number in range(3):
        image = make_image({"round.txt": f"{round_number}".encode()})
        for blob in image.blobs:
            answer = writer.request(
                "POST", f"/v2/{repo}/blobs/uploads/?digest={blob.digest}", blob.data
            )
            assert answer.status == 201, answer.body
        started = time.monotonic()
        moved = writer.request(
            "PUT",
            f"/v2/{repo}/manifests/latest",
            image.manifest,
            {"Content-Type": image.media_type},
        )
        assert moved.status == 201, moved.body
        # Read back at once from the other process, then by digest and in the tag list.
        read = reader.request("GET", f"/v2/{repo}/manifests/latest", headers=accept)
        head = reader.request("HEAD", f"/v2/{repo}/manifests/latest", headers=accept)
        assert time.monotonic() - started < 1.0
        assert read.status == 200
        assert read.headers["Docker-Content-Digest"] == image.digest
        assert read.body == image.manifest
        assert head.headers["Docker-Content-Digest"] == image.digest
    listed = reader.request("GET", f"/v2/{repo}/tags/list")
    assert json.loads(listed.body)["tags"] == ["latest"]


def test_http10_keep_alive(pair: LiveServer) -> None:
    """ab and other HTTP/1.0 clients keep one connection for many requests."""
    with socket.create_connection(("127.0.0.1", pair.port), timeout=10) as sock:
        reader = sock.makefile("rb")
        for _ in range(3):
            sock.sendall(b"GET /v2/ HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            status = reader.readline()
            assert status.startswith(b"HTTP/1.1 401")
            headers = {}
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            assert headers["connection"].lower() == "keep-alive"
            assert len(reader.read(int(headers["content-length"]))) == int(
                headers["content-length"]
            )
    with socket.create_connection(("127.0.0.1", pair.port), timeout=10) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        # Without Keep-Alive an HTTP/1.0 exchange ends with the connection, as before.
        assert answer.startswith(b"HTTP/1.1 401")


@pytest.mark.slow
def test_skopeo_round_trip_on_two_processes(
    pair: LiveServer, owner: TestUser, tmp_path: Path
) -> None:
    from tests.support.registry import write_oci_layout

    image = make_image({"big.bin": secrets.token_bytes(3_000_000)})
    layout = write_oci_layout(tmp_path / "layout", {"latest": image})
    repo = f"{owner.username}/{unique('skopeo')}"
    creds = f"{owner.username}:{owner.password}"
    for tag in ("v1", "v2"):
        copied = subprocess.run(
            [
                "skopeo",
                "copy",
                "--dest-tls-verify=false",
                f"--dest-creds={creds}",
                f"oci:{layout}:latest",
                f"docker://{pair.host}/{repo}:{tag}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert copied.returncode == 0, copied.stderr
    back = subprocess.run(
        [
            "skopeo",
            "copy",
            "--src-tls-verify=false",
            f"--src-creds={creds}",
            f"docker://{pair.host}/{repo}:v2",
            f"oci:{tmp_path / 'back'}:v2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert back.returncode == 0, back.stderr
    index = json.loads((tmp_path / "back" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.digest
    layer = tmp_path / "back" / "blobs" / "sha256" / image.layers[0].digest.split(":", 1)[1]
    assert layer.read_bytes() == image.layers[0].data


def test_http_processes_end_with_a_killed_supervisor(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "killed", workers=2).start()
    try:
        children = live.http_processes()
        assert len(children) == 2
        assert live.process is not None
        live.process.send_signal(signal.SIGKILL)
        live.process.wait(10)
        deadline = time.monotonic() + 30
        while any(process_running(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in children if process_running(pid)] == []
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", live.port), timeout=5).close()
    finally:
        live.destroy()
