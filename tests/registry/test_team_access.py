"""Through the registry with skopeo: a team's repository role decides what its members and
robots may pull and push, and changes made through the API apply at once."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import accounts
from tests.support.accounts import (
    ALL_SCOPES,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
)
from tests.support.registry import make_image, write_oci_layout
from tests.support.server import LiveServer
from tests.support.teams import create_robot

pytestmark = pytest.mark.slow


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["skopeo", *args], capture_output=True, text=True, timeout=120, check=False
    )


class Registry:
    def __init__(self, server: LiveServer, layout: Path, workdir: Path) -> None:
        self.server = server
        self.layout = layout
        self.workdir = workdir
        self.pulls = 0

    def push(self, creds: str, reference: str) -> bool:
        result = _skopeo(
            "copy",
            "--dest-tls-verify=false",
            f"--dest-creds={creds}",
            f"oci:{self.layout}:latest",
            f"docker://{self.server.host}/{reference}",
        )
        return result.returncode == 0

    def pull(self, creds: str, reference: str) -> bool:
        self.pulls += 1
        result = _skopeo(
            "copy",
            "--src-tls-verify=false",
            f"--src-creds={creds}",
            f"docker://{self.server.host}/{reference}",
            f"oci:{self.workdir / f'pull{self.pulls}'}:latest",
        )
        return result.returncode == 0


@pytest.fixture
def registry(server: LiveServer, tmp_path: Path) -> Registry:
    layout = write_oci_layout(tmp_path / "layout", {"latest": make_image()})
    return Registry(server, layout, tmp_path)


def _creds(user: accounts.TestUser) -> str:
    return f"{user.username}:{user.password}"


def test_team_role_decides_push_and_pull(server: LiveServer, registry: Registry) -> None:
    owner = create_user(server)
    developer = create_user(server)
    org = create_organization(server, owner)
    robot, robot_token = create_robot(server, org, "ci")
    repo = f"{org}/app"
    members = {"developer": _creds(developer), "robot": f"{robot}:{robot_token}"}
    with bearer_client(server, issue_token(server, owner.username, ALL_SCOPES)) as api:
        team = f"/api/v1/organization/{org}/team/devs"
        assert api.put(team, json={"role": "member"}).status_code == 200
        for name in (developer.username, robot):
            assert api.put(f"{team}/members/{name}").json()["invited"] is False
        created = api.post(
            "/api/v1/repository",
            json={
                "namespace": org,
                "repository": "app",
                "visibility": "private",
                "description": "",
            },
        )
        assert created.status_code == 201
        assert registry.push(_creds(owner), f"{repo}:v1")

        # Membership alone gives nothing on a private repository.
        for creds in members.values():
            assert not registry.pull(creds, f"{repo}:v1")
            assert not registry.push(creds, f"{repo}:denied")

        grant = f"/api/v1/repository/{repo}/permissions/team/devs"
        assert api.put(grant, json={"role": "read"}).status_code == 200
        for creds in members.values():
            assert registry.pull(creds, f"{repo}:v1")
            assert not registry.push(creds, f"{repo}:denied")

        assert api.put(grant, json={"role": "write"}).status_code == 200
        for who, creds in members.items():
            assert registry.push(creds, f"{repo}:{who}")
            assert registry.pull(creds, f"{repo}:{who}")
        assert api.get(f"{team}/permissions").json() == {
            "permissions": [{"repository": {"name": "app", "is_public": False}, "role": "write"}]
        }

        # Leaving the team takes the rights away; the robot keeps them until the team goes.
        assert api.delete(f"{team}/members/{developer.username}").status_code == 204
        assert not registry.pull(members["developer"], f"{repo}:v1")
        assert registry.pull(members["robot"], f"{repo}:v1")
        assert api.delete(team).status_code == 204
        assert not registry.pull(members["robot"], f"{repo}:v1")
    assert registry.pull(_creds(owner), f"{repo}:robot")


def test_push_created_repository_gets_default_permissions(
    server: LiveServer, registry: Registry
) -> None:
    owner = create_user(server)
    developer = create_user(server)
    org = create_organization(server, owner)
    with bearer_client(server, issue_token(server, owner.username, ALL_SCOPES)) as api:
        assert (
            api.put(f"/api/v1/organization/{org}/team/devs", json={"role": "member"}).status_code
            == 200
        )
        assert (
            api.put(
                f"/api/v1/organization/{org}/team/devs/members/{developer.username}"
            ).status_code
            == 200
        )
        # Pushed before the rule exists: the team gets nothing.
        assert registry.push(_creds(owner), f"{org}/before:v1")
        rule = {"role": "read", "delegate": {"name": "devs", "kind": "team"}}
        assert api.post(f"/api/v1/organization/{org}/prototypes", json=rule).status_code == 200
        assert registry.push(_creds(owner), f"{org}/after:v1")
        assert api.get(f"/api/v1/organization/{org}/team/devs/permissions").json() == {
            "permissions": [{"repository": {"name": "after", "is_public": False}, "role": "read"}]
        }
    assert registry.pull(_creds(developer), f"{org}/after:v1")
    assert not registry.pull(_creds(developer), f"{org}/before:v1")
    assert not registry.push(_creds(developer), f"{org}/after:v2")
