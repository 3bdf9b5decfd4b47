"""The outbound guard against the address spellings and redirects an attacker would try."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cargohold.adapters import outbound
from tests.support.canary import canary_server

INWARD_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "0x7f.0.0.1",
    "0",
    "0.0.0.0",
    "localhost",
    "localhost.",
    "LOCALHOST",
    "[::1]",
    "::1",
    "::ffff:127.0.0.1",
    "[::ffff:7f00:1]",
    "2002:7f00:1::",
    "169.254.169.254",
    "fe80::1",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.100.100.200",
    "fd00:ec2::254",
    "224.0.0.1",
    "metadata.google.internal",
]


def settings(*allowed: str) -> SimpleNamespace:
    return SimpleNamespace(SSRF_ALLOWED_HOSTS=list(allowed))


@pytest.mark.parametrize("host", INWARD_SPELLINGS)
def test_inward_spellings_are_refused(host: str) -> None:
    with pytest.raises(outbound.OutboundRefused) as refused:
        outbound.check_host(settings(), host, 80)
    assert not isinstance(refused.value, outbound.UnresolvedHost)


def test_public_addresses_pass() -> None:
    assert outbound.check_host(settings(), "8.8.8.8", 443) == ["8.8.8.8"]
    assert outbound.check_host(settings(), "[2606:4700::1111]", 443) == ["2606:4700::1111"]


def test_allow_list_takes_names_addresses_ports_and_ranges() -> None:
    assert outbound.check_host(settings("127.0.0.0/8"), "127.1", 80) == ["127.0.0.1"]
    assert outbound.check_host(settings("127.0.0.0/8"), "localhost", 80) == ["127.0.0.1"]
    assert outbound.check_host(settings("10.1.2.3"), "10.1.2.3", 80) == ["10.1.2.3"]
    assert outbound.check_host(settings("127.0.0.1:5000"), "127.0.0.1", 5000) == ["127.0.0.1"]
    with pytest.raises(outbound.OutboundRefused):
        outbound.check_host(settings("127.0.0.1:5000"), "127.0.0.1", 5001)
    with pytest.raises(outbound.OutboundRefused):
        outbound.check_host(settings("10.0.0.0/8"), "192.168.0.1", 80)


def test_unresolvable_names_are_told_apart() -> None:
    with pytest.raises(outbound.UnresolvedHost):
        outbound.check_host(settings(), "no-such-host.invalid", 80)


@pytest.mark.parametrize(
    "source",
    [
        "file:///srv/git/app.git",
        "/srv/git/app.git",
        "./app",
        "../app.git",
        "app.git",
        "ext::sh -c touch% /tmp/pwned",
        "fd::17",
        "-uupload-pack=touch /tmp/pwned",
        "ftp://git.example.com/app.git",
        "https://127.0.0.1/app.git",
        "ssh://git@[::1]/app.git",
        "git://2130706433/app.git",
        "git@127.1:team/app.git",
        "git@localhost.:team/app.git",
    ],
)
def test_git_sources_that_are_refused(source: str) -> None:
    with pytest.raises(outbound.OutboundRefused) as refused:
        outbound.check_git_source(settings(), source)
    assert not isinstance(refused.value, outbound.UnresolvedHost)


@pytest.mark.parametrize(
    "source",
    [
        "https://8.8.8.8/team/app.git",
        "http://8.8.8.8/app.git",
        "ssh://git@8.8.8.8:2222/team/app.git",
        "git://8.8.8.8/app.git",
        "git@8.8.8.8:team/app.git",
        "8.8.8.8:team/app.git",
    ],
)
def test_remote_git_sources_pass(source: str) -> None:
    assert outbound.check_git_source(settings(), source).addresses == ("8.8.8.8",)


def test_guarded_client_never_reaches_loopback() -> None:
    with canary_server() as canary, outbound.guarded_client(settings(), timeout=5) as client:
        for host in ("127.0.0.1", "127.1", "2130706433", "localhost", "localhost.", "[::1]"):
            with pytest.raises(outbound.OutboundRefused):
                client.get(f"http://{host}:{canary.port}/secret")
        assert canary.requests == []


def test_redirects_are_checked_like_the_first_request() -> None:
    with canary_server() as target, canary_server() as allowed:
        allowed.redirect_to = f"http://127.1:{target.port}/secret"
        guard = settings(f"127.0.0.1:{allowed.port}")
        with (
            outbound.guarded_client(guard, timeout=5, follow_redirects=True) as client,
            pytest.raises(outbound.OutboundRefused),
        ):
            client.get(f"{allowed.url}/start")
        assert allowed.requests == ["/start"]
        assert target.requests == []


def test_pinned_connection_keeps_the_host_header() -> None:
    with canary_server() as canary:
        guard = settings("localhost")
        with outbound.guarded_client(guard, timeout=5) as client:
            response = client.get(f"http://localhost:{canary.port}/named")
        assert response.status_code == 200 and response.text == "canary secret\n"
        assert response.request.headers["host"] == f"localhost:{canary.port}"
        assert canary.requests == ["/named"]


def test_proxies_are_checked() -> None:
    for proxy in ("http://127.0.0.1:3128", "127.1:3128", "socks5://[::1]:1080"):
        with pytest.raises(outbound.OutboundRefused):
            outbound.check_proxy(settings(), proxy)
    outbound.check_proxy(settings(), "http://8.8.8.8:3128")
