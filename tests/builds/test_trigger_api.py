"""Build triggers through the API and the webhook, on a server that queues builds only."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import select

from cargohold.db.models.audit import LogEntry
from tests.support.accounts import ALL_SCOPES, bearer_client, create_user, issue_token
from tests.support.builds import activate, session_client, setup_custom_trigger
from tests.support.content import make_repository
from tests.support.repos import create_robot
from tests.support.sessions import after_login_failure

SHA = "1234567890abcdef1234567890abcdef12345678"
CONFIG = {
    "build_source": "git@git.invalid:team/repo.git",
    "dockerfile_path": "/Dockerfile",
    "context": "/",
    "branchtag_regex": "heads/(main|release-.*)",
}


def _audit_kinds(server, repository_path: str) -> list[str]:
    with server.db() as session:
        rows = session.scalars(select(LogEntry).order_by(LogEntry.id)).all()
        return [
            row.kind
            for row in rows
            if json.loads(row.metadata_json).get("repo") == repository_path.split("/", 1)[1]
            or json.loads(row.metadata_json).get("build_uuid")
        ]


@pytest.fixture
def repo(idle_server, owner) -> str:
    return make_repository(idle_server, owner.username)


@pytest.fixture
def active(idle_server, owner, owner_client, repo) -> tuple[str, dict]:
    trigger = setup_custom_trigger(idle_server, owner, repo)
    response = activate(owner_client, repo, trigger, CONFIG)
    assert response.status_code == 200, response.text
    return trigger, response.json()


def _webhook_url(view: dict) -> str:
    return next(
        c["value"] for c in view["config"]["credentials"] if c["name"] == "Webhook Endpoint URL"
    )


def _post_webhook(view: dict, payload, *, auth=None) -> httpx.Response:
    url = httpx.URL(_webhook_url(view))
    plain = url.copy_with(username=None, password=None)
    credentials = auth if auth is not None else (url.username, url.password)
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return httpx.post(str(plain), content=body, auth=credentials, timeout=30)


def test_setup_needs_the_session_csrf_token(idle_server, owner, owner_client, repo) -> None:
    """The setup route is a GET that creates a trigger: a cross-site link or image carries the
    victim's cookie but not the token, and creates nothing."""
    with session_client(idle_server, owner) as client:
        token = client.headers.pop("X-CSRF-Token")
        for params in ({}, {"_csrf_token": "not-the-token"}):
            refused = client.get(f"/customtrigger/setup/{repo}", params=params)
            assert refused.status_code == 403
            assert refused.json() == {"error": "CSRF token was invalid or missing."}
        assert owner_client.get(f"/api/v1/repository/{repo}/trigger/").json()["triggers"] == []
        created = client.get(f"/customtrigger/setup/{repo}", params={"_csrf_token": token})
        assert created.status_code == 302
    listed = owner_client.get(f"/api/v1/repository/{repo}/trigger/").json()["triggers"]
    assert [t["id"] for t in listed] == [created.headers["location"].rsplit("/", 1)[1]]


def test_setup_needs_a_signed_in_admin(idle_server, owner, owner_client, repo) -> None:
    assert owner_client.get(f"/customtrigger/setup/{repo}").status_code == 403
    stranger = create_user(idle_server)
    with session_client(idle_server, stranger) as client:
        assert client.get(f"/customtrigger/setup/{repo}").status_code == 403
    trigger = setup_custom_trigger(idle_server, owner, repo)
    listed = owner_client.get(f"/api/v1/repository/{repo}/trigger/").json()["triggers"]
    assert [t["id"] for t in listed] == [trigger]
    assert listed[0]["is_active"] is False
    assert listed[0]["service"] == "custom-git"
    assert listed[0]["config"] == {}


def test_activation_returns_deploy_key_and_webhook(idle_server, owner_client, repo, active) -> None:
    trigger, view = active
    assert view["is_active"] is True and view["can_invoke"] is True and view["enabled"] is True
    assert view["build_source"] == CONFIG["build_source"]
    assert view["repository_url"] is None
    credentials = {c["name"]: c["value"] for c in view["config"]["credentials"]}
    assert credentials["SSH Public Key"].startswith("ssh-rsa ")
    webhook = credentials["Webhook Endpoint URL"]
    assert webhook.startswith("http://$token:")
    assert webhook.endswith(f"@{idle_server.host}/webhooks/push/trigger/{trigger}")
    fetched = owner_client.get(f"/api/v1/repository/{repo}/trigger/{trigger}").json()
    assert fetched == view
    again = activate(owner_client, repo, trigger, CONFIG)
    assert again.status_code == 400
    assert again.json()["detail"] == "Trigger config is not sufficient for activation."
    assert "setup_repo_trigger" in _audit_kinds(idle_server, repo)
    with idle_server.db() as session:
        from cargohold.db.models.builds import BuildTrigger

        stored = session.scalar(select(BuildTrigger).where(BuildTrigger.uuid == trigger))
        assert "PRIVATE KEY" not in (stored.private_key_encrypted or "")
        assert webhook.split(":")[2].split("@")[0] not in stored.config_json


