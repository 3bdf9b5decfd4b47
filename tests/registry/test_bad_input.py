"""Hand-made bad input on every /v2 route: malformed digests, ranges, references, JSON and
numbers. Nothing answers 500, and the same keep-alive connection serves every request."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from tests.support.keepalive import Answer, KeepAliveConnection
from tests.support.registry import OCI_MANIFEST, make_image, pull_push, push_image, token_for
from tests.support.server import LiveServer

if TYPE_CHECKING:
    from tests.support.accounts import TestUser

HUGE = "9" * 30
NESTED = b"[" * 100_000
ZERO_DIGEST = "sha256:" + "0" * 64
BAD_DIGESTS = [
    "sha256:xyz",
    "sha256:" + "0" * 65,
    "md5:d41d8cd98f00b204e9800998ecf8427e",
    "sha256",
    "%00",
    "sha256:%2e%2e",
    "a" * 300,
]


@dataclass
class Probe:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


@pytest.fixture
def pushed(server: LiveServer, owner: TestUser, repo: str, pusher) -> tuple[str, str, int]:
    """An image under `latest`: its manifest digest, one layer's digest and that layer's size."""
    image = make_image({"file.txt": b"layer bytes" * 100})
    response = push_image(pusher, repo, image, "latest")
    assert response.status_code == 201, response.text
    layer = image.layers[0]
    return image.digest, layer.digest, len(layer.data)


def _probes(repo: str, manifest: str, layer: str) -> list[Probe]:
    manifests = f"/v2/{repo}/manifests"
    uploads = f"/v2/{repo}/blobs/uploads"
    probes = [
        Probe("GET", "/v2", {"Authorization": "Bearer a.b.c"}),
        Probe("HEAD", "/v2/", {"Authorization": "Basic " + "A" * 5000}),
        Probe("GET", "/v2/", {"Authorization": "Bearer"}),
        Probe("GET", "/v2/", {"Authorization": "Bearer a.b.c"}),
        Probe("GET", "/v2/", {"Authorization": "Basic !!!"}),
        Probe("GET", "/v2/auth?scope=repository:&service=x"),
        Probe("GET", "/v2/auth?account=%00&offline_token=" + HUGE),
        Probe("GET", f"/v2/auth?scope=repository:{repo}:pull:extra:parts"),
        Probe("GET", "/v2/auth?scope=" + "repository:a/b:pull," * 500),
        Probe(
            "GET", "/v2/auth", {"Authorization": "Basic " + base64.b64encode(b"nocolon").decode()}
        ),
        Probe(
            "GET",
            "/v2/auth",
            {"Authorization": "Basic " + base64.b64encode(b"a\x00:\xff").decode()},
        ),
        Probe("GET", f"/v2/_catalog?n={HUGE}"),
        Probe("GET", "/v2/_catalog?n=-1&last=%00"),
        Probe("GET", "/v2/_catalog?n=abc&next_page=not-a-token"),
        Probe("GET", f"/v2/{repo}/tags/list?n={HUGE}"),
        Probe("GET", f"/v2/{repo}/tags/list?n=-5"),
        Probe("GET", f"/v2/{repo}/tags/list?n=abc&last=%00"),
        Probe("GET", f"/v2/{repo}/tags/list?last=%00"),
        Probe("GET", f"/v2/{repo}/tags/list?n=1&last=a%00b"),
        Probe("GET", f"/v2/{repo}/referrers/{manifest}?artifactType=%00"),
        Probe("GET", f"/v2/{repo}/tags/list?n=1&last=" + "z" * 5000),
        Probe("GET", f"{manifests}/" + "t" * 300),
        Probe("HEAD", f"{manifests}/%00"),
        Probe("PUT", f"{manifests}/latest", {"Content-Type": OCI_MANIFEST}, NESTED),
        Probe("PUT", f"{manifests}/latest", {"Content-Type": OCI_MANIFEST}, b"\xff\xfe{"),
        Probe("PUT", f"{manifests}/latest", {"Content-Type": "x/y;;;="}, b"{}"),
        Probe(
            "PUT",
            f"{manifests}/latest",
            {"Content-Type": OCI_MANIFEST},
            json.dumps({"schemaVersion": int(HUGE)}).encode(),
        ),
        Probe(
            "PUT",
            f"{manifests}/latest",
            {"Content-Type": OCI_MANIFEST},
            b'{"schemaVersion": 2, "config": {"size": 1e999}}',
        ),
        Probe(
            "PUT",
            f"{manifests}/latest",
            {"Content-Type": OCI_MANIFEST},
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "x", "digest": "sha256:nope", "size": -1},
                    "layers": [{"digest": ZERO_DIGEST, "size": int(HUGE), "mediaType": "y"}],
                }
            ).encode(),
        ),
        Probe("PUT", f"{manifests}/{ZERO_DIGEST}", {"Content-Type": OCI_MANIFEST}, b"{}"),
        Probe("DELETE", f"{manifests}/sha256:xyz"),
        Probe("POST", f"{uploads}/?digest=sha256:xyz", body=b"data"),
        Probe("POST", f"{uploads}/?mount=sha256:xyz&from=..%2F..%2Fx"),
        Probe("POST", f"{uploads}/?mount={ZERO_DIGEST}&from="),
        Probe("POST", f"{uploads}/?mount={layer}&from=" + "a/" * 200),
        Probe("GET", f"{uploads}/..%2F..%2Fetc"),
        Probe("PATCH", f"{uploads}/not-an-upload", body=b"x"),
        Probe("PUT", f"{uploads}/not-an-upload?digest=sha256:xyz", body=b"x"),
        Probe("DELETE", f"{uploads}/not-an-upload"),
        Probe("GET", f"/v2/{repo}/referrers/sha256:xyz"),
        Probe("GET", f"/v2/{repo}/referrers/{manifest}?artifactType=%00" + "x" * 3000),
        Probe("GET", "/v2/" + "n/" * 300 + "tags/list"),
        Probe("GET", "/v2/UPPER/Case/tags/list"),
        Probe("GET", "/v2/%2e%2e/%2e%2e/tags/list"),
        Probe("TRACE", f"{manifests}/latest"),
    ]
    for digest in BAD_DIGESTS:
        probes.append(Probe("GET", f"/v2/{repo}/blobs/{digest}"))
        probes.append(Probe("DELETE", f"/v2/{repo}/blobs/{digest}"))
        probes.append(Probe("GET", f"{manifests}/{digest}"))
    for value in [
        "bytes=-0",
        "bytes=5-2",
        f"bytes={HUGE}-",
        f"bytes=-{HUGE}",
        f"bytes=0-{HUGE}",
        "bytes=a-b",
        "bytes=0-1,3-4",
        "items=0-1",
        "bytes=",
        "bytes=--1",
    ]:
        probes.append(Probe("GET", f"/v2/{repo}/blobs/{layer}", {"Range": value}))
    return probes


def _upload_probes(connection: KeepAliveConnection, repo: str) -> list[Answer]:
    """Chunks with nonsense Content-Range values on a real upload session."""
    started = connection.request("POST", f"/v2/{repo}/blobs/uploads/")
    assert started.status == 202
    location = started.headers["Location"]
    answers = []
    for value in (f"{HUGE}-{HUGE}", "5-1", "bytes=0-", "0-0/abc", f"0-{HUGE}"):
        answers.append(connection.request("PATCH", location, b"x", {"Content-Range": value}))
    answers.append(connection.request("PUT", location + "&digest=sha256:xyz", b""))
    answers.append(connection.request("PUT", location + f"&digest={ZERO_DIGEST}", b""))
    return answers


def test_no_bad_input_gets_a_500_and_the_connection_survives(
    server: LiveServer, owner: TestUser, repo: str, pushed: tuple[str, str, int]
) -> None:
    manifest, layer, _ = pushed
    token = token_for(server, (owner.username, owner.password), pull_push(repo))
    failures = []
    with KeepAliveConnection(server, {"Authorization": f"Bearer {token}"}) as connection:
        for probe in _probes(repo, manifest, layer):
            answer = connection.request(probe.method, probe.path, probe.body, probe.headers)
            if answer.status >= 500:
                failures.append(f"{probe.method} {probe.path[:80]}: {answer.status}")
        for answer in _upload_probes(connection, repo):
            assert answer.status < 500, answer.body
        pulled = connection.request(
            "GET", f"/v2/{repo}/manifests/latest", headers={"Accept": OCI_MANIFEST}
        )
        assert pulled.status == 200
    assert failures == []


def test_a_deeply_nested_manifest_is_manifest_invalid(
    server: LiveServer, owner: TestUser, repo: str, pushed: tuple[str, str, int]
) -> None:
    token = token_for(server, (owner.username, owner.password), pull_push(repo))
    with KeepAliveConnection(server, {"Authorization": f"Bearer {token}"}) as connection:
        for body in (NESTED, b'{"a":' * 1000 + b"1" + b"}" * 1000):
            refused = connection.request(
                "PUT", f"/v2/{repo}/manifests/nested", body, {"Content-Type": OCI_MANIFEST}
            )
            assert refused.status == 400
            assert refused.json()["errors"][0]["code"] == "MANIFEST_INVALID"
        missing = connection.request("GET", f"/v2/{repo}/manifests/nested")
        assert missing.status == 404


@pytest.mark.parametrize("value", ["bytes=-0", "bytes=5-2", "bytes=999999-", "bytes=0-1,3-4"])
def test_unsatisfiable_ranges_are_416_with_the_size(
    server: LiveServer, owner: TestUser, repo: str, pushed: tuple[str, str, int], value: str
) -> None:
    _, layer, size = pushed
    token = token_for(server, (owner.username, owner.password), pull_push(repo))
    with KeepAliveConnection(server, {"Authorization": f"Bearer {token}"}) as connection:
        refused = connection.request("GET", f"/v2/{repo}/blobs/{layer}", headers={"Range": value})
        assert refused.status == 416
        assert refused.headers["Content-Range"] == f"bytes */{size}"
        whole = connection.request("GET", f"/v2/{repo}/blobs/{layer}")
        assert whole.status == 200
        assert len(whole.body) == size
        tail = connection.request("GET", f"/v2/{repo}/blobs/{layer}", headers={"Range": "bytes=-1"})
        assert tail.status == 206
        assert tail.headers["Content-Range"] == f"bytes {size - 1}-{size - 1}/{size}"
        assert tail.body == whole.body[-1:]


def test_nul_in_tag_paging_and_referrer_filters_matches_nothing_extra(
    server: LiveServer, owner: TestUser, repo: str, pushed: tuple[str, str, int]
) -> None:
    """Tag names and media types hold no NUL: on every database a NUL in `last` pages as if
    the value ended there, and a NUL artifact type matches no referrer."""
    manifest, _, _ = pushed
    token = token_for(server, (owner.username, owner.password), pull_push(repo))
    with KeepAliveConnection(server, {"Authorization": f"Bearer {token}"}) as connection:
        after_l = connection.request("GET", f"/v2/{repo}/tags/list?last=l%00zzz")
        assert after_l.status == 200
        assert after_l.json()["tags"] == ["latest"]
        after_latest = connection.request("GET", f"/v2/{repo}/tags/list?last=latest%00")
        assert after_latest.json()["tags"] == []
        referrers = connection.request("GET", f"/v2/{repo}/referrers/{manifest}?artifactType=a%00b")
        assert referrers.status == 200
        assert referrers.json()["manifests"] == []


@pytest.mark.parametrize("sizes", [(2**63, 1), (1, 2**63), (2**62, 2**62), (10**40, 1)], ids=str)
def test_descriptor_sizes_beyond_64_bits_are_manifest_invalid(
    server: LiveServer, owner: TestUser, repo: str, pushed: tuple[str, str, int], sizes
) -> None:
    """Foreign layers (with `urls`) are not checked against stored blobs, so their sizes must
    be bounded by themselves, and so must the image's total."""
    config_size, layer_size = sizes
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": ZERO_DIGEST,
            "size": config_size,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                "digest": "sha256:" + "1" * 64,
                "size": layer_size,
                "urls": ["https://example.com/layer"],
            }
        ],
    }
    token = token_for(server, (owner.username, owner.password), pull_push(repo))
    with KeepAliveConnection(server, {"Authorization": f"Bearer {token}"}) as connection:
        refused = connection.request(
            "PUT",
            f"/v2/{repo}/manifests/huge",
            json.dumps(manifest).encode(),
            {"Content-Type": OCI_MANIFEST},
        )
        assert refused.status == 400, refused.body
        assert refused.json()["errors"][0]["code"] == "MANIFEST_INVALID"
