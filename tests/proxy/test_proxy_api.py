"""The proxy-cache configuration API: Quay's paths, answers, permissions and audit kinds."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import select

from cargohold.db.models.proxy import ProxyCacheConfig
from tests.proxy.conftest import UPSTREAM_CREDENTIALS, ProxyOrg, proxy_org
from tests.support.accounts import bearer_client, create_user, issue_token
from tests.support.canary import canary_server
from tests.support.organizations import log_entries
from tests.support.server import LiveServer, free_port

SSRF = "The provided registry URL is not allowed"


def test_create_view_delete_with_audit(proxy_server: LiveServer, org: ProxyOrg):
    empty = org.client.get(org.url)
    assert empty.status_code == 200
    assert empty.json() == {"upstream_registry": "", "expiration_s": "", "insecure": ""}
    created = org.configure(
        "127.0.0.1:5000/library",
        upstream_registry_username="bob",
        upstream_registry_password="s3cret-upstream",
    )
    assert created.status_code == 201, created.text
    assert created.json() == "Created"
    view = org.client.get(org.url).json()
    assert view == {
        "upstream_registry": "127.0.0.1:5000/library",
        "expiration_s": 86400,
        "insecure": True,
    }
    with proxy_server.db() as session:
        row = session.scalar(select(ProxyCacheConfig))
        stored = session.scalars(select(ProxyCacheConfig.password_encrypted)).all()
    assert row is not None
    assert all(value and "s3cret-upstream" not in value for value in stored)
    assert log_entries(proxy_server, "create_proxy_cache_config", org.org) == [
        {"upstream_registry": "127.0.0.1:5000/library"}
    ]
    again = org.configure("127.0.0.1:5000/library")
    assert again.status_code == 400
    assert again.json()["error_message"] == "Proxy Cache Configuration already exists"
    deleted = org.client.delete(org.url)
    assert deleted.status_code == 201
    assert deleted.json() == "Deleted"
    assert len(log_entries(proxy_server, "delete_proxy_cache_config", org.org)) == 1
    assert org.client.delete(org.url).status_code == 404
    assert org.client.get(org.url).json()["upstream_registry"] == ""


def test_permissions(proxy_server: LiveServer, org: ProxyOrg):
    stranger = create_user(proxy_server)
    with bearer_client(
        proxy_server, issue_token(proxy_server, stranger.username, "org:admin repo:read")
    ) as client:
        assert client.get(org.url).status_code == 403
        assert client.post(org.url, json={"upstream_registry": "quay.io"}).status_code == 403
        assert client.delete(org.url).status_code == 403
        validate = f"/api/v1/organization/{org.org}/validateproxycache"
        assert client.post(validate, json={"upstream_registry": "quay.io"}).status_code == 403
    assert httpx.get(proxy_server.url + org.url).status_code == 401


@pytest.mark.parametrize(
    "upstream", ["10.1.2.3:5000/ns", "169.254.169.254", "192.168.0.1/library", "[::1]:5000"]
)
def test_blocked_upstream_addresses(proxy_server: LiveServer, upstream: str):
    org = proxy_org(proxy_server)
    response = org.configure(upstream)
    assert response.status_code == 400
    assert response.json()["error_message"] == SSRF
    check = org.client.post(
        f"/api/v1/organization/{org.org}/validateproxycache", json={"upstream_registry": upstream}
    )
    assert check.status_code == 400
    assert check.json()["error_message"] == SSRF
    assert org.client.get(org.url).json()["upstream_registry"] == ""


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"upstream_registry": 5},
        {"upstream_registry": "quay.io", "expiration_s": "soon"},
        {"upstream_registry": "quay.io", "expiration_s": -1},
        {"upstream_registry": "quay.io", "insecure": "yes"},
        {"upstream_registry": ""},
    ],
)
def test_malformed_bodies(org: ProxyOrg, body: dict):
    response = org.client.post(org.url, json=body)
    assert response.status_code == 400, response.text
    assert org.client.get(org.url).json()["upstream_registry"] == ""


@pytest.mark.slow
def test_validate_against_a_live_upstream(proxy_server: LiveServer, org: ProxyOrg, upstream):
    url = f"/api/v1/organization/{org.org}/validateproxycache"
    user, password = UPSTREAM_CREDENTIALS
    base = {"upstream_registry": f"{upstream.host}/team", "insecure": True}
    valid = org.client.post(
        url,
        json={**base, "upstream_registry_username": user, "upstream_registry_password": password},
    )
    assert (valid.status_code, valid.json()) == (202, "Valid")
    anonymous = org.client.post(url, json=base)
    assert (anonymous.status_code, anonymous.json()) == (202, "Anonymous")
    wrong = org.client.post(
        url, json={**base, "upstream_registry_username": user, "upstream_registry_password": "no"}
    )
    assert wrong.status_code == 400
    assert wrong.json()["error_message"] == (
        "Failed login to remote registry. Please verify entered details and try again."
    )
    closed = org.client.post(
        url, json={"upstream_registry": f"127.0.0.1:{free_port()}", "insecure": True}
    )
    assert closed.status_code == 400
    assert closed.json()["error_message"] == "Failed to validate Proxy cache configuration"
    # Validation saves nothing.
    assert org.client.get(org.url).json()["upstream_registry"] == ""


@contextmanager
def challenging_upstream(realm: str) -> Iterator[int]:
    """An upstream on an allowed address whose token realm points somewhere else."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service="upstream"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_token_realm_on_a_blocked_address_is_never_asked(proxy_server: LiveServer):
    # SSRF_ALLOWED_HOSTS allows 127.0.0.1 only: the realm the upstream names on 127.0.0.2
    # must go through the same guard as the upstream itself.
    with canary_server("127.0.0.2") as canary:
        realm = f"http://127.0.0.2:{canary.port}/token"
        with challenging_upstream(realm) as port:
            org = proxy_org(proxy_server)
            check = org.client.post(
                f"/api/v1/organization/{org.org}/validateproxycache",
                json={
                    "upstream_registry": f"127.0.0.1:{port}/team",
                    "upstream_registry_username": "someone",
                    "upstream_registry_password": "secret",
                    "insecure": True,
                },
            )
    assert check.status_code == 400, check.text
    assert canary.requests == []
