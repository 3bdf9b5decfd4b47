"""The mirror configuration API and sync controls (no worker running here)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from cargohold.db.models.accounts import User
from cargohold.db.models.mirror import RepoMirrorConfig
from cargohold.db.models.registry import Repository, RepositoryPermission, RepositoryState, Role
from cargohold.domain.repositories import find_repository
from tests.api.test_organization import CSRF_FAILED, assert_api_error
from tests.mirror.conftest import MirrorSetup, mirror_setup
from tests.support.accounts import ALL_SCOPES, bearer_client, create_user, issue_token
from tests.support.organizations import log_entries
from tests.support.registry import create_robot, get_token, pull_push
from tests.support.server import LiveServer


@pytest.fixture(scope="module")
def quiet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """No workers, so sync states stay where the API puts them."""
    live = LiveServer(tmp_path_factory.mktemp("mirror-api"), {"WORKERS_ENABLED": False}).start()
    yield live
    live.destroy()


@pytest.fixture
def setup(quiet_server: LiveServer) -> Iterator[MirrorSetup]:
    made = mirror_setup(quiet_server)
    yield made
    made.client.close()


def new_config(setup: MirrorSetup, **overrides) -> dict:
    body = {
        "external_reference": "registry.example.com/upstream/app",
        "sync_interval": 3600,
        "sync_start_date": "2030-01-02T03:04:05Z",
        "root_rule": {"rule_kind": "tag_glob_csv", "rule_value": ["v1.*", "latest"]},
        "skopeo_timeout_interval": 300,
        "robot_username": setup.robot,
        "external_registry_username": "puller",
        "external_registry_password": "s3cret-upstream",
        "external_registry_config": {"verify_tls": True, "unsigned_images": False},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def repository_row(server: LiveServer, path: str) -> tuple[RepositoryState, Role | None, str]:
    namespace, name = path.split("/", 1)
    with server.db() as session:
        repo = find_repository(session, namespace, name)
        robot_role = session.scalar(
            select(RepositoryPermission.role)
            .join(User, User.id == RepositoryPermission.user_id)
            .where(
                RepositoryPermission.repository_id == repo.id,
                User.username == f"{namespace}+mirror",
            )
        )
        stored = session.scalar(
            select(RepoMirrorConfig.password_encrypted).where(
                RepoMirrorConfig.repository_id == repo.id
            )
        )
        return RepositoryState(repo.state), robot_role, stored or ""


def test_create_then_view(quiet_server: LiveServer, setup: MirrorSetup) -> None:
    created = setup.client.post(setup.url, json=new_config(setup))
    assert created.status_code == 201
    assert created.json() == ""
    view = setup.client.get(setup.url)
    assert view.status_code == 200
    assert view.json() == {
        "is_enabled": True,
        "mirror_type": "PULL",
        "external_reference": "registry.example.com/upstream/app",
        "external_registry_username": "puller",
        "external_registry_config": {"verify_tls": True, "unsigned_images": False},
        "sync_interval": 3600,
        "sync_start_date": "2030-01-02T03:04:05Z",
        "sync_expiration_date": None,
        "sync_retries_remaining": 3,
        "sync_status": "NEVER_RUN",
        "root_rule": {"rule_kind": "tag_glob_csv", "rule_value": ["v1.*", "latest"]},
        "robot_username": setup.robot,
        "skopeo_timeout_interval": 300,
        "architecture_filter": [],
    }
    state, robot_role, stored_password = repository_row(quiet_server, setup.repo)
    assert state is RepositoryState.MIRROR
    assert robot_role is Role.write
    assert stored_password and "s3cret-upstream" not in stored_password
    entry = log_entries(quiet_server, "repo_mirror_config_changed")[-1]
    assert entry["changed"] == "external_reference"
    assert entry["to"] == "registry.example.com/upstream/app"


def test_second_create_is_a_conflict(setup: MirrorSetup) -> None:
    assert setup.client.post(setup.url, json=new_config(setup)).status_code == 201
    again = setup.client.post(setup.url, json=new_config(setup))
    assert again.status_code == 409
    assert again.json() == {
        "detail": f"Mirror configuration already exits for repository {setup.repo}"
    }


BAD_CREATES = [
    ({"robot_username": None}, 400, "api"),
    ({"mirror_type": "PULL"}, 400, "api"),
    ({"skopeo_timeout_interval": 100}, 400, "api"),
    ({"sync_interval": -1}, 400, "api"),
    ({"root_rule": {"rule_kind": "regex", "rule_value": ["x"]}}, 400, "api"),
    ({"sync_start_date": "2030-01-02 03:04:05"}, 400, {"detail": "Incorrect DateTime format for sync_start_date."}),
    ({"sync_start_date": "2030-01-02T03:04:05.5Z"}, 400, {"detail": "Incorrect DateTime format for sync_start_date."}),
    ({"root_rule": {"rule_kind": "tag_glob_csv", "rule_value": []}}, 400, "api"),
    ({"robot_username": "nobody+nothing"}, 400, {"message": "Could not find robot with specified username"}),
    ({"external_reference": "https://registry.example.com/a/b"}, 400, "api"),
    ({"external_reference": "registry.example.com"}, 400, "api"),
    ({"external_reference": "127.0.0.1:5000/a/b"}, 400, "api"),
    ({"external_reference": "reg.example.com/a b"}, 400, "api"),
    ({"architecture_filter": ["amd64"]}, 400, {"detail": "Architecture filtering requires FEATURE_SPARSE_INDEX to be enabled."}),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "status", "body"), BAD_CREATES)
def test_bad_creates_change_nothing(
    quiet_server: LiveServer, setup: MirrorSetup, overrides: dict, status: int, body
) -> None:
    payload = new_config(setup, **{k: v for k, v in overrides.items() if v is not None})
    for key, value in overrides.items():
        if value is None:
            payload.pop(key)
    response = setup.client.post(setup.url, json=payload)
    if body == "api":
        assert_api_error(response, status, "invalid_request")
    else:
        assert response.status_code == status and response.json() == body
    assert_api_error(setup.client.get(setup.url), 404, "not_found")
    state, robot_role, _ = repository_row(quiet_server, setup.repo)
    assert state is RepositoryState.NORMAL and robot_role is Role.read


def test_reference_messages(setup: MirrorSetup) -> None:
    no_path = setup.client.post(setup.url, json=new_config(setup, external_reference="reg.io"))
    assert no_path.json()["detail"] == "External registry reference must include a repository path"
    inward = setup.client.post(
        setup.url, json=new_config(setup, external_reference="localhost:5000/a/b")
    )
    assert inward.json()["detail"] == "The provided registry location is not allowed"


def test_robot_of_another_namespace_is_invalid(
    quiet_server: LiveServer, setup: MirrorSetup
) -> None:
    other = create_user(quiet_server)
    create_robot(quiet_server, other.username, "bot", {})
    response = setup.client.post(
        setup.url, json=new_config(setup, robot_username=f"{other.username}+bot")
    )
    assert response.status_code == 400 and response.json() == {"message": "Invalid robot"}


def test_change_applies_and_logs_each_field(quiet_server: LiveServer, setup: MirrorSetup) -> None:
    assert setup.client.post(setup.url, json=new_config(setup)).status_code == 201
    changed = setup.client.put(
        setup.url,
        json={
            "is_enabled": False,
            "sync_interval": 60,
            "sync_start_date": "2031-01-01T00:00:00Z",
            "root_rule": {"rule_kind": "tag_glob_csv", "rule_value": ["*"]},
            "external_registry_username": "other",
            "external_registry_password": "new-pass",
            "external_registry_config": {
                "verify_tls": False,
                "proxy": {"https_proxy": "http://p:3128"},
            },
        },
    )
    assert changed.status_code == 201 and changed.json() == ""
    view = setup.client.get(setup.url).json()
    assert view["is_enabled"] is False
    assert view["sync_interval"] == 60
    assert view["sync_start_date"] == "2031-01-01T00:00:00Z"
    assert view["root_rule"]["rule_value"] == ["*"]
    assert view["external_registry_username"] == "other"
    assert view["external_registry_config"] == {
        "verify_tls": False,
        "unsigned_images": False,
        "proxy": {"https_proxy": "http://p:3128"},
    }
    changes = {
        e["changed"]: e["to"] for e in log_entries(quiet_server, "repo_mirror_config_changed")
    }
    assert changes["is_enabled"] is False
    assert changes["mirror_rule"] == ["*"]
    assert changes["external_registry_password"] == "********"
    assert changes["verify_tls"] is False


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"external_registry_password": "x"}, {"detail": "Unable to set a new password without also specifying a username."}),
        ({"external_registry_username": None, "external_registry_password": "x"}, {"detail": "Unable to delete username while setting a password."}),
        ({"is_enabled": None}, "api"),
        ({"sync_start_date": "tomorrow", "is_enabled": False}, {"detail": "Incorrect DateTime format for sync_start_date."}),
        ({"robot_username": "ghost+bot", "is_enabled": False}, {"message": "Could not find robot with specified username"}),
        ({"sync_status": "SUCCESS"}, "api"),
    ],
)  # fmt: skip
def test_bad_changes_change_nothing(setup: MirrorSetup, body: dict, expected) -> None:
    assert setup.client.post(setup.url, json=new_config(setup)).status_code == 201
    before = setup.client.get(setup.url).json()
    response = setup.client.put(setup.url, json=body)
    if expected == "api":
        assert_api_error(response, 400, "invalid_request")
    else:
        assert response.status_code == 400 and response.json() == expected
    assert setup.client.get(setup.url).json() == before


def test_change_without_config_is_404(setup: MirrorSetup) -> None:
    assert_api_error(setup.client.put(setup.url, json={"is_enabled": False}), 404, "not_found")
    assert_api_error(setup.client.post(setup.url + "/sync-now"), 404, "not_found")


def test_sync_now_and_cancel(quiet_server: LiveServer, setup: MirrorSetup) -> None:
    assert setup.client.post(setup.url, json=new_config(setup)).status_code == 201
    assert_api_error(setup.client.post(setup.url + "/sync-cancel"), 404, "not_found")
    now = setup.client.post(setup.url + "/sync-now")
    assert now.status_code == 204 and now.content == b""
    assert setup.client.get(setup.url).json()["sync_status"] == "SYNC_NOW"
    cancel = setup.client.post(setup.url + "/sync-cancel")
    assert cancel.status_code == 204
    view = setup.client.get(setup.url).json()
    assert view["sync_status"] == "CANCEL" and view["sync_retries_remaining"] == 0
    assert_api_error(setup.client.post(setup.url + "/sync-cancel"), 404, "not_found")
    targets = [
        e["to"]
        for e in log_entries(quiet_server, "repo_mirror_config_changed")
        if e["changed"] == "sync_status"
    ]
    assert targets[-2:] == ["SYNC_NOW", "SYNC_CANCEL"]


def test_sync_now_while_syncing_is_404(quiet_server: LiveServer, setup: MirrorSetup) -> None:
    from cargohold.db.models.mirror import SyncStatus

    assert setup.client.post(setup.url, json=new_config(setup)).status_code == 201
    with quiet_server.db() as session:
        config = session.scalar(select(RepoMirrorConfig).order_by(RepoMirrorConfig.id.desc()))
        config.sync_status = SyncStatus.SYNCING
    assert_api_error(setup.client.post(setup.url + "/sync-now"), 404, "not_found")


def test_permissions(quiet_server: LiveServer, setup: MirrorSetup) -> None:
    assert setup.client.post(setup.url, json=new_config(setup)).status_code == 201
    with httpx.Client(base_url=quiet_server.url) as anonymous:
        assert_api_error(anonymous.get(setup.url), 401, "invalid_token")
        assert anonymous.post(setup.url + "/sync-now").json() == CSRF_FAILED
        assert anonymous.put(setup.url, json={}).json() == CSRF_FAILED
    stranger = create_user(quiet_server)
    with bearer_client(quiet_server, issue_token(quiet_server, stranger.username, ALL_SCOPES)) as c:
        assert_api_error(c.get(setup.url), 403, "insufficient_scope")
        assert_api_error(c.post(setup.url + "/sync-now"), 403, "insufficient_scope")
        assert_api_error(
            c.get(f"/api/v1/repository/{setup.owner.username}/nosuchrepo/mirror"),
            403,
            "insufficient_scope",
        )
    assert_api_error(
        setup.client.get(f"/api/v1/repository/{setup.owner.username}/nosuchrepo/mirror"),
        404,
        "not_found",
    )
    narrow = issue_token(quiet_server, setup.owner.username, "repo:write user:admin org:admin")
    with bearer_client(quiet_server, narrow) as c:
        assert_api_error(c.get(setup.url), 403, "insufficient_scope")
        assert_api_error(c.put(setup.url, json={"is_enabled": False}), 403, "insufficient_scope")


def _granted_actions(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    payload = response.json()["token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return [action for entry in claims["access"] for action in entry["actions"]]


def test_only_the_mirror_robot_may_push(quiet_server: LiveServer, setup: MirrorSetup) -> None:
    robot_token = create_robot(
        quiet_server, setup.owner.username, "pusher", {setup.repo: Role.write}
    )
    assert setup.client.post(setup.url, json=new_config(setup)).status_code == 201
    owner = (setup.owner.username, setup.owner.password)
    assert "push" not in _granted_actions(get_token(quiet_server, owner, pull_push(setup.repo)))
    other_robot = (f"{setup.owner.username}+pusher", robot_token)
    assert "push" not in _granted_actions(
        get_token(quiet_server, other_robot, pull_push(setup.repo))
    )
    with quiet_server.db() as session:
        from cargohold.db.models.accounts import RobotAccountToken
        from cargohold.domain.robots import read_token

        robot = session.scalar(select(User).where(User.username == setup.robot))
        record = session.scalar(
            select(RobotAccountToken).where(RobotAccountToken.robot_id == robot.id)
        )
        mirror_token = read_token(quiet_server.settings, record)
    granted = _granted_actions(
        get_token(quiet_server, (setup.robot, mirror_token), pull_push(setup.repo))
    )
    assert "push" in granted
    with quiet_server.db() as session:
        namespace, name = setup.repo.split("/", 1)
        assert (
            session.scalar(select(Repository.state).where(Repository.name == name))
            == RepositoryState.MIRROR
        )
