"""Usage goes down when garbage collection removes manifests; quota features can be off."""

from __future__ import annotations

from sqlalchemy import update

from cargohold.db.base import make_engine, make_session_factory, utcnow
from cargohold.db.models.accounts import User
from cargohold.domain import gc
from cargohold.storage import make_store
from tests.support.accounts import (
    ALL_SCOPES,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
    unique,
)
from tests.support.registry import make_image, pull_push, push_image, token_for, v2_client
from tests.support.server import LiveServer


def _usage(server: LiveServer, owner, org: str) -> int:
    with bearer_client(server, issue_token(server, owner.username, ALL_SCOPES)) as client:
        return client.get(f"/api/v1/organization/{org}").json()["quota_report"]["quota_bytes"]


def test_garbage_collection_lowers_usage(server: LiveServer) -> None:
    owner = create_user(server)
    org = create_organization(server, owner)
    repo = f"{org}/{unique('gc')}"
    old, new = make_image(), make_image()
    token = token_for(server, (owner.username, owner.password), pull_push(repo))
    with v2_client(server, token) as client:
        assert push_image(client, repo, old, "v1").status_code == 201
        assert push_image(client, repo, new, "v1").status_code == 201
    both = sum(len(blob.data) for blob in (*old.blobs, *new.blobs))
    # A moved tag keeps its old manifest (and its usage) inside the time machine.
    assert _usage(server, owner, org) == both

    with server.db() as session:
        session.execute(update(User).where(User.username == org).values(tag_expiration_s=0))
    settings = server.settings
    engine = make_engine(settings.DB_URI, settings.DB_CONNECTION_ARGS)
    sessions = make_session_factory(engine)
    try:
        gc.run_pass(sessions, make_store(settings), settings, now=utcnow())
        assert _usage(server, owner, org) == sum(len(blob.data) for blob in new.blobs)

        # A deleted repository stops counting once GC purges it.
        with bearer_client(server, issue_token(server, owner.username, ALL_SCOPES)) as client:
            assert client.delete(f"/api/v1/repository/{repo}").status_code == 204
        namespace_id = None
        with server.db() as session:
            namespace_id = session.query(User.id).filter(User.username == org).scalar()
        report = gc.run_pass(
            sessions, make_store(settings), settings, now=utcnow(), namespace_id=namespace_id
        )
        assert report.repositories == 1
    finally:
        engine.dispose()
    assert _usage(server, owner, org) == 0


def test_quota_api_and_fields_vanish_when_quota_management_is_off(server_factory) -> None:
    live = server_factory({"FEATURE_QUOTA_MANAGEMENT": False})
    admin = create_user(live, "admin")
    owner = create_user(live)
    org = create_organization(live, owner)
    with bearer_client(live, issue_token(live, admin.username, ALL_SCOPES)) as client:
        for path in (
            f"/api/v1/superuser/users/{org}/quota",
            f"/api/v1/organization/{org}/quota",
            "/api/v1/user/quota",
        ):
            response = client.get(path)
            assert response.status_code == 404
            assert "error_type" not in response.json()
        assert client.get("/api/v1/superuser/registrysize/").status_code == 200
        [listed] = client.get("/api/v1/superuser/organizations/").json()["organizations"]
        assert listed["name"] == org
        assert set(listed) == {"name", "email", "avatar"}
    with bearer_client(live, issue_token(live, owner.username, ALL_SCOPES)) as client:
        view = client.get(f"/api/v1/organization/{org}").json()
        assert "quotas" not in view and "quota_report" not in view
