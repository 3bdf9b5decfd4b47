"""The OCI distribution-spec conformance workflows (pull, push, content discovery, content
management), replayed with httpx the way the official suite drives a registry: basic credentials
exchanged for a token through the Bearer challenge, pushing into the user's own namespace with the
repository created on first push."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.support.accounts import create_user, unique
from tests.support.registry import (
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    pull_push,
    sha256,
    token_for,
    v2_client,
)
from tests.support.server import LiveServer

if TYPE_CHECKING:
    from tests.support.accounts import TestUser

DUMMY_DIGEST = "sha256:" + "0" * 64
ERROR_CODES = {
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
}


class ChallengeAuth(httpx.Auth):
    """Answers a registry's Bearer challenge with basic credentials, like the suite's client."""

    def __init__(self, username: str, password: str) -> None:
        self.basic = httpx.BasicAuth(username, password)

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        response = yield request
        challenge = response.headers.get("www-authenticate", "")
        if response.status_code != 401 or not challenge.lower().startswith("bearer "):
            return
        params = dict(
            (key.strip(), value.strip('"'))
            for key, value in parse_qsl(challenge[7:].replace('",', '"&'), keep_blank_values=True)
        )
        token_request = httpx.Request(
            "GET",
            params.pop("realm"),
            params={key: value for key, value in params.items() if value},
        )
        token_response = yield next(self.basic.auth_flow(token_request))
        token_response.read()
        assert token_response.status_code == 200, token_response.text
        request.headers["Authorization"] = f"Bearer {token_response.json()['token']}"
        yield request


@pytest.fixture(scope="module")
def checker(server: LiveServer) -> TestUser:
    return create_user(server, unique("oci"))


@pytest.fixture
def namespace(checker: TestUser) -> str:
    """OCI_NAMESPACE: a repository the checker owns but that does not exist before the run."""
    return f"{checker.username}/{unique('conformance')}"


@pytest.fixture
def client(server: LiveServer, checker: TestUser) -> Iterator[httpx.Client]:
    auth = ChallengeAuth(checker.username, checker.password)
    with httpx.Client(base_url=server.url, auth=auth, timeout=60) as http:
        yield http


def _location(response: httpx.Response) -> str:
    location = response.headers.get("location")
    assert location, (response.status_code, response.headers)
    return location


def _path(location: str) -> str:
    """The suite compares locations after dropping scheme and host."""
    return urlsplit(location).path


def _upload(client: httpx.Client, name: str, data: bytes) -> str:
    start = client.post(f"/v2/{name}/blobs/uploads/")
    assert start.status_code == 202, start.text
    digest = sha256(data)
    done = client.put(
        _location(start),
        params={"digest": digest},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert done.status_code == 201, done.text
    _location(done)
    return digest


def _descriptor(media_type: str, data: bytes) -> dict:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data)}


def _manifest(config: bytes, layers: list[bytes], **extra) -> bytes:
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": _descriptor(OCI_CONFIG, config),
        "layers": [_descriptor(OCI_LAYER, layer) for layer in layers],
        **extra,
    }
    return json.dumps(body).encode()


def _put_manifest(client: httpx.Client, name: str, reference: str, body: bytes):
    return client.put(
        f"/v2/{name}/manifests/{reference}",
        content=body,
        headers={"Content-Type": OCI_MANIFEST},
    )


def _assert_error(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in statuses, response.text
    errors = response.json()["errors"]
    assert errors and errors[0]["code"] in ERROR_CODES, errors


def _image(client: httpx.Client, name: str) -> tuple[bytes, bytes, bytes]:
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()
    layer = unique("layer").encode() * 50
    _upload(client, name, config)
    _upload(client, name, layer)
    return config, layer, _manifest(config, [layer])


def test_base_route_challenges_then_accepts_token(server: LiveServer, client: httpx.Client):
    bare = httpx.get(f"{server.url}/v2/", timeout=30)
    assert bare.status_code == 401
    assert bare.headers["www-authenticate"].startswith("Bearer realm=")
    assert client.get("/v2/").status_code == 200


def test_pull(client: httpx.Client, namespace: str):
    config, layer, manifest = _image(client, namespace)
    assert _put_manifest(client, namespace, "tagtest0", manifest).status_code == 201
    digest = sha256(manifest)
    tags = client.get(f"/v2/{namespace}/tags/list")
    assert tags.status_code == 200
    assert tags.json() == {"name": namespace, "tags": ["tagtest0"]}

    missing = client.head(f"/v2/{namespace}/blobs/{DUMMY_DIGEST}")
    assert missing.status_code == 404
    assert missing.content == b""
    head = client.head(f"/v2/{namespace}/blobs/{sha256(config)}")
    assert head.status_code == 200
    assert head.headers["docker-content-digest"] == sha256(config)
    assert head.headers["content-length"] == str(len(config))
    assert head.content == b""
    assert client.get(f"/v2/{namespace}/blobs/{DUMMY_DIGEST}").status_code == 404
    blob = client.get(f"/v2/{namespace}/blobs/{sha256(layer)}")
    assert blob.status_code == 200
    assert blob.content == layer
    ranged = client.get(f"/v2/{namespace}/blobs/{sha256(layer)}", headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206
    assert ranged.content == layer[:10]

    accept = {"Accept": OCI_MANIFEST}
    assert client.head(f"/v2/{namespace}/manifests/nonexistent", headers=accept).status_code == 404
    for reference in (digest, "tagtest0"):
        head = client.head(f"/v2/{namespace}/manifests/{reference}", headers=accept)
        assert head.status_code == 200
        assert head.headers["docker-content-digest"] == digest
        assert head.headers["content-length"] == str(len(manifest))
        assert head.content == b""
        got = client.get(f"/v2/{namespace}/manifests/{reference}", headers=accept)
        assert got.status_code == 200
        assert got.content == manifest
        assert got.headers["content-type"] == OCI_MANIFEST
        assert got.headers["docker-content-digest"] == digest
    _assert_error(client.get(f"/v2/{namespace}/manifests/nonexistent", headers=accept), 404)

    invalid = client.put(
        f"/v2/{namespace}/manifests/sha256:totallywrong",
        content=b'{"schemaVersion": 2, "config": "nope"',
        headers={"Content-Type": OCI_MANIFEST},
    )
    _assert_error(invalid, 400, 404)

    # Teardown in the suite's default order: blobs first, then the manifest.
    for blob_digest in (sha256(config), sha256(layer)):
        deleted = client.delete(f"/v2/{namespace}/blobs/{blob_digest}")
        assert deleted.status_code in (202, 405), deleted.text
    assert client.delete(f"/v2/{namespace}/manifests/{digest}").status_code == 202


def test_push_streamed_monolithic_and_chunked(client: httpx.Client, namespace: str):
    assert client.get(f"/v2/{namespace}/blobs/{DUMMY_DIGEST}").status_code == 404

    # Streamed: POST, PATCH without Content-Range, then PUT with the digest and no body.
    blob_a = b"streamed blob " * 300
    start = client.post(f"/v2/{namespace}/blobs/uploads/")
    assert start.status_code == 202
    patched = client.patch(
        _location(start), content=blob_a, headers={"Content-Type": "application/octet-stream"}
    )
    assert patched.status_code == 202, patched.text
    assert patched.headers["range"] == f"0-{len(blob_a) - 1}"
    closed = client.put(
        _location(patched),
        params={"digest": sha256(blob_a)},
        headers={"Content-Type": "application/octet-stream", "Content-Length": "0"},
    )
    assert closed.status_code == 201, closed.text
    assert closed.headers["docker-content-digest"] == sha256(blob_a)
    _location(closed)

    # Monolithic in the POST itself.
    config = b'{"mediaType": "monolithic"}'
    single = client.post(
        f"/v2/{namespace}/blobs/uploads/",
        params={"digest": sha256(config)},
        content=config,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert single.status_code in (201, 202), single.text
    _location(single)
    if single.status_code == 202:
        finish = client.put(
            _location(single),
            params={"digest": sha256(config)},
            content=config,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert finish.status_code == 201, finish.text
    assert client.get(f"/v2/{namespace}/blobs/{sha256(config)}").content == config

    # Monolithic POST then PUT.
    assert _upload(client, namespace, b"put body") == sha256(b"put body")
    assert client.get(f"/v2/{namespace}/blobs/{sha256(b'put body')}").status_code == 200

    # Chunked, with the last chunk carried by the closing PUT.
    blob_b = b"chunky" * 1000
    chunk1, chunk2 = blob_b[:2000], blob_b[2000:]
    range1 = f"0-{len(chunk1) - 1}"
    range2 = f"{len(chunk1)}-{len(blob_b) - 1}"
    start = client.post(f"/v2/{namespace}/blobs/uploads/", headers={"Content-Length": "0"})
    out_of_order = client.patch(
        _location(start),
        content=chunk2,
        headers={"Content-Type": "application/octet-stream", "Content-Range": range2},
    )
    assert out_of_order.status_code == 416, out_of_order.text

    start = client.post(f"/v2/{namespace}/blobs/uploads/", headers={"Content-Length": "0"})
    first = client.patch(
        _location(start),
        content=chunk1,
        headers={"Content-Type": "application/octet-stream", "Content-Range": range1},
    )
    assert first.status_code == 202, first.text
    assert first.headers["range"] == range1
    status = client.get(_location(first))
    assert status.status_code == 204
    assert status.headers["range"] == range1
    _location(status)
    retry = client.patch(
        _location(first),
        content=chunk1,
        headers={"Content-Type": "application/octet-stream", "Content-Range": range1},
    )
    assert retry.status_code == 416, retry.text
    final = client.put(
        _location(first),
        params={"digest": sha256(blob_b)},
        content=chunk2,
        headers={"Content-Type": "application/octet-stream", "Content-Range": range2},
    )
    assert final.status_code == 201, final.text
    _location(final)
    assert client.get(f"/v2/{namespace}/blobs/{sha256(blob_b)}").content == blob_b


def test_push_cross_mount(
    server: LiveServer, client: httpx.Client, namespace: str, checker: TestUser
):
    layer = b"mount me" * 100
    digest = _upload(client, namespace, layer)
    other = f"{checker.username}/{unique('crossmount')}"

    # Without `from`, an unknown digest starts a regular upload session.
    unknown = client.post(f"/v2/{other}/blobs/uploads/", params={"mount": DUMMY_DIGEST})
    assert unknown.status_code == 202, unknown.text
    assert _path(_location(unknown)).startswith(f"/v2/{other}/blobs/uploads/")

    # The suite accepts 201 or 202 here. The challenge only names the target repository, so the
    # token carries no pull on `from` and cargohold, like Quay, falls back to an upload session.
    suite_mount = client.post(
        f"/v2/{other}/blobs/uploads/", params={"mount": digest, "from": namespace}
    )
    assert suite_mount.status_code == 202, suite_mount.text
    assert _path(_location(suite_mount)).startswith(f"/v2/{other}/blobs/uploads/")

    # A client that asks for both scopes up front (as docker and podman do) gets the mount.
    token = token_for(
        server,
        (checker.username, checker.password),
        pull_push(other),
        f"repository:{namespace}:pull",
    )
    with v2_client(server, token) as scoped:
        mounted = scoped.post(
            f"/v2/{other}/blobs/uploads/", params={"mount": digest, "from": namespace}
        )
        assert mounted.status_code == 201, mounted.text
        assert _path(_location(mounted)) == f"/v2/{other}/blobs/{digest}"
        assert mounted.headers["docker-content-digest"] == digest
        assert scoped.get(_location(mounted)).content == layer

    fallback = client.post(
        f"/v2/{other}/blobs/uploads/", params={"mount": DUMMY_DIGEST, "from": namespace}
    )
    assert fallback.status_code == 202, fallback.text
    assert _path(_location(fallback)).startswith(f"/v2/{other}/blobs/uploads/")


def test_push_manifests(client: httpx.Client, namespace: str):
    config = json.dumps({"architecture": "amd64", "os": "linux", "author": unique("a")}).encode()
    layer = unique("layer").encode() * 50
    empty = b"{}"
    for blob in (config, layer, empty):
        _upload(client, namespace, blob)
    # The suite's config descriptor inlines the config as `data` and adds an unknown field.
    config_descriptor = {
        **_descriptor(OCI_CONFIG, config),
        "data": base64.b64encode(config).decode(),
        "newUnspecifiedField": base64.b64encode(b"hello world").decode(),
    }
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_descriptor,
            "layers": [_descriptor(OCI_LAYER, layer)],
        },
        indent="\t",
    ).encode()
    digest = sha256(manifest)
    assert client.get(f"/v2/{namespace}/manifests/.INVALID_MANIFEST_NAME").status_code == 404
    for tag in ("test0", "test1", "test2", "test3"):
        put = _put_manifest(client, namespace, tag, manifest)
        assert put.status_code == 201, put.text
        assert put.headers["docker-content-digest"] == digest
        _location(put)
    got = client.get(f"/v2/{namespace}/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
    assert got.status_code == 200
    assert got.content == manifest

    empty_layer = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(OCI_CONFIG, config),
            "layers": [_descriptor(OCI_EMPTY, empty)],
        }
    ).encode()
    put = _put_manifest(client, namespace, "emptylayer", empty_layer)
    assert put.status_code == 201, put.text

    config_type = _manifest(config, [layer])
    config_type = json.dumps(
        {**json.loads(config_type), "config": _descriptor("application/vnd.nhl.bagel", empty)}
    ).encode()
    artifact_type = json.dumps(
        {
            **json.loads(_manifest(config, [layer])),
            "artifactType": "application/vnd.food.stand",
            "config": _descriptor(OCI_EMPTY, empty),
        }
    ).encode()
    for body in (config_type, artifact_type):
        put = _put_manifest(client, namespace, sha256(body), body)
        assert put.status_code == 201, put.text

    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "artifactType": "application/vnd.food.stand.index",
            "manifests": [_descriptor(OCI_MANIFEST, manifest)],
            "annotations": {"org.opencontainers.conformance.test": "test index"},
        }
    ).encode()
    nested = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [_descriptor(OCI_INDEX, index)],
        }
    ).encode()
    for body in (index, nested):
        put = client.put(
            f"/v2/{namespace}/manifests/{sha256(body)}",
            content=body,
            headers={"Content-Type": OCI_INDEX},
        )
        assert put.status_code == 201, put.text

    dangling = json.dumps(
        {
            **json.loads(_manifest(config, [layer])),
            "subject": {"mediaType": OCI_MANIFEST, "digest": DUMMY_DIGEST, "size": 123},
        }
    ).encode()
    put = _put_manifest(client, namespace, sha256(dangling), dangling)
    assert put.status_code == 201, put.text
    assert put.headers["oci-subject"] == DUMMY_DIGEST

    missing_blob = _manifest(b"never pushed", [])
    _assert_error(_put_manifest(client, namespace, "broken", missing_blob), 400, 404)
    invalid = client.put(
        f"/v2/{namespace}/manifests/sha256:totallywrong",
        content=b"blablabla",
        headers={"Content-Type": OCI_MANIFEST},
    )
    _assert_error(invalid, 400, 404)

    # Teardown in the suite's default order: blobs first, then the manifests.
    for blob in (config, layer, empty):
        deleted = client.delete(f"/v2/{namespace}/blobs/{sha256(blob)}")
        assert deleted.status_code in (202, 404, 405), deleted.text
    for reference in (digest, sha256(empty_layer)):
        assert client.delete(f"/v2/{namespace}/manifests/{reference}").status_code == 202


def test_content_discovery(client: httpx.Client, namespace: str):
    _config, _layer, manifest = _image(client, namespace)
    tags = sorted(f"tag{i}" for i in range(1, 5))
    for tag in tags:
        assert _put_manifest(client, namespace, tag, manifest).status_code == 201

    listed = client.get(f"/v2/{namespace}/tags/list")
    assert listed.status_code == 200
    assert listed.json()["tags"] == tags
    first = client.get(f"/v2/{namespace}/tags/list", params={"n": 2})
    assert first.json()["tags"] == tags[:2]
    link = first.headers["link"]
    assert 'rel="next"' in link and "last=" in link
    rest = client.get(f"/v2/{namespace}/tags/list", params={"n": 2, "last": tags[1]})
    assert rest.json()["tags"] == tags[2:]
    after = client.get(f"/v2/{namespace}/tags/list", params={"last": tags[0]})
    assert after.json()["tags"] == tags[1:]
    zero = client.get(f"/v2/{namespace}/tags/list", params={"n": 0})
    assert zero.status_code == 200
    assert zero.json()["tags"] == []

    # Referrers: two artifacts whose subject is the image manifest, one index.
    subject = _descriptor(OCI_MANIFEST, manifest)
    empty = b"{}"
    _upload(client, namespace, empty)
    artifact_layer = b"signature payload"
    _upload(client, namespace, artifact_layer)
    referrer_a = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.nhl.peanut.butter.bagel",
            "config": _descriptor(OCI_EMPTY, empty),
            "layers": [_descriptor("application/vnd.nhl.peanut.butter.bagel", artifact_layer)],
            "subject": subject,
            "annotations": {"org.opencontainers.conformance": "a"},
        }
    ).encode()
    referrer_b = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {**_descriptor("application/vnd.food.stand", empty)},
            "layers": [_descriptor(OCI_EMPTY, empty)],
            "subject": subject,
        }
    ).encode()
    _upload(client, namespace, empty)
    for body in (referrer_a, referrer_b):
        put = _put_manifest(client, namespace, sha256(body), body)
        assert put.status_code == 201, put.text
        assert put.headers["oci-subject"] == sha256(manifest)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "artifactType": "application/vnd.food.stand.index",
            "manifests": [_descriptor(OCI_MANIFEST, manifest)],
            "subject": subject,
        }
    ).encode()
    put = client.put(
        f"/v2/{namespace}/manifests/{sha256(index)}",
        content=index,
        headers={"Content-Type": OCI_INDEX},
    )
    assert put.status_code == 201, put.text
    assert put.headers["oci-subject"] == sha256(manifest)

    referrers = client.get(f"/v2/{namespace}/referrers/{sha256(manifest)}")
    assert referrers.status_code == 200
    assert referrers.headers["content-type"] == OCI_INDEX
    body = referrers.json()
    assert body["schemaVersion"] == 2 and body["mediaType"] == OCI_INDEX
    found = {entry["digest"]: entry for entry in body["manifests"]}
    assert set(found) == {sha256(referrer_a), sha256(referrer_b), sha256(index)}
    assert found[sha256(referrer_a)]["artifactType"] == "application/vnd.nhl.peanut.butter.bagel"
    assert found[sha256(referrer_a)]["annotations"] == {"org.opencontainers.conformance": "a"}
    assert found[sha256(referrer_b)]["artifactType"] == "application/vnd.food.stand"
    assert found[sha256(referrer_a)]["size"] == len(referrer_a)

    filtered = client.get(
        f"/v2/{namespace}/referrers/{sha256(manifest)}",
        params={"artifactType": "application/vnd.food.stand"},
    )
    assert filtered.status_code == 200
    assert filtered.headers["oci-filters-applied"] == "artifactType"
    assert [entry["digest"] for entry in filtered.json()["manifests"]] == [sha256(referrer_b)]

    nothing = client.get(f"/v2/{namespace}/referrers/{DUMMY_DIGEST}")
    assert nothing.status_code == 200
    assert nothing.json()["manifests"] == []
    assert nothing.headers["content-type"] == OCI_INDEX


def test_whole_tag_list_is_sorted_and_shows_only_alive_visible_tags(
    client: httpx.Client, namespace: str
):
    config, layer, manifest = _image(client, namespace)
    names = ["b", "A", "a.1", "a-1", "a_1", "10", "9", "Z-last", "gone"]
    for tag in names:
        assert _put_manifest(client, namespace, tag, manifest).status_code == 201
    # Kept by a hidden tag, which no listing shows.
    by_digest = _manifest(config, [layer], annotations={"pushed": "by digest"})
    assert _put_manifest(client, namespace, sha256(by_digest), by_digest).status_code == 201
    assert client.delete(f"/v2/{namespace}/manifests/gone").status_code == 202

    listed = client.get(f"/v2/{namespace}/tags/list")
    assert listed.status_code == 200
    assert listed.headers["content-type"].startswith("application/json")
    alive = sorted(name for name in names if name != "gone")
    assert listed.json() == {"name": namespace, "tags": alive}
    paged = client.get(f"/v2/{namespace}/tags/list", params={"n": 100}).json()["tags"]
    assert paged == alive


def test_content_management(client: httpx.Client, namespace: str):
    config, layer, manifest = _image(client, namespace)
    digest = sha256(manifest)
    for tag in ("tagtest0", "tagtest1"):
        assert _put_manifest(client, namespace, tag, manifest).status_code == 201

    # Tag deletion removes one name and leaves the manifest and the other tag.
    deleted = client.delete(f"/v2/{namespace}/manifests/tagtest0")
    assert deleted.status_code == 202, deleted.text
    assert client.get(f"/v2/{namespace}/manifests/tagtest0").status_code == 404
    assert client.get(f"/v2/{namespace}/tags/list").json()["tags"] == ["tagtest1"]
    assert client.get(f"/v2/{namespace}/manifests/{digest}").status_code == 200

    # Manifest deletion by digest takes its remaining tags with it.
    deleted = client.delete(f"/v2/{namespace}/manifests/{digest}")
    assert deleted.status_code == 202, deleted.text
    assert client.get(f"/v2/{namespace}/manifests/{digest}").status_code == 404
    tags = client.get(f"/v2/{namespace}/tags/list")
    assert tags.status_code in (200, 404)
    if tags.status_code == 200:
        assert tags.json()["tags"] == []
    _assert_error(client.delete(f"/v2/{namespace}/manifests/{digest}"), 404)

    # Blob deletion: 202 then 404, or 405 when the registry refuses blob deletes.
    for blob_digest in (sha256(config), sha256(layer)):
        deleted = client.delete(f"/v2/{namespace}/blobs/{blob_digest}")
        assert deleted.status_code in (202, 405), deleted.text
        if deleted.status_code == 202:
            assert client.get(f"/v2/{namespace}/blobs/{blob_digest}").status_code == 404
    _assert_error(client.delete(f"/v2/{namespace}/blobs/{DUMMY_DIGEST}"), 404, 405)
