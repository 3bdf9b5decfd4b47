"""Where the server says it is: SERVER_HOSTNAME derived from the bind, and which proxies'
forwarding headers count."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from cargohold.db.models.audit import LogEntry
from tests.ops.conftest import run
from tests.support.accounts import ALL_SCOPES, create_user, issue_token, unique
from tests.support.server import LiveServer


def test_no_server_hostname_is_derived_from_the_bind(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "server")
    del live.config["SERVER_HOSTNAME"]
    try:
        live.start()
        owner = create_user(live)
        challenge = httpx.get(f"{live.url}/v2/")
        assert f'realm="http://{live.host}/v2/auth"' in challenge.headers["www-authenticate"]
        assert f'service="{live.host}"' in challenge.headers["www-authenticate"]
        # podman follows the realm; on a non-default port with no settings it logs in.
        run(
            "podman", "login", "--tls-verify=false", f"--authfile={tmp_path / 'auth.json'}",
            "-u", owner.username, "-p", owner.password, live.host,
        )  # fmt: skip
        assert f"SERVER_HOSTNAME is not set: using {live.host}" in live.log_text()
        assert "SERVER_HOSTNAME is" not in live.log_text().replace("is not set", "")
    finally:
        live.destroy()


def test_a_hostname_on_another_port_is_warned_about(server_factory) -> None:
    live = server_factory({"SERVER_HOSTNAME": "localhost:1"})
    assert (
        f"SERVER_HOSTNAME is localhost:1 but the server listens on port {live.port}"
        in live.log_text()
    )


def _create_repo_from(server: LiveServer, headers: dict[str, str]) -> str | None:
    """Create a repository with the given extra headers; the address its audit entry got."""
    owner = create_user(server)
    token = issue_token(server, owner.username, ALL_SCOPES)
    name = unique("fwd")
    created = httpx.post(
        f"{server.url}/api/v1/repository",
        json={
            "namespace": owner.username,
            "repository": name,
            "visibility": "private",
            "description": "",
        },
        headers={"Authorization": f"Bearer {token}", **headers},
    )
    assert created.status_code == 201, created.text
    with server.db() as session:
        return session.scalar(
            select(LogEntry.ip)
            .where(LogEntry.account_id == owner.id, LogEntry.kind == "create_repo")
            .order_by(LogEntry.id.desc())
        )


@pytest.mark.parametrize(
    ("headers", "seen"),
    [
        ({}, "127.0.0.1"),
        ({"X-Forwarded-For": "198.51.100.7"}, "198.51.100.7"),
        # Only the hops our proxies added count: the client wrote the leftmost one.
        ({"X-Forwarded-For": "203.0.113.66, 198.51.100.8, 127.0.0.1"}, "198.51.100.8"),
        ({"Forwarded": 'for="[2001:db8::5]:4711";proto=https'}, "2001:db8::5"),
        ({"X-Forwarded-For": "not-an-address"}, "127.0.0.1"),
    ],
)
def test_loopback_proxies_are_trusted_by_default(server, headers, seen) -> None:
    assert _create_repo_from(server, headers) == seen


def test_other_proxies_are_trusted_only_when_named(server_factory) -> None:
    live = server_factory({"TRUSTED_PROXIES": ["10.0.0.0/8", "192.0.2.1"]})
    assert _create_repo_from(live, {"X-Forwarded-For": "198.51.100.7"}) == "127.0.0.1"
    assert _create_repo_from(live, {"Forwarded": "for=198.51.100.9"}) == "127.0.0.1"


def test_a_trusted_range_is_believed(server_factory) -> None:
    live = server_factory({"TRUSTED_PROXIES": ["127.0.0.0/8"]})
    assert _create_repo_from(live, {"X-Forwarded-For": "198.51.100.7"}) == "198.51.100.7"


def test_a_bad_trusted_proxy_entry_stops_start_up(server_factory) -> None:
    with pytest.raises(RuntimeError) as failed:
        server_factory({"TRUSTED_PROXIES": ["10.0.0.0/33"]})
    assert "config key TRUSTED_PROXIES" in str(failed.value)