def test_activation_rejects_bad_config_and_robots(idle_server, owner, owner_client, repo) -> None:
    trigger = setup_custom_trigger(idle_server, owner, repo)
    bad = activate(owner_client, repo, trigger, {**CONFIG, "branchtag_regex": "heads/(unclosed"})
    assert bad.status_code == 400
    assert bad.json()["error_type"] == "invalid_request"
    assert "branchtag_regex" in bad.json()["detail"]
    missing = activate(owner_client, repo, trigger, {"dockerfile_path": "/Dockerfile"})
    assert missing.status_code == 400
    unknown = activate(owner_client, repo, trigger, CONFIG, pull_robot=f"{owner.username}+ghost")
    assert unknown.status_code == 404
    other = create_user(idle_server)
    foreign, _ = create_robot(idle_server, other.username)
    assert activate(owner_client, repo, trigger, CONFIG, pull_robot=foreign).status_code == 403
    view = owner_client.get(f"/api/v1/repository/{repo}/trigger/{trigger}").json()
    assert view["is_active"] is False
    robot, _ = create_robot(idle_server, owner.username)
    done = activate(owner_client, repo, trigger, CONFIG, pull_robot=robot)
    assert done.status_code == 200
    assert done.json()["pull_robot"] == {"name": robot, "kind": "user", "is_robot": True}


def test_toggle_and_manual_start(idle_server, owner, owner_client, repo, active) -> None:
    trigger, _ = active
    base = f"/api/v1/repository/{repo}/trigger/{trigger}"
    off = owner_client.put(base, json={"enabled": False})
    assert off.status_code == 200
    assert off.json()["enabled"] is False
    assert off.json()["config"] == {} and off.json()["can_invoke"] is False
    refused = owner_client.post(base + "/start", json={"commit_sha": SHA})
    assert refused.status_code == 400
    assert refused.json()["detail"] == "Trigger is not enabled."
    on = owner_client.put(base, json={"enabled": True})
    assert on.json()["enabled"] is True
    assert owner_client.get(base).json()["disabled_reason"] == "user_toggled"

    missing = owner_client.post(base + "/start", json={})
    assert missing.status_code == 400 and missing.json()["detail"] == "missing required parameter"
    bad_sha = owner_client.post(base + "/start", json={"commit_sha": "foo"})
    assert bad_sha.json()["detail"] == "'foo' does not match '^([A-Fa-f0-9]{7,})$'"
    extra = owner_client.post(base + "/start", json={"commit_sha": SHA, "nope": 1})
    assert extra.status_code == 400

    started = owner_client.post(base + "/start", json={"commit_sha": SHA})
    assert started.status_code == 201, started.text
    build = started.json()
    assert started.headers["location"] == f"/api/v1/repository/{repo}/build/{build['id']}/status"
    assert build["phase"] == "waiting"
    assert build["tags"] == [SHA[:7]]
    assert build["display_name"] == SHA[:7]
    assert build["manual_user"] == owner.username
    assert build["trigger_metadata"] == {"commit": SHA, "git_url": CONFIG["build_source"]}
    assert build["trigger"]["build_source"] == CONFIG["build_source"]
    assert "pull_robot" not in build["trigger"]
    recent = owner_client.get(base + "/builds").json()["builds"]
    assert [b["id"] for b in recent] == [build["id"]]
    assert "build_dockerfile" in _audit_kinds(idle_server, repo)


def test_trigger_uuids_are_scoped_to_their_repository(
    idle_server, owner, owner_client, repo, active
) -> None:
    trigger, _ = active
    other = make_repository(idle_server, owner.username)
    base = f"/api/v1/repository/{other}/trigger/{trigger}"
    assert owner_client.get(base).status_code == 404
    assert owner_client.put(base, json={"enabled": False}).status_code == 404
    assert owner_client.post(base + "/start", json={"commit_sha": SHA}).status_code == 404
    assert owner_client.post(base + "/activate", json={"config": CONFIG}).status_code == 404
    assert owner_client.delete(base).status_code == 404
    assert owner_client.get(base + "/builds").json() == {"builds": []}
    assert owner_client.get(f"/api/v1/repository/{repo}/trigger/{trigger}").status_code == 200


def test_trigger_endpoints_check_permissions(idle_server, owner, repo, active) -> None:
    trigger, _ = active
    stranger = create_user(idle_server)
    with bearer_client(idle_server, issue_token(idle_server, stranger.username, ALL_SCOPES)) as c:
        assert c.get(f"/api/v1/repository/{repo}/trigger/").status_code == 403
        assert c.get(f"/api/v1/repository/{repo}/trigger/{trigger}").status_code == 403
        assert c.delete(f"/api/v1/repository/{repo}/trigger/{trigger}").status_code == 403
    anonymous = httpx.get(f"{idle_server.url}/api/v1/repository/{repo}/trigger/")
    assert anonymous.status_code == 401


