"""A cache-hit pull through a proxy-cache organization against a plain pull of the same blob.

Both pulls stream the same 64 MiB blob from the same server; they alternate in one run and
the figure is the median over rounds of (plain time / cache-hit time), so 1.0 means the
cache hit is as fast as a plain pull. Run from the checkout root:
`python -m bench.proxy_pull` (CARGOHOLD_TEST_DB and CARGOHOLD_TEST_STORAGE pick the backend).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tests.proxy.conftest import proxy_org
from tests.support.accounts import create_user
from tests.support.fake_upstream import FakeUpstream, GeneratedBlob
from tests.support.registry import token_for, v2_client
from tests.support.server import LiveServer

BLOB_SIZE = 64 << 20
ROUNDS = 15


def timed_pull(client: httpx.Client, url: str) -> float:
    began = time.perf_counter()
    size = 0
    with client.stream("GET", url) as response:
        assert response.status_code == 200, response.status_code
        for chunk in response.iter_bytes(1 << 20):
            size += len(chunk)
    assert size == BLOB_SIZE
    return time.perf_counter() - began


def main() -> None:
    server = LiveServer(
        Path(tempfile.mkdtemp()) / "bench", {"SSRF_ALLOWED_HOSTS": ["127.0.0.1"]}
    ).start()
    blob = GeneratedBlob(b"bench", BLOB_SIZE)
    upstream = FakeUpstream("team/bench", "v1", [blob]).start()
    try:
        org = proxy_org(server)
        assert org.configure(f"{upstream.host}/team").status_code == 201
        auth = (org.owner.username, org.owner.password)
        proxy_token = token_for(server, auth, f"repository:{org.org}/bench:pull")
        with v2_client(server, proxy_token) as proxied:
            proxied.get(f"/v2/{org.org}/bench/manifests/v1").raise_for_status()
            proxy_url = f"/v2/{org.org}/bench/blobs/{blob.digest}"
            timed_pull(proxied, proxy_url)  # the miss: fetched from upstream and stored
            assert upstream.blob_gets[blob.digest] == 1
            plain_owner = create_user(server)
            repo = f"{plain_owner.username}/plain"
            plain_token = token_for(
                server,
                (plain_owner.username, plain_owner.password),
                f"repository:{repo}:pull,push",
            )
            with v2_client(server, plain_token) as plain:
                plain.post(
                    f"/v2/{repo}/blobs/uploads/",
                    params={"digest": blob.digest},
                    content=blob.chunks(),
                    headers={"Content-Length": str(BLOB_SIZE)},
                ).raise_for_status()
                plain_url = f"/v2/{repo}/blobs/{blob.digest}"
                ratios, hits, plains = [], [], []
                for _ in range(ROUNDS):
                    hit = timed_pull(proxied, proxy_url)
                    base = timed_pull(plain, plain_url)
                    hits.append(hit)
                    plains.append(base)
                    ratios.append(base / hit)
        assert upstream.blob_gets[blob.digest] == 1
        mib = BLOB_SIZE / (1 << 20)
        print(
            f"cache-hit pull {mib / statistics.median(hits):7.1f} MiB/s, "
            f"plain pull {mib / statistics.median(plains):7.1f} MiB/s, "
            f"ratio (cache hit / plain throughput) median {statistics.median(ratios):.2f} "
            f"(min {min(ratios):.2f}, max {max(ratios):.2f}) over {ROUNDS} rounds"
        )
    finally:
        upstream.stop()
        server.destroy()


if __name__ == "__main__":
    main()
