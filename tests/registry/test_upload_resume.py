"""Uploads after the server died mid-body: the offset reported is what was kept, and resumed or
restarted pushes end byte-identical. Runs on local storage and on S3 (SeaweedFS)."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import update

from cargohold.db.models.registry import BlobUpload
from cargohold.storage.base import BlobStore
from cargohold.storage.local import LocalStorage
from cargohold.storage.s3 import S3Storage
from tests.support.accounts import create_user, unique
from tests.support.registry import make_repository, pull_push, sha256, token_for, v2_client
from tests.support.server import LiveServer

MIB = 1 << 20
KEPT = 20 * MIB
KILLED_BODY = 100 * MIB
SENT_BEFORE_KILL = 70 * MIB
# S3 stores a request's bytes in 8 MiB parts, so storage trails what was sent by up to one.
STORED_BEFORE_KILL = 48 * MIB


@dataclass
class Pusher:
    live: LiveServer
    repo: str
    username: str
    password: str

    def token(self) -> str:
        return token_for(self.live, (self.username, self.password), pull_push(self.repo))

    def client(self) -> httpx.Client:
        client = v2_client(self.live, self.token())
        client.timeout = httpx.Timeout(300)
        return client


@pytest.fixture
def pusher(server_factory) -> Pusher:
    live = server_factory()
    user = create_user(live, unique("resume"))
    repo = make_repository(live, user.username, unique("repo"), public=False)
    return Pusher(live, repo, user.username, user.password)


def _upload_keys(store: S3Storage, upload_uuid: str) -> list[dict]:
    pages = store.client.get_paginator("list_objects_v2").paginate(
        Bucket=store.bucket, Prefix=store._upload_prefix(upload_uuid)
    )
    return [item for page in pages for item in page.get("Contents", [])]


def _stored_bytes(store: BlobStore, upload_uuid: str) -> int:
    """Every byte storage holds for the session, recorded or not."""
    if isinstance(store, LocalStorage):
        path = store.uploads / upload_uuid
        return path.stat().st_size if path.exists() else 0
    assert isinstance(store, S3Storage)
    return sum(item["Size"] for item in _upload_keys(store, upload_uuid))


def _readable_bytes(live: LiveServer, store: BlobStore, upload_uuid: str) -> int:
    """The bytes the session's recorded state lets the server read back."""
    with live.db() as session:
        row = session.query(BlobUpload).filter_by(uuid=upload_uuid).one()
        state = json.loads(row.storage_metadata or "{}")
    return sum(len(chunk) for chunk in store.read_upload(upload_uuid, state))


