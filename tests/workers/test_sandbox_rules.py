"""The sandbox's pure parts: the nftables rule set, network modes, names, limits, file modes."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from cargohold.adapters.sandbox import (
    BuildAccount,
    allowed_targets,
    network_mode,
    rule_set,
    subordinate_ids,
)
from cargohold.config import ConfigError, load_settings
from cargohold.private_files import exposed
from cargohold.workers.builder import _limit_in_output, _split_registry, qualified_name


def _settings(**values: object):
    environ = {f"CARGOHOLD_{key}": str(value) for key, value in values.items()}
    return load_settings(
        None, environ={"CARGOHOLD_SECRET_KEY": "k", "CARGOHOLD_DATABASE_SECRET_KEY": "d", **environ}
    )


def test_rule_set_accepts_allowed_ranges_before_rejecting_internal_ones() -> None:
    allowed = [
        (ipaddress.ip_network("10.20.0.0/16"), None),
        (ipaddress.ip_network("fd00:1::/64"), None),
        (ipaddress.ip_network("127.0.0.1/32"), 9418),
    ]
    rules = rule_set(1234, allowed, ["10.255.255.53"]).splitlines()
    accept_v4 = rules.index("    meta skuid 1234 ip daddr 10.20.0.0/16 accept")
    accept_v6 = rules.index("    meta skuid 1234 ip6 daddr fd00:1::/64 accept")
    accept_port = rules.index("    meta skuid 1234 ip daddr 127.0.0.1/32 tcp dport 9418 accept")
    reject_v4 = next(i for i, line in enumerate(rules) if "ip daddr" in line and "reject" in line)
    reject_v6 = next(i for i, line in enumerate(rules) if "ip6 daddr" in line and "reject" in line)
    assert max(accept_v4, accept_port) < reject_v4 and accept_v6 < reject_v6
    assert "    meta skuid 1234 ip daddr 10.255.255.53 udp dport 53 accept" in rules
    for network in ("127.0.0.0/8", "169.254.0.0/16", "10.0.0.0/8", "100.64.0.0/10"):
        assert network in rules[reject_v4]
    for network in ("::1/128", "fe80::/10", "fc00::/7"):
        assert network in rules[reject_v6]
    assert all("skuid 1234" in line for line in rules if "daddr" in line)


def test_allowed_targets_keep_ports_and_read_odd_spellings() -> None:
    settings = _settings(
        SSRF_ALLOWED_HOSTS="['10.1.0.0/16', '127.0.0.1:9418', '2130706433', 'localhost']"
    )
    targets = {(str(network), port) for network, port in allowed_targets(settings)}
    assert ("10.1.0.0/16", None) in targets
    assert ("127.0.0.1/32", 9418) in targets
    assert ("127.0.0.1/32", None) in targets


@pytest.mark.parametrize(
    ("allowed", "network", "mode"),
    [
        ("[]", "isolated", "isolated"),
        ("['10.1.0.0/16', 'fd00::/8']", "isolated", "isolated"),
        ("['localhost']", "isolated", "isolated-with-loopback"),
        ("['127.0.0.1']", "isolated", "isolated-with-loopback"),
        ("['127.0.0.0/24']", "isolated", "isolated-with-loopback"),
        ("['127.0.0.1']", "none", "none"),
        ("['127.0.0.1:9418']", "isolated", "isolated-with-loopback"),
    ],
)
def test_network_mode(allowed: str, network: str, mode: str) -> None:
    settings = _settings(SSRF_ALLOWED_HOSTS=allowed, BUILD_NETWORK=network)
    assert network_mode(settings) == mode


def test_bad_build_settings_name_their_key() -> None:
    with pytest.raises(ConfigError, match="BUILD_NETWORK"):
        _settings(BUILD_NETWORK="open")
    with pytest.raises(ConfigError, match="BUILD_PIDS_LIMIT"):
        _settings(BUILD_PIDS_LIMIT=0)
    with pytest.raises(ConfigError, match="BUILD_MEMORY_LIMIT_MB"):
        _settings(BUILD_MEMORY_LIMIT_MB=64)


@pytest.mark.parametrize(
    ("image", "name"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("alpine:3.20", "docker.io/library/alpine:3.20"),
        ("someone/tool", "docker.io/someone/tool:latest"),
        ("127.0.0.1:5000/ns/base:v1", "127.0.0.1:5000/ns/base:v1"),
        ("quay.io/ns/base", "quay.io/ns/base:latest"),
        ("localhost/base", "localhost/base:latest"),
        ("quay.io/ns/base@sha256:" + "a" * 64, "quay.io/ns/base@sha256:" + "a" * 64),
    ],
)
def test_qualified_name(image: str, name: str) -> None:
    assert qualified_name(image) == name


@pytest.mark.parametrize(
    ("lines", "limit"),
    [
        (["sh: can't fork: Resource temporarily unavailable"], "pids"),
        (["dd: error writing '/big': File too large"], "storage"),
        (["python3: Cannot allocate memory"], "memory"),
        (["exit status 3"], None),
    ],
)
def test_limit_in_output(lines: list[str], limit: str | None) -> None:
    assert _limit_in_output(lines) == limit


def test_subordinate_ids_are_summed_for_the_account(tmp_path: Path) -> None:
    table = tmp_path / "subuid"
    table.write_text("other:100000:65536\nbuilder:200000:65536\n999:300000:1000\nbuilder:bad:x\n")
    assert subordinate_ids(table, BuildAccount("builder", 999, 999, "/")) == 66536
    assert subordinate_ids(tmp_path / "missing", BuildAccount("builder", 999, 999, "/")) == 0


def test_exposed_server_files(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    secret = private / "key"
    secret.write_text("x")
    secret.chmod(0o600)
    readable = private / "db"
    readable.write_text("x")
    readable.chmod(0o644)
    assert exposed([private, secret, readable, tmp_path / "absent"]) == [(readable, 0o644)]


@pytest.mark.parametrize(
    ("registry", "target"),
    [
        ("[::1]:5000", ("::1", 5000)),
        ("127.1:8080", ("127.1", 8080)),
        ("quay.io", ("quay.io", 443)),
        ("docker.io", ("registry-1.docker.io", 443)),
    ],
)
def test_base_image_registry_host_and_port(registry: str, target: tuple[str, int]) -> None:
    assert _split_registry(registry) == target