def test_webhook_builds_with_computed_tags(idle_server, owner_client, repo, active) -> None:
    trigger, view = active
    payload = {"commit": SHA, "ref": "refs/heads/main", "default_branch": "main"}
    response = _post_webhook(view, payload)
    assert response.status_code == 200 and response.text == "Okay"
    builds = owner_client.get(f"/api/v1/repository/{repo}/trigger/{trigger}/builds").json()
    build = builds["builds"][0]
    assert sorted(build["tags"]) == ["latest", "main"]
    assert build["manual_user"] is None
    assert build["trigger_metadata"]["git_url"] == CONFIG["build_source"]
    assert build["trigger_metadata"]["ref"] == "refs/heads/main"

    skipped = _post_webhook(view, {**payload, "ref": "refs/heads/feature"})
    assert skipped.status_code == 200 and skipped.text == "Okay"
    skip_message = {
        **payload,
        "commit_info": {"url": "u", "message": "docs [skip build]", "date": "d"},
    }
    assert _post_webhook(view, skip_message).status_code == 200
    release = _post_webhook(view, {**payload, "ref": "refs/heads/release-1/x"})
    assert release.status_code == 200
    after = owner_client.get(f"/api/v1/repository/{repo}/trigger/{trigger}/builds").json()
    assert len(after["builds"]) == 2
    assert after["builds"][0]["tags"] == ["release-1_x"]


def test_webhook_rejects_bad_requests(idle_server, owner, owner_client, repo, active) -> None:
    trigger, view = active
    payload = {"commit": SHA, "ref": "refs/heads/main", "default_branch": "main"}
    wrong = _post_webhook(view, payload, auth=("$token", "X" * 64))
    assert wrong.status_code == 403 and wrong.json() == {"error": "Permission Denied"}
    assert _post_webhook(view, payload, auth=(owner.username, "wrong-password")).status_code == 403
    unknown = httpx.post(f"{idle_server.url}/webhooks/push/trigger/{'0' * 8}-x", content=b"{}")
    assert unknown.status_code == 404 and unknown.json() == {"error": "Not Found"}
    empty = _post_webhook(view, b"")
    assert empty.status_code == 400 and empty.json() == {"error": "Missing expected payload"}
    no_commit = _post_webhook(view, {})
    assert no_commit.json() == {"error": "'commit' is a required property"}
    # The owner's wrong password above holds the account back for a moment.
    as_owner = after_login_failure(
        lambda: _post_webhook(view, payload, auth=(owner.username, owner.password))
    )
    assert as_owner.status_code == 200
    owner_client.put(f"/api/v1/repository/{repo}/trigger/{trigger}", json={"enabled": False})
    disabled = _post_webhook(view, payload)
    assert disabled.status_code == 400
    assert "currently disabled" in disabled.json()["error"]
    builds = owner_client.get(f"/api/v1/repository/{repo}/trigger/{trigger}/builds").json()
    assert len(builds["builds"]) == 1


def test_delete_keeps_builds_without_their_trigger(idle_server, owner_client, repo, active) -> None:
    trigger, _ = active
    base = f"/api/v1/repository/{repo}/trigger/{trigger}"
    build = owner_client.post(base + "/start", json={"commit_sha": SHA}).json()
    assert owner_client.delete(base).status_code == 204
    assert owner_client.get(base).status_code == 404
    assert owner_client.get(f"/api/v1/repository/{repo}/trigger/").json() == {"triggers": []}
    view = owner_client.get(f"/api/v1/repository/{repo}/build/{build['id']}").json()
    assert view["trigger"] is None
    assert "delete_repo_trigger" in _audit_kinds(idle_server, repo)


def test_trigger_that_keeps_failing_is_disabled(idle_server, owner_client, repo, active) -> None:
    from cargohold.db.models.builds import RepositoryBuild
    from cargohold.domain import builds as build_rules

    trigger, _ = active
    base = f"/api/v1/repository/{repo}/trigger/{trigger}"
    settings = idle_server.settings.model_copy(
        update={"SUCCESSIVE_TRIGGER_FAILURE_DISABLE_THRESHOLD": 2}
    )
    started = [
        owner_client.post(base + "/start", json={"commit_sha": SHA}).json() for _ in range(2)
    ]
    for outcome, build in zip(("error", "error"), started, strict=True):
        with idle_server.db() as session:
            row = session.scalar(select(RepositoryBuild).where(RepositoryBuild.uuid == build["id"]))
            assert build_rules.set_phase(session, row.id, outcome)
            build_rules.record_trigger_outcome(session, settings, row.id)
        if build is started[0]:
            assert owner_client.get(base).json()["enabled"] is True
    view = owner_client.get(base).json()
    assert view["enabled"] is False
    assert view["disabled_reason"] == "successive_build_failures"
    refused = owner_client.post(base + "/start", json={"commit_sha": SHA})
    assert refused.json()["detail"] == "Trigger is not enabled."
