"""Concurrent pushes, interrupted uploads and uploads that outlive the server process."""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import threading

import httpx
import pytest

from cargohold.db.models.registry import Blob, BlobUpload, RepositoryBlob, Tag
from cargohold.domain import repositories
from tests.support.accounts import create_user, unique
from tests.support.registry import (
    make_image,
    make_repository,
    pull_push,
    push_blob,
    push_image,
    sha256,
    token_for,
    v2_client,
)


def _together(*actions):
    """Run the callables at the same moment; re-raise the first failure."""
    barrier = threading.Barrier(len(actions))
    results: list = [None] * len(actions)
    errors: list[BaseException] = []

    def runner(index, action):
        try:
            barrier.wait()
            results[index] = action()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_two_clients_push_the_same_blob_and_tag(server, owner, repo):
    token = token_for(server, (owner.username, owner.password), pull_push(repo))
    data = os.urandom(3 * 1024 * 1024)
    first, second = make_image(), make_image()
    with v2_client(server, token) as a, v2_client(server, token) as b:
        digests = _together(lambda: push_blob(a, repo, data), lambda: push_blob(b, repo, data))
        assert digests == [sha256(data), sha256(data)]
        assert a.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data
        for round_ in range(3):
            responses = _together(
                lambda: push_image(a, repo, first, "race"),
                lambda: push_image(b, repo, second, "race"),
            )
            assert [r.status_code for r in responses] == [201, 201], round_
            winner = a.get(f"/v2/{repo}/manifests/race").content
            assert winner in (first.manifest, second.manifest)
    with server.db() as session:
        assert session.query(Blob).filter_by(digest=sha256(data)).count() == 1
        repository = repositories.find_repository(session, *repo.split("/", 1))
        rows = session.query(Tag).filter_by(repository_id=repository.id, name="race").all()
        alive = [row for row in rows if row.lifetime_end_ms is None]
        assert len(alive) == 1
        assert winner == (
            first.manifest if alive[0].manifest.digest == first.digest else second.manifest
        )


def _post_then_put(client: httpx.Client, repo: str, data: bytes) -> int:
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202, started.text
    done = client.put(started.headers["location"], params={"digest": sha256(data)}, content=data)
    return done.status_code


def test_the_same_blob_completed_into_two_repositories_at_once(server, owner):
    """Both PUTs race to create the blob's row and each links it: one row, two links."""
    repos = [make_repository(server, owner.username, unique("twin"), public=False) for _ in "ab"]
    token = token_for(server, (owner.username, owner.password), *map(pull_push, repos))
    layers = [os.urandom(4096) for _ in range(8)]
    with v2_client(server, token) as a, v2_client(server, token) as b:
        for data in layers:
            statuses = _together(
                functools.partial(_post_then_put, a, repos[0], data),
                functools.partial(_post_then_put, b, repos[1], data),
            )
            assert statuses == [201, 201]
        for repo in repos:
            for data in layers:
                assert a.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data
    with server.db() as session:
        digests = [sha256(data) for data in layers]
        rows = session.query(Blob).filter(Blob.digest.in_(digests)).all()
        assert sorted(row.digest for row in rows) == sorted(digests)
        links = session.query(RepositoryBlob).filter(
            RepositoryBlob.blob_id.in_([row.id for row in rows])
        )
        assert links.count() == 2 * len(layers)
        repo_ids = [repositories.find_repository(session, *r.split("/", 1)).id for r in repos]
        left = session.query(BlobUpload).filter(BlobUpload.repository_id.in_(repo_ids))
        assert left.count() == 0


def test_killed_client_leaves_nothing_visible(server, owner, repo, pusher):
    started = pusher.post(f"/v2/{repo}/blobs/uploads/")
    location = started.headers["location"]
    data = os.urandom(1024 * 1024)
    digest = sha256(data)
    # A client that announces a monolithic body, sends part of it, then dies.
    token = pusher.headers["authorization"]
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        head = (
            f"PUT {location}?digest={digest} HTTP/1.1\r\nHost: {server.host}\r\n"
            f"Authorization: {token}\r\nContent-Length: {len(data)}\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        sock.sendall(head + data[: len(data) // 2])
    assert pusher.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
    status = pusher.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-0"
    with server.db() as session:
        assert session.query(Blob).filter_by(digest=digest).count() == 0
    # The session is still usable from where it really stood.
    done = pusher.put(location, params={"digest": digest}, content=data)
    assert done.status_code == 201
    assert pusher.get(f"/v2/{repo}/blobs/{digest}").content == data


@pytest.fixture
def private_server(server_factory):
    return server_factory()


def test_upload_session_survives_a_server_restart(private_server):
    live = private_server
    user = create_user(live, unique("restart"))
    path = make_repository(live, user.username, unique("repo"), public=False)
    token = token_for(live, (user.username, user.password), pull_push(path))
    data = os.urandom(2 * 1024 * 1024)
    with v2_client(live, token) as client:
        location = client.post(f"/v2/{path}/blobs/uploads/").headers["location"]
        half = len(data) // 2
        first = client.patch(
            location, content=data[:half], headers={"Content-Range": f"0-{half - 1}"}
        )
        assert first.status_code == 202
    live.stop()
    live.start()
    token = token_for(live, (user.username, user.password), pull_push(path))
    with v2_client(live, token) as client:
        assert client.get(location).headers["range"] == f"0-{half - 1}"
        rest = client.patch(
            location, content=data[half:], headers={"Content-Range": f"{half}-{len(data) - 1}"}
        )
        assert rest.status_code == 202
        assert client.put(location, params={"digest": sha256(data)}).status_code == 201
        assert client.get(f"/v2/{path}/blobs/{sha256(data)}").content == data
    with live.db() as session:
        assert session.query(BlobUpload).count() == 0


def _rss_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} missing")


@pytest.mark.slow
def test_two_gib_blob_streams_in_bounded_memory(private_server):
    live = private_server
    user = create_user(live, unique("big"))
    path = make_repository(live, user.username, unique("big"), public=False)
    block = os.urandom(1024 * 1024)
    blocks = 2048
    hasher = hashlib.sha256()
    for _ in range(blocks):
        hasher.update(block)
    digest = "sha256:" + hasher.hexdigest()
    pid = live.process.pid
    before = _rss_kib(pid, "VmRSS")
    token = token_for(live, (user.username, user.password), pull_push(path))
    with v2_client(live, token) as client:
        client.timeout = httpx.Timeout(600)
        response = client.post(
            f"/v2/{path}/blobs/uploads/",
            params={"digest": digest},
            content=(block for _ in range(blocks)),
            headers={"Content-Length": str(len(block) * blocks)},
        )
        assert response.status_code == 201, response.text
        pulled = hashlib.sha256()
        size = 0
        with client.stream("GET", f"/v2/{path}/blobs/{digest}") as stream:
            assert stream.status_code == 200
            for piece in stream.iter_bytes(1024 * 1024):
                pulled.update(piece)
                size += len(piece)
    assert size == len(block) * blocks
    assert "sha256:" + pulled.hexdigest() == digest
    peak = _rss_kib(pid, "VmHWM")
    assert peak - before < 64 * 1024, f"RSS grew by {(peak - before) // 1024} MiB"
