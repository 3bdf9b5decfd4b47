"""Blob pull-through: one upstream fetch for concurrent pulls, bounded memory, verified bytes."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.proxy.conftest import ProxyOrg, proxy_org
from tests.storage.test_big_blob import RSS_GROWTH_LIMIT, PeakRss
from tests.support.fake_upstream import FakeUpstream, GeneratedBlob
from tests.support.server import LiveServer

BIG = 256 << 20
PULLERS = 8


def pull_token(server: LiveServer, org: ProxyOrg, repo: str) -> str:
    response = httpx.get(
        f"{server.url}/v2/auth",
        params={"service": server.host, "scope": f"repository:{org.org}/{repo}:pull"},
        auth=(org.owner.username, org.owner.password),
    )
    assert response.status_code == 200, response.text
    return response.json()["token"]


def cache_manifest(server: LiveServer, org: ProxyOrg, upstream: FakeUpstream, repo: str) -> str:
    assert org.configure(f"{upstream.host}/team").status_code == 201
    token = pull_token(server, org, repo)
    response = httpx.get(
        f"{server.url}/v2/{org.org}/{repo}/manifests/{upstream.tag}",
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.oci.image.manifest.v1+json",
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["docker-content-digest"] == upstream.manifest_digest
    assert response.content == upstream.manifest
    return token


@pytest.fixture
def big_upstream() -> Iterator[FakeUpstream]:
    # A little delay per MiB keeps the fetch running while every puller arrives.
    upstream = FakeUpstream("team/big", "v1", [GeneratedBlob(b"big", BIG)], delay_s=0.002)
    yield upstream.start()
    upstream.stop()


@pytest.mark.timeout(600)
def test_concurrent_pulls_fetch_once_in_bounded_memory(
    proxy_server: LiveServer, big_upstream: FakeUpstream
):
    org = proxy_org(proxy_server)
    token = cache_manifest(proxy_server, org, big_upstream, "big")
    layer = big_upstream.layers[0]
    url = f"{proxy_server.url}/v2/{org.org}/big/blobs/{layer.digest}"
    results: list[tuple[int, str, int]] = []
    lock = threading.Lock()

    def pull() -> None:
        hasher = hashlib.sha256()
        size = 0
        with httpx.stream(
            "GET",
            url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=300,
            follow_redirects=True,
        ) as response:
            for chunk in response.iter_bytes(1 << 20):
                hasher.update(chunk)
                size += len(chunk)
            status = response.status_code
        with lock:
            results.append((status, f"sha256:{hasher.hexdigest()}", size))

    assert proxy_server.process is not None
    # Storage drivers load their machinery on first use (boto3's models on S3): a round
    # trip first, so that what is measured is the pull-through itself.
    assert httpx.get(proxy_server.url + "/health/endtoend").status_code == 200
    # Idle means warmed: as many concurrent requests as pullers grow the database pool and
    # the registry's threads first, so that what is measured is the blob traffic.
    warm = [
        threading.Thread(
            target=lambda: httpx.head(
                f"{proxy_server.url}/v2/{org.org}/big/manifests/{big_upstream.tag}",
                headers={"Authorization": f"Bearer {token}"},
            )
        )
        for _ in range(PULLERS)
    ]
    for thread in warm:
        thread.start()
    for thread in warm:
        thread.join()
    with PeakRss(proxy_server.process.pid) as rss:
        threads = [threading.Thread(target=pull) for _ in range(PULLERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [(200, layer.digest, BIG)] * PULLERS
    assert big_upstream.blob_gets[layer.digest] == 1
    growth = rss.peak - rss.baseline
    print(f"proxy pull of {PULLERS} x 256 MiB: RSS growth {growth / (1 << 20):.1f} MiB")
    assert growth < RSS_GROWTH_LIMIT


def test_digest_mismatch_is_never_stored(proxy_server: LiveServer):
    bad = GeneratedBlob(b"bad", 3 << 20, corrupt=True)
    upstream = FakeUpstream("team/bad", "v1", [bad]).start()
    try:
        org = proxy_org(proxy_server)
        token = cache_manifest(proxy_server, org, upstream, "bad")
        url = f"{proxy_server.url}/v2/{org.org}/bad/blobs/{bad.digest}"
        headers = {"Authorization": f"Bearer {token}"}
        for attempt in (1, 2):
            hasher = hashlib.sha256()
            with (
                pytest.raises(httpx.HTTPError),
                httpx.stream("GET", url, headers=headers, timeout=60) as response,
            ):
                assert response.status_code == 200
                for chunk in response.iter_bytes():
                    hasher.update(chunk)
            # The response ends short: the client never receives a complete wrong blob.
            assert f"sha256:{hasher.hexdigest()}" != bad.digest
            # Nothing was kept, so each pull asks the upstream again.
            assert upstream.blob_gets[bad.digest] == attempt
        assert proxy_server.store().blob_size(bad.digest) is None
    finally:
        upstream.stop()


def test_unknown_upstream_content_is_manifest_unknown(proxy_server: LiveServer):
    upstream = FakeUpstream("team/here", "v1", [GeneratedBlob(b"small", 1024)]).start()
    try:
        org = proxy_org(proxy_server)
        assert org.configure(f"{upstream.host}/team").status_code == 201
        token = pull_token(proxy_server, org, "missing")
        response = httpx.get(
            f"{proxy_server.url}/v2/{org.org}/missing/manifests/v1",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    finally:
        upstream.stop()


def test_anonymous_and_outsiders_do_not_pull_through(proxy_server: LiveServer):
    upstream = FakeUpstream("team/img", "v1", [GeneratedBlob(b"o", 1024)]).start()
    try:
        org = proxy_org(proxy_server)
        assert org.configure(f"{upstream.host}/team").status_code == 201
        response = httpx.get(f"{proxy_server.url}/v2/{org.org}/img/manifests/v1")
        assert response.status_code == 401
        assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert upstream.blob_gets.total() == 0
    finally:
        upstream.stop()
