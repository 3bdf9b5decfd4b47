"""Mirrors aimed at the server's own loopback, by any spelling or through a proxy."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from cargohold.db.models.mirror import RepoMirrorConfig
from cargohold.domain.repositories import find_repository
from tests.mirror.conftest import mirror_setup
from tests.support.canary import canary_server
from tests.support.organizations import log_entries

INWARD_HOSTS = [
    "localhost",
    "localhost.",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "0",
    "[::1]",
    "[::ffff:127.0.0.1]",
]
NOT_ALLOWED = "The provided registry location is not allowed"


def _config(robot: str, reference: str, proxy: dict | None = None) -> dict:
    registry_config: dict = {"verify_tls": False}
    if proxy is not None:
        registry_config["proxy"] = proxy
    return {
        "external_reference": reference,
        "sync_interval": 3600,
        "sync_start_date": "2030-01-01T00:00:00Z",
        "root_rule": {"rule_kind": "tag_glob_csv", "rule_value": ["*"]},
        "skopeo_timeout_interval": 300,
        "robot_username": robot,
        "external_registry_config": registry_config,
    }


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory):
    """Mirroring on, a one-second pass, and no address allowed beyond the public ones."""
    from tests.support.server import LiveServer

    live = LiveServer(tmp_path_factory.mktemp("guarded"), {"REPO_MIRROR_INTERVAL": 1}).start()
    yield live
    live.destroy()


def test_inward_references_and_proxies_are_refused(guarded_server) -> None:
    setup = mirror_setup(guarded_server)
    with canary_server() as canary:
        for host in INWARD_HOSTS:
            reference = f"{host}:{canary.port}/library/app"
            response = setup.client.post(setup.url, json=_config(setup.robot, reference))
            assert response.status_code == 400, reference
            assert response.json()["detail"] == NOT_ALLOWED, reference
        for proxy in (f"http://127.0.0.1:{canary.port}", f"127.1:{canary.port}"):
            for key in ("http_proxy", "https_proxy"):
                config = _config(setup.robot, "registry.invalid/library/app", {key: proxy})
                response = setup.client.post(setup.url, json=config)
                assert response.status_code == 400, proxy
                assert response.json()["error_message"] == f"The provided {key} is not allowed"
        assert setup.client.get(setup.url).status_code == 404

        created = setup.client.post(
            setup.url, json=_config(setup.robot, "registry.invalid/library/app")
        )
        assert created.status_code == 201, created.text
        bad_proxy = {"proxy": {"https_proxy": f"http://localhost:{canary.port}"}}
        changed = setup.client.put(setup.url, json={"external_registry_config": bad_proxy})
        assert changed.status_code == 400
        moved = setup.client.put(
            setup.url, json={"external_reference": f"localhost.:{canary.port}/x/y"}
        )
        assert moved.status_code == 400 and moved.json()["detail"] == NOT_ALLOWED
        view = setup.client.get(setup.url).json()
        assert view["external_reference"] == "registry.invalid/library/app"
        assert "proxy" not in view["external_registry_config"]
        assert canary.requests == []


@pytest.mark.slow
def test_sync_checks_again_before_skopeo_runs(guarded_server) -> None:
    """A stored target that turned inward (a rebinding name, an old row) is never contacted."""
    setup = mirror_setup(guarded_server)
    created = setup.client.post(
        setup.url, json=_config(setup.robot, "registry.invalid/library/app")
    )
    assert created.status_code == 201
    with canary_server() as canary:
        namespace, name = setup.repo.split("/", 1)
        for reference, proxy, message in (
            (f"localhost:{canary.port}/library/app", {}, "location is not allowed"),
            (
                "registry.invalid/library/app",
                {"https_proxy": f"http://127.1:{canary.port}"},
                "https_proxy is not allowed",
            ),
        ):
            with guarded_server.db() as session:
                repository = find_repository(session, namespace, name)
                row = session.scalar(
                    select(RepoMirrorConfig).where(RepoMirrorConfig.repository_id == repository.id)
                )
                row.external_reference = reference
                row.external_registry_config = json.dumps({"verify_tls": False, "proxy": proxy})
            assert setup.client.post(setup.url + "/sync-now").status_code == 204
            deadline = time.monotonic() + 60
            view = setup.client.get(setup.url).json()
            while view["sync_status"] != "FAIL" and time.monotonic() < deadline:
                time.sleep(0.3)
                view = setup.client.get(setup.url).json()
            assert view["sync_status"] == "FAIL"
            failures = [
                entry["message"]
                for entry in log_entries(guarded_server, "repo_mirror_sync_failed")
                if entry.get("repo") == name
            ]
            assert any(message in failure for failure in failures), failures
        assert canary.requests == []


def test_allowed_ranges_open_the_loopback_on_purpose(server_factory) -> None:
    live = server_factory({"WORKERS_ENABLED": False, "SSRF_ALLOWED_HOSTS": ["127.0.0.0/8"]})
    setup = mirror_setup(live)
    response = setup.client.post(setup.url, json=_config(setup.robot, "127.1:5000/library/app"))
    assert response.status_code == 201, response.text
    refused = setup.client.put(setup.url, json={"external_reference": "[::1]:5000/library/app"})
    assert refused.status_code == 400 and refused.json()["detail"] == NOT_ALLOWED
