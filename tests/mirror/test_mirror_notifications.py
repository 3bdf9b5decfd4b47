"""A mirror sync raises repo_mirror_sync_started, then _success or _failed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mirror.conftest import mirror_setup
from tests.mirror.test_mirror_sync import configure, sync
from tests.support.registry import make_image
from tests.support.upstream import UpstreamRegistry
from tests.support.webhook import WebhookListener, webhook_listener

pytestmark = pytest.mark.slow
EVENTS = ("repo_mirror_sync_started", "repo_mirror_sync_success", "repo_mirror_sync_failed")


@pytest.fixture
def listener() -> Iterator[WebhookListener]:
    with webhook_listener() as made:
        yield made


def test_sync_fires_mirror_events(
    server_factory, upstream: UpstreamRegistry, listener: WebhookListener, tmp_path: Path
) -> None:
    live = server_factory(
        {"REPO_MIRROR_INTERVAL": 1, "SSRF_ALLOWED_HOSTS": ["127.0.0.1", "127.0.0.2"]}
    )
    setup = mirror_setup(live)
    try:
        for event in EVENTS:
            response = setup.client.post(
                f"/api/v1/repository/{setup.repo}/notification/",
                json={
                    "event": event,
                    "method": "webhook",
                    "config": {"url": f"{listener.url}/{event}"},
                    "eventConfig": {},
                },
            )
            assert response.status_code == 201, response.text
        source = f"upstream/{setup.owner.username}"
        upstream.push(source, "v1", make_image(), tmp_path)
        configure(setup, f"{upstream.host}/{source}", ["v*"])
        assert sync(setup)["sync_status"] == "SUCCESS"

        started = listener.wait_for(1, path="/repo_mirror_sync_started")[0].body
        assert started["repository"] == setup.repo
        assert started["message"] == f"'{upstream.host}/{source}' with tag pattern 'v*'"
        success = listener.wait_for(1, path="/repo_mirror_sync_success")[0].body
        assert success["message"] == f"'{upstream.host}/{source}': v1"
        assert [r for r in listener.received if r.path == "/repo_mirror_sync_failed"] == []

        changed = setup.client.put(
            setup.url, json={"external_reference": f"{upstream.host}/upstream/nothing-here"}
        )
        assert changed.status_code == 201, changed.text
        assert sync(setup)["sync_status"] == "FAIL"
        failed = listener.wait_for(1, path="/repo_mirror_sync_failed")[0].body
        assert failed["repository"] == setup.repo
        assert "skopeo list-tags failed" in failed["message"]
        assert len(listener.wait_for(2, path="/repo_mirror_sync_started")) == 2
    finally:
        setup.client.close()
