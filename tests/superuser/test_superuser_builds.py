"""Superuser views of builds by uuid."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import select

from cargohold.db.models.accounts import User
from cargohold.db.models.builds import BuildLogEntry, RepositoryBuild
from cargohold.db.models.registry import Repository
from tests.superuser.conftest import assert_api_error
from tests.support.accounts import TestUser, create_organization
from tests.support.server import LiveServer


def _build(server: LiveServer, owner: TestUser) -> str:
    org_name = create_organization(server, owner)
    with server.db() as session:
        org = session.scalar(select(User).where(User.username == org_name))
        repo = Repository(namespace_user_id=org.id, name="app")
        session.add(repo)
        session.flush()
        build = RepositoryBuild(
            repository_id=repo.id,
            phase="complete",
            display_name="a1b2c3d",
            job_config_json=json.dumps(
                {"docker_tags": ["latest"], "build_subdir": "/", "context": "/", "manual_user": "x"}
            ),
        )
        session.add(build)
        session.flush()
        for index in range(3):
            session.add(BuildLogEntry(build_id=build.id, message=f"step {index}", type="command"))
        return build.uuid


def test_superuser_reads_any_build_by_uuid(
    server: LiveServer, admin_client: httpx.Client, user: TestUser
) -> None:
    uuid = _build(server, user)
    status = admin_client.get(f"/api/v1/superuser/{uuid}/status")
    assert status.status_code == 200
    view = status.json()
    assert view["id"] == uuid
    assert view["phase"] == "complete"
    assert view["tags"] == ["latest"]
    assert view["display_name"] == "a1b2c3d"
    assert view["started"].endswith("-0000")
    assert view["repository"]["name"] == "app"
    assert admin_client.get(f"/api/v1/superuser/{uuid}/build").json() == view

    logs = admin_client.get(f"/api/v1/superuser/{uuid}/logs", params={"start": 1}).json()
    assert logs["start"] == 1
    assert logs["total"] == 3
    assert [entry["message"] for entry in logs["logs"]] == ["step 1", "step 2"]


def test_superuser_build_views_errors(
    server: LiveServer,
    admin_client: httpx.Client,
    user_client: httpx.Client,
    anon_client: httpx.Client,
    user: TestUser,
) -> None:
    for suffix in ("status", "logs"):
        missing = admin_client.get(f"/api/v1/superuser/test-1234/{suffix}")
        assert_api_error(
            missing, 400, "invalid_response", "Unable to locate a build by id: test-1234"
        )
    assert_api_error(admin_client.get("/api/v1/superuser/test-1234/build"), 404, "not_found")
    uuid = _build(server, user)
    for suffix in ("status", "logs", "build"):
        assert_api_error(
            user_client.get(f"/api/v1/superuser/{uuid}/{suffix}"), 403, "insufficient_scope"
        )
        assert_api_error(
            anon_client.get(f"/api/v1/superuser/{uuid}/{suffix}"), 401, "invalid_token"
        )


def test_superuser_reads_a_finished_builds_archived_log(
    server: LiveServer,
    admin_client: httpx.Client,
    user_client: httpx.Client,
    anon_client: httpx.Client,
    user: TestUser,
) -> None:
    uuid = _build(server, user)
    archived = admin_client.get(f"/api/v1/superuser/{uuid}/logs/archive")
    assert archived.status_code == 200
    assert archived.json() == {
        "start": 0,
        "total": 3,
        "logs": [{"message": f"step {index}", "type": "command", "data": {}} for index in range(3)],
    }
    # The superuser is no member of the repository: the public route refuses it.
    assert admin_client.get(f"/logarchive/{uuid}").status_code == 403
    with server.db() as session:
        build = session.scalar(select(RepositoryBuild).where(RepositoryBuild.uuid == uuid))
        build.phase = "building"
    running = admin_client.get(f"/api/v1/superuser/{uuid}/logs/archive")
    assert_api_error(running, 400, "invalid_response", "Archived logs not available")
    missing = admin_client.get("/api/v1/superuser/test-1234/logs/archive")
    assert_api_error(missing, 400, "invalid_response", "Unable to locate a build by id: test-1234")
    refused = user_client.get(f"/api/v1/superuser/{uuid}/logs/archive")
    assert_api_error(refused, 403, "insufficient_scope")
    assert_api_error(
        anon_client.get(f"/api/v1/superuser/{uuid}/logs/archive"), 401, "invalid_token"
    )