def _start_request(
    live: LiveServer, token: str, method: str, target: str, length: int, headers: dict[str, str]
) -> socket.socket:
    """Send a request's head announcing `length` body bytes; the caller sends the body."""
    lines = [
        f"{method} {target} HTTP/1.1",
        f"Host: {live.host}",
        f"Authorization: Bearer {token}",
        f"Content-Length: {length}",
        "Content-Type: application/octet-stream",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    sock = socket.create_connection(("127.0.0.1", live.port))
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def _response_status(sock: socket.socket) -> int:
    sock.settimeout(120)
    head = b""
    while b"\r\n" not in head:
        data = sock.recv(4096)
        assert data, "connection closed before a response"
        head += data
    return int(head.split(b" ", 2)[1])


def _wait_for_stored(store: BlobStore, upload_uuid: str, at_least: int) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stored = _stored_bytes(store, upload_uuid)
        if stored >= at_least:
            return stored
        time.sleep(0.05)
    raise AssertionError(f"the server stored only {stored} of {at_least} bytes")


def _kill_and_restart(live: LiveServer) -> None:
    live.kill()
    live.stop()
    live.start()


def _kill_mid_body(pusher: Pusher, method: str, target: str, body: bytes, already: int) -> str:
    """Send most of `body`, wait until the server has stored most of that, kill -9 the server
    and start it again on the same database and storage. Returns the upload's uuid."""
    live = pusher.live
    store = live.store()
    headers = {}
    if method == "PATCH":
        headers["Content-Range"] = f"{already}-{already + len(body) - 1}"
    sock = _start_request(live, pusher.token(), method, target, len(body), headers)
    try:
        sock.sendall(body[:SENT_BEFORE_KILL])
        # A monolithic POST creates its session before it reads the body.
        with live.db() as session:
            upload_uuid = session.query(BlobUpload).one().uuid
        stored = _wait_for_stored(store, upload_uuid, already + STORED_BEFORE_KILL)
        _kill_and_restart(live)
    finally:
        sock.close()
    # The dead request really left bytes past the recorded offset.
    assert stored >= already + STORED_BEFORE_KILL
    return upload_uuid


def _assert_kept(pusher: Pusher, location: str, upload_uuid: str, kept: int) -> None:
    """GET reports exactly `kept`, and that is what the server can read back."""
    store = pusher.live.store()
    with pusher.client() as client:
        status = client.get(location)
    assert status.status_code == 204, status.text
    assert status.headers["range"] == f"0-{max(kept - 1, 0)}"
    assert status.headers["docker-upload-uuid"] == upload_uuid
    assert _readable_bytes(pusher.live, store, upload_uuid) == kept
    if isinstance(store, LocalStorage):
        # What the dead request wrote past the recorded offset was cut.
        assert _stored_bytes(store, upload_uuid) == kept


def _assert_pulls_back(pusher: Pusher, data: bytes) -> None:
    with pusher.client() as client:
        pulled = client.get(f"/v2/{pusher.repo}/blobs/{sha256(data)}")
    assert pulled.status_code == 200
    assert sha256(pulled.content) == sha256(data)
    assert pulled.content == data


def _assert_session_gone(pusher: Pusher, upload_uuid: str) -> None:
    with pusher.live.db() as session:
        assert session.query(BlobUpload).filter_by(uuid=upload_uuid).count() == 0
    # Recorded parts, and parts of the killed request that were never recorded.
    assert _stored_bytes(pusher.live.store(), upload_uuid) == 0


def _begin(client: httpx.Client, repo: str) -> tuple[str, str]:
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202, started.text
    return started.headers["location"], started.headers["docker-upload-uuid"]


def test_patch_killed_mid_body_resumes_from_the_recorded_offset(pusher: Pusher) -> None:
    data = os.urandom(KEPT + KILLED_BODY)
    with pusher.client() as client:
        location, upload_uuid = _begin(client, pusher.repo)
        first = client.patch(
            location, content=data[:KEPT], headers={"Content-Range": f"0-{KEPT - 1}"}
        )
        assert first.status_code == 202, first.text
        assert first.headers["range"] == f"0-{KEPT - 1}"
    assert _kill_mid_body(pusher, "PATCH", location, data[KEPT:], KEPT) == upload_uuid

    _assert_kept(pusher, location, upload_uuid, KEPT)
    with pusher.client() as client:
        rest = client.patch(
            location, content=data[KEPT:], headers={"Content-Range": f"{KEPT}-{len(data) - 1}"}
        )
        assert rest.status_code == 202, rest.text
        assert rest.headers["range"] == f"0-{len(data) - 1}"
        done = client.put(location, params={"digest": sha256(data)})
        assert done.status_code == 201, done.text
    _assert_pulls_back(pusher, data)
    _assert_session_gone(pusher, upload_uuid)


def test_monolithic_post_killed_mid_body_is_pushed_again(pusher: Pusher) -> None:
    data = os.urandom(KILLED_BODY)
    target = f"/v2/{pusher.repo}/blobs/uploads/?digest={sha256(data)}"
    upload_uuid = _kill_mid_body(pusher, "POST", target, data, 0)

    # The client never learnt the session; had it asked, nothing would be reported kept.
    location = f"/v2/{pusher.repo}/blobs/uploads/{upload_uuid}"
    _assert_kept(pusher, location, upload_uuid, 0)
    with pusher.client() as client:
        assert client.head(f"/v2/{pusher.repo}/blobs/{sha256(data)}").status_code == 404
        again = client.post(
            f"/v2/{pusher.repo}/blobs/uploads/", params={"digest": sha256(data)}, content=data
        )
        assert again.status_code == 201, again.text
        assert client.delete(location).status_code == 204
    _assert_pulls_back(pusher, data)
    _assert_session_gone(pusher, upload_uuid)


def test_put_with_body_killed_mid_body_is_sent_again(pusher: Pusher) -> None:
    data = os.urandom(KILLED_BODY)
    with pusher.client() as client:
        location, upload_uuid = _begin(client, pusher.repo)
    target = f"{location}?digest={sha256(data)}"
    assert _kill_mid_body(pusher, "PUT", target, data, 0) == upload_uuid

    _assert_kept(pusher, location, upload_uuid, 0)
    with pusher.client() as client:
        assert client.head(f"/v2/{pusher.repo}/blobs/{sha256(data)}").status_code == 404
        done = client.put(location, params={"digest": sha256(data)}, content=data)
        assert done.status_code == 201, done.text
    _assert_pulls_back(pusher, data)
    _assert_session_gone(pusher, upload_uuid)


def _lose_recorded_bytes(live: LiveServer, upload_uuid: str, lost: int) -> None:
    """Make storage hold less than the row records: a lost file tail on local storage; on S3,
    whose row names its parts in the same update as its count, a count ahead of the parts."""
    store = live.store()
    if isinstance(store, LocalStorage):
        path = store.uploads / upload_uuid
        os.truncate(path, path.stat().st_size - lost)
        return
    with live.db() as session:
        session.execute(
            update(BlobUpload)
            .where(BlobUpload.uuid == upload_uuid)
            .values(byte_count=BlobUpload.byte_count + lost)
        )


def test_upload_that_lost_recorded_bytes_is_unknown_and_pushed_again(pusher: Pusher) -> None:
    data = os.urandom(3 * MIB)
    with pusher.client() as client:
        location, upload_uuid = _begin(client, pusher.repo)
        half = len(data) // 2
        first = client.patch(
            location, content=data[:half], headers={"Content-Range": f"0-{half - 1}"}
        )
        assert first.status_code == 202
        _lose_recorded_bytes(pusher.live, upload_uuid, 1000)

        rest = client.patch(
            location, content=data[half:], headers={"Content-Range": f"{half}-{len(data) - 1}"}
        )
        assert rest.status_code == 404
        assert rest.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
        # Dropped, not half-kept: every later request agrees, and nothing is left stored.
        assert client.get(location).json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
        assert client.put(location, params={"digest": sha256(data)}).status_code == 404
        _assert_session_gone(pusher, upload_uuid)

        location, upload_uuid = _begin(client, pusher.repo)
        assert client.put(location, params={"digest": sha256(data)}, content=data).status_code == (
            201
        )
    _assert_pulls_back(pusher, data)


@pytest.mark.parametrize("first_request", ["status", "completion"])
def test_status_and_completion_find_lost_bytes_too(pusher: Pusher, first_request: str) -> None:
    data = os.urandom(MIB)
    with pusher.client() as client:
        location, upload_uuid = _begin(client, pusher.repo)
        assert client.patch(location, content=data).status_code == 202
        _lose_recorded_bytes(pusher.live, upload_uuid, 10)
        if first_request == "status":
            answer = client.get(location)
        else:
            answer = client.put(location, params={"digest": sha256(data)})
        assert answer.status_code == 404
        assert answer.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
        assert client.head(f"/v2/{pusher.repo}/blobs/{sha256(data)}").status_code == 404
    _assert_session_gone(pusher, upload_uuid)


def test_two_requests_appending_to_one_session_never_mix(pusher: Pusher) -> None:
    slow = os.urandom(16 * MIB)
    fast = os.urandom(1024)
    with pusher.client() as client:
        location, upload_uuid = _begin(client, pusher.repo)
    sock = _start_request(
        pusher.live,
        pusher.token(),
        "PATCH",
        location,
        len(slow),
        {"Content-Range": f"0-{len(slow) - 1}"},
    )
    try:
        sock.sendall(slow[: 12 * MIB])
        _wait_for_stored(pusher.live.store(), upload_uuid, 8 * MIB)
        with pusher.client() as client:
            second = client.patch(
                location, content=fast, headers={"Content-Range": f"0-{len(fast) - 1}"}
            )
        sock.sendall(slow[12 * MIB :])
        first_status = _response_status(sock)
    finally:
        sock.close()
    # Local storage refuses the second writer while the first holds the file; S3 lets both
    # write their own parts and records whichever finishes first. Never both, never a blend.
    statuses = sorted([first_status, second.status_code])
    assert statuses == [202, 400], (first_status, second.text)
    winner = slow if first_status == 202 else fast
    with pusher.client() as client:
        done = client.put(location, params={"digest": sha256(winner)})
        assert done.status_code == 201, done.text
    _assert_pulls_back(pusher, winner)
    _assert_session_gone(pusher, upload_uuid)
