"""The /v2 protocol with httpx, one workflow or error path at a time."""

from __future__ import annotations

import json
import os
import socket
import struct
import time

import pytest

from cargohold.db.models.audit import LogEntry
from cargohold.db.models.registry import BlobUpload, Tag
from cargohold.domain import repositories
from tests.support.accounts import unique
from tests.support.registry import (
    DOCKER_MANIFEST,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    make_image,
    make_index,
    make_repository,
    pull_push,
    push_blob,
    push_image,
    sha256,
    token_for,
    v2_client,
)


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["errors"][0]["code"] == code, body
    return body["errors"][0]


def _start(client, repo: str) -> str:
    response = client.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202, response.text
    assert response.headers["docker-upload-uuid"]
    return response.headers["location"]


def test_monolithic_and_chunked_uploads(pusher, repo):
    data = b"0123456789" * 1000
    digest = push_blob(pusher, repo, data)
    head = pusher.head(f"/v2/{repo}/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(data))
    assert head.headers["docker-content-digest"] == digest

    chunked = b"abcdefghij" * 700
    location = _start(pusher, repo)
    for start in range(0, len(chunked), 3000):
        piece = chunked[start : start + 3000]
        response = pusher.patch(
            location,
            content=piece,
            headers={
                "Content-Range": f"{start}-{start + len(piece) - 1}",
                "Content-Type": "application/octet-stream",
            },
        )
        assert response.status_code == 202, response.text
        assert response.headers["range"] == f"0-{start + len(piece) - 1}"
        location = response.headers["location"]
    status = pusher.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == f"0-{len(chunked) - 1}"
    done = pusher.put(location, params={"digest": sha256(chunked)})
    assert done.status_code == 201
    assert done.headers["location"] == f"/v2/{repo}/blobs/{sha256(chunked)}"
    assert pusher.get(f"/v2/{repo}/blobs/{sha256(chunked)}").content == chunked
    assert pusher.get(location).status_code == 404


def test_put_with_final_chunk_and_post_then_put(pusher, repo):
    data = b"final chunk body"
    location = _start(pusher, repo)
    response = pusher.put(location, params={"digest": sha256(data)}, content=data)
    assert response.status_code == 201
    assert pusher.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_out_of_order_and_repeated_chunks_get_416(pusher, repo):
    location = _start(pusher, repo)
    first = pusher.patch(location, content=b"aaaa", headers={"Content-Range": "0-3"})
    assert first.status_code == 202
    repeated = pusher.patch(location, content=b"aaaa", headers={"Content-Range": "0-3"})
    assert repeated.status_code == 416
    assert repeated.headers["range"] == "0-3"
    assert repeated.headers["location"] == location
    assert location.endswith(repeated.headers["docker-upload-uuid"])
    gap = pusher.patch(location, content=b"bbbb", headers={"Content-Range": "10-13"})
    assert gap.status_code == 416
    wrong_length = pusher.patch(location, content=b"bb", headers={"Content-Range": "4-7"})
    assert wrong_length.status_code == 416
    assert pusher.get(location).headers["range"] == "0-3"
    good = pusher.patch(location, content=b"bbbb", headers={"Content-Range": "4-7"})
    assert good.status_code == 202
    assert pusher.put(location, params={"digest": sha256(b"aaaabbbb")}).status_code == 201


def test_digest_errors(pusher, repo, server):
    location = _start(pusher, repo)
    pusher.patch(location, content=b"some bytes")
    _error(pusher.put(location), 400, "DIGEST_INVALID")
    _error(pusher.put(location, params={"digest": "sha256:nothex"}), 400, "DIGEST_INVALID")
    mismatch = pusher.put(location, params={"digest": sha256(b"other bytes")})
    _error(mismatch, 400, "DIGEST_INVALID")
    # The session is gone and nothing became a blob.
    _error(pusher.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert pusher.head(f"/v2/{repo}/blobs/{sha256(b'other bytes')}").status_code == 404
    monolithic = pusher.post(
        f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(b"x")}, content=b"y"
    )
    _error(monolithic, 400, "DIGEST_INVALID")
    _error(pusher.get(f"/v2/{repo}/blobs/md5:abc"), 400, "DIGEST_INVALID")
    with server.db() as session:
        uuid = location.rsplit("/", 1)[1]
        assert session.query(BlobUpload).filter_by(uuid=uuid).count() == 0


def test_unknown_things(pusher, repo, owner, server):
    missing = sha256(b"never pushed")
    _error(pusher.get(f"/v2/{repo}/blobs/{missing}"), 404, "BLOB_UNKNOWN")
    _error(pusher.get(f"/v2/{repo}/manifests/{missing}"), 404, "MANIFEST_UNKNOWN")
    _error(pusher.get(f"/v2/{repo}/manifests/nosuchtag"), 404, "MANIFEST_UNKNOWN")
    _error(
        pusher.patch(
            f"/v2/{repo}/blobs/uploads/00000000-0000-0000-0000-000000000000", content=b"x"
        ),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    _error(pusher.get(f"/v2/{repo}/blobs/uploads/not-a-uuid"), 404, "BLOB_UPLOAD_UNKNOWN")
    _error(pusher.delete(f"/v2/{repo}/blobs/{missing}"), 404, "BLOB_UNKNOWN")
    _error(pusher.delete(f"/v2/{repo}/manifests/nosuchtag"), 404, "MANIFEST_UNKNOWN")
    # The namespace owner learns that a repository does not exist.
    ghost = f"{owner.username}/{unique('ghost')}"
    token = token_for(server, (owner.username, owner.password), f"repository:{ghost}:pull")
    with v2_client(server, token) as client:
        _error(client.get(f"/v2/{ghost}/tags/list"), 404, "NAME_UNKNOWN")
    _error(pusher.get("/v2/UPPER/case/tags/list"), 400, "NAME_INVALID")


def test_manifest_errors(pusher, repo):
    image = make_image()
    for blob in image.blobs:
        push_blob(pusher, repo, blob.data)
    headers = {"Content-Type": OCI_MANIFEST}
    _error(
        pusher.put(f"/v2/{repo}/manifests/bad", content=b"{not json", headers=headers),
        400,
        "MANIFEST_INVALID",
    )
    unknown_layer = json.loads(image.manifest)
    unknown_layer["layers"][0]["digest"] = sha256(b"missing layer")
    error = _error(
        pusher.put(f"/v2/{repo}/manifests/bad", content=json.dumps(unknown_layer), headers=headers),
        400,
        "MANIFEST_BLOB_UNKNOWN",
    )
    assert error["detail"]["digest"] == sha256(b"missing layer")
    wrong_size = json.loads(image.manifest)
    wrong_size["layers"][0]["size"] += 1
    _error(
        pusher.put(f"/v2/{repo}/manifests/bad", content=json.dumps(wrong_size), headers=headers),
        400,
        "MANIFEST_INVALID",
    )
    unsupported = pusher.put(
        f"/v2/{repo}/manifests/bad",
        content=image.manifest,
        headers={"Content-Type": "application/vnd.example.unknown+json"},
    )
    _error(unsupported, 415, "MANIFEST_INVALID")
    schema1 = pusher.put(
        f"/v2/{repo}/manifests/bad",
        content=json.dumps({"schemaVersion": 1, "name": repo, "tag": "bad", "fsLayers": []}),
        headers={"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"},
    )
    assert _error(schema1, 415, "MANIFEST_INVALID")["detail"] == {
        "message": "manifest schema version not supported"
    }
    mismatched_type = pusher.put(
        f"/v2/{repo}/manifests/bad", content=image.manifest, headers={"Content-Type": OCI_INDEX}
    )
    _error(mismatched_type, 400, "MANIFEST_INVALID")
    wrong_digest = pusher.put(
        f"/v2/{repo}/manifests/{sha256(b'something else')}", content=image.manifest, headers=headers
    )
    _error(wrong_digest, 400, "DIGEST_INVALID")
    _error(
        pusher.put(f"/v2/{repo}/manifests/-bad-tag", content=image.manifest, headers=headers),
        400,
        "TAG_INVALID",
    )
    index = make_index([image])
    _error(
        pusher.put(f"/v2/{repo}/manifests/idx", content=index, headers={"Content-Type": OCI_INDEX}),
        400,
        "MANIFEST_BLOB_UNKNOWN",
    )
    assert pusher.get(f"/v2/{repo}/tags/list").json()["tags"] == []


def test_manifest_by_tag_digest_head_and_delete(pusher, repo, server):
    image = make_image(docker=True)
    response = push_image(pusher, repo, image, "v1")
    assert response.status_code == 201
    assert response.headers["docker-content-digest"] == image.digest
    got = pusher.get(f"/v2/{repo}/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert got.headers["content-type"] == DOCKER_MANIFEST
    assert got.content == image.manifest
    head = pusher.head(f"/v2/{repo}/manifests/{image.digest}")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(image.manifest))
    assert head.headers["docker-content-digest"] == image.digest
    assert pusher.delete(f"/v2/{repo}/manifests/v1").status_code == 202
    expired = _error(pusher.get(f"/v2/{repo}/manifests/v1"), 404, "TAG_EXPIRED")
    assert "was deleted or has expired" in expired["message"]
    _error(pusher.get(f"/v2/{repo}/manifests/{image.digest}"), 404, "MANIFEST_UNKNOWN")
    with server.db() as session:
        kinds = [entry.kind for entry in session.query(LogEntry).all()]
        repository = repositories.find_repository(session, *repo.split("/", 1))
        rows = session.query(Tag).filter_by(repository_id=repository.id, name="v1").all()
    assert "push_repo" in kinds and "delete_tag" in kinds
    assert rows and all(row.lifetime_end_ms is not None for row in rows)
    # Re-pushing brings it back; deleting by digest ends every tag on it.
    assert push_image(pusher, repo, image, "v1").status_code == 201
    assert push_image(pusher, repo, image, "v2").status_code == 201
    assert pusher.delete(f"/v2/{repo}/manifests/{image.digest}").status_code == 202
    assert pusher.get(f"/v2/{repo}/tags/list").json()["tags"] == []
    _error(pusher.delete(f"/v2/{repo}/manifests/{image.digest}"), 404, "MANIFEST_UNKNOWN")


def test_pull_is_logged(pusher, repo, server):
    image = make_image()
    push_image(pusher, repo, image, "logged")
    assert pusher.get(f"/v2/{repo}/manifests/logged").status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with server.db() as session:
            pulls = session.query(LogEntry).filter_by(kind="pull_repo").all()
            if any(json.loads(entry.metadata_json).get("tag") == "logged" for entry in pulls):
                return
        time.sleep(0.2)
    pytest.fail("no pull_repo entry was written")


def test_index_push_by_digest_then_tag(pusher, repo):
    images = [make_image(arch=arch) for arch in ("amd64", "arm64")]
    for image in images:
        assert push_image(pusher, repo, image, image.digest).status_code == 201
    index = make_index(images)
    response = pusher.put(
        f"/v2/{repo}/manifests/multi", content=index, headers={"Content-Type": OCI_INDEX}
    )
    assert response.status_code == 201
    assert pusher.get(f"/v2/{repo}/manifests/multi").content == index
    for image in images:
        assert pusher.get(f"/v2/{repo}/manifests/{image.digest}").content == image.manifest


def test_blob_range_requests(pusher, repo):
    data = bytes(range(256)) * 40
    digest = push_blob(pusher, repo, data)
    partial = pusher.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert partial.status_code == 206
    assert partial.content == data[10:20]
    assert partial.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = pusher.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=-5"})
    assert tail.content == data[-5:]
    beyond = pusher.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416


def test_large_blob_pulls_whole_in_part_and_abandoned(pusher, repo, server):
    """Bodies bigger than a socket buffer (sent by sendfile on local storage): whole, a
    window, and a pull the client resets halfway, after which pulls still work."""
    data = os.urandom(24 * 1024 * 1024)
    digest = push_blob(pusher, repo, data)
    whole = pusher.get(f"/v2/{repo}/blobs/{digest}")
    assert whole.status_code == 200
    assert whole.headers["content-length"] == str(len(data))
    assert whole.content == data
    window = pusher.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=5000000-15000099"})
    assert window.status_code == 206
    assert window.content == data[5_000_000:15_000_100]
    request = (
        f"GET /v2/{repo}/blobs/{digest} HTTP/1.1\r\nHost: {server.host}\r\n"
        f"Authorization: {pusher.headers['authorization']}\r\n\r\n"
    )
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(request.encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    again = pusher.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=-7"})
    assert again.status_code == 206
    assert again.content == data[-7:]


def test_blob_delete_and_cancel_upload(pusher, repo):
    digest = push_blob(pusher, repo, b"to be deleted")
    assert pusher.delete(f"/v2/{repo}/blobs/{digest}").status_code == 202
    _error(pusher.get(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    location = _start(pusher, repo)
    pusher.patch(location, content=b"partial")
    assert pusher.delete(location).status_code == 204
    _error(pusher.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


def test_cross_repository_mount(server, owner, pusher, repo):
    digest = push_blob(pusher, repo, b"shared layer " + unique("x").encode())
    target = make_repository(server, owner.username, unique("target"), public=False)
    token = token_for(
        server,
        (owner.username, owner.password),
        pull_push(target),
        f"repository:{repo}:pull",
    )
    with v2_client(server, token) as client:
        mounted = client.post(
            f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": repo}
        )
        assert mounted.status_code == 201
        assert mounted.headers["docker-content-digest"] == digest
        assert client.get(f"/v2/{target}/blobs/{digest}").status_code == 200
    # Without read access to the source the mount falls back to a new upload session.
    other_target = make_repository(server, owner.username, unique("other"), public=False)
    push_only = token_for(server, (owner.username, owner.password), pull_push(other_target))
    with v2_client(server, push_only) as client:
        fallback = client.post(
            f"/v2/{other_target}/blobs/uploads/", params={"mount": digest, "from": repo}
        )
        assert fallback.status_code == 202
        assert client.head(f"/v2/{other_target}/blobs/{digest}").status_code == 404


def test_tags_list_paging(pusher, repo):
    image = make_image()
    names = ["b", "a", "d", "c", "e"]
    for name in names:
        assert push_image(pusher, repo, image, name).status_code == 201
    full = pusher.get(f"/v2/{repo}/tags/list")
    assert full.json() == {"name": repo, "tags": sorted(names)}
    page = pusher.get(f"/v2/{repo}/tags/list", params={"n": 2})
    assert page.json()["tags"] == ["a", "b"]
    assert page.headers["link"] == f'</v2/{repo}/tags/list?n=2&last=b>; rel="next"'
    rest = pusher.get(f"/v2/{repo}/tags/list", params={"n": 10, "last": "b"})
    assert rest.json()["tags"] == ["c", "d", "e"]
    assert "link" not in rest.headers
    assert pusher.get(f"/v2/{repo}/tags/list", params={"n": 0}).json()["tags"] == []


def test_artifacts_and_referrers(pusher, repo):
    subject = make_image()
    assert push_image(pusher, repo, subject, "subject").status_code == 201
    empty = push_blob(pusher, repo, b"{}")
    signature = push_blob(pusher, repo, b"signature bytes")
    sbom = push_blob(pusher, repo, b"sbom bytes")

    def artifact(kind: str, layer: str, size: int) -> bytes:
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": kind,
                "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2},
                "layers": [
                    {"mediaType": "application/octet-stream", "digest": layer, "size": size}
                ],
                "subject": {
                    "mediaType": OCI_MANIFEST,
                    "digest": subject.digest,
                    "size": len(subject.manifest),
                },
                "annotations": {"kind": kind},
            }
        ).encode()

    pushed = {}
    for kind, layer, size in (
        ("application/vnd.example.sig", signature, 15),
        ("application/vnd.example.sbom", sbom, 10),
    ):
        body = artifact(kind, layer, size)
        response = pusher.put(
            f"/v2/{repo}/manifests/{sha256(body)}",
            content=body,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert response.status_code == 201
        assert response.headers["oci-subject"] == subject.digest
        pushed[kind] = sha256(body)
    listing = pusher.get(f"/v2/{repo}/referrers/{subject.digest}")
    assert listing.status_code == 200
    assert listing.headers["content-type"] == OCI_INDEX
    found = {entry["artifactType"]: entry for entry in listing.json()["manifests"]}
    assert {kind: entry["digest"] for kind, entry in found.items()} == pushed
    assert found["application/vnd.example.sig"]["annotations"] == {
        "kind": "application/vnd.example.sig"
    }
    filtered = pusher.get(
        f"/v2/{repo}/referrers/{subject.digest}",
        params={"artifactType": "application/vnd.example.sbom"},
    )
    assert filtered.headers["oci-filters-applied"] == "artifactType"
    assert [m["digest"] for m in filtered.json()["manifests"]] == [
        pushed["application/vnd.example.sbom"]
    ]
    nothing = pusher.get(f"/v2/{repo}/referrers/{sha256(b'no subject')}")
    assert nothing.status_code == 200 and nothing.json()["manifests"] == []
    _error(pusher.get(f"/v2/{repo}/referrers/notadigest"), 400, "DIGEST_INVALID")
