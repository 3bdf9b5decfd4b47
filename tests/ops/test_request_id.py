"""Request ids: honoured or generated, echoed, written into JSON log lines and into the audit
entries the request wrote (API actions and registry pulls alike)."""

from __future__ import annotations

import json
import re
import time

import httpx
from sqlalchemy import select

from cargohold.db.models.audit import LogEntry
from tests.support.accounts import ALL_SCOPES, bearer_client, create_user, issue_token
from tests.support.registry import make_image, push_image, token_for, v2_client
from tests.support.server import LiveServer

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
GENERATED = re.compile(r"^[0-9a-f]{32}$")


def audit_ids(server: LiveServer, kind: str) -> list[str | None]:
    with server.db() as session:
        rows = session.scalars(select(LogEntry).where(LogEntry.kind == kind)).all()
        return [json.loads(row.metadata_json).get("request_id") for row in rows]


def test_request_ids_reach_responses_logs_and_the_audit_log(server_factory) -> None:
    server = server_factory({"LOG_FORMAT": "json"})

    honoured = httpx.get(server.url + "/api/v1/messages", headers={"X-Request-ID": "lb-7f3a.01"})
    assert honoured.headers["x-request-id"] == "lb-7f3a.01"
    replaced = httpx.get(server.url + "/v2/", headers={"X-Request-ID": "two words"})
    assert GENERATED.match(replaced.headers["x-request-id"])
    first = httpx.get(server.url + "/health/instance").headers["x-request-id"]
    second = httpx.get(server.url + "/health/instance").headers["x-request-id"]
    assert GENERATED.match(first) and first != second

    # A log line written during a request carries its id.
    refused = httpx.get(
        server.url + "/api/v1/user/",
        headers={"User-Agent": FIREFOX, "X-Request-ID": "browser-get-1"},
    )
    assert refused.status_code == 400
    records = [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]
    assert records, server.log_text()[-2000:]
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    (warning,) = [r for r in records if r.get("request_id") == "browser-get-1"]
    assert warning["level"] == "WARNING"
    assert "X-Requested-With" in warning["message"]

    owner = create_user(server)
    with bearer_client(server, issue_token(server, owner.username, ALL_SCOPES)) as client:
        created = client.post(
            "/api/v1/repository",
            json={"repository": "traced", "visibility": "private", "description": ""},
            headers={"X-Request-ID": "create-traced-1"},
        )
    assert created.status_code == 201, created.text
    assert "create-traced-1" in audit_ids(server, "create_repo")

    repo = f"{owner.username}/traced"
    token = token_for(server, (owner.username, owner.password), f"repository:{repo}:pull,push")
    with v2_client(server, token) as registry:
        assert push_image(registry, repo, make_image(), "v1").status_code == 201
        pulled = registry.get(
            f"/v2/{repo}/manifests/v1",
            headers={
                "X-Request-ID": "pull-traced-1",
                "Accept": "application/vnd.oci.image.manifest.v1+json",
            },
        )
    assert pulled.status_code == 200
    assert pulled.headers["x-request-id"] == "pull-traced-1"
    deadline = time.monotonic() + 15
    while "pull-traced-1" not in audit_ids(server, "pull_repo") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "pull-traced-1" in audit_ids(server, "pull_repo")
